import Fuzz
import Reference
import Testing

@testable import Harness

/// The kernel decisions the model predicts for the libbpf observer (``KernelDecision``) and
/// their comparison (``ObserverCheck``), on the host.
@Suite struct ObserverCheckTests {
  static func ops(_ text: String) throws -> OpSequence {
    try SequenceFormat.parse("harness-sequence 1\n" + text)
  }

  /// C3.3: an AO walk from a worker picks the first early-kill thread; C3.2: a trigger in a
  /// process's thread forces AR on it. Candidates first, then their signals.
  @Test func modelPredictsTheWalkAndItsSignals() throws {
    let s = try Self.ops(
      """
      world mf

      spawn p1
      sigbus p1 handler
      thread p1.t1
      prctl p1.t1 mce-kill 1 1
      mmap p1 addr=0x100000000000 pages=4 region=2 pgoff=0x0
      space-create s1 first=0xf8000 last=0xfbfff callback=nvgrace
      space-register s1
      inject-queue pfn=0xf8001 flags=0x0
      inject-shim p1.t0 pfn=0xf8002 flags=0x0
      inject-queue pfn=0xf4000 flags=0x0

      """)
    let world = World.named("mf")!
    let (_, decisions, _) = Machine.runWithDecisions(s.ops, in: world)
    #expect(decisions[0...6].allSatisfy { $0.isEmpty })
    #expect(
      decisions[7].map(\.description) == [
        "walk p1.t1 addr=0x100000001000 lsb=12", "signal p1.t1 AO addr=0x100000001000 lsb=12 ret=0",
      ])
    #expect(
      decisions[8].map(\.description) == [
        "walk p1.t0 addr=0x100000002000 lsb=12", "signal p1.t0 AR addr=0x100000002000 lsb=12 ret=0",
      ])
    // C2.3: no space covers the PFN: no walk.
    #expect(decisions[9].isEmpty)
  }

  /// C6.6: a map predicts its map type; a map that fails before it (revoked) predicts none.
  @Test func modelPredictsTheMapType() throws {
    let s = try Self.ops(
      """
      world p2p-switch

      vfio-open x0
      export b1 x0 region=2 ranges=0x0+0x1000
      attach a1 b1 importer=i0
      map a1

      """)
    let (_, decisions, _) = Machine.runWithDecisions(s.ops, in: World.named("p2p-switch")!)
    #expect(decisions.map { $0.map(\.description) } == [[], [], [], ["map-type bus"]])
  }

  static let op = Op.injectQueue(pfn: 0xf8001, flags: 0)
  static let walk = KernelDecision.walk(ThreadRef(ProcessName("p1")!, 1), addr: 0x1000, lsb: 12)

  @Test func sameDecisionsMatchAndErrorChainsAreNotCompared() {
    let observed = [[Self.walk.description, "error-chain memory_failure=-EBUSY"]]
    #expect(ObserverCheck.firstDivergence(ops: [Self.op], predicted: [[Self.walk]], observed: observed, observations: [[]]) == nil)
    #expect(ObserverCheck.errorChain(observed[0]) == "memory_failure=-EBUSY")
    #expect(ObserverCheck.errorChain([Self.walk.description]) == nil)
  }

  @Test(arguments: [
    (["walk p1.t0 addr=0x1000 lsb=12"], "walk-different/C3.1/inject-queue"),
    ([], "walk-missing/C3.1/inject-queue"),
    (["walk p1.t1 addr=0x1000 lsb=12", "signal p1.t1 AO addr=0x1000 lsb=12 ret=0"], "signal-unexpected/C3.3/inject-queue"),
  ])
  func differentDecisionsDiverge(observed: [String], signature: String) throws {
    let d = try #require(
      ObserverCheck.firstDivergence(ops: [Self.op], predicted: [[Self.walk]], observed: [observed], observations: [[.result(.zero)]]))
    #expect(d.signature.description == signature)
    #expect(d.decisions == DecisionDifference(expected: [Self.walk.description], observed: observed))
    #expect(d.step == 0 && d.observed == [.result(.zero)])
  }

  /// Records the observer lost are not compared.
  @Test func droppedRecordsAreNotCompared() {
    #expect(ObserverCheck.firstDivergence(ops: [Self.op], predicted: [[Self.walk]], observed: [["dropped 3"]], observations: [[]]) == nil)
  }

  /// diff.txt carries the error chain of the diverging step, and the decisions side by side.
  @Test func describeShowsTheErrorChainAndTheDecisions() throws {
    let s = try Self.ops("world mf\n\ninject-queue pfn=0xf8001 flags=0x0\n")
    var d = try #require(
      ObserverCheck.firstDivergence(ops: s.ops, predicted: [[Self.walk]], observed: [[]], observations: [[.result(.zero)]]))
    var r = SequenceResult(sequence: s, observed: [[.result(.zero)]], verdict: .divergence(d))
    r.observerLines = [["error-chain kill_proc=-ESRCH memory_failure=-EBUSY"]]
    let text = ReportWriter.describe(r)
    #expect(text.contains("error chain (libbpf observer, innermost first): kill_proc=-ESRCH memory_failure=-EBUSY"))
    #expect(text.contains("! walk p1.t1 addr=0x1000 lsb=12"))
    // Without observer lines, no chain.
    d.decisions = nil
    r = SequenceResult(sequence: s, observed: [[.result(.zero)]], verdict: .divergence(d))
    #expect(!ReportWriter.describe(r).contains("error chain"))
  }
}
