import Reference
import Testing

/// C6.6: the map type from the PCI topology, the CPU and the host bridge.
@Suite struct DmaBufMapTypeTests {
  typealias F = DmaBufFixtures

  private func mapType(_ w: World, exporter: Int = 0, importer: Int = 0) -> P2PMapType {
    DmaBufModel.mapType(
      exporter: w.exporter(F.x(exporter))!, importer: w.importer(F.i(importer))!, in: w)
  }

  private func setACS(_ node: String, in w: inout World) {
    let i = w.pci.firstIndex { $0.name == node }!
    w.pci[i].acsRedirect = true
  }

  @Test func switchWorldUsesBusAddresses() {
    #expect(mapType(.p2pSwitch) == .busAddress)
  }

  @Test func zenRootBusGoesThroughHostBridge() {
    #expect(mapType(.p2pHostBridgeZen) == .throughHostBridge)
    #expect(mapType(.p2pHostBridgeZenPT) == .throughHostBridge)
  }

  @Test func intelRootBusIsNotSupported() {
    #expect(mapType(.p2pHostBridgeIntel) == .notSupported)
  }

  @Test func allowListedHostBridgeOnIntelGoesThroughHostBridge() {
    var w = World.p2pHostBridgeIntel
    w.hostBridgeAllowed = true
    #expect(mapType(w) == .throughHostBridge)
  }

  @Test(arguments: ["dn0", "dn1", "ex0", "im0"])
  func acsRedirectOnThePathCrossesTheHostBridge(node: String) {
    var zen = World.p2pSwitch
    zen.cpu = CPU(vendor: "AuthenticAMD", family: 0x19, model: 1)
    setACS(node, in: &zen)
    #expect(mapType(zen) == .throughHostBridge)
    var intel = World.p2pSwitch
    setACS(node, in: &intel)
    #expect(mapType(intel) == .notSupported)
  }

  /// Interpretation: the common bridge (up0) and ports above it are not on the path.
  @Test(arguments: ["up0", "rp0"])
  func acsRedirectAtOrAboveTheCommonBridgeDoesNotMatter(node: String) {
    var w = World.p2pSwitch
    setACS(node, in: &w)
    #expect(mapType(w) == .busAddress)
  }

  /// x0 below dn0, x1 below dn1, i0 below dn1: x1 and i0 share dn1, so up0's sibling port dn0
  /// is not on their path, but it is on x0's.
  @Test func pathIsPerPair() {
    var w = F.twoExporters
    setACS("dn0", in: &w)
    #expect(mapType(w, exporter: 0) == .notSupported)
    #expect(mapType(w, exporter: 1) == .busAddress)
  }

  /// A common ancestor that is not a bridge is no upstream bridge: through the host bridge.
  @Test func nonBridgeCommonAncestorIsNoSharedBridge() {
    var w = World.p2pHostBridgeZen
    w.pci = [
      PCINode(name: "odd", parent: nil, isBridge: false),
      PCINode(name: "ex0", parent: "odd", isBridge: false),
      PCINode(name: "im0", parent: "odd", isBridge: false),
    ]
    #expect(mapType(w) == .throughHostBridge)
    w.pci[0].isBridge = true
    #expect(mapType(w) == .busAddress)
  }
}
