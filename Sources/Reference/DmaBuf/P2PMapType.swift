/// How a peer-to-peer transfer from a provider to an importer is routed: the result of
/// `pci_p2pdma_map_type()` (C6.6).
package enum P2PMapType: Hashable, Sendable, CaseIterable {
  /// `PCI_P2PDMA_MAP_NOT_SUPPORTED`: mapping fails with `-EINVAL` (C6.1).
  case notSupported
  /// `PCI_P2PDMA_MAP_BUS_ADDR`: both sit below one upstream bridge, no ACS redirect on the path;
  /// the importer uses PCI bus addresses (C6.2).
  case busAddress
  /// `PCI_P2PDMA_MAP_THRU_HOST_BRIDGE`: the transfer crosses a host bridge that allows it;
  /// addresses go through the importer's DMA mapping (C6.3, C6.4).
  case throughHostBridge
}

extension DmaBufModel {
  /// The map type between `exporter` (the provider) and `importer` in `world`'s topology (C6.6).
  ///
  /// The upstream bridges of a device are its parent, its parent's parent, and so on (a node
  /// without parent sits on the root bus, behind the host bridge). The *common bridge* is the
  /// first node of the importer's upstream chain that is also in the exporter's upstream chain.
  ///
  /// Interpretation: the ports "on the path" are, on each side, the device's own node and every
  /// node of its upstream chain strictly below the common bridge (so the downstream ports a
  /// switch's devices hang off count, the common bridge itself does not: it routes between its
  /// own downstream ports and its ACS setting does not redirect that traffic). The common
  /// ancestor must be a bridge (`isBridge`); a device that is its own peer shares its parent
  /// bridge with itself, and on the root bus shares none.
  package static func mapType(exporter: Exporter, importer: Importer, in world: World)
    -> P2PMapType
  {
    let exporterChain = upstreamChain(of: exporter.node, in: world)
    let importerChain = upstreamChain(of: importer.node, in: world)
    if let common = importerChain.first(where: exporterChain.contains),
      world.node(common)?.isBridge == true
    {
      // C6.6: no port on the path with ACS redirect enabled → bus addresses.
      let path =
        [exporter.node] + exporterChain.prefix { $0 != common }
        + [importer.node] + importerChain.prefix { $0 != common }
      let redirected = path.contains { world.node($0)?.acsRedirect == true }
      if !redirected { return .busAddress }
    }
    // C6.6: through the host bridge: allowed on Zen or an allow-listed host bridge.
    if world.cpu.isZenOrLater || world.hostBridgeAllowed { return .throughHostBridge }
    return .notSupported
  }

  /// The names of the upstream nodes of `node`, nearest first (empty on the root bus).
  ///
  /// A node missing from the topology has no known upstream (the world's invariant rules this
  /// out); the walk stops after `pci.count` steps so a malformed world cannot loop.
  private static func upstreamChain(of node: String, in world: World) -> [String] {
    var chain: [String] = []
    var current = world.node(node)?.parent
    while let name = current, chain.count <= world.pci.count {
      chain.append(name)
      current = world.node(name)?.parent
    }
    return chain
  }
}
