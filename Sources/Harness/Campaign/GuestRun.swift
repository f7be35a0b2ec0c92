import Foundation
import Fuzz
import Reference

/// Running sequences in the guest and diffing them against the model.
///
/// One guest serves many sequences: it boots once and takes a snapshot when the agent is ready.
/// Between sequences it is reset either by the agent's teardown (``ResetMode/clean``: QEMU's
/// translated code stays warm, which a restore throws away) or from the snapshot
/// (GUEST.md: tens of milliseconds instead of a boot). A guest that died, or whose restore
/// failed, is replaced by a fresh boot, and the campaign says so in its counts.
enum GuestRun {
  /// How the guest was reset between sequences.
  struct Resets: Sendable {
    var boots = 0
    var restores = 0
    /// Restores that failed and fell back to a reboot.
    var fallbacks = 0
    var restoreTime: Duration = .zero
    /// Teardowns by the agent after which the guest was as it booted.
    var cleanResets = 0
    var cleanTime: Duration = .zero
    /// Teardowns that found something left over (the guest was restored instead): the seed
    /// that ran before and what was left.
    var refused: [(seed: UInt64, what: String)] = []
    /// Sequences run again on a restored guest because they diverged on a reused one.
    var reruns = 0
    /// How many sequences had started when `shouldStop` ended the campaign (a budget).
    var stoppedAfter: Int?
    /// Guests lost to the host during a sequence (QEMU gone without a kernel failure), the
    /// sequence run again on a new guest.
    var lost = 0

    /// Adds another guest's counts.
    mutating func add(_ o: Resets) {
      boots += o.boots
      restores += o.restores
      fallbacks += o.fallbacks
      restoreTime += o.restoreTime
      cleanResets += o.cleanResets
      cleanTime += o.cleanTime
      refused += o.refused
      reruns += o.reruns
      lost += o.lost
    }

    /// The summary's line for `world`: what follows from the verdicts alone (clean resets
    /// and refused ones, after which seed and why), the same whatever --jobs or shard ran
    /// which seed; no boots, restores or timings (``hostLine(_:)``).
    func line(_ world: String) -> String {
      var l = "\(world): \(cleanResets) clean resets by the agent, \(refused.count) refused"
      for r in refused.sorted(by: { $0.seed < $1.seed }) { l += "\n  reset after seed \(r.seed) refused: \(r.what)" }
      return l
    }

    /// What depends on the host and on how seeds were spread over guests: boots, restores,
    /// fallbacks, reruns, lost guests (standard output only, never the report).
    func hostLine(_ world: String) -> String {
      "\(world): \(boots) boots, \(restores) snapshot restores, \(fallbacks) fell back to reboot, "
        + "\(reruns) reruns on a restored guest, \(lost) guests lost and replaced"
    }
  }

  /// Runs `seeds` of `world` on `jobs` guests at once, each taking the next seed; `onResult` is
  /// called after each sequence, in seed order, whichever guest ran it (results that finish
  /// early wait for the seeds before them). `ledger`: the findings it knows; with clean resets, a
  /// divergence met on a reused guest is rerun on a restored one unless the ledger explains it
  /// (a recorded kernel finding needs no second run to be reported as known; anything else must
  /// reproduce from its seed alone before it is reported as new). A guest lost to the host
  /// (QEMU gone without a kernel failure on its console) is replaced and its sequence run again.
  /// `shouldStop(i)` is asked before seed `i` starts (a budget): no later seed starts.
  static func campaign(
    _ world: GuestWorld, artifacts: GuestArtifacts, seeds: [UInt64], length: Int,
    reset mode: ResetMode = .clean, ledger: Ledger = Ledger(), jobs: Int = 1,
    shouldStop: @escaping @Sendable (Int) -> Bool = { _ in false },
    onBoot: @escaping @Sendable (GuestSession) -> Void = { _ in },
    sequence: (@Sendable (Int, World) -> OpSequence)? = nil,
    onResult: (UInt64, OpSequence, SequenceResult) throws -> Void
  ) async throws -> Resets {
    // The i-th sequence for the world the guest reported: seed i's, unless guided.
    let sequence = sequence ?? { i, w in Generator.generate(world: w, seed: seeds[i], length: length) }
    let queue = SeedQueue(count: seeds.count, shouldStop: shouldStop)
    let (results, sink) = AsyncStream.makeStream(of: (Int, OpSequence, SequenceResult).self)
    let workers = max(1, min(jobs, seeds.count))
    let remaining = Counter(workers)
    // One guest: it starts the next sequence only after `onResult` has taken the last one, as
    // a campaign always did (a caller may act on the guest between sequences).
    let handoff = workers == 1 ? Handoff() : nil
    return try await withThrowingTaskGroup(of: Resets.self) { group in
      for k in 0..<workers {
        group.addTask {
          // Each guest's host side on a thread of its own: its ops block on the guest's
          // socket, and N guests must not wait for the cooperative pool's few threads.
          let executor = ThreadExecutor(name: "guest-\(world.name)-\(k)")
          defer {
            executor.stop()
            if remaining.decrement() == 0 { sink.finish() }
          }
          do {
            return try await withTaskExecutorPreference(executor) {
              try await worker(
                world, artifacts: artifacts, seeds: seeds, sequence: sequence, reset: mode, ledger: ledger, queue: queue,
                onBoot: onBoot
              ) { i, s, r in
                handoff?.willHand()
                sink.yield((i, s, r))
                handoff?.waitUntilTaken()
              }
            }
          } catch {
            // A guest that cannot be booted again: the others stop after their sequence.
            queue.stop()
            handoff?.release()
            throw error
          }
        }
      }
      // In seed order: a result waits for those before it.
      var waiting: [Int: (OpSequence, SequenceResult)] = [:]
      var next = 0
      do {
        for await (i, s, r) in results {
          waiting[i] = (s, r)
          while let (s, r) = waiting.removeValue(forKey: next) {
            defer { handoff?.taken() }
            try onResult(seeds[next], s, r)
            next += 1
          }
        }
      } catch {
        queue.stop()
        handoff?.release()
        group.cancelAll()
        throw error
      }
      var total = Resets()
      for try await r in group { total.add(r) }
      total.refused.sort { $0.seed < $1.seed }
      total.stoppedAfter = queue.stoppedAt
      return total
    }
  }

  /// One guest's share of a campaign: boots, takes seeds from `queue` until it is empty,
  /// reboots when its guest died or could not be restored (the seed it held is run again).
  private static func worker(
    _ world: GuestWorld, artifacts: GuestArtifacts, seeds: [UInt64], sequence: (Int, World) -> OpSequence,
    reset mode: ResetMode, ledger: Ledger, queue: SeedQueue, onBoot: (GuestSession) -> Void,
    deliver: (Int, OpSequence, SequenceResult) -> Void
  ) async throws -> Resets {
    var resets = Resets()
    /// A seed taken from the queue whose result is not delivered yet.
    var held: Int? = nil
    /// Runs of `held` lost with their guest, and boots that failed in a row.
    var lost = 0
    var failedBoots = 0
    while let first = held ?? queue.take() {
      held = first
      if Task.isCancelled || Interruption.isInterrupted { break }
      resets.boots += 1
      do {
        try await GuestSession.with(world, artifacts: artifacts) { g in
          failedBoots = 0
          onBoot(g)
          let canSnapshot = g.takeSnapshot()
          /// Seeds run on this guest since it was last fresh (booted or restored).
          var history: [UInt64] = []
          var needsRestore = false
          func restore() -> Bool {
            let start = ContinuousClock.now
            guard canSnapshot, g.restoreSnapshot() else {
              resets.fallbacks += canSnapshot ? 1 : 0
              return false
            }
            resets.restores += 1
            resets.restoreTime += ContinuousClock.now - start
            history = []
            return true
          }
          while !Task.isCancelled, let i = held ?? queue.take() {
            held = i
            if needsRestore {
              guard restore() else { return }
            }
            /// The host lost the guest (QEMU killed or stalled, not the kernel): not a verdict on
            /// the kernel. `false`: run the sequence again on the next guest; after three such
            /// runs it is reported as a host fault (`true`, with `r` set).
            func reportHostFault(_ s: OpSequence, _ r: inout SequenceResult) -> Bool {
              lost += 1
              resets.lost += 1
              guard lost > 2 else { return false }
              r = Self.hostFault(s, g)
              return true
            }
            var (s, r) = runOne(g, sequence(i, g.world), seed: seeds[i], ledger: ledger)
            // Interrupted: the guest was killed under the sequence; it has no verdict.
            if Interruption.isInterrupted { return }
            if g.isLost, !reportHostFault(s, &r) {
              // QEMU still runs (a garbled line, a stall that ended): a restore gives the
              // sequence a fresh guest without a boot; if it fails, the next guest boots.
              if canSnapshot, GuestSession.processRunning(g.qemuPID) {
                needsRestore = true
                continue
              }
              return
            }
            if r.verdict != .match, !r.verdict.isHostFault, !history.isEmpty, r.knownIDs(ledger) == nil {
              // Judged on a fresh guest: what is reported must reproduce from the seed alone.
              let before = history
              guard restore() else { return }
              resets.reruns += 1
              let (_, fresh) = runOne(g, s, seed: seeds[i], ledger: ledger)
              if Interruption.isInterrupted { return }
              if g.isLost {
                guard reportHostFault(s, &r) else { return }
              } else {
                r = fresh.verdict == .match ? r.carried(after: before) : fresh
              }
            }
            deliver(i, s, r)
            held = nil
            lost = 0
            history.append(seeds[i])
            needsRestore = true
            if mode == .clean, g.fatal == nil, r.verdict == .match || Self.isCleanable(r, ledger: ledger) {
              let start = ContinuousClock.now
              let dirty = g.cleanReset()
              if dirty.isEmpty {
                resets.cleanResets += 1
                resets.cleanTime += ContinuousClock.now - start
                needsRestore = false
              } else if g.isLost {
                return
              } else {
                resets.refused.append((seeds[i], dirty.joined(separator: "; ")))
              }
            }
            if g.fatal != nil && !canSnapshot { return }
          }
        }
      } catch let error as HarnessError where error.status == .environment {
        if Interruption.isInterrupted { break }
        // A guest that did not come up (killed while booting): boot another, twice at most.
        failedBoots += 1
        if failedBoots > 2 { throw error }
      }
    }
    return resets
  }

  /// Whether a sequence that did not match may still be followed by a clean reset instead of a
  /// restore: its divergence is known, no entry that explains it says `reset: restore` (findings
  /// that leave the PFN-space tree corrupted), no deviation left the state undefined, and the
  /// kernel reported nothing worse than a WARN (no oops, BUG, panic, hang, lockup; no agent
  /// error). The reset's checks still decide; a later divergence that the ledger does not know
  /// is rerun on a restored guest anyway.
  static func isCleanable(_ r: SequenceResult, ledger: Ledger) -> Bool {
    guard case .divergence = r.verdict, r.knownIDs(ledger) != nil, let e = r.explanation, e.undefinedAt == nil,
      !ledger.entries(explaining: e).contains(where: \.needsRestore)
    else { return false }
    return !r.observed.joined().contains {
      if case .guestFailure(let kind, _) = $0 { kind != "warn" } else { false }
    }
  }

  /// The result of a sequence the host kept from running three times over.
  static func hostFault(_ s: OpSequence, _ g: GuestSession) -> SequenceResult {
    let why = g.lossReason
    var r = SequenceResult(sequence: s, observed: [], verdict: .hostFault("\(why); run three times"))
    r.world = g.world
    return r
  }

  /// Judges a guest run of `s` against the contract and `ledger`: its observations (triaged
  /// by explanation), then, with the observer (`observer` not `nil`), the kernel's decisions:
  /// those of a matching run against the contract's, and those of the dma-buf steps of a run
  /// the ledger's deviations explain against the deviations' (a known bug's decisions are
  /// compared through its deviation: iova-multi-range-fails links every range at offset 0).
  /// Shared by the campaign and its minimization, so that a divergence in the decisions alone
  /// keeps its signature while minimizing.
  ///
  /// `profile`: where the host's time goes (`bench guest`): the model and the diff, then the
  /// triage and the decisions.
  ///
  /// The result keeps the observations as ``Differ/canonical(_:predicted:steps:)`` has them: a
  /// signal the contract permits without requiring it is kept as that permission, whether the
  /// guest's scheduling let it arrive or not, so that reports do not depend on the host's load.
  /// Never at the price of another verdict: where the canonical observations would be judged
  /// otherwise, the result is the one of what the guest showed.
  static func judge(
    _ s: OpSequence, observed: [[Observation]], observer: [[String]]?, world: World, ledger: Ledger,
    profile: OpProfile? = nil
  ) -> SequenceResult {
    let (r, contract) = judgeAsSeen(s, observed: observed, observer: observer, world: world, ledger: ledger, profile: profile)
    let steps: Int
    if case .match = r.verdict {
      steps = observed.count
    } else if let e = r.explanation {
      steps = e.unexplained?.step ?? e.comparedOps
    } else {
      steps = 0
    }
    guard steps > 0 else { return r }
    let deviations = Set(r.explanation?.deviations ?? [])
    let predicted = deviations.isEmpty ? contract : Machine.runWithDecisions(s.ops, in: world, deviations: deviations).0
    let canonical = Differ.canonical(observed, predicted: predicted, steps: steps)
    guard canonical != observed else { return r }
    let c = judgeAsSeen(s, observed: canonical, observer: observer, world: world, ledger: ledger, profile: profile).result
    guard c.verdict.signature == r.verdict.signature, c.knownIDs(ledger) == r.knownIDs(ledger),
      c.explanation?.deviations == r.explanation?.deviations
    else { return r }
    return c
  }

  /// ``judge(_:observed:observer:world:ledger:profile:)`` of the observations as they are, and
  /// the contract's predictions it judged them by.
  private static func judgeAsSeen(
    _ s: OpSequence, observed: [[Observation]], observer: [[String]]?, world: World, ledger: Ledger,
    profile: OpProfile?
  ) -> (result: SequenceResult, predicted: [[Observation]]) {
    let clock = ContinuousClock()
    let start = clock.now
    var judged = start
    var verdict = Verdict.match
    defer {
      profile?.add(OpProfile.judging, judged - start)
      if verdict != .match { profile?.add(OpProfile.triage, clock.now - judged) }
    }
    let (predicted, decisions, hits) = Machine.runWithDecisions(s.ops, in: world)
    if let d = Differ.firstDivergence(ops: s.ops, expected: predicted, observed: observed) {
      verdict = .divergence(d)
    }
    judged = clock.now
    var r = SequenceResult(sequence: s, observed: observed, verdict: verdict)
    r.world = world
    r.ruleHits = hits
    r.observerLines = observer
    r.triage(ledger, world: world)
    guard let observer else { return (r, predicted) }
    if r.verdict == .match {
      // The observations matched: the kernel's decisions inside the series must match too.
      if let d = ObserverCheck.firstDivergence(
        ops: s.ops, predicted: decisions, observed: observer, observations: observed,
        bindings: Differ.bindings(ops: s.ops, expected: predicted, observed: observed))
      {
        r.verdict = .divergence(d)
        r.explanation = Explanation(deviations: [], unexplained: d, undefinedAt: nil, comparedOps: d.step)
      }
    } else if r.carriedAfter.isEmpty, let e = r.explanation, e.isExplained, e.undefinedAt == nil, !e.deviations.isEmpty {
      let set = Set(e.deviations)
      let (known, knownDecisions, _) = Machine.runWithDecisions(s.ops, in: world, deviations: set)
      let dmaBuf = Set(s.ops.indices.filter { s.ops[$0].isDmaBuf })
      if let d = ObserverCheck.firstDivergence(
        ops: s.ops, predicted: knownDecisions, observed: observer, observations: observed,
        bindings: Differ.bindings(ops: s.ops, expected: known, observed: observed), steps: dmaBuf)
      {
        r.verdict = .divergence(d)
        r.explanation = Explanation(deviations: e.deviations, unexplained: d, undefinedAt: nil, comparedOps: d.step)
      }
    }
    return (r, predicted)
  }

  /// Runs `sequence` (generated for the world the guest reported; `seed` names it for fault
  /// injection's seed:op targets), judges it.
  static func runOne(_ g: GuestSession, _ sequence: OpSequence, seed: UInt64, ledger: Ledger) -> (OpSequence, SequenceResult) {
    let consoleStart = g.console.text.count
    var observed: [[Observation]] = []
    g.sequenceOp = (seed, 1)
    defer { g.sequenceOp = nil }
    var observer: [[String]] = []
    for op in sequence.ops {
      observed.append(g.apply(op))
      observer.append(g.observerLines)
      if g.fatal != nil { break }
    }
    var r = judge(
      sequence, observed: observed, observer: g.hasObserver ? observer : nil, world: g.world, ledger: ledger,
      profile: g.profile)
    if let coverage = g.coverage, let lines = coverage.sequenceLines {
      // Collected right after the sequence: its own counts and the reset's before it, turned
      // into lines on a thread of its own while the guest runs the next sequence.
      if let counts = g.collectCoverage() {
        r.pendingKernelLines = PendingLines {
          let start = ContinuousClock.now
          defer { coverage.add(linesTime: ContinuousClock.now - start) }
          do { return try lines.lines(of: counts) } catch {
            coverage.record(failure: "kernel lines of a sequence: \(error)")
            return nil
          }
        }
      }
    }
    if r.verdict != .match { r.console = String(g.console.tail(4000).suffix(max(0, g.console.text.count - consoleStart))) }
    return (sequence, r)
  }
}
