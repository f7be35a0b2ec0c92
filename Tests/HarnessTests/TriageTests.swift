import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// Triage by explanation (``Triage``) on the ledger's recorded kernel runs and on runs built from
/// them: known means every observation is predicted under some set of the ledger's deviations,
/// whatever the first difference looks like. No guest: the guest suites replay the same entries
/// on the kernel (GuestFindingsTests, GuestCorpusTests).
@Suite struct TriageTests {
  static let directory = Paths.root + "/Corpora/findings"
  static let ledger = try! Ledger.load(directory)
  static let kernelEntries = ledger.entries.filter { $0.status != "model-bug-fixed" }.map(\.id)

  /// An entry's ops, its recorded kernel observations and its world.
  static func recorded(_ number: String) throws -> (ops: [Op], observed: [[Observation]], world: World, entry: Ledger.Entry) {
    let entry = try #require(ledger.entries.first { $0.id.hasPrefix(number) })
    let s = try Corpus.load("\(directory)/\(entry.id)/sequence.seq")
    let o = try #require(try LedgerCheck.recordedRun("\(directory)/\(entry.id)/observed.seq"))
    return (s.ops, o.steps.map { $0.expected ?? [] }, World.named(s.world)!, entry)
  }

  /// Every kernel finding's recorded run is explained by the ledger, with the entry's own
  /// deviation; without it, nothing explains the run (the deviation is what makes it known).
  @Test(arguments: kernelEntries)
  func everyFindingIsExplainedByItsOwnDeviation(id: String) throws {
    let r = try Self.recorded(String(id.prefix(4)))
    let e = Self.ledger.explain(ops: r.ops, observed: r.observed, world: r.world)
    #expect(e.isExplained, "\(id): unexplained \(String(describing: e.unexplained?.signature)) at step \((e.unexplained?.step ?? -1) + 1)")
    #expect(r.entry.explains(e), "\(id): explained by \(e.deviations), not by \(r.entry.deviations)")
    #expect(Self.ledger.entries(explaining: e).contains { $0.id == id })
    let without = Self.ledger.deviations.subtracting(r.entry.deviations)
    #expect(!Triage.explain(ops: r.ops, observed: r.observed, world: r.world, candidates: without).isExplained)
  }

  /// The model-bug-fixed entry's recorded run needs no deviation: the corrected model predicts it.
  @Test func aModelFixNeedsNoDeviation() throws {
    let r = try Self.recorded("0008")
    let e = Self.ledger.explain(ops: r.ops, observed: r.observed, world: r.world)
    #expect(e.isExplained && e.deviations.isEmpty && e.comparedOps == r.ops.count)
  }

  /// A planted regression: the overlap check given the new space's first PFN for both ends, so
  /// a space whose tail overlaps a registered one registers. Its first difference has a label
  /// 0002 lists (`result:-EBUSY:0/C1.1/space-register`), which is what a signature match
  /// called known; no deviation predicts it, so it is new (LedgerGuestTests runs it on a kernel).
  @Test func aNewBugWithAKnownFindingsLabelIsNew() throws {
    let s1 = SpaceName("s1")!
    let s2 = SpaceName("s2")!
    let ops: [Op] = [
      .spaceCreate(s1, first: 0xf8800, last: 0xf97ff, callback: .nvgrace), .spaceRegister(s1),
      .spaceCreate(s2, first: 0xf8000, last: 0xf8fff, callback: .nvgrace), .spaceRegister(s2),
      .injectQueue(pfn: 0xf8001, flags: 0),
    ]
    let ok: [Observation] = [.result(.zero)]
    let observed = [ok, ok, ok, ok, ok + [.memoryFailure(pfn: 0xf8001, type: 20, result: .recovered)]]
    let base = try #require(Differ.firstDivergence(ops: ops, expected: Machine.run(ops, in: .mf), observed: observed))
    #expect(base.signature.description == "result:-EBUSY:0/C1.1/space-register")
    #expect(Self.ledger.entries.contains { $0.signatures.contains(base.signature) })
    let e = Self.ledger.explain(ops: ops, observed: observed, world: .mf)
    #expect(!e.isExplained)
    #expect(e.unexplained?.step == 3 && e.comparedOps == 4)
    var r = SequenceResult(sequence: OpSequence(world: "mf", ops: ops), observed: observed, verdict: .divergence(base))
    r.triage(Self.ledger, world: .mf)
    #expect(r.knownIDs(Self.ledger) == nil)
  }

  /// A known finding followed by an unrelated divergence: 0001's run, then a process whose
  /// policy query answers what nobody predicts. The verdict is new, at the later op, behind
  /// 0001's deviation.
  @Test func aNewDivergenceBehindAKnownOneIsNew() throws {
    let r = try Self.recorded("0001")
    let p2 = ProcessName("p2")!
    let ops = r.ops + [.spawn(p2), .mceKillGet(ThreadRef(p2, 0))]
    let known = Self.ledger.explain(ops: r.ops, observed: r.observed, world: r.world)
    #expect(known.isExplained && known.deviations == [.killOutsideVMA])
    let observed = r.observed + [[.result(.number(51))], [.result(.number(1))]]
    let e = Self.ledger.explain(ops: ops, observed: observed, world: r.world)
    #expect(!e.isExplained)
    #expect(e.deviations == [.killOutsideVMA])
    #expect(e.unexplained?.step == ops.count - 1)
    #expect(e.unexplained?.signature.description == "result:2:1/C3.7/prctl")
    #expect(e.comparedOps == ops.count)
    // The campaign's verdict is that divergence, and not a known one.
    let first = try #require(Differ.firstDivergence(ops: ops, expected: Machine.run(ops, in: r.world), observed: observed))
    #expect(first.step == 6)
    var result = SequenceResult(sequence: OpSequence(world: "mf", ops: ops), observed: observed, verdict: .divergence(first))
    result.triage(Self.ledger, world: r.world)
    #expect(result.verdict.signature?.description == "result:2:1/C3.7/prctl")
    #expect(result.knownIDs(Self.ledger) == nil)
    #expect(VerdictLine(name: "x", verdict: result.verdict, known: nil, explanation: result.explanation).deviationNote
      == "behind known deviations: kill-outside-vma")
  }

  /// A sequence file's hand-written expectation is compared as written: 0001's run (known) then
  /// a query whose recorded answer is not the contract's; the kernel answers what the contract
  /// says, so the file's step is the new divergence, behind 0001's deviation.
  @Test func aHandWrittenExpectationIsNotExplainedAway() throws {
    let r = try Self.recorded("0001")
    let p2 = ProcessName("p2")!
    let ops = r.ops + [.spawn(p2), .mceKillGet(ThreadRef(p2, 0))]
    let contract = Machine.run(ops, in: r.world)
    var recorded: [[Observation]?] = contract
    recorded[ops.count - 1] = [.result(.number(1))]
    let observed = r.observed + [[.result(.number(51))], [.result(.number(2))]]
    let e = Triage.explain(ops: ops, observed: observed, world: r.world, candidates: Self.ledger.deviations, recorded: recorded)
    #expect(!e.isExplained && e.deviations == [.killOutsideVMA] && e.unexplained?.step == ops.count - 1)
    #expect(e.unexplained?.signature.description == "result:1:2/C3.7/prctl")
    // Recorded expectations equal to the contract's change nothing.
    let same = Triage.explain(ops: r.ops, observed: r.observed, world: r.world, candidates: Self.ledger.deviations, recorded: Machine.run(r.ops, in: r.world))
    #expect(same.isExplained && same.deviations == [.killOutsideVMA])
  }

  /// A deviation that leaves the state undefined ends the comparison at its op: whatever the
  /// kernel shows from there (0010's hang one op later, anything after it) is not compared,
  /// and the run is known.
  @Test func anUndefinedStateEndsTheComparison() throws {
    let r = try Self.recorded("0010")
    let ops = r.ops + [.spawn(ProcessName("p1")!)]
    let observed = r.observed + [[.result(.error(.noProcess))]]
    let e = Self.ledger.explain(ops: ops, observed: observed, world: r.world)
    #expect(e.isExplained && e.deviations == [.invertedRegistersTwice])
    #expect(e.undefinedAt == 3 && e.comparedOps == 3)
    let note = VerdictLine(name: "x", verdict: .match, known: "0010", explanation: e).deviationNote
    #expect(note == "deviations: inverted-registers-twice; state undefined from step 4, not compared after")
  }

  /// With an empty ledger nothing is known: the first divergence from the contract is the
  /// verdict, and no deviation is used.
  @Test func anEmptyLedgerKnowsNothing() throws {
    let r = try Self.recorded("0001")
    let e = Triage.explain(ops: r.ops, observed: r.observed, world: r.world, candidates: [])
    #expect(!e.isExplained && e.deviations.isEmpty && e.unexplained?.step == 6)
    #expect(Ledger().entries(explaining: e).isEmpty)
  }

  /// Two findings in one run: the smallest set that explains it has both deviations, and only
  /// those (0006's policy left by a bad set, then 0004's soft-offline queue).
  @Test func twoFindingsInOneRunUseBothDeviations() throws {
    let a = try Self.recorded("0006")
    let b = try Self.recorded("0004")
    let e = Self.ledger.explain(ops: a.ops + b.ops, observed: a.observed + b.observed, world: .mf)
    #expect(e.isExplained && e.deviations == [.queueSoftOffline, .prctlInvalidSetsPolicy])
    let ids = Self.ledger.entries(explaining: e).map { String($0.id.prefix(4)) }
    #expect(ids == ["0004", "0006"])
  }

  /// The campaign's summary: each verdict with its deviations (known) or those it sits behind
  /// (new), the share of ops
  /// compared, and how often each deviation was used.
  @Test func summaryNamesDeviationsAndCountsWhatWasCompared() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("triage-summary-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let op = Op.spaceRegister(SpaceName("s2")!)
    let d = Divergence(step: 3, op: op, expected: [], observed: [], signature: Signature(kind: "result:-EBUSY:0", item: "C1.1", op: "space-register"))
    let new = Explanation(deviations: [], unexplained: d, undefinedAt: nil, comparedOps: 4)
    let behind = Explanation(deviations: [.killOutsideVMA], unexplained: d, undefinedAt: nil, comparedOps: 4)
    let known = Explanation(deviations: [.killOutsideVMA], unexplained: nil, undefinedAt: nil, comparedOps: 10)
    let lines = [
      VerdictLine(name: "seed-1", verdict: .divergence(d), known: nil, explanation: new),
      VerdictLine(name: "seed-2", verdict: .divergence(d), known: "0001-x", explanation: known),
      VerdictLine(name: "seed-3", verdict: .divergence(d), known: nil, explanation: behind),
      VerdictLine(name: "seed-4", verdict: .match, known: nil, explanation: Explanation(deviations: [], unexplained: nil, undefinedAt: nil, comparedOps: 10)),
    ]
    var stats = CampaignStats()
    let s = OpSequence(world: "mf", ops: Array(repeating: op, count: 10))
    for l in lines { stats.add(s, [], explanation: l.explanation) }
    try ReportWriter(directory: dir, title: "t").writeSummary(results: lines, stats: stats)
    let txt = try String(contentsOfFile: dir + "/summary.txt", encoding: .utf8)
    #expect(txt.contains("  seed-1: result:-EBUSY:0/C1.1/space-register (new)\n"), "\(txt)")
    #expect(txt.contains("  seed-2: result:-EBUSY:0/C1.1/space-register (known: 0001-x) [deviations: kill-outside-vma]\n"))
    #expect(txt.contains("  seed-3: result:-EBUSY:0/C1.1/space-register (new) [behind known deviations: kill-outside-vma]\n"))
    #expect(txt.contains("compared: 28 of 40 ops (70.0 %), 2 of 4 sequences to the end\n"))
    #expect(txt.contains("deviations used: kill-outside-vma 2\n"))
    let json = try String(contentsOfFile: dir + "/summary.json", encoding: .utf8)
    #expect(json.contains("\"comparedOps\" : 28") && json.contains("\"deviations\" : \"kill-outside-vma\""), "\(json)")
  }

  /// Kernel runs in which known findings meet (Corpora/triage: Debian 7.3.4's observations of
  /// four seeds of campaigns). Each needed a combination: ends in creation order when a
  /// SIGKILL and a SIGBUS death meet (mf 32); a process the contract kills early survives the
  /// soft-offline queue and is SIGKILLed later (mf 50); an inverted range left linked by its
  /// unregister, registered again (mf 225); a config write past the config space and low-power
  /// entries revoking in D0 (p2p-switch 2).
  @Test(arguments: [
    ("mf-seed-32", [Deviation.killOutsideVMA, .mceWarnsOnPFNMap]),
    ("mf-seed-50", [.killOutsideVMA, .queueSoftOffline]),
    ("mf-seed-225", [.unregisterByOverlap, .invertedRegistersTwice]),
    ("p2p-switch-seed-2", [.lowPowerEntryRevokes, .configOutsideFault]),
  ])
  func findingsMeetingInOneRunAreExplainedTogether(name: String, deviations: [Deviation]) throws {
    let path = Paths.root + "/Corpora/triage/\(name).observed.seq"
    let run = try #require(try LedgerCheck.recordedRun(path))
    let world = try Corpus.world(of: run, file: path)
    let e = Self.ledger.explain(ops: run.ops, observed: run.steps.map { $0.expected ?? [] }, world: world)
    #expect(e.isExplained, "\(name): unexplained at step \((e.unexplained?.step ?? -1) + 1): \(String(describing: e.unexplained?.signature))")
    #expect(e.deviations == deviations)
  }

  @Test func combinationsAreInOrder() {
    #expect(Triage.combinations([1, 2, 3], 2) == [[1, 2], [1, 3], [2, 3]])
    #expect(Triage.combinations([1, 2], 3).isEmpty)
    #expect(Triage.combinations([1], 0) == [[]])
  }
}
