/// A decision the kernel takes inside the series during an op, which the sequence's ordinary
/// observations do not show: the guest agent's libbpf observer records them at the series'
/// functions (`VM/agent/observer.bpf.c`), the model predicts them from the contract.
///
/// They are not part of a sequence's expectations (a corpus file never holds them): a campaign
/// compares them after the observations matched (Corpora/README.md, "Observer lines"). Each
/// prints as the agent's line without its `bpf ` prefix, in this order within an op: every
/// candidate of the kill walk, then every signal generated for them, then map types, then the
/// DMA address each range of a map was handed.
package enum KernelDecision: Hashable, Sendable, CustomStringConvertible {
  /// A candidate of a memory-failure kill walk (C3.1, C3.6): the thread the walk chose in a
  /// process (C3.2: the thread running the trigger; C3.3: the early-kill thread) and the user
  /// address it computed, `si_addr_lsb` the page shift.
  case walk(ThreadRef, addr: UInt64, lsb: Int32)
  /// The signal generated for a candidate: AR by force to the current thread (C3.2), AO not
  /// forced (C3.3); `result` is what generating it returned.
  case signal(ThreadRef, code: Int32, addr: UInt64, lsb: Int32, result: Int64)
  /// The P2P map type the kernel computed for a map (C6.6).
  case mapType(P2PMapType)
  /// The DMA address `dma_buf_phys_vec_to_sgt()` handed one range of a map, in range order
  /// (C6.2–C6.4, ``DMARangeDecision``).
  case dmaRange(DMARangeDecision)

  package var description: String {
    switch self {
    case .walk(let t, let addr, let lsb):
      return "walk \(t) addr=0x\(String(addr, radix: 16)) lsb=\(lsb)"
    case .signal(let t, let code, let addr, let lsb, let result):
      let c =
        code == SignalCode.actionRequired ? "AR" : code == SignalCode.actionOptional ? "AO" : "code=\(code)"
      return "signal \(t) \(c) addr=0x\(String(addr, radix: 16)) lsb=\(lsb) ret=\(result)"
    case .mapType(let m):
      return "map-type " + m.observerName
    case .dmaRange(let r):
      return r.description
    }
  }

  /// The keyword of the line (`walk`, `signal`, `map-type`).
  package var keyword: String { String(description.prefix { $0 != " " }) }
}

extension P2PMapType {
  /// How the observer names `pci_p2pdma_map_type()`'s answer.
  package var observerName: String {
    switch self {
    case .notSupported: "not-supported"
    case .busAddress: "bus"
    case .throughHostBridge: "host-bridge"
    }
  }
}

/// The DMA address a map handed one physical range (C6.2–C6.4), as the observer reports it:
/// `dma-range bus|direct phys=0x… len=0x… dma=0x…`, or, linked into an IOVA allocation,
/// `dma-range iova phys=0x… len=0x… iova=$iovaN+0xOFFSET ret=R` (the allocation's base is the
/// kernel's choice: a symbol, the one the map's sg table starts at; `ret` is what linking the
/// range returned).
package struct DMARangeDecision: Hashable, Sendable, CustomStringConvertible {
  package enum Kind: String, Hashable, Sendable {
    /// C6.2: `paddr + bus_offset`.
    case bus
    /// C6.3: linked into one IOVA allocation.
    case iova
    /// C6.4: mapped as it is (`dma_map_phys()`).
    case direct
  }
  package var kind: Kind
  package var range: PhysRange
  /// `.concrete` for bus and direct; `.iova(base, offset:)` for iova, and for a direct range
  /// the IOMMU mapped on its own (iova-no-room-per-range: `dma=$iovaN+0x0`).
  package var address: DMAAddress
  /// What linking the range returned (iova only): `nil` for success.
  package var error: Errno?

  package init(_ kind: Kind, _ range: PhysRange, _ address: DMAAddress, error: Errno? = nil) {
    self.kind = kind
    self.range = range
    self.address = address
    self.error = error
  }

  package var description: String {
    let head = "dma-range \(kind.rawValue) phys=0x\(String(range.address, radix: 16)) len=0x\(String(range.length, radix: 16))"
    switch address {
    case .concrete(let a):
      return head + " dma=0x" + String(a, radix: 16)
    case .iova(let base, let offset) where kind != .iova:
      // Mapped on its own through the IOMMU (iova-no-room-per-range): an IOVA the kernel chose.
      return head + " dma=$\(base.name)+0x\(String(offset, radix: 16))"
    case .iova(let base, let offset):
      return head + " iova=$\(base.name)+0x\(String(offset, radix: 16)) ret=\(error.map { "\($0)" } ?? "0")"
    }
  }
}
