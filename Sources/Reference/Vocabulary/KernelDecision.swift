/// A decision the kernel takes inside the series during an op, which the sequence's ordinary
/// observations do not show: the guest agent's libbpf observer records them at the series'
/// functions (`VM/agent/observer.bpf.c`), the model predicts them from the contract.
///
/// They are not part of a sequence's expectations (a corpus file never holds them): a campaign
/// compares them after the observations matched (Corpora/README.md, "Observer lines"). Each
/// prints as the agent's line without its `bpf ` prefix, in this order within an op: every
/// candidate of the kill walk, then every signal generated for them, then map types.
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
