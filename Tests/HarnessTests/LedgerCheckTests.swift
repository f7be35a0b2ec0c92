import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// `ledger check`'s classification (still / fixed / changed), expectations and exit statuses,
/// `--bisect`'s mapping, `--compare-kernel`'s diff, and the ledger's `fix:` key. No guest.
@Suite struct LedgerCheckTests {
  static let directory = Paths.root + "/Corpora/findings"
  static let ledger = try! Ledger.load(directory)

  static func entry(_ number: String) -> Ledger.Entry {
    ledger.entries.first { $0.id.hasPrefix(number + "-") }!
  }

  /// An entry's sequence, the model's predictions and the recorded observations.
  static func recorded(_ id: String) throws -> (ops: [Op], predicted: [[Observation]], observed: [[Observation]], world: World) {
    let s = try Corpus.load("\(directory)/\(id)/sequence.seq")
    let o = try #require(try LedgerCheck.recordedRun("\(directory)/\(id)/observed.seq"))
    let world = World.named(s.world)!
    return (s.ops, Machine.run(s.ops, in: world), o.steps.map { $0.expected ?? [] }, world)
  }

  /// Each entry's recorded run, classified as a replay on its kernel would be: the kernel-bug and
  /// doc-mismatch entries *still*, the model-bug-fixed one (0008) *fixed*, all as expected.
  @Test(arguments: ledger.entries.map(\.id))
  func recordedRunsAreStillOrFixedAsExpected(id: String) throws {
    let e = try #require(Self.ledger.entries.first { $0.id == id })
    let r = try Self.recorded(id)
    let d = Differ.firstDivergence(ops: r.ops, expected: r.predicted, observed: r.observed)
    let step = LedgerCheck.recordedStep(ops: r.ops, predicted: r.predicted, recorded: try LedgerCheck.recordedRun("\(Self.directory)/\(id)/observed.seq"))
    let outcome = LedgerCheck.classify(
      e, explanation: Self.ledger.explain(ops: r.ops, observed: r.observed, world: r.world), divergence: d, recordedStep: step)
    #expect(outcome == LedgerCheck.expectedOutcome(e, expectFixed: []), "\(id): \(outcome)")
    #expect(outcome == (e.status == "model-bug-fixed" ? .fixed : .still))
  }

  static func explain(_ ops: [Op], _ observed: [[Observation]]) -> Explanation {
    ledger.explain(ops: ops, observed: observed, world: .mf)
  }

  /// 0006's sequence: the recorded divergence is still; the same divergence at another step, or
  /// a run its deviation does not explain, is changed; no divergence is fixed.
  @Test func classification() throws {
    let e = Self.entry("0006")
    let r = try Self.recorded(e.id)
    let d = try #require(Differ.firstDivergence(ops: r.ops, expected: r.predicted, observed: r.observed))
    #expect(d.step == 2 && d.signature.description == "result:2:0/C3.7/prctl")
    let x = Self.explain(r.ops, r.observed)
    #expect(x.isExplained && x.deviations == [.prctlInvalidSetsPolicy])
    #expect(LedgerCheck.classify(e, explanation: x, divergence: d, recordedStep: 2) == .still)
    #expect(LedgerCheck.classify(e, explanation: x, divergence: d, recordedStep: nil) == .still)
    #expect(LedgerCheck.classify(e, explanation: x, divergence: d, recordedStep: 1) == .changed)
    #expect(LedgerCheck.classify(e, explanation: x, divergence: nil, recordedStep: 2) == .fixed)
    // Another entry's deviation explaining the run does not make this one still.
    #expect(LedgerCheck.classify(Self.entry("0001"), explanation: x, divergence: d, recordedStep: 2) == .changed)
    // The kernel answers 1 (EARLY) now: nothing explains it.
    var early = r.observed
    early[2] = [.result(.number(1))]
    let d1 = try #require(Differ.firstDivergence(ops: r.ops, expected: r.predicted, observed: early))
    #expect(LedgerCheck.classify(e, explanation: Self.explain(r.ops, early), divergence: d1, recordedStep: 2) == .changed)
    // -EINVAL from the GET: nothing explains it.
    var other = r.observed
    other[2] = [.result(.error(Errno(22)))]
    let d2 = try #require(Differ.firstDivergence(ops: r.ops, expected: r.predicted, observed: other))
    #expect(LedgerCheck.classify(e, explanation: Self.explain(r.ops, other), divergence: d2, recordedStep: 2) == .changed)
    // Without the bad set before it, the deviation does not predict the GET's 0.
    let ops = [r.ops[0], .mceKill(ThreadRef(ProcessName("p1")!, 0), arg2: 1, arg3: 2), r.ops[2]]
    let observed = [r.observed[0], [.result(.zero)], r.observed[2]]
    let d3 = try #require(Differ.firstDivergence(ops: ops, expected: Machine.run(ops, in: .mf), observed: observed))
    #expect(LedgerCheck.classify(e, explanation: Self.explain(ops, observed), divergence: d3, recordedStep: 2) == .changed)
  }

  @Test func expectationsAndExitStatus() throws {
    let bug = Self.entry("0006")
    let modelBug = Self.entry("0008")
    #expect(LedgerCheck.expectedOutcome(bug, expectFixed: []) == .still)
    #expect(LedgerCheck.expectedOutcome(bug, expectFixed: [bug.id]) == .fixed)
    #expect(LedgerCheck.expectedOutcome(modelBug, expectFixed: []) == .fixed)
    #expect(LedgerCheck.expectedOutcome(Self.entry("0004"), expectFixed: []) == .still)  // doc-mismatch
    #expect(try LedgerCheck.resolve(["0006,0001", bug.id], in: Self.ledger) == [bug.id, Self.entry("0001").id])
    #expect(throws: HarnessError.self) { try LedgerCheck.resolve(["9999"], in: Self.ledger) }
    #expect(throws: HarnessError.self) { try LedgerCheck.resolve(["000"], in: Self.ledger) }

    let s = OpSequence(world: "mf", ops: [])
    func result(_ outcome: LedgerCheck.Outcome, expected: LedgerCheck.Outcome, _ e: Ledger.Entry = bug) -> LedgerCheck.EntryResult {
      let d = Divergence(step: 2, op: .mceKillGet(ThreadRef(ProcessName("p1")!, 0)), expected: [], observed: [],
        signature: Signature(kind: "result:2:0", item: "C3.7", op: "prctl"))
      return LedgerCheck.EntryResult(
        entry: e, sequence: s, observed: [], world: .mf, divergence: outcome == .fixed ? nil : d, recordedStep: 2,
        outcome: outcome, expected: expected)
    }
    #expect(LedgerCheck.status([result(.still, expected: .still), result(.fixed, expected: .fixed, modelBug)]) == .ok)
    #expect(LedgerCheck.status([result(.fixed, expected: .still)]) == .divergence)
    #expect(LedgerCheck.status([result(.still, expected: .fixed)]) == .divergence)
    #expect(LedgerCheck.status([result(.changed, expected: .still)]) == .divergence)
    let ktap = LedgerCheck.ktap([
      result(.still, expected: .still), result(.fixed, expected: .fixed, modelBug), result(.fixed, expected: .still),
      result(.changed, expected: .still),
    ])
    #expect(ktap == """
      KTAP version 1
      1..4
      ok 1 \(bug.id) # XFAIL still result:2:0/C3.7/prctl
      ok 2 \(modelBug.id)
      not ok 3 \(bug.id) # fixed, expected still
      not ok 4 \(bug.id) # changed result:2:0/C3.7/prctl at step 3, expected still

      """)
    #expect(LedgerCheck.line(result(.fixed, expected: .still)).hasSuffix("[expected still] (if your change fixes it: --expect-fixed 0006)"))
  }

  /// --bisect: a verdict is good (0) or bad (1); anything else is skip (125).
  @Test func bisectStatuses() {
    struct Other: Error {}
    #expect(Bisect.status(for: nil).rawValue == 0)
    #expect(Bisect.status(for: Finished(.ok)).rawValue == 0)
    #expect(Bisect.status(for: Finished(.divergence)).rawValue == 1)
    #expect(Bisect.status(for: HarnessError(.environment, "the guest build failed")).rawValue == 125)
    #expect(Bisect.status(for: HarnessError(.usage, "the guest build refused its input")).rawValue == 125)
    #expect(Bisect.status(for: HarnessError(.internal, "boot")).rawValue == 125)
    #expect(Bisect.status(for: Finished(.environment)).rawValue == 125)
    #expect(Bisect.status(for: Other()).rawValue == 125)
  }

  /// `fix:` names a patch relative to the entry's folder; every folder with a fix.patch says so,
  /// 0009 and 0010 name 0005's; a missing patch is an error at its line.
  @Test func fixKey() throws {
    for e in Self.ledger.entries where FileManager.default.fileExists(atPath: "\(Self.directory)/\(e.id)/fix.patch") {
      #expect(e.fix == "fix.patch", "\(e.id)")
    }
    #expect(Self.entry("0009").fix == "../0005-inverted-range-unregister-uaf-hang/fix.patch")
    #expect(Self.entry("0010").fix == Self.entry("0009").fix)
    #expect(Self.entry("0004").fix == nil)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harness-fix-key-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try "signature: a/C1.1/b\nstatus: kernel-bug\nfix: nope.patch\n".write(toFile: dir + "/finding.txt", atomically: true, encoding: .utf8)
    #expect {
      try Ledger.parse(path: dir + "/finding.txt", id: "x")
    } throws: { ($0 as? HarnessError)?.message.contains("finding.txt:3:6: error: `fix:`") == true }
  }

  /// Two kernels agree when only the values they choose differ (pids, IOVA bases) or a
  /// failure's console line; a different result, or a run cut short, is a difference.
  @Test func kernelsCompared() throws {
    let r = try Self.recorded(Self.entry("0006").id)
    var other = r.observed
    other[0] = [.result(.number(51))]  // another pid
    #expect(KernelCompare.firstDifference(ops: r.ops, other: other, this: r.observed, predicted: r.predicted) == nil)
    var fixed = r.observed
    fixed[2] = [.result(.number(2))]
    let d = try #require(KernelCompare.firstDifference(ops: r.ops, other: r.observed, this: fixed, predicted: r.predicted))
    #expect(d.step == 2 && d.signature.description == "result:0:2/C3.7/prctl")
    #expect(KernelCompare.describe(.init(name: "s", sequence: OpSequence(world: "mf", ops: r.ops), other: r.observed, this: fixed, divergence: d))
      .contains("! = 0                              = 2"))
    let cut = Array(r.observed.prefix(2))
    #expect(KernelCompare.firstDifference(ops: r.ops, other: r.observed, this: cut, predicted: r.predicted)?.step == 2)
    var a = r.observed
    var b = r.observed
    a[2] += [.guestFailure(kind: "warn", detail: "[    0.87] WARNING: x")]
    b[2] += [.guestFailure(kind: "warn", detail: "[    0.91] WARNING: x")]
    #expect(KernelCompare.firstDifference(ops: r.ops, other: a, this: b, predicted: r.predicted) == nil)
    // An IOVA base the kernels chose differently, where the model has a symbol.
    let attachment = AttachmentName("a1")!
    let sym = Observation.sgTable(attachment, SgTable(nents: 1, origNents: 1, entries: [SgEntry(.iova(Symbol("iova1"), offset: 0), 0x2000)]))
    let at = { (x: UInt64) in Observation.sgTable(attachment, SgTable(nents: 1, origNents: 1, entries: [SgEntry(.concrete(x), 0x2000)])) }
    let map = Op.map(attachment)
    #expect(KernelCompare.firstDifference(ops: [map], other: [[.result(.zero), at(0x1000)]], this: [[.result(.zero), at(0x5000)]], predicted: [[.result(.zero), sym]]) == nil)
    #expect(KernelCompare.firstDifference(ops: [map], other: [[.result(.zero), at(0x1000)]], this: [[.result(.zero), at(0x5000)]], predicted: [[.result(.zero)]]) != nil)
  }
}
