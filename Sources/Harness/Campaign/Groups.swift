import Foundation
import Fuzz
import Reference

/// New verdicts of a campaign gathered by root cause (``RootCause``), one representative of
/// each minimized in the guest and given a reproducer: from a campaign to a finding without
/// hand work.
package struct VerdictGroup: Sendable {
  package var cause: RootCause
  /// The report names of the sequences in the group, in campaign order.
  package var members: [String]
  /// The first member's run: the one minimized.
  package var representative: SequenceResult
  /// The world the representative ran in.
  package var worldName: String
  /// What minimizing it gave, once done.
  package var minimized: Minimized? = nil
  /// Members that needed this group's deviation together with others (each of which has a
  /// group of its own).
  package var joined = 0

  /// A minimized representative, written to `REPORTS/RUN/group-N/`.
  package struct Minimized: Sendable {
    /// The folder (relative to the report directory).
    package var folder: String
    package var ops: Int
    package var runs: Int
    /// Why it is not smaller, when the bound cut it (otherwise nothing smaller kept the cause).
    package var cut: String?
  }

  /// Adds a new verdict to the group of its cause (a new group when it is the first), keeping
  /// only the first member's run.
  package static func add(
    _ name: String, _ result: SequenceResult, cause: RootCause, world: String, to groups: inout [VerdictGroup]
  ) {
    if let i = groups.firstIndex(where: { $0.cause == cause }) {
      groups[i].members.append(name)
    } else {
      groups.append(VerdictGroup(cause: cause, members: [name], representative: result, worldName: world))
    }
  }

  /// The groups to report: a group whose runs needed several deviations together joins the
  /// group of the first of them when each has a group of its own (those runs show no root cause
  /// the single groups do not already show); then the biggest group first, then by cause (a
  /// deterministic order).
  package static func ordered(_ groups: [VerdictGroup]) -> [VerdictGroup] {
    var out = groups.filter {
      if case .deviations(let ds) = $0.cause { ds.count == 1 } else { true }
    }
    for g in groups {
      guard case .deviations(let ds) = g.cause, ds.count > 1 else { continue }
      let singles = ds.map { d in out.firstIndex { $0.cause == .deviations([d]) } }
      if let first = singles.first, let i = first, singles.allSatisfy({ $0 != nil }) {
        out[i].members += g.members
        out[i].joined += g.members.count
      } else {
        out.append(g)
      }
    }
    return out.sorted { ($0.members.count, $1.cause) > ($1.members.count, $0.cause) }
  }

  /// The summary's lines for the group numbered `number` (1-based).
  package func summaryLines(_ number: Int) -> String {
    let names = members.prefix(8).joined(separator: ", ") + (members.count > 8 ? ", …" : "")
    let also = joined > 0 ? " (\(joined) with other groups' deviations too)" : ""
    var out = "  group-\(number): \(cause): \(members.count) sequence(s)\(also): \(names)\n"
    if let m = minimized {
      out += "    minimized \(representative.sequence.steps.count) -> \(m.ops) ops in \(m.runs) runs\(m.cut.map { " (\($0))" } ?? ""): \(m.folder)/\n"
    }
    return out
  }
}

/// How much work minimizing one group may take: a number of guest runs (deterministic: the same
/// campaign minimizes to the same sequence) or a wall time (`90s`, `2m`: bounded, but the result
/// depends on the host's speed).
package enum MinimizeBudget: Sendable, Equatable {
  case runs(Int)
  case time(Duration)

  package init?(argument: String) {
    if let n = Int(argument) {
      guard (0...1_000_000).contains(n) else { return nil }
      self = .runs(n)
    } else if let b = Budget(argument: argument) {
      self = .time(b.duration)
    } else {
      return nil
    }
  }

  package var isZero: Bool { self == .runs(0) }
}

/// Minimizing each group's representative in a guest of its world.
enum GroupMinimizer {
  /// Minimizes every group of `groups` (in order), writing `DIR/group-N/` under the writer's
  /// directory: sequence.seq (the contract's predictions), observed.seq, diff.txt, group.txt
  /// and repro.c. `onGroup` is told when each starts (for progress).
  static func minimize(
    _ groups: inout [VerdictGroup], writer: ReportWriter, artifacts: GuestArtifacts, ledger: Ledger,
    budget: MinimizeBudget, onGroup: (Int, VerdictGroup) -> Void = { _, _ in }
  ) async throws {
    for i in groups.indices {
      onGroup(i, groups[i])
      let folder = "group-\(i + 1)"
      let g = groups[i]
      let outcome = try await minimizeOne(g, artifacts: artifacts, ledger: ledger, budget: budget)
      try writer.writeGroup(g, number: i + 1, minimized: outcome.sequence, observed: outcome.observed, result: outcome.result)
      groups[i].minimized = .init(folder: folder, ops: outcome.sequence.steps.count, runs: outcome.runs, cut: outcome.cut)
    }
  }

  struct Outcome {
    var sequence: OpSequence
    var observed: [[Observation]]
    var result: SequenceResult
    var runs: Int
    var cut: String?
  }

  /// Whether a run of `ops` in the guest is new against `ledger` with root cause `cause`,
  /// judged as the campaign judged it (``GuestRun/judge(_:observed:observer:world:ledger:)``:
  /// with the observer's lines, a divergence in the kernel's decisions alone is kept).
  static func keeps(
    _ cause: RootCause, _ s: OpSequence, _ observed: [[Observation]], observer: [[String]]? = nil, world: World,
    ledger: Ledger
  ) -> SequenceResult? {
    let r = GuestRun.judge(s, observed: observed, observer: observer, world: world, ledger: ledger)
    guard r.verdict != .match, r.knownIDs(ledger) == nil, r.rootCause(ledger, world: world) == cause else { return nil }
    return r
  }

  private static func minimizeOne(
    _ group: VerdictGroup, artifacts: GuestArtifacts, ledger: Ledger, budget: MinimizeBudget
  ) async throws -> Outcome {
    let input = group.representative.sequence.bare
    return try await GuestSession.with(try GuestWorld.named(group.worldName), artifacts: artifacts) { g in
      guard g.takeSnapshot() else {
        throw HarnessError.environment("the guest could not take a snapshot (savevm); see its console")
      }
      var shrinker = Shrinker()
      var lostGuest = false
      switch budget {
      case .runs(let n): shrinker.budget = n
      case .time(let d):
        let end = ContinuousClock.now + d
        shrinker.shouldStop = { ContinuousClock.now >= end }
      }
      var first = true
      func run(_ s: OpSequence) -> (observed: [[Observation]], observer: [[String]]?)? {
        if !first {
          guard g.restoreSnapshot() else {
            lostGuest = true
            return nil
          }
        }
        first = false
        var observed: [[Observation]] = []
        var observer: [[String]] = []
        for op in s.ops {
          observed.append(g.apply(op))
          observer.append(g.observerLines)
          if g.fatal != nil { break }
        }
        return (observed, g.hasObserver ? observer : nil)
      }
      let small = shrinker.shrink(input) { candidate in
        guard !lostGuest, let ran = run(candidate) else { return false }
        return keeps(group.cause, candidate, ran.observed, observer: ran.observer, world: g.world, ledger: ledger) != nil
      }
      // The minimized sequence once more on a restored guest: its observations and verdict
      // for the folder (the representative itself when nothing smaller kept the cause).
      var cut: String? = nil
      if lostGuest {
        cut = "stopped: the guest could not be restored after a candidate"
      } else if shrinker.wasCut {
        cut = "cut by --minimize-budget"
      }
      if !lostGuest, let ran = run(small),
        let r = keeps(group.cause, small, ran.observed, observer: ran.observer, world: g.world, ledger: ledger)
      {
        return Outcome(sequence: small, observed: ran.observed, result: r, runs: shrinker.evaluations + 1, cut: cut)
      }
      let rep = group.representative
      return Outcome(
        sequence: rep.sequence.bare, observed: rep.observed, result: rep, runs: shrinker.evaluations + 1,
        cut: cut ?? "the minimized sequence did not show the cause again; the representative is kept")
    }
  }
}
