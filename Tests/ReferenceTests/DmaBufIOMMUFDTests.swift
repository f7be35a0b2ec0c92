import Reference
import Testing

/// iommufd as a second importer (DmaBufModel+IOMMUFD.swift): C7.3–C7.5 and iommufd.h.
@Suite struct DmaBufIOMMUFDTests {
  typealias F = DmaBufFixtures

  static func io(_ n: Int) -> IOASName { IOASName(index: n) }
  static func m(_ n: Int) -> IOASMappingName { IOASMappingName(index: n) }
  static func map(_ m: Int, _ buf: Int, start: UInt64 = 0, length: UInt64, iova: UInt64? = nil, ioas: Int = 1) -> Op {
    .ioasMapFile(Self.m(m), io(ioas), F.b(buf), start: start, length: length, iova: iova)
  }
  static func chosen(_ k: Int) -> [Observation] { [.result(.symbol(DmaBufModel.chosenIOVA(k)))] }
  static func bytes(_ n: Int64) -> [Observation] { [.result(.number(n))] }

  static let setup: [Op] = [.vfioOpen(F.x(0)), F.export(1, [(0, 0x2000)]), .ioasAlloc(io(1))]

  private func after(_ ops: [Op], in world: World = .p2pSwitch) -> [[Observation]] {
    let out = F.run(Self.setup + ops, in: world)
    #expect(Array(out.prefix(Self.setup.count)) == [F.ok, F.exported(1), F.ok])
    return Array(out.dropFirst(Self.setup.count))
  }

  @Test func mapsAtFixedAndChosenIOVAsAndUnmapsTheirLength() {
    let out = after([
      Self.map(1, 1, length: 0x2000, iova: 0x1_0000_0000), Self.map(2, 1, start: 0x1000, length: 0x1000),
      Self.map(3, 1, length: 0x1000), .ioasUnmap(Self.m(1)), .ioasUnmap(Self.m(1)), .ioasUnmap(Self.m(2)),
    ])
    F.expectSame(out, [F.ok, Self.chosen(1), Self.chosen(2), Self.bytes(0x2000), F.err(.noEntry), Self.bytes(0x1000)])
  }

  @Test func checksTheRangeThenTheImportThenTheIOVA() {
    let out = after([
      F.export(2, [(0, 0x1000), (0x4000, 0x1000)]),
      Self.map(1, 1, length: 0), Self.map(1, 1, start: .max & ~0xfff, length: 0x2000),
      Self.map(1, 1, start: 0x1000, length: 0x2000), Self.map(1, 2, length: 0x1000),
      Self.map(1, 1, length: 0x2000, iova: .max & ~0xfff),
      // start + length exactly 2^64 does not overflow: it lies past the buf.
      Self.map(1, 1, start: .max & ~0xfff, length: 0x1000),
    ])
    F.expectSame(
      out,
      [F.exported(2), F.err(.invalid), F.err(.overflow), F.err(.invalid), F.err(.notSupported), F.err(.overflow), F.err(.invalid)])
  }

  @Test func aFixedRangeInUseIsRefusedAndAChosenOneForbidsFixedMaps() {
    let out = after([
      Self.map(1, 1, length: 0x2000, iova: 0x1_0000_0000), Self.map(2, 1, length: 0x1000, iova: 0x1_0000_1000),
      Self.map(3, 1, length: 0x1000, iova: 0x1_0000_2000), .ioasAlloc(Self.io(2)), Self.map(4, 1, length: 0x1000, ioas: 2),
      Self.map(5, 1, length: 0x1000, iova: 0x1_0000_0000, ioas: 2),
    ])
    F.expectSame(out, [F.ok, F.err(.exists), F.ok, F.ok, Self.chosen(1), F.err(.notPermitted)])
  }

  @Test func revocationKeepsTheMappingsIOVAUntilUnmapped() {
    let out = after([
      Self.map(1, 1, length: 0x2000, iova: 0x1_0000_0000), .vfioMemory(F.x(0), enabled: false),
      Self.map(2, 1, length: 0x1000), .vfioMemory(F.x(0), enabled: true),
      Self.map(3, 1, length: 0x1000, iova: 0x1_0000_1000), Self.map(4, 1, length: 0x1000, iova: 0x1_0010_0000),
      .ioasUnmap(Self.m(1)), Self.map(5, 1, length: 0x1000, iova: 0x1_0000_1000),
    ])
    F.expectSame(
      out, [F.ok, F.ok, F.err(.noDevice), F.ok, F.err(.exists), F.ok, Self.bytes(0x2000), F.ok])
  }

  @Test func closeRevokesForeverAndAClosedFDIsBadF() {
    let out = after([
      Self.map(1, 1, length: 0x1000), .vfioClose(F.x(0)), .vfioOpen(F.x(0)), Self.map(2, 1, length: 0x1000),
      .ioasUnmap(Self.m(1)), .bufClose(F.b(1)), Self.map(2, 1, length: 0x1000),
    ])
    F.expectSame(out, [Self.chosen(1), F.ok, F.ok, F.err(.noDevice), Self.bytes(0x1000), F.ok, F.err(.badFD)])
  }

  /// No P2P map type plays a part: the map works where the shim's importer gets -EINVAL (C6.1).
  @Test func doesNotDependOnTheMapType() {
    let out = after([Self.map(1, 1, length: 0x2000)], in: .p2pHostBridgeIntel)
    F.expectSame(out, [Self.chosen(1)])
  }

  /// A device's IOAS: page alignment, a 39-bit IOVA space without the MSI window, gone with
  /// the open (the model's interpretations and harness rules).
  @Test func aDevicesIOASAlignsToPagesAndGoesWithTheOpen() {
    let out = after([
      .ioasDevice(Self.io(2), F.x(0)), Self.map(1, 1, length: 0x800, iova: 0x1_0000_0000, ioas: 2),
      Self.map(1, 1, length: 0x1000, iova: 0x1_0000_0010, ioas: 2), Self.map(1, 1, start: 0x10, length: 0x1000, ioas: 2),
      Self.map(1, 1, length: 0x1000, iova: 0xfee0_0000, ioas: 2), Self.map(1, 1, length: 0x1000, iova: 1 << 39, ioas: 2),
      Self.map(1, 1, length: 0x2000, iova: .max & ~0xfff, ioas: 2), Self.map(1, 1, length: 0x2000, ioas: 2),
      // The same requests in an IOAS without a device: accepted (alignment 1, no reserved range).
      Self.map(2, 1, start: 0x10, length: 0x800, iova: 0xfee0_0010),
      .vfioClose(F.x(0)), .ioasUnmap(Self.m(1)), Self.map(3, 1, length: 0x1000, ioas: 2), .vfioOpen(F.x(0)),
      Self.map(3, 1, length: 0x1000, ioas: 2), .ioasDevice(Self.io(2), F.x(0)), .vfioClose(F.x(0)),
      .ioasDevice(Self.io(3), F.x(0)),
    ])
    F.expectSame(
      out,
      [
        F.ok, F.err(.invalid), F.err(.invalid), F.err(.invalid), F.err(.invalid), F.err(.invalid), F.err(.overflow),
        Self.chosen(1), F.ok, F.ok, F.err(.badFD), F.err(.badFD), F.ok, F.err(.badFD), F.err(.exists), F.ok,
        F.err(.badFD),
      ])
  }
}
