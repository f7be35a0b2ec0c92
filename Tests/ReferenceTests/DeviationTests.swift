import CustomDump
import Reference
import Testing

/// The deviations (Sources/Reference/Deviation/Deviation.swift), each on small hand-built
/// sequences: with the deviation off the model predicts the contract, with it on the kernel's
/// behaviour its doc comment describes; and where its rule does not apply, the same prediction
/// either way (a deviation never changes more than it says).
///
/// A sequence is written as steps: the op, what the contract predicts, and what the kernel does
/// with the deviation on when that differs (``DeviationFixtures/Step``).
@Suite struct DeviationTests {
  typealias F = DeviationFixtures

  // MARK: kill-outside-vma (C3.1)

  /// An early-kill process with a SIGBUS handler mapping 4 pages at region 2, page 0, and s1
  /// (nvgrace) over the whole device memory: finding 0001's setup.
  static let earlyKillMapping: [F.Step] = [
    F.same(F.spawn(1), F.spawned(1)),
    F.same(.sigbus(F.p(1), .handler), F.ok),
    F.same(F.mceKill(1, 1, 1), F.ok),
    F.same(F.mmap(1, pages: 4, region: 2, pgoff: 0), F.ok),
    F.same(F.create(1, 0xf8000, 0xfbfff), F.ok),
    F.same(F.register(1), F.ok),
  ]

  @Test func killOutsideVMAKillsAnEarlyKillProcessPastItsVMA() {
    // 0xf800a is page 10 of region 2: the callback's offset lies past the 4-page VMA.
    F.check(
      .killOutsideVMA,
      Self.earlyKillMapping + [
        F.differs(
          F.injectQueue(0xf800a),
          contract: F.ok + [F.mf(0xf800a, .recovered)],
          kernel: F.ok + [F.killed(1, Signal.kill), F.mf(0xf800a, .recovered)]),
        F.differs(F.mceKillGet(1), contract: F.value(1), kernel: F.err(.noProcess)),
      ])
  }

  @Test func killOutsideVMAKillsTheCurrentProcessPastItsVMA() {
    // p1 is not early kill: only being the current process puts it in the walk.
    F.check(
      .killOutsideVMA,
      [
        F.same(F.spawn(1), F.spawned(1)),
        F.same(.sigbus(F.p(1), .handler), F.ok),
        F.same(F.mmap(1, pages: 4, region: 2, pgoff: 0), F.ok),
        F.same(F.create(1, 0xf8000, 0xfbfff), F.ok),
        F.same(F.register(1), F.ok),
        F.differs(
          F.injectSysfs(1, 0xf800a),
          contract: F.ok + [F.mf(0xf800a, .recovered)],
          kernel: F.ok + [F.killed(1, Signal.kill), F.mf(0xf800a, .recovered)]),
      ])
  }

  @Test func killOutsideVMALeavesPFNsInsideTheVMAAndOtherProcessesAlone() {
    // Inside the VMA: the early-kill process gets its AO SIGBUS, the current one its AR one.
    F.check(
      .killOutsideVMA,
      Self.earlyKillMapping + [
        F.same(
          F.injectQueue(0xf8002),
          F.ok + [F.sigbus(1, code: SignalCode.actionOptional, addr: F.mapAddress + 0x2000), F.mf(0xf8002, .recovered)]),
        F.same(
          F.injectSysfs(1, 0xf8003),
          F.ok + [F.sigbus(1, code: SignalCode.actionRequired, addr: F.mapAddress + 0x3000), F.mf(0xf8003, .recovered)]),
      ])
    // Past the VMA, but p1 is neither early kill nor current: left alone (the worker injects).
    F.check(
      .killOutsideVMA,
      [
        F.same(F.spawn(1), F.spawned(1)),
        F.same(F.mmap(1, pages: 4, region: 2, pgoff: 0), F.ok),
        F.same(F.create(1, 0xf8000, 0xfbfff), F.ok),
        F.same(F.register(1), F.ok),
        F.same(F.injectQueue(0xf800a), F.ok + [F.mf(0xf800a, .recovered)]),
        F.same(F.mceKillGet(1), F.value(2)),
      ])
    // Past the VMA of an early-kill process, but the strict callback bounds the offset by the
    // VMA: no address, no kill.
    F.check(
      .killOutsideVMA,
      [
        F.same(F.spawn(1), F.spawned(1)),
        F.same(.sigbus(F.p(1), .handler), F.ok),
        F.same(F.mceKill(1, 1, 1), F.ok),
        F.same(F.mmap(1, pages: 4, region: 2, pgoff: 0), F.ok),
        F.same(F.create(1, 0xf8000, 0xfbfff, callback: .strict), F.ok),
        F.same(F.register(1), F.ok),
        F.same(F.injectQueue(0xf800a), F.ok + [F.mf(0xf800a, .recovered)]),
        F.same(F.mceKillGet(1), F.value(1)),
      ])
  }

  // MARK: unregister-by-overlap (C1.2)

  @Test func unregisterByOverlapOfANeverRegisteredSpaceDropsEveryRegistration() {
    // s2, never registered, overlaps the registered s1: unregistering it empties the tree.
    F.check(
      .unregisterByOverlap,
      [
        F.same(F.create(1, 0xf8000, 0xf8fff), F.ok),
        F.same(F.register(1), F.ok),
        F.same(F.create(2, 0xf8800, 0xf97ff), F.ok),
        F.same(F.unregister(2), F.ok),
        F.differs(
          F.injectQueue(0xf8001),
          contract: F.ok + [F.mf(0xf8001, .recovered)],
          kernel: F.ok + [F.mf(0xf8001, .ignored)]),
        F.differs(F.register(1), contract: F.err(.busy), kernel: F.ok),
        F.same(F.injectQueue(0xf8001), F.ok + [F.mf(0xf8001, .recovered)]),
      ])
    // Finding 0002's sequence: s2's registration failed (-EBUSY) first; it was never linked.
    F.check(
      .unregisterByOverlap,
      [
        F.same(F.create(1, 0xf8000, 0xf8fff), F.ok),
        F.same(F.register(1), F.ok),
        F.same(F.create(2, 0xf8800, 0xf97ff), F.ok),
        F.same(F.register(2), F.err(.busy)),
        F.same(F.unregister(2), F.ok),
        F.differs(
          F.injectQueue(0xf8001),
          contract: F.ok + [F.mf(0xf8001, .recovered)],
          kernel: F.ok + [F.mf(0xf8001, .ignored)]),
      ])
  }

  @Test func unregisterByOverlapDestroyingARegisteredInvertedRangeIsUndefined() {
    // Finding 0009's sequence: the destroy's unregister does not find s1, which is then freed
    // while still linked.
    F.check(
      .unregisterByOverlap,
      [
        F.same(F.spawn(1), F.spawned(1)),
        F.same(F.create(1, 0xf93e8, 0xf8299), F.ok),
        F.same(F.register(1), F.ok),
        F.undefined(F.destroy(1), contract: F.ok),
        F.undefined(F.injectSysfs(1, 0xfa187), contract: F.err(.busy) + [F.mf(0xfa187, .ignored)]),
      ])
  }

  @Test func unregisterByOverlapLeavesAnUnregisteredInvertedRangeLinked() {
    // Nothing registered can overlap a registered inverted range (C1.1 refuses s2, which holds
    // both its ends, with or without the deviation), so its unregister never finds it: s1 stays
    // linked, blocks s2, covers no PFN, and destroying it frees it linked.
    F.check(
      .unregisterByOverlap,
      [
        F.same(F.create(1, 0xf93e8, 0xf8299), F.ok),
        F.same(F.register(1), F.ok),
        F.same(F.create(2, 0xf8000, 0xfbfff), F.ok),
        F.same(F.register(2), F.err(.busy)),
        F.same(F.unregister(1), F.ok),
        F.differs(F.register(2), contract: F.ok, kernel: F.err(.busy)),
        F.differs(
          F.injectQueue(0xf9000),
          contract: F.ok + [F.mf(0xf9000, .recovered)],
          kernel: F.ok + [F.mf(0xf9000, .ignored)]),
        F.undefined(F.destroy(1), contract: F.ok),
      ])
  }

  @Test func unregisterByOverlapOfAnInvertedRangeNeverRegisteredDropsTheSpaceItOverlaps() {
    // The inverted s1 overlaps the registered s2 (s2 holds both its ends), so its registration
    // fails; unregistering it finds s2: a node never linked is erased, the tree is emptied, and
    // nothing is undefined.
    F.check(
      .unregisterByOverlap,
      [
        F.same(F.create(2, 0xf8000, 0xfbfff), F.ok),
        F.same(F.register(2), F.ok),
        F.same(F.create(1, 0xf93e8, 0xf8299), F.ok),
        F.same(F.register(1), F.err(.busy)),
        F.same(F.unregister(1), F.ok),
        F.differs(
          F.injectQueue(0xf9000),
          contract: F.ok + [F.mf(0xf9000, .recovered)],
          kernel: F.ok + [F.mf(0xf9000, .ignored)]),
        F.differs(F.register(2), contract: F.err(.busy), kernel: F.ok),
        F.same(F.destroy(1), F.ok),
        F.same(F.destroy(2), F.ok),
      ])
  }

  @Test func unregisterByOverlapOfAStaleNodeIsUndefined() {
    // s1 was linked and unlinked; unregistering it again while s2 overlaps it erases stale links.
    F.check(
      .unregisterByOverlap,
      [
        F.same(F.create(1, 0xf8000, 0xf8fff), F.ok),
        F.same(F.register(1), F.ok),
        F.same(F.unregister(1), F.ok),
        F.same(F.create(2, 0xf8800, 0xf97ff), F.ok),
        F.same(F.register(2), F.ok),
        F.undefined(F.unregister(1), contract: F.ok),
        F.undefined(F.injectQueue(0xf8900), contract: F.ok + [F.mf(0xf8900, .recovered)]),
      ])
    // Without an overlapping registered space, the second unregister finds nothing: no change.
    F.check(
      .unregisterByOverlap,
      [
        F.same(F.create(1, 0xf8000, 0xf8fff), F.ok),
        F.same(F.register(1), F.ok),
        F.same(F.unregister(1), F.ok),
        F.same(F.create(2, 0xf9000, 0xf9fff), F.ok),
        F.same(F.register(2), F.ok),
        F.same(F.unregister(1), F.ok),
        F.same(F.injectQueue(0xf9001), F.ok + [F.mf(0xf9001, .recovered)]),
        F.same(F.register(1), F.ok),
      ])
  }

  @Test func unregisterByOverlapLeavesOrdinarySequencesAsTheContractSays() {
    F.check(
      .unregisterByOverlap,
      [
        F.same(F.create(1, 0xf8000, 0xf8fff), F.ok),
        F.same(F.create(2, 0xf9000, 0xf9fff), F.ok),
        F.same(F.register(1), F.ok),
        F.same(F.register(2), F.ok),
        F.same(F.register(1), F.err(.busy)),
        F.same(F.injectQueue(0xf8001), F.ok + [F.mf(0xf8001, .recovered)]),
        F.same(F.unregister(1), F.ok),
        F.same(F.injectQueue(0xf8001), F.ok + [F.mf(0xf8001, .ignored)]),
        F.same(F.injectQueue(0xf9001), F.ok + [F.mf(0xf9001, .recovered)]),
        // Not registered, and nothing registered overlaps it.
        F.same(F.unregister(1), F.ok),
        F.same(F.register(1), F.ok),
        // Destroying a registered space unregisters it.
        F.same(F.destroy(2), F.ok),
        F.same(F.injectQueue(0xf9001), F.ok + [F.mf(0xf9001, .ignored)]),
        F.same(F.create(3, 0xf9000, 0xf9fff), F.ok),
        F.same(F.unregister(3), F.ok),
        F.same(F.register(3), F.ok),
        F.same(F.injectQueue(0xf9001), F.ok + [F.mf(0xf9001, .recovered)]),
        // Destroying a space that never registered, overlapping registered ones: the shim does
        // not unregister it.
        F.same(F.create(4, 0xf8000, 0xfbfff), F.ok),
        F.same(F.register(4), F.err(.busy)),
        F.same(F.destroy(4), F.ok),
        F.same(F.injectQueue(0xf8001), F.ok + [F.mf(0xf8001, .recovered)]),
        F.same(F.unregister(5), F.err(.noEntry)),
        F.same(F.destroy(1), F.ok),
        F.same(F.destroy(1), F.err(.noEntry)),
        F.same(F.injectQueue(0xf8001), F.ok + [F.mf(0xf8001, .ignored)]),
        F.same(F.injectQueue(0xf9001), F.ok + [F.mf(0xf9001, .recovered)]),
      ])
  }

  // MARK: inverted-registers-twice (C1.1)

  @Test func invertedRegistersTwiceIsUndefinedAtTheSecondRegister() {
    // Finding 0010's sequence. The contract too answers 0: an inverted range overlaps nothing,
    // not even itself.
    F.check(
      .invertedRegistersTwice,
      [
        F.same(F.create(1, 0xf97ff, 0xf8f6b), F.ok),
        F.same(F.register(1), F.ok),
        F.same(F.create(2, 0xf8000, 0xfbfff), F.ok),
        F.undefined(F.register(1), contract: F.ok),
        F.undefined(F.unregister(2), contract: F.ok),
      ])
    // The op that leaves the state undefined still returns 0.
    var m = Machine(world: .mf, deviations: [.invertedRegistersTwice])
    for op in [F.create(1, 0xf97ff, 0xf8f6b), F.register(1)] { _ = m.apply(op) }
    #expect(m.undefined == nil)
    F.expectSame(m.apply(F.register(1)), F.ok)
    #expect(m.undefined == .invertedRegistersTwice)
  }

  @Test func invertedRegistersTwiceLeavesOtherRegistrationsAlone() {
    F.check(
      .invertedRegistersTwice,
      [
        // A range registered twice is -EBUSY: it overlaps itself.
        F.same(F.create(1, 0xf8000, 0xf8fff), F.ok),
        F.same(F.register(1), F.ok),
        F.same(F.register(1), F.err(.busy)),
        // An inverted range registered once, and again after its unregister.
        F.same(F.create(2, 0xf97ff, 0xf8f6b), F.ok),
        F.same(F.register(2), F.ok),
        F.same(F.unregister(2), F.ok),
        F.same(F.register(2), F.ok),
        // Without callback: refused, twice.
        F.same(F.create(3, 0xfb000, 0xfa000, callback: CallbackFlavour.none), F.ok),
        F.same(F.register(3), F.err(.invalid)),
        F.same(F.register(3), F.err(.invalid)),
        F.same(F.injectQueue(0xf8001), F.ok + [F.mf(0xf8001, .recovered)]),
      ])
  }

  // MARK: mce-warns-on-pfnmap (C5.4)

  @Test func mceWarnsOnPFNMapAfterARecoveredMachineCheck() {
    // Finding 0003's sequence.
    F.check(
      .mceWarnsOnPFNMap,
      [
        F.same(F.create(1, 0xf8000, 0xfbfff), F.ok),
        F.same(F.register(1), F.ok),
        F.differs(
          .injectMCE(pfn: 0xf8003),
          contract: F.ok + [F.mf(0xf8003, .recovered)],
          kernel: F.ok + [F.mf(0xf8003, .recovered), F.warn]),
      ])
  }

  @Test func mceWarnsOnPFNMapOnlyForARecoveredMachineCheck() {
    F.check(
      .mceWarnsOnPFNMap,
      [
        F.same(F.create(1, 0xf8000, 0xf8fff), F.ok),
        F.same(F.register(1), F.ok),
        // No space covers the PFN: ignored, no WARN.
        F.same(.injectMCE(pfn: 0xf9000), F.ok + [F.mf(0xf9000, .ignored)]),
        // Not injectable (RAM): nothing runs.
        F.same(.injectMCE(pfn: 0x100), F.err(.notPermitted)),
        // Recovered by another trigger.
        F.same(F.injectQueue(0xf8003), F.ok + [F.mf(0xf8003, .recovered)]),
        F.same(.injectShim(F.t(1), pfn: 0xf8003, flags: 0), F.err(.noProcess)),
        F.same(F.spawn(1), F.spawned(1)),
        F.same(.injectShim(F.t(1), pfn: 0xf8003, flags: 0), F.ok + [F.mf(0xf8003, .recovered)]),
        F.same(F.injectSysfs(1, 0xf8003), F.ok + [F.mf(0xf8003, .recovered)]),
      ])
  }

  // MARK: queue-soft-offline (section 2, C5.3)

  @Test func queueSoftOfflineSendsNothing() {
    // Finding 0004's sequence, with an early-kill process mapping the PFN: no AO SIGBUS either.
    F.check(
      .queueSoftOffline,
      Self.earlyKillMapping + [
        F.differs(
          F.injectQueue(0xf8001, flags: 0x8),
          contract: F.ok + [F.sigbus(1, code: SignalCode.actionOptional, addr: F.mapAddress + 0x1000), F.mf(0xf8001, .recovered)],
          kernel: F.ok),
        // An unregistered PFN: no ignored event either.
        F.differs(
          F.injectQueue(0xfc000, flags: 0x8 | MFFlags.mustKill),
          contract: F.ok + [F.mf(0xfc000, .ignored)],
          kernel: F.ok),
      ])
  }

  /// `soft_offline_page()`'s `WARN_ON_ONCE(flags & MF_COUNT_INCREASED)` for a PFN without a
  /// valid memmap: with bit 0 beside the soft-offline flag, a WARN that may be absent (once per
  /// boot: `warn?`); without bit 0, none. Met as `inject-queue pfn=0xf8b81 flags=0xffffffff`.
  @Test func queueSoftOfflineWithCountIncreasedMayWarn() {
    F.check(
      .queueSoftOffline,
      [
        F.differs(
          F.injectQueue(0xf8b81, flags: 0xffff_ffff),
          contract: F.ok + [F.mf(0xf8b81, .ignored)],
          kernel: F.ok + [.optional(.guestFailure(kind: "warn", detail: ""))]),
        F.differs(
          F.injectQueue(0xf8b81, flags: 0x8),
          contract: F.ok + [F.mf(0xf8b81, .ignored)],
          kernel: F.ok),
      ])
  }

  @Test func queueSoftOfflineOnlyWithTheFlagOnAQueuedFailure() {
    F.check(
      .queueSoftOffline,
      Self.earlyKillMapping + [
        F.same(
          F.injectQueue(0xf8001, flags: 0),
          F.ok + [F.sigbus(1, code: SignalCode.actionOptional, addr: F.mapAddress + 0x1000), F.mf(0xf8001, .recovered)]),
        F.same(
          F.injectQueue(0xf8001, flags: MFFlags.actionRequired | MFFlags.mustKill),
          F.ok + [F.sigbus(1, code: SignalCode.actionOptional, addr: F.mapAddress + 0x1000), F.mf(0xf8001, .recovered)]),
        // The shim's trigger with the flag: memory_failure() in the caller's context.
        F.same(
          .injectShim(F.t(1), pfn: 0xf8001, flags: 0x8),
          F.ok + [F.sigbus(1, code: SignalCode.actionRequired, addr: F.mapAddress + 0x1000), F.mf(0xf8001, .recovered)]),
        // Not injectable (RAM): refused before anything is queued.
        F.same(F.injectQueue(0x100, flags: 0x8), F.err(.notPermitted)),
      ])
  }

  // MARK: prctl-invalid-sets-policy (C3.7)

  @Test func prctlInvalidSetsPolicyLeavesAThreadWithoutOneLate() {
    // Finding 0006's sequence.
    F.check(
      .prctlInvalidSetsPolicy,
      [
        F.same(F.spawn(1), F.spawned(1)),
        F.same(F.mceKill(1, 1, 3), F.err(.invalid)),
        F.differs(F.mceKillGet(1), contract: F.value(2), kernel: F.value(0)),
      ])
    // Seen at a failure: early kill by the sysctl no more, so no AO SIGBUS.
    F.check(
      .prctlInvalidSetsPolicy,
      [
        F.same(.sysctlEarlyKill(1), F.ok),
        F.same(F.spawn(1), F.spawned(1)),
        F.same(.sigbus(F.p(1), .handler), F.ok),
        F.same(F.mmap(1, pages: 4, region: 2, pgoff: 0), F.ok),
        F.same(F.create(1, 0xf8000, 0xfbfff), F.ok),
        F.same(F.register(1), F.ok),
        F.same(F.mceKill(1, 1, 3), F.err(.invalid)),
        F.differs(
          F.injectQueue(0xf8001),
          contract: F.ok + [F.sigbus(1, code: SignalCode.actionOptional, addr: F.mapAddress + 0x1000), F.mf(0xf8001, .recovered)],
          kernel: F.ok + [F.mf(0xf8001, .recovered)]),
      ])
  }

  @Test func prctlInvalidSetsPolicyKeepsAPolicyAndOtherInvalidCalls() {
    F.check(
      .prctlInvalidSetsPolicy,
      [
        F.same(F.spawn(1), F.spawned(1)),
        // Not PR_MCE_KILL_SET: -EINVAL, nothing set.
        F.same(F.mceKill(1, 2, 0), F.err(.invalid)),
        F.same(F.mceKill(1, 0, 1), F.err(.invalid)),
        F.same(F.mceKillGet(1), F.value(2)),
        // A thread with a policy keeps it.
        F.same(F.mceKill(1, 1, 1), F.ok),
        F.same(F.mceKill(1, 1, 3), F.err(.invalid)),
        F.same(F.mceKillGet(1), F.value(1)),
        F.same(F.mceKill(1, 1, 0), F.ok),
        F.same(F.mceKill(1, 1, 7), F.err(.invalid)),
        F.same(F.mceKillGet(1), F.value(0)),
        // Valid sets and clear as the contract says.
        F.same(F.mceKill(1, 1, 2), F.ok),
        F.same(F.mceKillGet(1), F.value(2)),
        F.same(F.mceKill(1, 1, 1), F.ok),
        F.same(F.mceKill(1, 0, 0), F.ok),
        F.same(F.mceKillGet(1), F.value(2)),
        // CLEAR left the kernel's early bit: an invalid SET brings EARLY back (the guest's run of
        // Corpora/regression/mf-prctl-invalid-args-change-nothing.seq).
        F.same(F.mceKill(1, 1, 3), F.err(.invalid)),
        F.differs(F.mceKillGet(1), contract: F.value(2), kernel: F.value(1)),
        // A thread that does not exist.
        F.same(F.mceKill(2, 1, 3), F.err(.noProcess)),
      ])
  }

  /// Process ends stay in creation order when a SIGKILL and a SIGBUS death meet in one op: p2
  /// (made first, its VMA too short for the PFN) is SIGKILLed, p1 dies of its AO SIGBUS
  /// (fuzz seed 32, world mf: the kernel reported them in creation order).
  @Test func killOutsideVMAKeepsProcessEndsInCreationOrder() {
    F.check(
      .killOutsideVMA,
      [
        F.same(.sysctlEarlyKill(1), F.ok),
        F.same(F.spawn(2), F.spawned(2)),
        F.same(F.spawn(1), F.spawned(1)),
        F.same(F.mmap(2, pages: 1, region: 2, pgoff: 0), F.ok),
        F.same(F.mmap(1, pages: 4, region: 2, pgoff: 0), F.ok),
        F.same(F.create(1, 0xf8000, 0xfbfff), F.ok),
        F.same(F.register(1), F.ok),
        F.differs(
          F.injectQueue(0xf8002),
          contract: F.ok + [F.killed(1, Signal.bus), F.mf(0xf8002, .recovered)],
          kernel: F.ok + [F.killed(2, Signal.kill), F.killed(1, Signal.bus), F.mf(0xf8002, .recovered)]),
      ])
  }

  // MARK: iova-multi-range-fails (C6.3)

  @Test func iovaMultiRangeFailsToMapTwoRangesThroughAnIOVA() {
    // Finding 0007's sequence, then: nothing was mapped, so there is nothing to unmap.
    F.check(
      .iovaMultiRangeFails, in: .p2pHostBridgeZen,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        F.same(F.export(1, [(0, 0x1000), (0x2000, 0x1000)]), F.exported(1)),
        F.same(F.attach(1, 1), F.ok),
        F.differs(
          .map(F.a(1)),
          contract: F.ok + [F.sgt(1, [(.iova(Symbol("iova1"), offset: 0), 0x2000)])],
          kernel: F.err(Errno(98))),
        F.differs(.unmap(F.a(1)), contract: F.ok + [.importer(F.a(1), .stale(0))], kernel: F.err(.invalid)),
      ])
  }

  @Test func iovaMultiRangeFailsNotForOneRangeOrWithoutAnIOVA() {
    // One range through the IOVA.
    F.check(
      .iovaMultiRangeFails, in: .p2pHostBridgeZen,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        F.same(F.export(1, [(0x2000, 0x3000)]), F.exported(1)),
        F.same(F.attach(1, 1), F.ok),
        F.same(.map(F.a(1)), F.ok + [F.sgt(1, [(.iova(Symbol("iova1"), offset: 0), 0x3000)])]),
        F.same(.unmap(F.a(1)), F.ok + [.importer(F.a(1), .stale(0))]),
      ])
    // Two ranges by bus address (behind a switch) and by physical address (passthrough).
    let twoRanges: [(DMAAddress, UInt64)] = [(.concrete(F.barPhys), 0x1000), (.concrete(F.barPhys + 0x2000), 0x1000)]
    for world in [World.p2pSwitch, .p2pHostBridgeZenPT] {
      F.check(
        .iovaMultiRangeFails, in: world,
        [
          F.same(.vfioOpen(F.x0), F.ok),
          F.same(F.export(1, [(0, 0x1000), (0x2000, 0x1000)]), F.exported(1)),
          F.same(F.attach(1, 1), F.ok),
          F.same(.map(F.a(1)), F.ok + [F.sgt(1, twoRanges)]),
          F.same(.unmap(F.a(1)), F.ok),
        ])
    }
  }

  // MARK: iova-no-room-per-range (C6.3)

  /// Finding 0017's buf (256 MiB and a page), then: a second buf of 256 MiB finds no room
  /// while the first is mapped, and maps once it is unmapped; 512 MiB never maps.
  @Test func iovaNoRoomPerRangeMapsEachRangeOnItsOwn() {
    let i1 = Symbol("iova1"), i2 = Symbol("iova2"), i3 = Symbol("iova3"), i4 = Symbol("iova4")
    F.check(
      .iovaNoRoomPerRange, in: .p2pHostBridgeZenDMA32,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        F.same(F.export(1, [(0, 0x1000_0000), (0x1000_0000, 0x1000)]), F.exported(1)),
        F.same(F.attach(1, 1), F.ok),
        F.differs(
          .map(F.a(1)), contract: F.ok + [F.sgt(1, [(.iova(i1, offset: 0), 0x1000_1000)])],
          kernel: F.ok + [F.sgt(1, [(.iova(i1, offset: 0), 0x1000_0000), (.iova(i2, offset: 0), 0x1000)])]),
        F.same(F.export(2, [(0x4000_0000, 0x1000_0000)]), F.exported(2)),
        F.same(F.attach(2, 2), F.ok),
        F.differs(
          .map(F.a(2)), contract: F.ok + [F.sgt(2, [(.iova(i2, offset: 0), 0x1000_0000)])],
          kernel: F.err(Errno(12))),
        F.same(.unmap(F.a(1)), F.ok + [.importer(F.a(1), .stale(0))]),
        F.differs(
          .map(F.a(2)), contract: F.err(.busy),
          kernel: F.ok + [F.sgt(2, [(.iova(i3, offset: 0), 0x1000_0000)])]),
        F.same(F.export(3, [(0, 0x2000_0000)]), F.exported(3)),
        F.same(F.attach(3, 3), F.ok),
        F.differs(
          .map(F.a(3)), contract: F.ok + [F.sgt(3, [(.iova(i3, offset: 0), 0x2000_0000)])],
          kernel: F.err(Errno(12))),
        F.same(F.export(4, [(0x8000_0000, 0x1000)]), F.exported(4)),
        F.same(F.attach(4, 4), F.ok),
        F.same(.map(F.a(4)), F.ok + [F.sgt(4, [(.iova(i4, offset: 0), 0x1000)])]),
      ])
  }

  /// A 64-bit importer, or one whose reserved ranges were not reported: the contract's C6.3.
  @Test func iovaNoRoomPerRangeNotForAWideMaskOrAnUnknownSpace() {
    var unknown = World.p2pHostBridgeZenDMA32
    unknown.importers[0].iovaReserved = nil
    for world in [World.p2pHostBridgeZen, unknown] {
      F.check(
        .iovaNoRoomPerRange, in: world,
        [
          F.same(.vfioOpen(F.x0), F.ok),
          F.same(F.export(1, [(0, 0x2000_0000)]), F.exported(1)),
          F.same(F.attach(1, 1), F.ok),
          F.same(.map(F.a(1)), F.ok + [F.sgt(1, [(.iova(Symbol("iova1"), offset: 0), 0x2000_0000)])]),
        ])
    }
  }

  // MARK: per-range-error-caches-iova-zero (C6.5)

  /// Finding 0018's buf (two ranges that find room, a third of 4 GiB that does not, 4 table
  /// entries): the first failing map leaves frame 0 in the one-page cache twice; the next
  /// allocation without room (the second map's whole size) WARNs and empties it, and that map's
  /// own error path puts frame 0 back, so the third map WARNs again (`WARN_ON`, not once).
  @Test func perRangeErrorCachesIOVAZeroWarnsAtTheNextFlush() {
    let steps: [F.Step] = [
      F.same(.vfioOpen(F.x0), F.ok),
      F.same(F.export(1, [(0, 0x26000), (0x10_0000, 0x31000), (0x4000_0000, 0x1_0083_e000)]), F.exported(1)),
      F.same(F.attach(1, 1), F.ok),
      F.same(F.attach(2, 1), F.ok),
      F.same(.map(F.a(2)), F.err(Errno(12))),
      F.differs(.map(F.a(1)), contract: F.err(Errno(12)), kernel: F.err(Errno(12)) + [Self.warn]),
      F.differs(.map(F.a(1)), contract: F.err(Errno(12)), kernel: F.err(Errno(12)) + [Self.warn]),
    ]
    F.check(.perRangeErrorCachesIOVAZero, in: .p2pHostBridgeZenDMA32, steps, with: [.iovaNoRoomPerRange])
    // Without iova-no-room-per-range (no per-range path: the contract's one IOVA) it changes
    // nothing.
    func table(_ att: Int, _ iova: String) -> Observation {
      F.sgt(att, [(.iova(Symbol(iova), offset: 0), 0xffff_f000), (.iova(Symbol(iova), offset: 0xffff_f000), 0x89_6000)])
    }
    F.check(
      .perRangeErrorCachesIOVAZero, in: .p2pHostBridgeZenDMA32,
      Array(steps.prefix(4)) + [
        F.same(.map(F.a(2)), F.ok + [table(2, "iova1")]), F.same(.map(F.a(1)), F.ok + [table(1, "iova2")]),
        F.same(.map(F.a(1)), F.err(.busy)),
      ])
  }

  /// One-page allocations take the cached frame 0 back as "nothing cached": after two of them
  /// the cache holds no frame 0, and the next allocation without room does not WARN.
  @Test func perRangeErrorCachesIOVAZeroTakenBackByOnePageMaps() {
    F.check(
      .perRangeErrorCachesIOVAZero, in: .p2pHostBridgeZenDMA32,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        F.same(F.export(1, [(0, 0x26000), (0x10_0000, 0x31000), (0x4000_0000, 0x1_0083_e000)]), F.exported(1)),
        F.same(F.attach(1, 1), F.ok),
        F.same(.map(F.a(1)), F.err(Errno(12))),
        F.same(F.export(2, [(0x8000_0000, 0x1000)]), F.exported(2)),
        F.same(F.attach(2, 2), F.ok),
        F.same(F.attach(3, 2), F.ok),
        F.same(.map(F.a(2)), F.ok + [F.sgt(2, [(.iova(Symbol("iova3"), offset: 0), 0x1000)])]),
        F.same(.map(F.a(3)), F.ok + [F.sgt(3, [(.iova(Symbol("iova4"), offset: 0), 0x1000)])]),
        F.same(.map(F.a(1)), F.err(Errno(12))),
      ],
      with: [.iovaNoRoomPerRange])
  }

  static let warn = Observation.guestFailure(kind: "warn", detail: "")

  // MARK: export-argsz-ignores-ranges (C7.1)

  @Test func exportArgszIgnoresRangesExportsWithAShortArgsz() {
    // Finding 0011's sequence (argsz 39, one range needs 40), then the buf's size.
    F.check(
      .exportArgszIgnoresRanges, in: .p2pSwitch,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        F.differs(F.export(1, argsz: 39), contract: F.err(.invalid), kernel: F.exported(1)),
        F.differs(
          .fdinfo(F.b(1)), contract: F.err(.noEntry),
          kernel: F.ok + [.fdinfo(F.b(1), size: 0x1000, exporter: "vfio_pci_core")]),
      ])
    // Header and payload exactly (24): the only check the kernel makes passes.
    F.check(
      .exportArgszIgnoresRanges, in: .p2pSwitch,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        F.differs(F.export(1, argsz: 24), contract: F.err(.invalid), kernel: F.exported(1)),
      ])
  }

  @Test func exportArgszIgnoresRangesKeepsTheHeaderAndPayloadCheck() {
    F.check(
      .exportArgszIgnoresRanges, in: .p2pSwitch,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        // Short of header and payload (24).
        F.same(F.export(1, argsz: 23), F.err(.invalid)),
        F.same(F.export(1, argsz: 7), F.err(.invalid)),
        // Covering the range array, exactly or more.
        F.same(F.export(1, argsz: 40), F.exported(1)),
        F.same(F.export(2, argsz: 0x1000), F.exported(2)),
        F.same(F.export(3), F.exported(3)),
      ])
  }

  // MARK: mmap-address-as-error (C3.8)

  /// `mmap p1 addr=A pages=N region=2 pgoff=0`
  static func mmapAt(_ addr: UInt64, pages: UInt64 = 1) -> Op {
    .mmap(F.p(1), addr: addr, pages: pages, region: 2, pgoff: 0)
  }

  @Test func mmapAddressAsErrorFailsWithTheAddress() {
    // The finding's runs: 2^64 − 1 → EPERM, 2^64 − 14 → EFAULT, 2^64 − 4095 → 4095.
    F.check(
      .mmapAddressAsError,
      [
        F.same(F.spawn(1), F.spawned(1)),
        F.differs(Self.mmapAt(.max), contract: F.err(.invalid), kernel: F.err(.notPermitted)),
        F.differs(Self.mmapAt(.max - 13), contract: F.err(.invalid), kernel: F.err(.fault)),
        F.differs(Self.mmapAt(.max - 4094, pages: 16), contract: F.err(.invalid), kernel: F.err(Errno(4095))),
      ])
  }

  @Test func mmapAddressAsErrorLeavesOtherAddressesAndLengthsAlone() {
    F.check(
      .mmapAddressAsError,
      [
        F.same(Self.mmapAt(.max), F.err(.noProcess)),
        F.same(F.spawn(1), F.spawned(1)),
        // Aligned, one below the range: too high, ENOMEM either way.
        F.same(Self.mmapAt(.max - 4095), F.err(.noMemory)),
        // Unaligned below the range: EINVAL either way.
        F.same(Self.mmapAt(.max - 4096), F.err(.invalid)),
        // No length, or more than the address space holds: not the address's error.
        F.same(Self.mmapAt(.max, pages: 0), F.err(.invalid)),
        F.same(Self.mmapAt(.max, pages: 1 << 52), F.err(.invalid)),
        F.same(F.mmap(1, pages: 4, region: 2, pgoff: 0), F.ok),
      ])
  }

  // MARK: exited-leader-skips-process (C3.2, C3.3)

  /// `pN.tK`
  static func thread(_ n: Int, _ k: Int) -> ThreadRef { ThreadRef(F.p(n), k) }

  /// A SIGBUS handled by `pN.tK`.
  static func sigbus(_ n: Int, _ k: Int, code: Int32) -> Observation {
    .signal(thread(n, k), signo: Signal.bus, code: code, addr: F.mapAddress, lsb: 12)
  }

  /// Process n with a SIGBUS handler and a second thread `t1`, mapping page 0 of region 2 (PFN
  /// 0xf8000 under s1): `prctl` (if given) runs in `t0` first, so `t1` inherits its policy.
  static func twoThreads(_ n: Int, policy: UInt64? = nil) -> [F.Step] {
    [F.same(F.spawn(n), F.spawned(n))] + (policy.map { [F.same(F.mceKill(n, 1, $0), F.ok)] } ?? []) + [
      F.same(.threadCreate(thread(n, 1)), F.ok),
      F.same(.sigbus(F.p(n), .handler), F.ok),
      F.same(F.mmap(n, pages: 1, region: 2, pgoff: 0), F.ok),
    ]
  }

  static let registered: [F.Step] = [
    F.same(F.create(1, 0xf8000, 0xf9fff), F.ok),
    F.same(F.register(1), F.ok),
  ]

  @Test func exitedLeaderSkipsTheCurrentProcess() {
    // Finding 0014's sequence: t1 runs memory_failure() after t0 has exited: no AR.
    F.check(
      .exitedLeaderSkipsProcess,
      Self.registered + Self.twoThreads(1) + [
        F.same(.threadExit(Self.thread(1, 0)), F.ok),
        F.differs(
          .injectShim(Self.thread(1, 1), pfn: 0xf8000, flags: 0x20),
          contract: F.ok + [Self.sigbus(1, 1, code: SignalCode.actionRequired), F.mf(0xf8000, .recovered)],
          kernel: F.ok + [F.mf(0xf8000, .recovered)]),
      ])
  }

  @Test func exitedLeaderSkipsEarlyKillThreads() {
    // Early by the leader's policy (inherited by t1), and by the sysctl: no AO either way.
    F.check(
      .exitedLeaderSkipsProcess,
      Self.registered + Self.twoThreads(1, policy: 1) + [
        F.same(.threadExit(Self.thread(1, 0)), F.ok),
        F.differs(
          F.injectQueue(0xf8000),
          contract: F.ok + [Self.sigbus(1, 1, code: SignalCode.actionOptional), F.mf(0xf8000, .recovered)],
          kernel: F.ok + [F.mf(0xf8000, .recovered)]),
        F.same(F.mceKill(1, 0, 0), F.err(.noProcess)),
        F.same(.mceKill(Self.thread(1, 1), arg2: 0, arg3: 0), F.ok),
        F.same(.sysctlEarlyKill(1), F.ok),
        F.differs(
          F.injectQueue(0xf8000),
          contract: F.ok + [Self.sigbus(1, 1, code: SignalCode.actionOptional), F.mf(0xf8000, .recovered)],
          kernel: F.ok + [F.mf(0xf8000, .recovered)]),
      ])
  }

  @Test func exitedLeaderLeavesOtherProcessesAndOtherThreadExitsAlone() {
    // p1 loses t1, not its leader: still signalled (AR in t0, then AO by the sysctl); p2 keeps
    // its leader beside p3, which lost it: p2 gets its AO, p3 nothing with the deviation.
    F.check(
      .exitedLeaderSkipsProcess,
      Self.registered + Self.twoThreads(1) + Self.twoThreads(2) + Self.twoThreads(3) + [
        F.same(.threadExit(Self.thread(1, 1)), F.ok),
        F.same(.injectShim(Self.thread(1, 0), pfn: 0xf8000, flags: 0x20),
          F.ok + [Self.sigbus(1, 0, code: SignalCode.actionRequired), F.mf(0xf8000, .recovered)]),
        F.same(.sysctlEarlyKill(1), F.ok),
        F.same(.threadExit(Self.thread(3, 0)), F.ok),
        F.differs(
          F.injectQueue(0xf8000),
          contract: F.ok + [
            Self.sigbus(1, 0, code: SignalCode.actionOptional), Self.sigbus(2, 0, code: SignalCode.actionOptional),
            Self.sigbus(3, 1, code: SignalCode.actionOptional), F.mf(0xf8000, .recovered),
          ],
          kernel: F.ok + [
            Self.sigbus(1, 0, code: SignalCode.actionOptional), Self.sigbus(2, 0, code: SignalCode.actionOptional),
            F.mf(0xf8000, .recovered),
          ]),
      ])
  }

  // MARK: export-open-flags-unchecked (C7.2)

  @Test func exportOpenFlagsUncheckedExportsWithOtherFlags() {
    // Finding 0012's sequence (0x40: O_CREAT).
    F.check(
      .exportOpenFlagsUnchecked, in: .p2pSwitch,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        F.differs(F.export(1, openFlags: 0x40), contract: F.err(.invalid), kernel: F.exported(1)),
        F.differs(
          F.export(2, openFlags: ExportRequest.defaultOpenFlags | 1 << 31),
          contract: F.err(.invalid), kernel: F.exported(2)),
      ])
  }

  @Test func exportOpenFlagsUncheckedKeepsTheOtherChecks() {
    F.check(
      .exportOpenFlagsUnchecked, in: .p2pSwitch,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        // Accepted flags: the access mode, O_NONBLOCK, O_CLOEXEC.
        F.same(F.export(1, openFlags: 0x80802), F.exported(1)),
        F.same(F.export(2, openFlags: 0), F.exported(2)),
        // Other flags beside other failures: those still fail.
        F.same(F.export(3, argsz: 23, openFlags: 0x40), F.err(.invalid)),
        F.same(F.export(3, ranges: [(0x800, 0x1000)], openFlags: 0x40), F.err(.invalid)),
        F.same(F.export(3, ranges: [(F.barSize, 0x1000)], openFlags: 0x40), F.err(.invalid)),
      ])
  }

  // MARK: low-power-entry-revokes (C7.4)

  @Test func lowPowerEntryRevokesInD0UntilARestore() {
    // Finding 0015's sequence, then: a second entry fails but revokes again; MEMORY written on
    // restores while the entry is in effect; the exit restores.
    let mapped = F.ok + [F.sgt(1, [(.concrete(F.barPhys), 0x1000)])]
    let notify = Observation.notify(F.a(1))
    F.check(
      .lowPowerEntryRevokes, in: .p2pSwitch,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        F.same(F.export(1), F.exported(1)),
        F.same(F.attach(1, 1), F.ok),
        F.same(.map(F.a(1)), mapped),
        F.differs(.vfioLowPowerEntry(F.x0), contract: F.ok, kernel: F.ok + [notify]),
        F.same(.vfioPower(F.x0), F.value(0)),
        F.differs(.map(F.a(1)), contract: F.err(.busy), kernel: F.err(.noDevice)),
        F.same(.vfioLowPowerEntry(F.x0), F.err(.invalid)),
        F.differs(.vfioMemory(F.x0, enabled: true), contract: F.ok, kernel: F.ok + [.optional(notify)]),
        F.differs(.map(F.a(1)), contract: F.err(.busy), kernel: mapped),
        F.differs(.vfioLowPowerEntry(F.x0), contract: F.err(.invalid), kernel: F.err(.invalid) + [notify]),
        F.differs(.vfioLowPowerExit(F.x0), contract: F.ok, kernel: F.ok + [.optional(notify)]),
        F.differs(.map(F.a(1)), contract: F.err(.busy), kernel: mapped),
        F.same(.unmap(F.a(1)), F.ok),
      ])
  }

  /// The entry revokes the bufs exported before it, not one exported while it is in effect:
  /// the guest attached and mapped such a buf (`fuzz --seed 1 --world p2p-switch`, seed 22: the
  /// kernel's new buf is revoked only while memory is disabled, and the device stays in D0).
  /// A second entry revokes that one too.
  @Test func lowPowerEntryLeavesBufsExportedDuringIt() {
    let notify = Observation.notify(F.a(1))
    F.check(
      .lowPowerEntryRevokes, in: .p2pSwitch,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        F.same(F.export(1), F.exported(1)),
        F.same(F.attach(1, 1), F.ok),
        F.differs(.vfioLowPowerEntry(F.x0), contract: F.ok, kernel: F.ok + [notify]),
        F.same(F.export(2), F.exported(2)),
        F.same(F.attach(2, 2), F.ok),
        F.same(.map(F.a(2)), F.ok + [F.sgt(2, [(.concrete(F.barPhys), 0x1000)])]),
        F.differs(.map(F.a(1)), contract: F.ok + [F.sgt(1, [(.concrete(F.barPhys), 0x1000)])], kernel: F.err(.noDevice)),
        F.differs(.vfioLowPowerEntry(F.x0), contract: F.err(.invalid), kernel: F.err(.invalid) + [.notify(F.a(2))]),
        F.differs(.map(F.a(2)), contract: F.err(.busy), kernel: F.err(.noDevice)),
      ])
  }

  @Test func lowPowerEntryRevokesNotForABadWakeupFDAndResetLiftsIt() {
    let mapped = F.ok + [F.sgt(1, [(.concrete(F.barPhys), 0x1000)])]
    let notify = Observation.notify(F.a(1))
    F.check(
      .lowPowerEntryRevokes, in: .p2pSwitch,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        F.same(F.export(1), F.exported(1)),
        F.same(F.attach(1, 1), F.ok),
        // The wakeup fd is refused before anything is revoked; an exit with none in effect
        // has nothing to lift.
        F.same(.vfioLowPowerWakeup(F.x0, wakeup: .absent), F.err(.invalid)),
        F.same(.vfioLowPowerWakeup(F.x0, wakeup: .file), F.err(.invalid)),
        F.same(.vfioLowPowerExit(F.x0), F.ok),
        F.differs(.vfioLowPowerWakeup(F.x0, wakeup: .eventfd), contract: F.ok, kernel: F.ok + [notify]),
        F.differs(.map(F.a(1)), contract: mapped, kernel: F.err(.noDevice)),
        // The reset's end restores (the reset's own revoke finds the buf revoked already).
        F.differs(.vfioReset(F.x0), contract: F.ok + [notify, .optional(notify)], kernel: F.ok + [.optional(notify)]),
        F.same(.map(F.a(1)), mapped),
        // MEMORY cleared during the entry: still revoked after the exit until MEMORY is set.
        F.differs(.vfioLowPowerEntry(F.x0), contract: F.err(.invalid), kernel: F.err(.invalid) + [notify]),
        F.differs(.vfioMemory(F.x0, enabled: false), contract: F.ok + [notify], kernel: F.ok),
        F.same(.vfioLowPowerExit(F.x0), F.ok),
        F.same(.map(F.a(1)), F.err(.noDevice)),
        F.same(.vfioMemory(F.x0, enabled: true), F.ok + [.optional(notify)]),
      ])
  }

  // MARK: reset-method-stale-bus (C7.6)

  @Test func resetMethodStaleBusRefusesOnlyTheSharedBusReset() {
    // The finding's sequence with a mapped buf: nothing revoked, the mapping stays.
    let mapped = F.ok + [F.sgt(1, [(.concrete(F.barPhys), 0x1000)])]
    let notify = Observation.notify(F.a(1))
    F.check(
      .resetMethodStaleBus, in: .p2pMultifunctionSwitch,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        F.same(F.export(1), F.exported(1)),
        F.same(F.attach(1, 1), F.ok),
        F.same(.map(F.a(1)), mapped),
        F.differs(.vfioReset(F.x0), contract: F.ok + [notify, .optional(notify)], kernel: F.err(.invalid)),
        F.differs(.unmap(F.a(1)), contract: F.err(.invalid), kernel: F.ok),
      ])
    // Alone behind its port (p2p-switch), or with another reset method, the reset works.
    var other = World.p2pMultifunctionSwitch
    other.exporters[0].resetMethods = ["flr", "bus"]
    for world in [World.p2pSwitch, other] {
      F.check(
        .resetMethodStaleBus, in: world,
        [
          F.same(.vfioOpen(F.x0), F.ok),
          F.same(F.export(1), F.exported(1)),
          F.same(F.attach(1, 1), F.ok),
          F.same(.vfioReset(F.x0), F.ok + [notify, .optional(notify)]),
        ])
    }
  }

  // MARK: config-outside-fault (C7.6)

  @Test func configOutsideFaultAnswersEFAULT() {
    // Finding 0016's sequence, then: a write that runs past the end, and one of no bytes.
    F.check(
      .configOutsideFault, in: .p2pSwitch,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        F.differs(.vfioConfig(F.x0, offset: 0x100, width: 1, value: 0), contract: F.err(.invalid), kernel: F.err(.fault)),
        F.differs(.vfioConfig(F.x0, offset: 0xff, width: 2, value: 0), contract: F.err(.invalid), kernel: F.err(.fault)),
        F.differs(
          .vfioConfig(F.x0, offset: 0xff_ffff_ffff, width: 8, value: 0), contract: F.err(.invalid), kernel: F.err(.fault)),
        F.same(.vfioConfig(F.x0, offset: 0x1000, width: 0, value: 0), F.ok),
        F.same(.vfioConfig(F.x0, offset: 0xfc, width: 4, value: 0), F.ok),
      ])
  }

  // MARK: ioas-map-ulong-max (C7.4)

  @Test func ioasMapULongMaxIsOverflowFirst() {
    // The finding's sequence, then: a map of a revoked buf with that length (-EOVERFLOW before
    // -ENODEV), and lengths and IOVAs one below it (the interpretation's answers).
    let m = { (n: Int) in IOASMappingName(index: n) }
    let io1 = IOASName(index: 1)
    func map(_ n: Int, length: UInt64, iova: UInt64? = nil) -> Op {
      .ioasMapFile(m(n), io1, F.b(1), start: 0, length: length, iova: iova)
    }
    F.check(
      .ioasMapULongMax, in: .p2pSwitch,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        F.same(F.export(1), F.exported(1)),
        F.same(.ioasAlloc(io1), F.ok),
        F.differs(map(1, length: .max), contract: F.err(.invalid), kernel: F.err(.overflow)),
        F.differs(map(1, length: 1, iova: .max), contract: F.ok, kernel: F.err(.overflow)),
        F.same(map(2, length: .max - 1), F.err(.invalid)),
        F.same(.vfioMemory(F.x0, enabled: false), F.ok),
        F.differs(map(2, length: .max), contract: F.err(.invalid), kernel: F.err(.overflow)),
        F.same(map(2, length: 0x1000, iova: .max - 1), F.err(.noDevice)),
      ])
  }

  @Test func configOutsideFaultWritesTheBytesInsideFirst() {
    // An exporter whose config space ends right after PCI_COMMAND's low byte: a write from
    // offset 4 that runs past it clears MEMORY (revoked), then fails.
    var world = World.p2pSwitch
    world.exporters[0].configSize = 5
    F.check(
      .configOutsideFault, in: world,
      [
        F.same(.vfioOpen(F.x0), F.ok),
        F.same(F.export(1), F.exported(1)),
        F.same(F.attach(1, 1), F.ok),
        F.differs(
          .vfioConfig(F.x0, offset: 4, width: 2, value: 0), contract: F.err(.invalid),
          kernel: F.err(.fault) + [.notify(F.a(1))]),
        F.differs(.map(F.a(1)), contract: F.ok + [F.sgt(1, [(.concrete(F.barPhys), 0x1000)])], kernel: F.err(.noDevice)),
      ])
  }
}

/// Names, op builders, observations and the checker of ``DeviationTests``.
enum DeviationFixtures {
  // MARK: Steps and the checker

  /// What the kernel does at a step with the deviation on.
  enum Kernel {
    /// As the contract says.
    case same
    /// These observations instead.
    case differs([Observation])
    /// The deviation leaves the state undefined here: no prediction from this step on.
    case undefined
  }

  /// One op of a sequence with its predictions.
  struct Step {
    var op: Op
    var contract: [Observation]
    var kernel: Kernel
  }

  static func same(_ op: Op, _ contract: [Observation]) -> Step {
    Step(op: op, contract: contract, kernel: .same)
  }

  static func differs(_ op: Op, contract: [Observation], kernel: [Observation]) -> Step {
    Step(op: op, contract: contract, kernel: .differs(kernel))
  }

  /// A step at or after the one where the deviation left the state undefined.
  static func undefined(_ op: Op, contract: [Observation]) -> Step {
    Step(op: op, contract: contract, kernel: .undefined)
  }

  /// Checks the sequence `steps`, on a fresh model of `world`: with no deviation the model
  /// predicts each step's `contract`; with `deviation` on, each step's kernel prediction, and
  /// nothing from the first `undefined` step on (which it names as the deviation's). A sequence
  /// of `same` steps only checks that the deviation changes nothing there. The model's
  /// invariant holds after every op it predicts.
  static func check(
    _ deviation: Deviation, in world: World = .mf, _ steps: [Step], with base: Set<Deviation> = [],
    sourceLocation: SourceLocation = #_sourceLocation
  ) {
    // `base`: deviations on in both columns (a deviation that refines another's prediction);
    // the `contract` column is then what `base` alone predicts.
    let ops = steps.map(\.op)
    let contract = Machine.predict(ops, in: world, deviations: base)
    expectSame(contract.steps, steps.map { Optional($0.contract) }, sourceLocation: sourceLocation)
    #expect(contract.undefined == nil, "contract undefined", sourceLocation: sourceLocation)

    let firstUndefined = steps.firstIndex { if case .undefined = $0.kernel { true } else { false } }
    let kernelSteps: [[Observation]?] = steps.enumerated().map { i, step in
      if let u = firstUndefined, i >= u { return nil }
      if case .differs(let o) = step.kernel { return o }
      return step.contract
    }
    let kernel = Machine.predict(ops, in: world, deviations: base.union([deviation]))
    expectSame(kernel.steps, kernelSteps, sourceLocation: sourceLocation)
    #expect(kernel.undefined?.step == firstUndefined, "undefined at", sourceLocation: sourceLocation)
    if firstUndefined != nil {
      #expect(kernel.undefined?.by == deviation, sourceLocation: sourceLocation)
    }

    for deviations: Set<Deviation> in [base, base.union([deviation])] {
      var m = Machine(world: world, deviations: deviations)
      for op in ops {
        _ = m.apply(op)
        if m.undefined != nil { break }
        #expect(
          m.invariantViolation() == nil, "\(deviations) after \(op)", sourceLocation: sourceLocation)
      }
    }
  }

  static func expectSame<T: Equatable>(
    _ actual: T, _ expected: T, sourceLocation: SourceLocation = #_sourceLocation
  ) {
    DmaBufFixtures.expectSame(actual, expected, sourceLocation: sourceLocation)
  }

  // MARK: Memory failure (world mf)

  static func p(_ n: Int) -> ProcessName { ProcessName(index: n) }
  static func s(_ n: Int) -> SpaceName { SpaceName(index: n) }
  /// `pN.t0`
  static func t(_ n: Int) -> ThreadRef { ThreadRef(p(n), 0) }

  /// Where the sequences map device memory (the world's map window).
  static let mapAddress: UInt64 = 0x1000_0000_0000

  static func spawn(_ n: Int) -> Op { .spawn(p(n)) }
  /// `prctl pN.t0 mce-kill A2 A3`
  static func mceKill(_ n: Int, _ a2: UInt64, _ a3: UInt64) -> Op { .mceKill(t(n), arg2: a2, arg3: a3) }
  static func mceKillGet(_ n: Int) -> Op { .mceKillGet(t(n)) }
  static func mmap(_ n: Int, pages: UInt64, region: UInt64, pgoff: UInt64) -> Op {
    .mmap(p(n), addr: mapAddress, pages: pages, region: region, pgoff: pgoff)
  }
  /// `space-create sN first=… last=… callback=…` (`first` > `last` for an inverted range).
  static func create(_ n: Int, _ first: UInt64, _ last: UInt64, callback: CallbackFlavour = .nvgrace)
    -> Op
  {
    .spaceCreate(s(n), first: first, last: last, callback: callback)
  }
  static func register(_ n: Int) -> Op { .spaceRegister(s(n)) }
  static func unregister(_ n: Int) -> Op { .spaceUnregister(s(n)) }
  static func destroy(_ n: Int) -> Op { .spaceDestroy(s(n)) }
  static func injectQueue(_ pfn: UInt64, flags: UInt32 = 0) -> Op { .injectQueue(pfn: pfn, flags: flags) }
  /// `inject-sysfs pN.t0 pfn=…`
  static func injectSysfs(_ n: Int, _ pfn: UInt64) -> Op { .injectSysfs(t(n), pfn: pfn) }

  static let ok: [Observation] = [.result(.zero)]
  static func err(_ e: Errno) -> [Observation] { [.result(.error(e))] }
  static func value(_ v: Int64) -> [Observation] { [.result(.number(v))] }
  /// `= $pN`
  static func spawned(_ n: Int) -> [Observation] { [.result(.symbol(Symbol("p\(n)")))] }
  /// `mf pfn=… type=20 result=…`
  static func mf(_ pfn: UInt64, _ result: MFResult) -> Observation {
    .memoryFailure(pfn: pfn, type: mfMessagePFNMap, result: result)
  }
  /// `exit pN signal=…`
  static func killed(_ n: Int, _ signal: Int32) -> Observation { .processEnd(p(n), .killed(signal: signal)) }
  /// A SIGBUS handled by `pN.t0`.
  static func sigbus(_ n: Int, code: Int32, addr: UInt64) -> Observation {
    .signal(t(n), signo: Signal.bus, code: code, addr: addr, lsb: 12)
  }
  /// A WARN, whatever its text.
  static let warn = Observation.guestFailure(kind: "warn", detail: "")

  // MARK: dma-buf (worlds p2p-*)

  static let x0 = DeviceName(index: 0)
  static func b(_ n: Int) -> BufName { BufName(index: n) }
  static func a(_ n: Int) -> AttachmentName { AttachmentName(index: n) }
  static let barPhys = DmaBufFixtures.barPhys
  static let barSize = DmaBufFixtures.barSize

  /// `export bN x0 region=2 ranges=…` (default one page at 0), with optional `argsz` and
  /// `open_flags`.
  static func export(
    _ n: Int, ranges: [(UInt64, UInt64)] = [(0, 0x1000)], argsz: UInt32? = nil, openFlags: UInt32? = nil
  ) -> Op {
    .export(
      b(n), x0,
      ExportRequest(
        region: 2, ranges: ranges.map { DMARange(offset: $0.0, length: $0.1) }, argsz: argsz,
        openFlags: openFlags))
  }
  static func export(_ n: Int, _ ranges: [(UInt64, UInt64)]) -> Op { export(n, ranges: ranges) }
  /// `attach aN bM importer=i0` (dynamic).
  static func attach(_ att: Int, _ buf: Int) -> Op {
    .attach(a(att), b(buf), importer: ImporterName(index: 0), isDynamic: true)
  }

  /// `= $bN`
  static func exported(_ n: Int) -> [Observation] { [.result(.symbol(Symbol("b\(n)")))] }
  /// `sgt aN nents=… orig=0 …`
  static func sgt(_ att: Int, _ entries: [(DMAAddress, UInt64)]) -> Observation {
    .sgTable(
      a(att),
      SgTable(nents: entries.count, origNents: 0, entries: entries.map { SgEntry($0.0, $0.1) }))
  }
}
