import Reference

/// What the model's state was when an op that decides a rare outcome ran, in a few coarse
/// words: guided generation's feedback finer than the rules (``Rule``), so that it keeps a
/// sequence that reached a new combination of the conditions a rare rule needs before it
/// reaches the rule itself.
///
/// A memory failure on a registered PFN: per process it walks into, whether that process runs
/// the trigger, its SIGBUS disposition, whether it has an early-kill thread and that thread
/// blocks SIGBUS, and whether it maps the PFN more than once (C3.2–C3.5). A revocation (close,
/// memory off or on, reset) or a map: how many attachments of the device are mapped and live
/// (C7.4–C7.7). The set of names is finite (a few hundred).
package enum StateFeature {
  /// The features of `op`, applied to the model in state `m` (before it).
  package static func of(_ op: Op, before m: Machine) -> [String] {
    switch op {
    case .injectSysfs(let t, let pfn), .injectShim(let t, let pfn, _), .injectMCEAR(let t, let pfn):
      return memoryFailure(pfn, current: t, m)
    case .injectQueue(let pfn, _), .injectMCE(let pfn): return memoryFailure(pfn, current: nil, m)
    case .vfioClose(let d): return revocation("close", d, m)
    case .vfioMemory(let d, let enabled): return revocation(enabled ? "memory-on" : "memory-off", d, m)
    case .vfioReset(let d): return revocation("reset", d, m)
    case .map(let a):
      guard let att = m.dmaBuf.attachments.first(where: { $0.name == a }), let b = m.dmaBuf.buf(att.buf) else {
        return []
      }
      return ["map usable=\(m.dmaBuf.isUsable(b)) mapped=\(att.mapping != nil) detached=\(att.isDetached)"]
    default: return []
    }
  }

  private static func memoryFailure(_ pfn: UInt64, current: ThreadRef?, _ m: Machine) -> [String] {
    let mf = m.memoryFailure
    guard let space = mf.spaces.first(where: { $0.isRegistered && $0.covers(pfn) }) else { return [] }
    var out: [String] = []
    for p in mf.processes {
      let addrs = mf.signalAddresses(in: p, pfn: pfn, callback: space.callback)
      guard !addrs.isEmpty else { continue }
      let early = mf.earlyKillThread(p).map { p.threads[$0] }
      let isCurrent = current?.process == p.name
      out.append(
        "mf current=\(isCurrent) disposition=\(p.disposition) early=\(early != nil)"
          + " blocked=\(isCurrent ? p.threads.first { $0.index == current!.index }?.isBlocked == true : early?.isBlocked == true)"
          + " multi=\(addrs.count > 1) pending=\(early?.pending != nil)")
    }
    out.append("mf processes=\(min(out.count, 3)) worker=\(current == nil)")
    return out
  }

  private static func revocation(_ what: String, _ d: DeviceName, _ m: Machine) -> [String] {
    let dma = m.dmaBuf
    let live = dma.attachments.filter { a in !a.isDetached && dma.buf(a.buf)?.device == d }
    let mapped = live.count { $0.mapping != nil }
    let state = dma.devices[d]
    return [
      "\(what) mapped=\(min(mapped, 2)) unmapped=\(min(live.count - mapped, 2)) open=\(state?.isOpen == true)"
        + " memory=\(state?.isMemoryEnabled == true)"
    ]
  }
}
