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

  /// C6.6: a map predicts its map type, then its range's bus address (C6.2: the switch's bus
  /// offset is 0 in QEMU).
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
    #expect(
      decisions.map { $0.map(\.description) } == [
        [], [], [], ["map-type bus", "dma-range bus phys=0x200000000 len=0x1000 dma=0x200000000"],
      ])
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

  /// An mf-race in which a process ended (the first call's SIGBUS killed it) is not compared:
  /// the second call walks it or not depending on whether it has exited yet (mf seed 12). A
  /// race in which nobody died still is.
  @Test func raceWithAProcessEndIsNotCompared() {
    let race = Op.mfRace(pfn: 0xf8001)
    let walk = "walk p1.t1 addr=0x1000 lsb=12"
    let end = Observation.processEnd(ProcessName("p2")!, .killed(signal: 7))
    #expect(
      ObserverCheck.firstDivergence(
        ops: [race], predicted: [[Self.walk, Self.walk]], observed: [[walk]], observations: [[.result(.number(1)), end]]) == nil)
    #expect(
      ObserverCheck.firstDivergence(
        ops: [race], predicted: [[Self.walk, Self.walk]], observed: [[walk]], observations: [[.result(.number(1))]]) != nil)
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

  // MARK: - The DMA address of each range (dma-range)

  static func decisions(_ text: String, deviations: Set<Deviation> = []) throws -> [[String]] {
    let s = try Self.ops(text)
    return Machine.runWithDecisions(s.ops, in: try Corpus.world(of: s, file: "test"), deviations: deviations).decisions
      .map { $0.map(\.description) }
  }

  static func mapOfThreeRanges(_ world: String) -> String {
    """
    world \(world)

    vfio-open x0
    export b1 x0 region=2 ranges=0x0+0x1000,0x3000+0x2000,0x8000+0x1000
    attach a1 b1 importer=i0
    map a1

    """
  }

  /// C6.3: the ranges are linked one after the other into one allocation, `$iova1`: offsets
  /// 0, 0x1000 and 0x3000 (the sums of the lengths in front).
  @Test func modelLinksIOVARangesAtTheirOffsets() throws {
    let d = try Self.decisions(Self.mapOfThreeRanges("p2p-hostbridge-zen"))[3]
    #expect(d.first == "map-type host-bridge")
    let ranges = Array(d.dropFirst())
    #expect(ranges.count == 3)
    #expect(ranges.map { $0.split(separator: " ")[4] } == ["iova=$iova1+0x0", "iova=$iova1+0x1000", "iova=$iova1+0x3000"])
    #expect(ranges.allSatisfy { $0.hasPrefix("dma-range iova phys=0x") && $0.hasSuffix(" ret=0") })
    #expect(ranges[1].contains(" len=0x2000 "))
  }

  /// iova-multi-range-fails (finding 0007): the first two ranges at offset 0 of an allocation
  /// of their own symbol, the second refused with -EADDRINUSE, the third never linked.
  @Test func deviationLinksAtOffsetZero() throws {
    let d = try Self.decisions(Self.mapOfThreeRanges("p2p-hostbridge-zen"), deviations: [.iovaMultiRangeFails])[3]
    #expect(d.count == 3, "\(d)")
    #expect(d[1].hasSuffix(" iova=$iova-failed1+0x0 ret=0") && d[2].hasSuffix(" iova=$iova-failed1+0x0 ret=-EADDRINUSE"), "\(d)")
  }

  /// C6.2: bus address = paddr + the exporter's bus offset; C6.4: the physical address.
  @Test(arguments: [("p2p-switch", "bus"), ("p2p-hostbridge-zen-pt", "direct")])
  func modelHandsBusAndPhysicalAddresses(world name: String, kind: String) throws {
    let d = try Self.decisions(Self.mapOfThreeRanges(name))[3]
    let world = World.named(name)!
    let offset = kind == "bus" ? world.exporter(DeviceName("x0")!)!.busOffset : 0
    let ranges = d.filter { $0.hasPrefix("dma-range ") }
    #expect(ranges.count == 3 && ranges.allSatisfy { $0.hasPrefix("dma-range \(kind) ") }, "\(d)")
    for r in ranges {
      let f = Dictionary(uniqueKeysWithValues: r.split(separator: " ").dropFirst(2).map {
        let kv = $0.split(separator: "=")
        return (String(kv[0]), UInt64(kv[1].dropFirst(2), radix: 16)!)
      })
      #expect(f["dma"] == f["phys"]! &+ offset, "\(r)")
    }
  }

  static let mapOp = Op.map(AttachmentName("a1")!)
  static func link(_ phys: UInt64, _ len: UInt64, _ base: String, _ off: UInt64, _ ret: String = "0") -> String {
    "dma-range iova phys=0x\(String(phys, radix: 16)) len=0x\(String(len, radix: 16)) iova=\(base)+0x\(String(off, radix: 16)) ret=\(ret)"
  }
  static let predictedLinks = [
    KernelDecision.dmaRange(DMARangeDecision(.iova, PhysRange(address: 0x1000, length: 0x1000), .iova(Symbol("iova1"), offset: 0))),
    KernelDecision.dmaRange(DMARangeDecision(.iova, PhysRange(address: 0x4000, length: 0x2000), .iova(Symbol("iova1"), offset: 0x1000))),
  ]

  /// The kernel's base binds `$iova1`; both ranges must name it, each at its offset; a base the
  /// sg table bound otherwise differs.
  @Test func iovaBasesBindAsSymbols() {
    let same = [Self.link(0x1000, 0x1000, "0xfff00000", 0), Self.link(0x4000, 0x2000, "0xfff00000", 0x1000)]
    #expect(Self.predictedLinks.map(\.description) == [Self.link(0x1000, 0x1000, "$iova1", 0), Self.link(0x4000, 0x2000, "$iova1", 0x1000)])
    #expect(ObserverCheck.firstDivergence(ops: [Self.mapOp], predicted: [Self.predictedLinks], observed: [same], observations: [[]]) == nil)
    #expect(
      ObserverCheck.firstDivergence(
        ops: [Self.mapOp], predicted: [Self.predictedLinks], observed: [same], observations: [[]], bindings: ["iova1": 0xfff00000]) == nil)
    let cases: [[String]] = [
      // Two allocations where the contract has one.
      [Self.link(0x1000, 0x1000, "0xfff00000", 0), Self.link(0x4000, 0x2000, "0xffe00000", 0x1000)],
      // Linked at offset 0 (finding 0007's symptom) with success.
      [Self.link(0x1000, 0x1000, "0xfff00000", 0), Self.link(0x4000, 0x2000, "0xfff00000", 0)],
      // Another range's address.
      [Self.link(0x1000, 0x1000, "0xfff00000", 0), Self.link(0x5000, 0x2000, "0xfff00000", 0x1000)],
      // A failed link.
      [Self.link(0x1000, 0x1000, "0xfff00000", 0), Self.link(0x4000, 0x2000, "0xfff00000", 0x1000, "-EADDRINUSE")],
    ]
    for observed in cases {
      let d = ObserverCheck.firstDivergence(ops: [Self.mapOp], predicted: [Self.predictedLinks], observed: [observed], observations: [[]])
      #expect(d?.signature.description == "dma-range-different/C6.3/map", "\(observed)")
    }
    // The sg table bound `$iova1` elsewhere: the observer's base is not the table's.
    let d = ObserverCheck.firstDivergence(
      ops: [Self.mapOp], predicted: [Self.predictedLinks], observed: [same], observations: [[]], bindings: ["iova1": 0xffe00000])
    #expect(d?.signature.description == "dma-range-different/C6.3/map")
    // A concrete value where the model has a number is no symbol: no binding.
    var b: [String: UInt64] = [:]
    #expect(!ObserverCheck.matches("dma-range bus phys=0x1000 len=0x1000 dma=0x2000", "dma-range bus phys=0x1000 len=0x1000 dma=0x3000", &b))
    #expect(b.isEmpty)
  }

  /// A range the IOMMU mapped on its own (iova-no-room-per-range, finding 0017): the
  /// observer's `dma=0xBASE` binds the model's `dma=$iovaN+0x0`, once.
  @Test func directRangeThroughTheIOMMUBindsItsIOVA() {
    let range = PhysRange(address: 0x2_0000_0000, length: 0x1000_0000)
    let predicted = DMARangeDecision(.direct, range, .iova(Symbol("iova1"), offset: 0)).description
    #expect(predicted == "dma-range direct phys=0x200000000 len=0x10000000 dma=$iova1+0x0")
    var b: [String: UInt64] = [:]
    #expect(ObserverCheck.matches(predicted, "dma-range direct phys=0x200000000 len=0x10000000 dma=0xb0000000", &b))
    #expect(b == ["iova1": 0xb000_0000])
    #expect(!ObserverCheck.matches(predicted, "dma-range direct phys=0x200000000 len=0x10000000 dma=0xa0000000", &b))
    #expect(!ObserverCheck.matches(predicted, "dma-range direct phys=0x200000000 len=0x10000000 dma=none", &b))
  }

  /// A later map's `$iova2` may have the base `$iova1` had (freed by the unmap in between);
  /// one symbol cannot have two bases.
  @Test func eachMapBindsItsOwnSymbol() {
    let first = KernelDecision.dmaRange(DMARangeDecision(.iova, PhysRange(address: 0x1000, length: 0x1000), .iova(Symbol("iova1"), offset: 0)))
    let second = KernelDecision.dmaRange(DMARangeDecision(.iova, PhysRange(address: 0x1000, length: 0x1000), .iova(Symbol("iova2"), offset: 0)))
    let again = KernelDecision.dmaRange(DMARangeDecision(.iova, PhysRange(address: 0x1000, length: 0x1000), .iova(Symbol("iova1"), offset: 0)))
    let line = Self.link(0x1000, 0x1000, "0xfff00000", 0)
    let other = Self.link(0x1000, 0x1000, "0xffe00000", 0)
    let ops = [Self.mapOp, Self.mapOp]
    #expect(ObserverCheck.firstDivergence(ops: ops, predicted: [[first], [second]], observed: [[line], [line]], observations: [[], []]) == nil)
    #expect(ObserverCheck.firstDivergence(ops: ops, predicted: [[first], [again]], observed: [[line], [other]], observations: [[], []])?.step == 1)
  }

  // MARK: - Minimizing a divergence in the decisions alone

  /// The guest's observations and observer lines for `s` as a kernel that follows the model
  /// would report them, except that it links every IOVA range at offset 0 and still succeeds:
  /// a planted divergence in the decisions alone (the sg table is the contract's).
  static func plantedRun(_ s: OpSequence, world: World) -> ([[Observation]], [[String]]) {
    let (predicted, decisions, _) = Machine.runWithDecisions(s.ops, in: world)
    func value(_ sym: Symbol) -> UInt64 {
      let n = UInt64(sym.name.drop { !$0.isNumber }) ?? 0
      return sym.name.hasPrefix("iova") ? 0xfff0_0000 - n * 0x10_0000 : 100 + n
    }
    let observed = predicted.map { step in
      step.map { o -> Observation in
        switch o {
        case .result(.symbol(let sym)): return .result(.number(Int64(value(sym))))
        case .sgTable(let a, var t):
          t.entries = t.entries.map {
            guard case .iova(let sym, let off) = $0.address else { return $0 }
            return SgEntry(.concrete(value(sym) + off), $0.length)
          }
          return .sgTable(a, t)
        default: return o
        }
      }
    }
    let observer = decisions.map { step in
      step.map { d -> String in
        guard case .dmaRange(let r) = d, case .iova(let sym, _) = r.address else { return d.description }
        return "dma-range iova phys=0x\(String(r.range.address, radix: 16)) len=0x\(String(r.range.length, radix: 16)) iova=0x\(String(value(sym), radix: 16))+0x0 ret=0"
      }
    }
    return (observed, observer)
  }

  /// A divergence only the observer shows is the verdict (judged as a campaign judges it),
  /// keeps its signature through the campaign's minimization and shrinks to the ops that
  /// need it.
  @Test func decisionDivergenceMinimizes() throws {
    let s = try Self.ops(
      """
      world p2p-hostbridge-zen

      vfio-open x0
      export b1 x0 region=2 ranges=0x0+0x1000
      attach a1 b1 importer=i0
      map a1
      unmap a1
      export b2 x0 region=2 ranges=0x0+0x1000,0x2000+0x1000
      attach a2 b2 importer=i0
      attach a3 b1 importer=i0
      map a3
      map a2
      detach a3

      """)
    let world = try Corpus.world(of: s, file: "test")
    let (observed, observer) = Self.plantedRun(s, world: world)
    #expect(Differ.firstDivergence(ops: s.ops, expected: Machine.run(s.ops, in: world), observed: observed) == nil)
    let d = try #require(ObserverCheck.judge(ops: s.ops, observed: observed, observer: observer, world: world))
    #expect(d.step == 9 && d.signature.description == "dma-range-different/C6.3/map", "\(d)")
    // Without the observer's lines, nothing diverges.
    #expect(ObserverCheck.judge(ops: s.ops, observed: observed, observer: nil, world: world) == nil)
    let ledger = Ledger()
    let r = GuestRun.judge(s, observed: observed, observer: observer, world: world, ledger: ledger)
    let cause = try #require(r.rootCause(ledger, world: world))
    #expect(cause == .unexplained(d.signature))
    var shrinker = Shrinker()
    let small = shrinker.shrink(s.bare) { c in
      let (o, l) = Self.plantedRun(c, world: world)
      return GroupMinimizer.keeps(cause, c, o, observer: l, world: world, ledger: ledger) != nil
    }
    #expect(small.ops.map(\.keyword) == ["vfio-open", "export", "attach", "map"], "\(SequenceFormat.print(small))")
    let (o, l) = Self.plantedRun(small, world: world)
    #expect(ObserverCheck.judge(ops: small.ops, observed: o, observer: l, world: world)?.signature == d.signature)
  }
}
