/// The memory-failure half's deviations (``Deviation``): what the kernel does where it departs
/// from the contract, predicted only when the deviation is on. Each rule says which finding's
/// runs it was written from; the contract's own rules are in MemoryFailureModel.swift.
extension MemoryFailureModel {
  /// `MF_SOFT_OFFLINE`, a `memory_failure_queue()` flag.
  static let softOfflineFlag: UInt32 = 0x8

  // MARK: kill-outside-vma (C3.1)

  /// Whether process `pi`, in the kill walk of `pfn` (the current process, or one with an
  /// early-kill thread), has a VMA where the callback succeeds but the address it gives lies
  /// past the VMA's end: the kernel then SIGKILLs the process instead of leaving it alone
  /// (Corpora/findings, `deviation: kill-outside-vma`).
  func isKilledOutsideVMA(_ pi: Int, pfn: UInt64, callback: CallbackFlavour, current: ThreadRef?) -> Bool {
    let p = processes[pi]
    let isCurrent = current.map { $0.process == p.name && p.threadPosition($0.index) != nil } ?? false
    guard isCurrent || earlyKillThread(p) != nil else { return false }
    return p.vmas.contains { vma in
      guard let pgoff = callbackPgoff(callback, vma: vma, pfn: pfn), pgoff >= vma.pgoff else { return false }
      return pgoff - vma.pgoff >= vma.pages
    }
  }

  /// Ends the processes at `positions` (ascending) by SIGKILL: no SIGBUS of theirs is seen.
  mutating func sigkill(_ positions: [Int], _ out: inout Outcome) {
    for pi in positions.reversed() {
      out.ends.insert(.processEnd(processes[pi].name, .killed(signal: Signal.kill)), at: 0)
      processes.remove(at: pi)
    }
  }

  // MARK: exited-leader-skips-process (C3.2, C3.3)

  /// Whether process `pi` is left out of a kill walk by ``Deviation/exitedLeaderSkipsProcess``:
  /// its first thread has exited and it lives on in others. The kernel walks the task list,
  /// which holds one task per process, its leader; an exited leader stays there as a zombie
  /// until the whole process ends, without a memory map, and a task without one is taken for a
  /// kernel thread and skipped before the process's VMAs are looked at (the finding's runs: no
  /// AR for the current process, no AO for an early-kill thread, by policy or by the sysctl).
  func isSkippedForExitedLeader(_ pi: Int) -> Bool { processes[pi].leaderGone }

  // MARK: mmap-address-as-error (C3.8)

  /// Whether `mmap` of `pages` at `addr` by `p` meets ``Deviation/mmapAddressAsError``: the
  /// process exists, the length is one the address space can hold (not 0, at most `TASK_SIZE`),
  /// and the address is one of the last 4095 of the 64-bit space (finding's runs: 2^64 − 1 →
  /// `EPERM`, 2^64 − 14 → `EFAULT`, 2^64 − 4095 → 4095; 2^64 − 4096, aligned, is `ENOMEM`).
  func isAddressAsError(_ p: ProcessName, addr: UInt64, pages: UInt64) -> Bool {
    processes.contains { $0.name == p } && pages > 0 && pages <= Self.taskSize >> Arch.pageShift
      && addr > UInt64.max - Self.maxErrno
  }

  /// The error the kernel makes of the address: 2^64 − addr.
  func addressAsError(_ addr: UInt64) -> ResultValue { .error(Errno(Int32(0 &- addr))) }

  /// The largest error number an address can be taken for (`MAX_ERRNO`).
  static let maxErrno: UInt64 = 4095

  // MARK: unregister-by-overlap (C1.2)

  /// `unregister_pfn_address_space()` as the kernel runs it: it erases the space's node when any
  /// linked node overlaps the space's range (``SpaceState/overlaps(_:)``, which an inverted
  /// range fails against everything, itself included), whether or not that node is linked.
  /// - linked, found: removed (as the contract says);
  /// - linked, not found (an inverted range alone): stays linked;
  /// - never linked, found: erasing a node with no links empties the tree: every space loses
  ///   its registration (finding 0002's runs: later failures on them are Ignored);
  /// - linked before and unlinked since, found: erasing stale links: undefined.
  mutating func unregisterByOverlap(_ s: SpaceName) -> ResultValue {
    guard let i = spaces.firstIndex(where: { $0.name == s }) else { return .error(.noEntry) }
    spaces[i].isRegisteredByShim = false
    eraseByOverlap(i)
    return .zero
  }

  /// The shim's destroy: unregister if the shim believes the space registered, then free it. A
  /// node freed while still linked (an inverted range, above) leaves the tree pointing at freed
  /// memory: undefined (0005's hang, 0009's oops).
  mutating func destroyUnregisteringByOverlap(_ s: SpaceName) -> ResultValue {
    guard let i = spaces.firstIndex(where: { $0.name == s }) else { return .error(.noEntry) }
    if spaces[i].isRegisteredByShim { eraseByOverlap(i) }
    if spaces[i].isRegistered { undefined = .unregisterByOverlap }
    spaces.remove(at: i)
    return .zero
  }

  private mutating func eraseByOverlap(_ i: Int) {
    let space = spaces[i]
    guard spaces.contains(where: { $0.isRegistered && $0.overlaps(space) }) else { return }
    if space.isRegistered {
      spaces[i].isRegistered = false
    } else if !space.wasLinked {
      for j in spaces.indices { spaces[j].isRegistered = false }
    } else {
      undefined = .unregisterByOverlap
    }
  }

  // MARK: inverted-registers-twice (C1.1)

  /// Whether registering `s` now would link an inverted range a second time: it is linked and
  /// no other linked space overlaps it.
  func isRegisteringLinkedInvertedRange(_ s: SpaceName) -> Bool {
    guard let space = spaces.first(where: { $0.name == s }), space.isRegistered, space.first > space.last,
      space.callback != .none
    else { return false }
    return !spaces.contains { $0.name != s && $0.isRegistered && $0.overlaps(space) }
  }

  /// The second link returns 0 and leaves a cycle in the tree (0010's hang): undefined.
  mutating func registerInvertedRangeTwice(_ s: SpaceName) -> ResultValue {
    undefined = .invertedRegistersTwice
    return .zero
  }

  // MARK: mce-warns-on-pfnmap (C5.4)

  /// After a recovered machine check, action optional or required, the kernel WARNs (0003:
  /// `uc_decode_notifier()` and `kill_me_maybe()` both call `set_mce_nospec()`). The WARN's text
  /// is the kernel's; a failure predicted with an empty detail matches any of its kind.
  func warnAfterRecoveredMCE(_ out: inout Outcome) {
    guard out.events.contains(where: { if case .memoryFailure(_, _, .recovered) = $0 { true } else { false } })
    else { return }
    out.failures.append(.guestFailure(kind: "warn", detail: ""))
  }

  // MARK: queue-soft-offline (section 2, C5.3)

  /// `memory_failure_queue(pfn, MF_SOFT_OFFLINE)`: the worker soft-offlines the PFN, which has
  /// no struct page and is refused: no event, no signal (0004). The op still returns 0 (the
  /// shim's own check of the PFN first, as for every trigger).
  ///
  /// `soft_offline_page()` also has `WARN_ON_ONCE(flags & MF_COUNT_INCREASED)` for a PFN that is
  /// not `pfn_valid()`, and the queue hands it the caller's flags: with bit 0 set too, a WARN,
  /// once per boot (so `warn?`: a guest that warned before stays silent).
  func queueSoftOffline(pfn: UInt64, flags: UInt32, _ out: inout Outcome) -> ResultValue {
    guard world.isInjectable(pfn) else { return .error(.notPermitted) }
    if flags & Self.countIncreasedFlag != 0 { out.failures.append(.optional(.guestFailure(kind: "warn", detail: ""))) }
    return .zero
  }

  /// `MF_COUNT_INCREASED`.
  static let countIncreasedFlag: UInt32 = 1 << 0

  // MARK: prctl-invalid-sets-policy (C3.7)

  /// `PR_MCE_KILL_SET` with a policy other than LATE, EARLY, DEFAULT: `-EINVAL`, but the thread
  /// is now marked as having a policy of its own, and which one is whatever the kernel's early
  /// bit says: LATE for a thread that never set EARLY (0006), EARLY for one that did, even if it
  /// cleared its policy since (CLEAR leaves the bit: Corpora/regression/mf-prctl-invalid-args-
  /// change-nothing.seq on the kernel). Valid calls do what the contract says, and move the bit.
  mutating func mceKillSettingPolicyFirst(_ t: ThreadRef, _ a2: UInt64, _ a3: UInt64) -> ResultValue {
    guard let (pi, ti) = locate(t) else { return mceKill(t, a2, a3) }
    if a2 == 1, a3 > 2 {
      processes[pi].threads[ti].policy = processes[pi].threads[ti].earlyBit ? .early : .late
      return .error(.invalid)
    }
    let r = mceKill(t, a2, a3)
    if r == .zero, a2 == 1 { processes[pi].threads[ti].earlyBit = a3 == 1 }
    return r
  }
}
