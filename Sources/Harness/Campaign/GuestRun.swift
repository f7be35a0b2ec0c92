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

    /// The summary's line for `world` (no timings: the report is deterministic).
    func line(_ world: String) -> String {
      var l = "\(world): \(boots) boots, \(restores) snapshot restores, \(fallbacks) fell back to reboot"
      if cleanResets + refused.count + reruns > 0 {
        l += ", \(cleanResets) clean resets by the agent, \(refused.count) refused, \(reruns) reruns on a restored guest"
      }
      for r in refused { l += "\n  reset after seed \(r.seed) refused: \(r.what)" }
      return l
    }
  }

  /// Runs `seeds` of `world`; `onResult` is called after each sequence, in seed order.
  /// `ledger`: the findings it knows; with clean resets, a divergence met on a reused guest is
  /// rerun on a restored one unless the ledger explains it (a recorded kernel finding needs no
  /// second run to be reported as known; anything else must reproduce from its seed alone
  /// before it is reported as new).
  static func campaign(
    _ world: GuestWorld, artifacts: GuestArtifacts, seeds: [UInt64], length: Int,
    reset mode: ResetMode = .clean, ledger: Ledger = Ledger(),
    shouldStop: (Int) -> Bool = { _ in false },
    onBoot: (GuestSession) -> Void = { _ in },
    onResult: (UInt64, OpSequence, SequenceResult) throws -> Void
  ) async throws -> Resets {
    var resets = Resets()
    var next = 0
    var stopped = false
    while next < seeds.count && !stopped {
      resets.boots += 1
      next = try await GuestSession.with(world, artifacts: artifacts) { g in
        var i = next
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
        while i < seeds.count {
          if shouldStop(i) {
            stopped = true
            resets.stoppedAfter = i
            break
          }
          if needsRestore {
            guard restore() else { break }
          }
          var (s, r) = runOne(g, seed: seeds[i], length: length, ledger: ledger)
          if r.verdict != .match, !history.isEmpty, r.knownIDs(ledger) == nil {
            // Judged on a fresh guest: what is reported must reproduce from the seed alone.
            let before = history
            guard restore() else { break }
            resets.reruns += 1
            let (_, fresh) = runOne(g, seed: seeds[i], length: length, ledger: ledger)
            r = fresh.verdict == .match ? r.carried(after: before) : fresh
          }
          try onResult(seeds[i], s, r)
          history.append(seeds[i])
          i += 1
          needsRestore = true
          if mode == .clean, g.fatal == nil, r.verdict == .match || Self.isCleanable(r, ledger: ledger) {
            let start = ContinuousClock.now
            let dirty = g.cleanReset()
            if dirty.isEmpty {
              resets.cleanResets += 1
              resets.cleanTime += ContinuousClock.now - start
              needsRestore = false
            } else {
              resets.refused.append((seeds[i - 1], dirty.joined(separator: "; ")))
            }
          }
          if g.fatal != nil && !canSnapshot { break }
        }
        return i
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

  /// Generates seed `seed` for the world the guest reported, runs it, judges it.
  static func runOne(_ g: GuestSession, seed: UInt64, length: Int, ledger: Ledger) -> (OpSequence, SequenceResult) {
    let consoleStart = g.console.text.count
    let sequence = Generator.generate(world: g.world, seed: seed, length: length)
    var observed: [[Observation]] = []
    for op in sequence.ops {
      observed.append(g.apply(op))
      if g.fatal != nil { break }
    }
    let clock = ContinuousClock()
    let start = clock.now
    let predicted = Machine.run(sequence.ops, in: g.world)
    var verdict = Verdict.match
    if let d = Differ.firstDivergence(ops: sequence.ops, expected: predicted, observed: observed) {
      verdict = .divergence(d)
    }
    var r = SequenceResult(sequence: sequence, observed: observed, verdict: verdict)
    r.world = g.world
    let judged = clock.now
    r.triage(ledger, world: g.world)
    // Where the host's time goes (`bench guest`): the model and the diff, and the triage.
    g.profile?.add(OpProfile.judging, judged - start)
    if verdict != .match { g.profile?.add(OpProfile.triage, clock.now - judged) }
    if verdict != .match { r.console = String(g.console.tail(4000).suffix(max(0, g.console.text.count - consoleStart))) }
    return (sequence, r)
  }
}
