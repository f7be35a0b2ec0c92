/// The memory-failure half of the model (docs/contract.md, sections 1–5).
///
/// Holds the shim's PFN-space objects, the logical processes with their threads, SIGBUS state
/// and mappings of the device memory, and the `vm.memory_failure_early_kill` sysctl.
///
/// Invariant (``invariantViolation()``): every live process has a live thread (`t0` until it
/// exits); thread indexes are unique, threads kept in creation order (a sequence may create `t2`
/// before `t1`: Corpora/README.md asks only for a new index); a process's VMAs do not overlap and lie inside user
/// space; no two registered spaces overlap (C1.3); a pending signal exists only on a thread that
/// blocks SIGBUS (an unblocked one is delivered at the end of the op that sent it).
package struct MemoryFailureModel: Sendable {
  package let world: World
  /// PFN-space objects by name, in creation order.
  package internal(set) var spaces: [SpaceState] = []
  /// Live processes in creation order: the kernel's task list order (C3.6).
  package internal(set) var processes: [ProcessState] = []
  /// `vm.memory_failure_early_kill` (C3.9, default 0).
  package private(set) var earlyKill: Int64 = 0
  /// Known kernel behaviours predicted instead of the contract's (``Deviation``); empty for the
  /// contract model.
  package let deviations: Set<Deviation>
  /// The deviation that left the kernel's state undefined, if one did.
  package internal(set) var undefined: Deviation?
  private var usedProcessNames: Set<ProcessName> = []
  /// Creation order of every process ever made: process ends are reported in it.
  private var processSerial: [ProcessName: Int] = [:]
  private var usedSpaceNames: Set<SpaceName> = []
  private var nextVMASerial = 0
  /// The rules taken so far (model-rule coverage), when counting is on (``Machine``).
  package var ruleHits: RuleHits? = nil
  /// Whether the op being applied may have left a deliverable signal (one was sent, or a thread
  /// unblocked SIGBUS): only then does ``deliverPending(_:)`` walk every thread. Without it a
  /// sequence of n processes cost O(n²) (a hostile 10,000-`spawn` file took 20 s).
  private var mayDeliver = false
  /// The kernel log lines of memory failures not yet read by `mf-log` (C2.7).
  private var kernelLog: [(pfn: UInt64, result: MFResult)] = []
  /// What the kernel decides inside the series during the last op applied (the kill walk's
  /// candidates and their signals), in the observer's order (``KernelDecision``).
  package private(set) var decisions: [KernelDecision] = []

  mutating func hit(_ r: Rule) { ruleHits?.add(r) }

  package init(world: World, deviations: Set<Deviation> = []) {
    self.world = world
    self.deviations = deviations
  }

  /// Applies `op` (not a dma-buf op) and returns the predicted observations, canonical order.
  package mutating func apply(_ op: Op) -> [Observation] {
    var out = Outcome()
    decisions = []
    switch op {
    case .spawn(let p): out.result = spawn(p)
    case .fork(let t, let child): out.result = fork(t, child)
    case .threadCreate(let t): out.result = createThread(t)
    case .threadExit(let t): out.result = exitThread(t)
    case .exit(let p, let code): out.result = exitProcess(p, code: code, &out)
    case .mceKill(let t, let a2, let a3):
      out.result =
        deviations.contains(.prctlInvalidSetsPolicy)
        ? mceKillSettingPolicyFirst(t, a2, a3) : mceKill(t, a2, a3)
      if locate(t) != nil { hit(out.result.isSuccess ? .policySet : .policyInvalid) }
    case .mceKillGet(let t):
      out.result = mceKillGet(t)
      if out.result.isSuccess { hit(.policyGet) }
    case .sigbus(let p, let d): out.result = setDisposition(p, d)
    case .sigmask(let t, let blocked): out.result = setMask(t, blocked: blocked)
    case .sysctlEarlyKill(let v):
      out.result = setEarlyKill(v)
      hit(out.result.isSuccess ? .sysctlSet : .sysctlInvalid)
    case .mmap(let p, let addr, let pages, let region, let pgoff):
      out.result =
        deviations.contains(.mmapAddressAsError) && isAddressAsError(p, addr: addr, pages: pages)
        ? addressAsError(addr) : mmap(p, addr: addr, pages: pages, region: region, pgoff: pgoff)
    case .munmap(let p, let addr, let pages): out.result = munmap(p, addr: addr, pages: pages)
    case .madviseDontFork(let p, let addr, let pages):
      out.result = madviseDontFork(p, addr: addr, pages: pages)
    case .mprotect(let p, let addr, let pages, let prot): out.result = mprotect(p, addr: addr, pages: pages, prot: prot)
    case .mremap(let p, let addr, let pages, let to): out.result = mremap(p, addr: addr, pages: pages, to: to)
    case .madviseHWPoison(let p, let addr, let pages): out.result = madviseHWPoison(p, addr: addr, pages: pages)
    case .corruptPFN(let pfn): out.result = corruptPFN(pfn)
    case .mfLog:
      // C2.7: one log line per memory_failure() call, in call order.
      hit(kernelLog.isEmpty ? .logEmpty : .logLines)
      out.events = kernelLog.map { .memoryFailure(pfn: $0.pfn, type: mfMessagePFNMap, result: $0.result) }
      kernelLog = []
    case .hwCorrupted:
      // C2.8: failures of PFNs without struct page leave the accounting where it was; the
      // harness never poisons a page with one (RAM is never injected).
      hit(.accountingUnchanged)
      out.result = .number(0)
    case .spaceCreate(let s, let first, let last, let cb):
      out.result = createSpace(s, first: first, last: last, callback: cb)
    case .spaceRegister(let s):
      out.result =
        deviations.contains(.invertedRegistersTwice) && isRegisteringLinkedInvertedRange(s)
        ? registerInvertedRangeTwice(s) : registerSpace(s)
    case .spaceUnregister(let s):
      out.result = deviations.contains(.unregisterByOverlap) ? unregisterByOverlap(s) : unregisterSpace(s)
    case .spaceDestroy(let s):
      out.result = deviations.contains(.unregisterByOverlap) ? destroyUnregisteringByOverlap(s) : destroySpace(s)
    case .injectSysfs(let t, let pfn):
      // C5.1: the writer is current; 0 for a full write, else the error.
      out.result = inject(pfn: pfn, current: t, &out)
    case .injectShim(let t, let pfn, _):
      // C5.3: memory_failure() in the caller's context returns its own value. Flags do not
      // change the no-struct-page path (C2.6 adds MF_ACTION_REQUIRED | MF_MUST_KILL anyway).
      // Interpretation: bits memory_failure() does not know (the input classes' invalid flags)
      // are ignored like the known ones: it tests bits and never refuses flags.
      out.result = inject(pfn: pfn, current: t, &out)
    case .mfRace(let pfn): out.result = race(pfn: pfn, &out)
    case .injectQueue(let pfn, let flags) where deviations.contains(.queueSoftOffline) && flags & Self.softOfflineFlag != 0:
      out.result = queueSoftOffline(pfn: pfn, flags: flags, &out)
    case .injectMCE(let pfn) where !world.isInjectableByMachineCheck(pfn) && world.isInjectable(pfn):
      // Harness rule: no machine check beyond the CPU's physical address width.
      hit(.injectMCEBeyondAddressWidth)
      out.result = .error(.notPermitted)
    case .injectMCEAR(let t, let pfn):
      out.result = injectActionRequired(pfn: pfn, current: t, &out)
      if deviations.contains(.mceWarnsOnPFNMap) { warnAfterRecoveredMCE(&out) }
    case .injectQueue(let pfn, _), .injectMCE(let pfn):
      // C5.3, C5.4: run later from a kernel worker: no user current, every signal is AO.
      // Interpretation: of the queue's flags only MF_SOFT_OFFLINE changes what its worker
      // calls (deviation queue-soft-offline); any other bits go to memory_failure() as above.
      out.result = injectFromWorker(pfn: pfn, &out)
      if case .injectMCE = op, deviations.contains(.mceWarnsOnPFNMap) { warnAfterRecoveredMCE(&out) }
    default:
      out.result = .error(.notImplemented)
    }
    deliverPending(&out)
    // Canonical order: process ends in creation order (a deviation's SIGKILL comes first above).
    out.ends.sort { processSerial[$0.endedProcess!, default: 0] < processSerial[$1.endedProcess!, default: 0] }
    return out.observations
  }
}

// MARK: - State

/// A `pfn_address_space` object of the shim (section 1).
package struct SpaceState: Hashable, Sendable {
  package var name: SpaceName
  package var first: UInt64
  package var last: UInt64
  package var callback: CallbackFlavour
  package var isRegistered = false
  /// Whether the shim believes the space registered (its last register returned 0 and no
  /// unregister came since): what its destroy acts on. The contract model keeps it equal to
  /// ``isRegistered``; deviations of the kernel's tree can make them differ.
  package var isRegisteredByShim = false
  /// Whether the space's tree node was ever linked (a node unlinked since keeps stale links).
  package var wasLinked = false

  /// C1.1: closed intervals; adjacent ranges do not overlap.
  package func overlaps(_ o: SpaceState) -> Bool { first <= o.last && o.first <= last }
  package func covers(_ pfn: UInt64) -> Bool { first <= pfn && pfn <= last }
}

/// A thread's per-thread MCE kill policy (C3.7): none means "follow the sysctl".
package enum MCEPolicy: Hashable, Sendable {
  case early
  case late
}

/// A SIGBUS waiting on a thread.
package struct PendingSignal: Hashable, Sendable {
  package var code: Int32
  package var addr: UInt64
  /// `si_addr_lsb`: a page for the memory-failure codes (C3.4), 0 for `SI_KERNEL` (C5.4).
  package var lsb: Int32 = Int32(Arch.pageShift)
}

package struct ThreadState: Hashable, Sendable {
  package var index: Int
  package var policy: MCEPolicy?
  /// The kernel's `PF_MCE_EARLY` as deviation `prctl-invalid-sets-policy` tracks it (set by
  /// SET EARLY, cleared by SET LATE or DEFAULT, left by CLEAR); the contract model ignores it.
  package var earlyBit = false
  package var isBlocked = false
  package var pending: PendingSignal?
  /// Later SIGBUSes of the same kill walk that reach the thread only if it ran its handler
  /// for the pending one in between (C3.5, "normally sees one"): empty between ops.
  package var mayFollow: [PendingSignal] = []
}

/// A VMA mapping the shim's device memory.
package struct VMA: Hashable, Sendable {
  package var start: UInt64
  package var pages: UInt64
  /// `vm_pgoff`: `region << 28 | page offset in the region` (C4.2).
  package var pgoff: UInt64
  package var isDontFork = false
  /// Its protection (`mmap` maps `PROT_READ | PROT_WRITE`): only where an `mprotect` splits it.
  package var prot: Protection = .rw
  /// Creation order inside the process (ties of the walk order, C3.5).
  package var serial: Int

  package var end: UInt64 { start + pages << Arch.pageShift }
}

package struct ProcessState: Hashable, Sendable {
  package var name: ProcessName
  /// Live threads in creation order (C3.3).
  package var threads: [ThreadState]
  package var usedThreadIndexes: Set<Int>
  package var disposition: Disposition = .default
  package var vmas: [VMA] = []
  /// Whether its first thread (`t0`) has exited while others live on.
  package var leaderGone = false

  package func threadPosition(_ index: Int) -> Int? { threads.firstIndex { $0.index == index } }
}

/// Observations of one op, gathered by category and emitted in canonical order.
struct Outcome {
  var result: ResultValue = .zero
  var signals: [Observation] = []
  var ends: [Observation] = []
  var events: [Observation] = []
  /// Kernel failures a deviation predicts (the contract predicts none).
  var failures: [Observation] = []

  var observations: [Observation] { [.result(result)] + signals + ends + events + failures }
}

// MARK: - Processes and threads

extension MemoryFailureModel {
  /// User address space limit on x86_64 with 4-level paging (`TASK_SIZE`).
  package static let taskSize: UInt64 = 0x7fff_ffff_f000

  func processPosition(_ p: ProcessName) -> Int? {
    processes.firstIndex { $0.name == p }
  }

  func locate(_ t: ThreadRef) -> (process: Int, thread: Int)? {
    guard let pi = processPosition(t.process), let ti = processes[pi].threadPosition(t.index)
    else { return nil }
    return (pi, ti)
  }

  private mutating func spawn(_ p: ProcessName) -> ResultValue {
    guard usedProcessNames.insert(p).inserted else { return .error(.exists) }
    processSerial[p] = processSerial.count
    processes.append(
      ProcessState(name: p, threads: [ThreadState(index: 0)], usedThreadIndexes: [0]))
    return .symbol(Symbol(p.raw))
  }

  /// C3.8: the child gets the parent's device-memory VMAs except `MADV_DONTFORK` ones, at the
  /// same addresses and offsets. C3.7: the policy is inherited (from the forking thread).
  /// Interpretation: the child's one thread also inherits the forking thread's signal mask and
  /// the process's disposition (fork(2)), and no pending signal (signal(7)).
  private mutating func fork(_ t: ThreadRef, _ child: ProcessName) -> ResultValue {
    guard let (pi, ti) = locate(t) else { return .error(.noProcess) }
    guard usedProcessNames.insert(child).inserted else { return .error(.exists) }
    processSerial[child] = processSerial.count
    let parent = processes[pi]
    var thread = parent.threads[ti]
    thread.index = 0
    thread.pending = nil
    var copy = ProcessState(
      name: child, threads: [thread], usedThreadIndexes: [0], disposition: parent.disposition)
    if parent.vmas.contains(where: \.isDontFork) { hit(.forkDropsDontfork) }
    if parent.vmas.contains(where: { !$0.isDontFork }) { hit(.forkKeepsVMAs) }
    for vma in parent.vmas.sorted(by: { $0.serial < $1.serial }) where !vma.isDontFork {
      var v = vma
      v.serial = nextVMASerial
      nextVMASerial += 1
      copy.vmas.append(v)
    }
    processes.append(copy)
    return .symbol(Symbol(child.raw))
  }

  /// A new thread inherits the creating thread's policy (C3.7) and signal mask
  /// (pthread_create(3)): the process's first live thread, `t0` until it exits.
  private mutating func createThread(_ t: ThreadRef) -> ResultValue {
    guard let pi = processPosition(t.process) else { return .error(.noProcess) }
    guard processes[pi].usedThreadIndexes.insert(t.index).inserted else { return .error(.exists) }
    var thread = processes[pi].threads[0]
    thread.index = t.index
    thread.pending = nil
    processes[pi].threads.append(thread)
    return .zero
  }

  /// A thread's pending thread-directed signal goes with it. The first thread (`t0`, the
  /// leader) may exit too (`pthread_exit`): the process lives on in its other threads, with
  /// its VMAs (C3.8: only exit takes them away), its disposition and their policies; its ops
  /// then run in its first live thread, which new threads inherit from (pthread_create(3)).
  /// Harness rule: the process's last live thread cannot exit (`-EINVAL`; `exit` ends it).
  ///
  /// Interpretation (the contract counts threads, not tasks): a thread that has exited is no
  /// longer a thread of the process. It is never "current" (C3.2: it runs nothing), and C3.3's
  /// choice of "the first early-kill thread of the process" passes over it, even when it was
  /// the leader and the kernel keeps it as a zombie until the whole process ends; a process
  /// whose leader has exited is a candidate like any other (C3.1: it still maps the PFN).
  private mutating func exitThread(_ t: ThreadRef) -> ResultValue {
    guard let (pi, ti) = locate(t) else { return .error(.noProcess) }
    guard processes[pi].threads.count > 1 else { return .error(.invalid) }
    hit(t.index == 0 ? .leaderExits : .threadExits)
    processes[pi].threads.remove(at: ti)
    if processes[pi].threads.first?.index != 0 { processes[pi].leaderGone = true }
    return .zero
  }

  /// C3.8: exit removes all of the process's VMAs. The parent sees the low byte of any code
  /// (exit(2), `WEXITSTATUS`): the input classes' 256, -1 and the 32-bit extremes included.
  private mutating func exitProcess(_ p: ProcessName, code: Int32, _ out: inout Outcome)
    -> ResultValue
  {
    guard let pi = processPosition(p) else { return .error(.noProcess) }
    processes.remove(at: pi)
    out.ends.append(.processEnd(p, .exited(code: code & 0xff)))
    return .zero
  }

  /// C3.7: `PR_MCE_KILL` with `CLEAR` (arg3 0) or `SET` with `LATE`, `EARLY`, `DEFAULT`;
  /// anything else is `-EINVAL` and changes nothing.
  mutating func mceKill(_ t: ThreadRef, _ a2: UInt64, _ a3: UInt64) -> ResultValue {
    guard let (pi, ti) = locate(t) else { return .error(.noProcess) }
    let policy: MCEPolicy?
    switch (a2, a3) {
    case (0, 0): policy = nil  // PR_MCE_KILL_CLEAR
    case (1, 0): policy = .late  // PR_MCE_KILL_SET, PR_MCE_KILL_LATE
    case (1, 1): policy = .early  // PR_MCE_KILL_SET, PR_MCE_KILL_EARLY
    case (1, 2): policy = nil  // PR_MCE_KILL_SET, PR_MCE_KILL_DEFAULT
    default: return .error(.invalid)
    }
    processes[pi].threads[ti].policy = policy
    return .zero
  }

  /// C3.7: `PR_MCE_KILL_GET` returns 0 (late), 1 (early) or 2 (default).
  private func mceKillGet(_ t: ThreadRef) -> ResultValue {
    guard let (pi, ti) = locate(t) else { return .error(.noProcess) }
    switch processes[pi].threads[ti].policy {
    case .late: return .number(0)
    case .early: return .number(1)
    case nil: return .number(2)
    }
  }

  /// sigaction(2). Interpretation: setting `SIG_IGN` discards a pending SIGBUS on every thread
  /// (POSIX, signal(7)); a signal sent while ignored *and blocked* stays pending (C3.3 lists
  /// "blocked stays pending" first) and is discarded when unblocked if still ignored.
  private mutating func setDisposition(_ p: ProcessName, _ d: Disposition) -> ResultValue {
    guard let pi = processPosition(p) else { return .error(.noProcess) }
    processes[pi].disposition = d
    if d == .ignore {
      for ti in processes[pi].threads.indices { processes[pi].threads[ti].pending = nil }
    }
    return .zero
  }

  /// Unblocking delivers a pending SIGBUS at the end of the op (``deliverPending(_:)``).
  private mutating func setMask(_ t: ThreadRef, blocked: Bool) -> ResultValue {
    guard let (pi, ti) = locate(t) else { return .error(.noProcess) }
    processes[pi].threads[ti].isBlocked = blocked
    if !blocked { mayDeliver = true }
    return .zero
  }

  /// C3.9: 0 or 1, anything else `-EINVAL`.
  private mutating func setEarlyKill(_ v: Int64) -> ResultValue {
    guard v == 0 || v == 1 else { return .error(.invalid) }
    earlyKill = v
    return .zero
  }
}

// MARK: - Mappings

extension MemoryFailureModel {
  /// mmap(2) with `MAP_SHARED | MAP_FIXED_NOREPLACE` of the shim, file offset
  /// `region << 40 | pgoff << 12` (Corpora/README.md).
  ///
  /// Checks in the order mmap(2) documents them, then the shim's own (harness rules): length 0
  /// or unaligned address `-EINVAL`; past `TASK_SIZE` `-ENOMEM`; overlapping an existing mapping
  /// `-EEXIST` (`MAP_FIXED_NOREPLACE`); no device memory `-ENODEV`; a region other than 2 or 4,
  /// or a range past the region, `-EINVAL`.
  ///
  /// Harness rule: a page count whose length in bytes does not fit 64 bits (2^52 pages or more)
  /// is `-EINVAL` before any call (``maxPages``). Interpretation: a `pgoff` of 2^28 or more
  /// carries into the region bits of `vm_pgoff` (the file offset is `region << 40 | pgoff << 12`),
  /// so the region the shim sees is `region | pgoff >> 28` (C4.2's arithmetic).
  private mutating func mmap(
    _ p: ProcessName, addr: UInt64, pages: UInt64, region: UInt64, pgoff: UInt64
  ) -> ResultValue {
    guard let pi = processPosition(p) else { return .error(.noProcess) }
    guard pages <= Self.maxPages else { return .error(.invalid) }
    guard pages > 0, addr & (Arch.pageSize - 1) == 0 else { return .error(.invalid) }
    guard pages <= Self.taskSize >> Arch.pageShift,
      addr <= Self.taskSize - pages << Arch.pageShift
    else { return .error(.noMemory) }
    let end = addr + pages << Arch.pageShift
    if processes[pi].vmas.contains(where: { $0.start < end && addr < $0.end }) {
      return .error(.exists)
    }
    guard let memory = world.deviceMemory else { return .error(.noDevice) }
    let vmPgoff = region << 28 | pgoff
    let index = vmPgoff >> 28
    let offset = vmPgoff & (1 << 28 - 1)
    guard let r = memory.region(index), offset < r.pages, pages <= r.pages - offset else {
      return .error(.invalid)
    }
    processes[pi].vmas.append(VMA(start: addr, pages: pages, pgoff: vmPgoff, serial: nextVMASerial))
    nextVMASerial += 1
    return .zero
  }

  /// The most pages whose length in bytes the agent can form (`SIZE_MAX >> PAGE_SHIFT`): more
  /// is `-EINVAL` without a system call (harness rule, VM/agent/child.c).
  package static let maxPages: UInt64 = .max >> Arch.pageShift

  /// munmap(2): unaligned, empty or past `TASK_SIZE` is `-EINVAL`; unmapping nothing is 0.
  /// C3.8: a partial munmap trims or splits, each remaining page keeps its address and offset.
  private mutating func munmap(_ p: ProcessName, addr: UInt64, pages: UInt64) -> ResultValue {
    guard let pi = processPosition(p) else { return .error(.noProcess) }
    guard addr & (Arch.pageSize - 1) == 0, pages > 0, addr <= Self.taskSize,
      pages <= (Self.taskSize - addr) >> Arch.pageShift
    else { return .error(.invalid) }
    let end = addr + pages << Arch.pageShift
    var kept: [VMA] = []
    for v in processes[pi].vmas {
      let pieces = v.removing(addr..<end)
      if !pieces.isEmpty, pieces != [v] { hit(.munmapSplits) }
      kept += pieces
    }
    processes[pi].vmas = kept
    return .zero
  }

  /// madvise(2) `MADV_DONTFORK`: unaligned start `-EINVAL`; length 0 is 0; the flag applies to
  /// the mapped parts of the range (VMAs split at its ends) and a hole makes the call `-ENOMEM`.
  /// Harness rule: 2^52 pages or more is `-EINVAL` before the call (``maxPages``).
  /// Interpretation (madvise(2), `do_madvise()`): a range whose end wraps past 2^64 is
  /// `-EINVAL`; one that ends past `TASK_SIZE` without wrapping has a hole there, `-ENOMEM`.
  private mutating func madviseDontFork(_ p: ProcessName, addr: UInt64, pages: UInt64)
    -> ResultValue
  {
    guard let pi = processPosition(p) else { return .error(.noProcess) }
    guard pages <= Self.maxPages else { return .error(.invalid) }
    guard addr & (Arch.pageSize - 1) == 0 else { return .error(.invalid) }
    guard pages > 0 else { return .zero }
    guard !addr.addingReportingOverflow(pages << Arch.pageShift).overflow else { return .error(.invalid) }
    guard pages <= Self.taskSize >> Arch.pageShift, addr <= Self.taskSize - pages << Arch.pageShift
    else { return .error(.noMemory) }
    let range = addr..<(addr + pages << Arch.pageShift)
    var result: [VMA] = []
    var covered: UInt64 = 0
    for v in processes[pi].vmas {
      let lo = max(v.start, range.lowerBound)
      let hi = min(v.end, range.upperBound)
      guard lo < hi else {
        result.append(v)
        continue
      }
      covered += hi - lo
      result += v.removing(lo..<hi)
      var inside = v.slice(lo..<hi)
      inside.isDontFork = true
      result.append(inside)
    }
    processes[pi].vmas = result.sorted { $0.start < $1.start }
    return covered == range.upperBound - range.lowerBound ? .zero : .error(.noMemory)
  }
}

// MARK: - mprotect, mremap

extension MemoryFailureModel {
  /// mprotect(2): unaligned `addr` `-EINVAL`; length 0 is 0; a range that leaves the address
  /// space or has an unmapped page `-ENOMEM` ("addresses … invalid for the address space of the
  /// process, or … not mapped"). C3.8: it takes no VMA away, so later failures signal the same
  /// processes at the same addresses, whatever the protection (`PROT_NONE` included).
  /// Harness rule: 2^52 pages or more is `-EINVAL` before the call (``maxPages``).
  /// Interpretation: a range whose end wraps past 2^64 is `-ENOMEM` as well and changes nothing.
  /// A range with an unmapped page changes the mapped pages from `addr` up to the first
  /// unmapped one and then fails with `-ENOMEM`: POSIX says that when mprotect fails for a
  /// reason other than EINVAL "the protections on some of the pages in the range … may have been
  /// changed", and the model takes the pages before the hole. (Corrected: the model first said a
  /// failing call changes nothing; the guest split the VMA of a call that ran past its end,
  /// `fuzz --seed 43 --world mf`.) A VMA whose protection changes for part of it is split at
  /// the changed range's ends (mprotect(2) works on whole VMAs; device-memory VMAs are never
  /// merged back), each piece keeping its addresses, offsets and age: invisible to the
  /// contract's predictions, but the known kernel behaviours (``Deviation``) look at the pieces.
  private mutating func mprotect(_ p: ProcessName, addr: UInt64, pages: UInt64, prot: Protection) -> ResultValue {
    guard let pi = processPosition(p) else { return .error(.noProcess) }
    guard pages <= Self.maxPages, addr & (Arch.pageSize - 1) == 0 else { return .error(.invalid) }
    guard pages > 0 else { return .zero }
    guard pages <= Self.taskSize >> Arch.pageShift, addr <= Self.taskSize - pages << Arch.pageShift
    else { return .error(.noMemory) }
    let whole = addr..<(addr + pages << Arch.pageShift)
    // The mapped run from `addr`: up to the first page no VMA holds.
    var end = addr
    while end < whole.upperBound, let v = processes[pi].vmas.first(where: { $0.start <= end && end < $0.end }) {
      end = min(v.end, whole.upperBound)
    }
    let range = addr..<end
    hit(end == whole.upperBound ? .mprotectKeepsVMAs : .mprotectHoleChangesPrefix)
    processes[pi].vmas = processes[pi].vmas.flatMap { v -> [VMA] in
      guard v.prot != prot, v.start < range.upperBound, range.lowerBound < v.end else { return [v] }
      var inside = v.slice(range)
      inside.prot = prot
      return v.removing(range) + [inside]
    }.sorted { $0.start < $1.start }
    return end == whole.upperBound ? .zero : .error(.noMemory)
  }

  /// mremap(2) with `MREMAP_MAYMOVE | MREMAP_FIXED`, old and new size equal (a "simple move"):
  /// moves what is mapped in `[addr, addr + pages)` to `to`, unmapping whatever
  /// `[to, to + pages)` held.
  ///
  /// Checks: unaligned `addr` or `to`, 0 pages, overlapping old and new ranges `-EINVAL`
  /// (mremap(2)); `addr` itself must be mapped, else `-EFAULT`. Since Linux 6.17 (mremap(2),
  /// man-pages 6.16) the old range of a simple move may span several mappings and the unmapped
  /// areas between them: every mapped part moves, by the same distance, and the gaps stay gaps.
  /// Harness rule: 2^52 pages or more is `-EINVAL` before the call (``maxPages``); the agent
  /// moves only inside the map window (the world's `mapWindow`): a new range outside it is
  /// `-EPERM` without a call, so that no process's own memory is ever replaced.
  /// Interpretation (the contract says nothing of mremap): a failing mremap changes nothing
  /// (the destination is not unmapped); the moved pages keep their file offsets (C3.8's rule
  /// for pages that stay mapped: an mremap is a move, not a new mapping of other pages), so a
  /// later failure signals at the new address (C3.4, `si_addr` the address in that VMA), and
  /// the old address is no longer mapped; each moved part is a new VMA, the youngest (in
  /// address order), for C3.5's "older VMA first" (mremap(2) creates the new mapping); the
  /// part of a partly moved VMA that stays is trimmed or split as by munmap.
  private mutating func mremap(_ p: ProcessName, addr: UInt64, pages: UInt64, to: UInt64) -> ResultValue {
    guard let pi = processPosition(p) else { return .error(.noProcess) }
    guard pages <= Self.maxPages, pages > 0, addr & (Arch.pageSize - 1) == 0, to & (Arch.pageSize - 1) == 0
    else { return .error(.invalid) }
    let len = pages << Arch.pageShift
    let w = world.mapWindow
    guard to >= w.lowerBound, !to.addingReportingOverflow(len).overflow, to + len - 1 <= w.upperBound
    else {
      hit(.mremapOutsideWindow)
      return .error(.notPermitted)
    }
    let (oldEnd, wraps) = addr.addingReportingOverflow(len)
    if !wraps, addr < to + len, to < oldEnd { return .error(.invalid) }
    guard processes[pi].vmas.contains(where: { $0.start <= addr && addr < $0.end }) else {
      hit(.mremapUnmapped)
      return .error(.fault)
    }
    let old = addr..<(wraps ? UInt64.max : oldEnd)
    var moved: [VMA] = []
    var kept: [VMA] = []
    for v in processes[pi].vmas.sorted(by: { $0.start < $1.start }) {
      guard v.start < old.upperBound, old.lowerBound < v.end else {
        kept.append(v)
        continue
      }
      moved.append(v.slice(old))
      kept += v.removing(old)
    }
    hit(moved.count > 1 ? .mremapMovesSeveral : .mremapMoves)
    let dest = to..<(to + len)
    kept = kept.flatMap { $0.removing(dest) }
    for var m in moved {
      m.start = m.start - addr + to
      m.serial = nextVMASerial
      nextVMASerial += 1
      kept.append(m)
    }
    processes[pi].vmas = kept.sorted { $0.start < $1.start }
    return .zero
  }

  /// Bytes of `r` that the process's VMAs cover.
  private func coveredBytes(_ p: ProcessState, _ r: Range<UInt64>) -> UInt64 {
    p.vmas.reduce(0) { sum, v in
      let lo = max(v.start, r.lowerBound)
      let hi = min(v.end, r.upperBound)
      return lo < hi ? sum + (hi - lo) : sum
    }
  }
}

// MARK: - Injectors meant for pages with a struct page (C5.2)

extension MemoryFailureModel {
  /// C5.2: `madvise(MADV_HWPOISON)` fails with `-EFAULT` on device memory and never reaches
  /// `memory_failure()`: no event, no signal. Unaligned `addr` `-EINVAL`, length 0 is 0, as
  /// madvise(2) says for any advice. Harness rule: 2^52 pages or more is `-EINVAL` before the
  /// call (``maxPages``). Interpretation: a range whose end wraps past 2^64 is `-EINVAL` (as for
  /// `MADV_DONTFORK`); any other non-empty range is `-EFAULT`: the map window holds only device
  /// memory, and a page nothing maps has no struct page to poison either. Harness rule: a
  /// range starting below the map window (the world's `mapWindow`) is `-EPERM` without a call,
  /// so that no process's own RAM is ever poisoned.
  private mutating func madviseHWPoison(_ p: ProcessName, addr: UInt64, pages: UInt64) -> ResultValue {
    guard processPosition(p) != nil else { return .error(.noProcess) }
    guard pages <= Self.maxPages, addr & (Arch.pageSize - 1) == 0 else { return .error(.invalid) }
    guard pages > 0 else { return .zero }
    guard !addr.addingReportingOverflow(pages << Arch.pageShift).overflow else { return .error(.invalid) }
    guard addr >= world.mapWindow.lowerBound else { return .error(.notPermitted) }
    hit(.hwpoisonMadviseFails)
    return .error(.fault)
  }

  /// C5.2: debugfs `hwpoison/corrupt-pfn` fails with `-ENXIO` on a PFN without struct page and
  /// never reaches `memory_failure()`. Harness rule: a PFN that is not injectable (``World/isInjectable(_:)``)
  /// is `-EPERM` without a write, as for every trigger: the harness never poisons RAM.
  private mutating func corruptPFN(_ pfn: UInt64) -> ResultValue {
    guard world.isInjectable(pfn) else {
      hit(.injectNotPermitted)
      return .error(.notPermitted)
    }
    hit(.hwpoisonDebugfsFails)
    return .error(.noDeviceOrAddress)
  }
}

extension VMA {
  /// The part of the VMA inside `r` (which must intersect it), at the same addresses and offsets.
  func slice(_ r: Range<UInt64>) -> VMA {
    let lo = Swift.max(start, r.lowerBound)
    let hi = Swift.min(end, r.upperBound)
    var v = self
    v.start = lo
    v.pages = (hi - lo) >> Arch.pageShift
    v.pgoff = pgoff + (lo - start) >> Arch.pageShift
    return v
  }

  /// What remains of the VMA after removing `r`: zero, one or two pieces (C3.8).
  func removing(_ r: Range<UInt64>) -> [VMA] {
    guard r.lowerBound < end, start < r.upperBound else { return [self] }
    var pieces: [VMA] = []
    if start < r.lowerBound { pieces.append(slice(start..<r.lowerBound)) }
    if r.upperBound < end { pieces.append(slice(r.upperBound..<end)) }
    return pieces
  }
}

// MARK: - PFN spaces (section 1)

extension MemoryFailureModel {
  /// The shim creates any `[first, last]`, unvalidated (C1.4).
  private mutating func createSpace(
    _ s: SpaceName, first: UInt64, last: UInt64, callback: CallbackFlavour
  ) -> ResultValue {
    guard usedSpaceNames.insert(s).inserted else { return .error(.exists) }
    spaces.append(SpaceState(name: s, first: first, last: last, callback: callback))
    return .zero
  }

  /// C1.1: `-EINVAL` without callback, `-EBUSY` if overlapping any registered space.
  /// Interpretation: a registered space overlaps itself, so registering it again is `-EBUSY`.
  mutating func registerSpace(_ s: SpaceName) -> ResultValue {
    guard let i = spaces.firstIndex(where: { $0.name == s }) else { return .error(.noEntry) }
    guard spaces[i].callback != .none else {
      hit(.registerNoCallback)
      return .error(.invalid)
    }
    if spaces.contains(where: { $0.isRegistered && $0.overlaps(spaces[i]) }) {
      hit(.registerOverlap)
      return .error(.busy)
    }
    hit(.registered)
    spaces[i].isRegistered = true
    spaces[i].isRegisteredByShim = true
    spaces[i].wasLinked = true
    return .zero
  }

  /// C1.2: unregistering what is not registered has no effect on any registration.
  mutating func unregisterSpace(_ s: SpaceName) -> ResultValue {
    guard let i = spaces.firstIndex(where: { $0.name == s }) else { return .error(.noEntry) }
    hit(spaces[i].isRegistered ? .unregisterRegistered : .unregisterNotRegistered)
    spaces[i].isRegistered = false
    spaces[i].isRegisteredByShim = false
    return .zero
  }

  mutating func destroySpace(_ s: SpaceName) -> ResultValue {
    guard let i = spaces.firstIndex(where: { $0.name == s }) else { return .error(.noEntry) }
    spaces.remove(at: i)
    return .zero
  }
}

// MARK: - Memory failure (sections 2, 3)

extension MemoryFailureModel {
  /// A trigger in the context of thread `current` (C5.1, C5.3).
  private mutating func inject(pfn: UInt64, current: ThreadRef, _ out: inout Outcome)
    -> ResultValue
  {
    guard locate(current) != nil else { return .error(.noProcess) }
    guard world.isInjectable(pfn) else {
      hit(.injectNotPermitted)
      return .error(.notPermitted)
    }
    hit(.injectFromThread)
    return memoryFailure(pfn: pfn, current: current, &out)
  }

  /// C5.4: an action-required machine check whose poison thread `current` consumed, in user
  /// mode: `memory_failure(pfn, MF_ACTION_REQUIRED)` runs in that thread's context (the MCE's
  /// task work, before it returns to user space), so the thread is "current" for C3.2 and
  /// every other candidate is signalled as C3.3 says. When the call does not recover the error
  /// (C2.3's `-EBUSY`), the thread gets a plain SIGBUS: `si_code` `SI_KERNEL`, no address.
  ///
  /// Interpretations where the contract is silent:
  /// - The op returns `memory_failure()`'s own return value (0 or `-EBUSY`), as the triggers
  ///   run in a thread's context do (C5.1, C5.3); the harness reads it, it is not a system call.
  /// - The plain SIGBUS is forced like C3.2's (the kernel's `force_sig()`): a blocked or
  ///   ignored SIGBUS gets its default disposition back and the process dies of it; with a
  ///   handler the handler sees `code=128 addr=0 lsb=0`. Like any standard signal it is not
  ///   queued a second time while one is pending for the thread (C3.5).
  /// - When the thread's process does not map the PFN and a registered space covers it, the
  ///   call recovers and the thread gets nothing (C3.1: it is not a candidate).
  /// - The harness's rules of the other injects apply first: a thread that does not exist is
  ///   `-ESRCH`, a PFN that may not be poisoned or whose address is beyond the CPU's physical
  ///   width is `-EPERM` (no machine check is sent).
  mutating func injectActionRequired(pfn: UInt64, current: ThreadRef, _ out: inout Outcome)
    -> ResultValue
  {
    guard locate(current) != nil else { return .error(.noProcess) }
    guard world.isInjectable(pfn) else {
      hit(.injectNotPermitted)
      return .error(.notPermitted)
    }
    guard world.isInjectableByMachineCheck(pfn) else {
      hit(.injectMCEBeyondAddressWidth)
      return .error(.notPermitted)
    }
    hit(.injectMCEARInContext)
    let result = memoryFailure(pfn: pfn, current: current, &out)
    // C5.4: not recovered: a plain SIGBUS for the consuming thread (kill_me_now()).
    if result != .zero, let (pi, ti) = locate(current) {
      hit(.injectMCEARNotRecovered)
      force(pi, ti, code: SignalCode.kernel, addr: 0, lsb: 0)
    }
    return result
  }

  /// C2.1: two `memory_failure(pfn, 0)` calls at once (the shim's direct poison) from two
  /// threads of the agent, so no logical process is current (C3.2: every signal is AO).
  /// Serialised, they act as one call after the other, and C2.5 makes the second run the whole
  /// path again: two events, the signals of each call, and the processes' SIGBUS state between
  /// them as after the first (no op ends in between: a second AO to a thread whose first is
  /// still pending is not queued, C3.5, so a handler may see one or two, `sig?`).
  ///
  /// The result is the first failing call's error, else the most `pfn_to_vma_pgoff()`
  /// callbacks that ran at once, which C2.1 bounds by 1 (the shim counts them).
  /// Interpretation: the walk asks the callback about every VMA of the space's mapping in each
  /// process it could signal (C3.1 makes the callback decide candidacy), and only processes
  /// with an early-kill thread can be signalled when nobody is current (C3.3); so the callback
  /// runs (result 1) exactly when a registered space covers the PFN and such a process maps
  /// device memory, and not at all otherwise (result 0).
  /// Harness rule: a PFN that is not injectable is `-EPERM` without a call, as for every trigger.
  private mutating func race(pfn: UInt64, _ out: inout Outcome) -> ResultValue {
    guard world.isInjectable(pfn) else {
      hit(.injectNotPermitted)
      return .error(.notPermitted)
    }
    let asked =
      spaces.contains { $0.isRegistered && $0.covers(pfn) }
      && processes.indices.contains { pi in
        !(deviations.contains(.exitedLeaderSkipsProcess) && isSkippedForExitedLeader(pi))
          && !processes[pi].vmas.isEmpty && earlyKillThread(processes[pi]) != nil
      }
    let first = memoryFailure(pfn: pfn, current: nil, &out)
    let firstDecisions = decisions
    let second = memoryFailure(pfn: pfn, current: nil, &out)
    // The observer reports an op's walks, then its signals, each in call order.
    let all = firstDecisions + decisions
    let isWalk: (KernelDecision) -> Bool = { if case .walk = $0 { true } else { false } }
    decisions = all.filter(isWalk) + all.filter { !isWalk($0) }
    if !first.isSuccess { return first }
    if !second.isSuccess { return second }
    hit(asked ? .raceSerialised : .raceNoCallback)
    return .number(asked ? 1 : 0)
  }

  /// A trigger run by a kernel worker (C5.3, C5.4): the op itself returns 0.
  mutating func injectFromWorker(pfn: UInt64, _ out: inout Outcome) -> ResultValue {
    guard world.isInjectable(pfn) else {
      hit(.injectNotPermitted)
      return .error(.notPermitted)
    }
    hit(.injectFromWorker)
    _ = memoryFailure(pfn: pfn, current: nil, &out)
    return .zero
  }

  /// `memory_failure(pfn, flags)` on a PFN without struct page (C2.2), `current` being the
  /// calling user thread or `nil` for a kernel worker. Returns its return value.
  mutating func memoryFailure(pfn: UInt64, current: ThreadRef?, _ out: inout Outcome)
    -> ResultValue
  {
    // C2.3: no registered space covers the PFN: Ignored, -EBUSY, no signals.
    guard let space = spaces.first(where: { $0.isRegistered && $0.covers(pfn) }) else {
      hit(.failureNoSpace)
      out.events.append(.memoryFailure(pfn: pfn, type: mfMessagePFNMap, result: .ignored))
      kernelLog.append((pfn, .ignored))
      return .error(.busy)
    }
    var sigkilled: [Int] = []
    // The walk's candidates: the thread chosen, the code of its signal, the address (C3.1).
    var walk: [(ThreadRef, Int32, UInt64)] = []
    defer {
      // Every candidate first, then the signal generated for each (the walk collects, then
      // kills); generating a signal succeeds, whatever then becomes of it (C3.2, C3.3).
      decisions =
        walk.map { .walk($0.0, addr: $0.2, lsb: Int32(Arch.pageShift)) }
        + walk.map { .signal($0.0, code: $0.1, addr: $0.2, lsb: Int32(Arch.pageShift), result: 0) }
    }
    // C3.6: processes in creation order.
    for pi in processes.indices {
      if deviations.contains(.exitedLeaderSkipsProcess), isSkippedForExitedLeader(pi) { continue }
      if deviations.contains(.killOutsideVMA),
        isKilledOutsideVMA(pi, pfn: pfn, callback: space.callback, current: current)
      {
        sigkilled.append(pi)
        continue
      }
      let addrs = signalAddresses(in: processes[pi], pfn: pfn, callback: space.callback)
      guard !addrs.isEmpty else {
        hit(walkMiss(processes[pi], pfn: pfn, callback: space.callback))
        continue  // C3.1: not affected in any way.
      }
      if processes[pi].leaderGone { hit(.candidateWithoutLeader) }
      if let current, current.process == processes[pi].name,
        let ti = processes[pi].threadPosition(current.index)
      {
        // C3.2, C2.6: the current process gets BUS_MCEERR_AR in the current thread, by force.
        hit(.forcedAR)
        walk += addrs.map { (current, SignalCode.actionRequired, $0) }
        for a in addrs { force(pi, ti, code: SignalCode.actionRequired, addr: a) }
      } else if let ti = earlyKillThread(processes[pi]) {
        // C3.3: others only if early kill, BUS_MCEERR_AO, not forced.
        hit(.earlyAO)
        let t = ThreadRef(processes[pi].name, processes[pi].threads[ti].index)
        walk += addrs.map { (t, SignalCode.actionOptional, $0) }
        for a in addrs { send(pi, ti, code: SignalCode.actionOptional, addr: a) }
      } else {
        hit(.lateNoSignal)
      }
    }
    sigkill(sigkilled, &out)
    hit(.failureRecovered)
    // C2.4, C2.7 (the event after all signals are sent), C2.5 (nothing unmapped or recorded).
    out.events.append(.memoryFailure(pfn: pfn, type: mfMessagePFNMap, result: .recovered))
    kernelLog.append((pfn, .recovered))
    return .zero
  }

  /// C3.1, C3.4, C3.5: the user address of `pfn` in each VMA that maps it, in the walk order
  /// (ascending `vm_pgoff`, older VMAs first for equal offsets).
  package func signalAddresses(in p: ProcessState, pfn: UInt64, callback: CallbackFlavour)
    -> [UInt64]
  {
    let walk = p.vmas.sorted { ($0.pgoff, $0.serial) < ($1.pgoff, $1.serial) }
    return walk.compactMap { vma -> UInt64? in
      guard let pgoff = callbackPgoff(callback, vma: vma, pfn: pfn), pgoff >= vma.pgoff else {
        return nil
      }
      let delta = pgoff - vma.pgoff
      // C3.1: the address must lie inside the VMA.
      guard delta < vma.pages else { return nil }
      return vma.start + delta << Arch.pageShift
    }
  }

  /// Which rule kept a process that maps pages of the failed space's region out of the walk:
  /// the callback failed for every VMA (C4.1), an offset fell outside a VMA (C3.1), or no VMA
  /// maps the PFN at all.
  func walkMiss(_ p: ProcessState, pfn: UInt64, callback: CallbackFlavour) -> Rule {
    var failed = false
    for vma in p.vmas {
      guard let pgoff = callbackPgoff(callback, vma: vma, pfn: pfn) else {
        failed = true
        continue
      }
      if pgoff >= vma.pgoff, pgoff - vma.pgoff >= vma.pages { return .outsideVMA }
    }
    return failed ? .callbackFails : .processNotMapping
  }

  /// C4.2, C4.3: the shim's callback; `nil` for a nonzero return (C4.1).
  package func callbackPgoff(_ flavour: CallbackFlavour, vma: VMA, pfn: UInt64) -> UInt64? {
    guard flavour != .none, let memory = world.deviceMemory else { return nil }
    let index = vma.pgoff >> 28
    let v = vma.pgoff & (1 << 28 - 1)
    guard let r = memory.region(index) else { return nil }  // -EINVAL
    guard pfn >= r.firstPFN, pfn - r.firstPFN < r.pages else { return nil }  // -EFAULT
    let p = pfn - r.firstPFN
    guard p >= v else { return nil }  // -EFAULT
    if flavour == .strict, p - v >= vma.pages { return nil }  // strict: -EFAULT
    return vma.pgoff + (p - v)
  }

  /// C3.3: the first thread in creation order that set EARLY, or has no policy while the
  /// sysctl is 1; LATE threads are not eligible.
  package func earlyKillThread(_ p: ProcessState) -> Int? {
    p.threads.firstIndex { t in
      switch t.policy {
      case .early: true
      case .late: false
      case nil: earlyKill == 1
      }
    }
  }

  /// C3.2: forced delivery: a blocked or ignored SIGBUS is reset to default and unblocked.
  /// C3.5: a standard signal already pending is not queued again.
  mutating func force(_ pi: Int, _ ti: Int, code: Int32, addr: UInt64, lsb: Int32 = Int32(Arch.pageShift)) {
    if processes[pi].threads[ti].isBlocked || processes[pi].disposition == .ignore {
      hit(.forcedUnblocked)
      processes[pi].disposition = .default
      processes[pi].threads[ti].isBlocked = false
    }
    if processes[pi].threads[ti].pending == nil {
      processes[pi].threads[ti].pending = PendingSignal(code: code, addr: addr, lsb: lsb)
    } else {
      hit(.alreadyPending)
    }
    mayDeliver = true
  }

  /// C3.3: not forced: ignored (and not blocked) is discarded, blocked stays pending.
  /// C3.5: a standard signal already pending is not queued again.
  ///
  /// Interpretation of C3.5's "normally": a non-forced signal goes to a thread other than the
  /// one running the trigger, and that thread may run its handler for the first SIGBUS before
  /// the kernel sends the next one (another CPU, or a preemption of the sender); the next one
  /// then arrives too. So when the thread has a handler and does not block SIGBUS, each later
  /// signal of the walk is optional (`sig?`). Blocked, it stays pending: exactly one. With the
  /// default action the first one ends the process; forced signals (C3.2) go to the thread
  /// running the trigger, which cannot run its handler in between.
  mutating func send(_ pi: Int, _ ti: Int, code: Int32, addr: UInt64) {
    let t = processes[pi].threads[ti]
    if processes[pi].disposition == .ignore && !t.isBlocked {
      hit(.aoIgnored)
      return
    }
    if t.isBlocked { hit(.aoBlocked) }
    mayDeliver = true
    if t.pending == nil {
      processes[pi].threads[ti].pending = PendingSignal(code: code, addr: addr)
    } else if !t.isBlocked && processes[pi].disposition == .handler {
      hit(.mayFollow)
      processes[pi].threads[ti].mayFollow.append(PendingSignal(code: code, addr: addr))
    } else {
      hit(.alreadyPending)
    }
  }

  /// Delivers every pending SIGBUS on a thread that does not block it, at the end of the op
  /// (the agent synchronises after every op): a handler records it (C3.4), the default action
  /// kills the process (C3.3), an ignored one is discarded.
  private mutating func deliverPending(_ out: inout Outcome) {
    guard mayDeliver else { return }
    mayDeliver = false
    var pi = 0
    while pi < processes.count {
      var killed = false
      for ti in processes[pi].threads.indices {
        let t = processes[pi].threads[ti]
        guard let sig = t.pending, !t.isBlocked else { continue }
        processes[pi].threads[ti].pending = nil
        processes[pi].threads[ti].mayFollow = []
        switch processes[pi].disposition {
        case .handler:
          hit(.deliveredToHandler)
          let ref = ThreadRef(processes[pi].name, t.index)
          out.signals.append(
            .signal(ref, signo: Signal.bus, code: sig.code, addr: sig.addr, lsb: sig.lsb))
          for later in t.mayFollow {
            out.signals.append(
              .optional(
                .signal(ref, signo: Signal.bus, code: later.code, addr: later.addr, lsb: later.lsb)))
          }
        case .default:
          hit(.killedByDefault)
          killed = true
        case .ignore:
          break
        }
        if killed { break }
      }
      if killed {
        out.ends.append(.processEnd(processes[pi].name, .killed(signal: Signal.bus)))
        processes.remove(at: pi)
      } else {
        pi += 1
      }
    }
  }
}

// MARK: - Invariants

extension MemoryFailureModel {
  /// Checks the invariant of the type's doc comment; `nil` when it holds.
  package func invariantViolation() -> String? {
    for p in processes {
      guard !p.threads.isEmpty else { return "\(p.name) has no live thread" }
      guard p.leaderGone || p.threads.first?.index == 0 else { return "\(p.name) lost t0 without an exit of it" }
      let idx = p.threads.map(\.index)
      // Unique, not ascending: `thread P.tN` may name any index not used before (Corpora/README.md:
      // names are used once and never reused), so a sequence (a spliced one often) may create `t2`
      // before `t1`. What the contract orders by is creation (C3.3's early-kill thread, the
      // observations' thread order), which `threads` keeps by appending; ascending indexes would
      // be a property of the generator, not of the contract.
      guard Set(idx).count == idx.count else {
        return "\(p.name): thread indexes \(idx) not unique"
      }
      let vmas = p.vmas.sorted { $0.start < $1.start }
      for (a, b) in zip(vmas, vmas.dropFirst()) where a.end > b.start {
        return "\(p.name): VMAs at \(a.start) and \(b.start) overlap"
      }
      for v in vmas where v.pages == 0 || v.end > Self.taskSize {
        return "\(p.name): VMA at \(v.start) empty or past TASK_SIZE"
      }
      for t in p.threads where t.pending != nil && !t.isBlocked {
        return "\(p.name).t\(t.index): pending signal on a thread that does not block SIGBUS"
      }
      for t in p.threads where !t.mayFollow.isEmpty {
        return "\(p.name).t\(t.index): optional signals left after an op"
      }
    }
    let reg = spaces.filter(\.isRegistered)
    for (i, a) in reg.enumerated() {
      for b in reg[(i + 1)...] where a.overlaps(b) {
        return "registered spaces \(a.name) and \(b.name) overlap (C1.3)"
      }
    }
    return nil
  }
}
