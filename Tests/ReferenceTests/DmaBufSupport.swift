import CustomDump
import Reference
import Testing

/// Names, worlds and a runner shared by the dma-buf suites.
enum DmaBufFixtures {
  static func x(_ n: Int) -> DeviceName { DeviceName(index: n) }
  static func i(_ n: Int) -> ImporterName { ImporterName(index: n) }
  static func b(_ n: Int) -> BufName { BufName(index: n) }
  static func a(_ n: Int) -> AttachmentName { AttachmentName(index: n) }

  /// The built-in worlds' exporter BAR: BAR2, 8 GiB at 512 GiB.
  static let barPhys: UInt64 = 0x2_0000_0000
  static let barSize: UInt64 = 0x2_0000_0000

  /// `export B D region=2 ranges=…` with the default header.
  static func export(_ buf: Int, device: Int = 0, _ ranges: [(UInt64, UInt64)]) -> Op {
    .export(
      b(buf), x(device),
      ExportRequest(region: 2, ranges: ranges.map { DMARange(offset: $0.0, length: $0.1) }))
  }

  static func attach(_ att: Int, _ buf: Int, importer: Int = 0) -> Op {
    .attach(a(att), b(buf), importer: i(importer), isDynamic: true)
  }

  /// The observations `= $bN` of a successful export.
  static func exported(_ n: Int) -> [Observation] { [.result(.symbol(Symbol("b\(n)")))] }
  static let ok: [Observation] = [.result(.zero)]
  static func err(_ e: Errno) -> [Observation] { [.result(.error(e))] }

  /// p2p-switch with a second exporter `x1` on the switch's other downstream port, and an
  /// importer `i0` beside x0; BAR2 of x1 sits at 1 TiB.
  static let twoExporters: World = {
    var w = World.p2pSwitch
    w.name = "two-exporters"
    w.pci.append(PCINode(name: "ex1", parent: "dn1", isBridge: false))
    w.exporters.append(
      Exporter(
        name: x(1), node: "ex1", bars: [BAR(index: 2, phys: 0x100_0000_0000, size: 0x1000_0000)]))
    return w
  }()

  /// `#expect(actual == expected)` with CustomDump's diff as the message.
  ///
  /// Not `expectNoDifference`: in this package its issues go to IssueReporting, which is not
  /// linked to Swift Testing here ("An issue was recorded without linking the Testing
  /// framework"), so a difference would not fail the test.
  static func expectSame<T: Equatable>(
    _ actual: T, _ expected: T, sourceLocation: SourceLocation = #_sourceLocation
  ) {
    #expect(
      actual == expected, "\(diff(expected, actual) ?? "")", sourceLocation: sourceLocation)
  }

  /// Runs `ops` on a fresh model of `world`, checking the invariant after each op.
  static func run(
    _ ops: [Op], in world: World, sourceLocation: SourceLocation = #_sourceLocation
  ) -> [[Observation]] {
    var model = DmaBufModel(world: world)
    return ops.map { op in
      let out = model.apply(op)
      #expect(model.invariantViolation() == nil, "after \(op)", sourceLocation: sourceLocation)
      return out
    }
  }
}
