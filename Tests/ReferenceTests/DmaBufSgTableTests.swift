import Reference
import Testing

/// Section 6 through `map`: bus addresses, IOVA tables, direct tables, not supported.
@Suite struct DmaBufSgTableTests {
  typealias F = DmaBufFixtures
  static let max: UInt64 = 0xFFFF_F000

  private func sgt(_ att: Int, _ entries: [SgEntry]) -> Observation {
    .sgTable(F.a(att), SgTable(nents: entries.count, origNents: 0, entries: entries))
  }

  private func concrete(_ addr: UInt64, _ len: UInt64) -> SgEntry { SgEntry(.concrete(addr), len) }
  private func iova(_ k: Int, _ off: UInt64, _ len: UInt64) -> SgEntry {
    SgEntry(.iova(Symbol("iova\(k)"), offset: off), len)
  }

  /// Open x0, export b1 with `ranges`, attach a1, map a1: the map's observations.
  private func mapOnce(_ ranges: [(UInt64, UInt64)], in world: World) -> [Observation] {
    let out = F.run(
      [.vfioOpen(F.x(0)), F.export(1, ranges), F.attach(1, 1), .map(F.a(1))], in: world)
    #expect(Array(out.prefix(3)) == [F.ok, F.exported(1), F.ok])
    return out[3]
  }

  @Test func chunkingAbove4GiB() {
    let table = DmaBufModel.sgTable(
      [PhysRange(address: 0x2_0000_0000, length: 0x1_0000_0000)], mode: .direct)
    F.expectSame(
      table,
      SgTable(
        nents: 2, origNents: 0,
        entries: [concrete(0x2_0000_0000, 0xFFFF_F000), concrete(0x2_FFFF_F000, 0x1000)]))
  }

  @Test func exactlyOneMaxEntryIsOneEntry() {
    let table = DmaBufModel.sgTable([PhysRange(address: 0x1000, length: Self.max)], mode: .direct)
    #expect(table.entries == [concrete(0x1000, Self.max)])
    #expect(table.nents == 1)
  }

  /// C6.2: bus address = paddr + bus_offset, each range chunked on its own, never merged.
  @Test func busAddressTable() {
    var w = World.p2pSwitch
    w.exporters[0].busOffset = 0x10_0000_0000
    let out = mapOnce([(0x1000, 0x1_0000_0000), (0x1_0000_1000, 0x1000)], in: w)
    let base: UInt64 = 0x12_0000_0000  // 0x2_0000_0000 + 0x10_0000_0000
    F.expectSame(
      out,
      F.ok + [
        sgt(
          1,
          [
            concrete(base + 0x1000, Self.max),
            concrete(base + 0x1000 + Self.max, 0x1000),
            concrete(base + 0x1_0000_1000, 0x1000),
          ])
      ])
  }

  /// C6.3: one IOVA range; the ranges are linked consecutively, the table covers the whole
  /// size in MAX-sized entries (the second range does not start an entry of its own).
  @Test func iovaTableWithTwoRanges() {
    let out = F.run(
      [
        .vfioOpen(F.x(0)), F.export(1, [(0x10_0000, Self.max - 0x1000), (0x0, 0x3000)]),
        F.attach(1, 1), .map(F.a(1)), F.attach(2, 1), .map(F.a(2)), .unmap(F.a(1)),
        .map(F.a(1)),
      ], in: .p2pHostBridgeZen)
    let size = Self.max + 0x2000
    let first = [iova(1, 0, Self.max), iova(1, Self.max, size - Self.max)]
    F.expectSame(out[3], F.ok + [sgt(1, first)])
    F.expectSame(out[5], F.ok + [sgt(2, [iova(2, 0, Self.max), iova(2, Self.max, 0x2000)])])
    // C6.7: the freed table's IOVAs translate no more.
    F.expectSame(out[6], F.ok + [.importer(F.a(1), .stale(0))])
    // A new map allocates a new IOVA range: $iova3.
    F.expectSame(out[7], F.ok + [sgt(1, [iova(3, 0, Self.max), iova(3, Self.max, 0x2000)])])
  }

  @Test func smallIovaTableIsOneEntry() {
    let out = mapOnce([(0x4000, 0x1000), (0x0, 0x2000)], in: .p2pHostBridgeZen)
    F.expectSame(out, F.ok + [sgt(1, [iova(1, 0, 0x3000)])])
  }

  /// C6.4: passthrough: physical addresses, no bus offset, adjacent ranges not merged.
  @Test func directTableInPassthrough() {
    var w = World.p2pHostBridgeZenPT
    w.exporters[0].busOffset = 0x10_0000_0000
    let out = mapOnce([(0x3000, 0x1000), (0x4000, 0x1000)], in: w)
    F.expectSame(
      out, F.ok + [sgt(1, [concrete(0x2_0000_3000, 0x1000), concrete(0x2_0000_4000, 0x1000)])])
  }

  @Test func directTableWithoutIOMMU() {
    var w = World.p2pHostBridgeZen
    w.iommu = .none
    let out = mapOnce([(0x2_0000, 0x1_0000_0000)], in: w)
    F.expectSame(
      out,
      F.ok + [
        sgt(
          1,
          [
            concrete(0x2_0002_0000, Self.max),
            concrete(
              0x2_0002_0000 + Self.max,
              0x1000),
          ])
      ])
  }

  /// C6.1: not supported → -EINVAL, no table, nothing allocated.
  @Test func notSupportedMapIsInvalid() {
    let out = mapOnce([(0, 0x1000)], in: .p2pHostBridgeIntel)
    F.expectSame(out, F.err(.invalid))
  }

  @Test func mapRules() {
    let out = F.run(
      [
        .vfioOpen(F.x(0)), F.export(1, [(0, 0x1000)]), .map(F.a(1)), F.attach(1, 1),
        .unmap(F.a(1)), .map(F.a(1)), .map(F.a(1)), .unmap(F.a(1)), .map(F.a(1)),
        .detach(F.a(1)), .map(F.a(1)), .unmap(F.a(1)), .detach(F.a(1)), F.attach(1, 1),
        .attach(F.a(2), F.b(1), importer: F.i(0), isDynamic: false),
        .attach(F.a(2), F.b(1), importer: F.i(7), isDynamic: true),
        .attach(F.a(2), F.b(9), importer: F.i(0), isDynamic: true),
      ], in: .p2pSwitch)
    let table = sgt(1, [concrete(0x2_0000_0000, 0x1000)])
    F.expectSame(
      out,
      [
        F.ok, F.exported(1), F.err(.noEntry), F.ok,
        F.err(.invalid), F.ok + [table], F.err(.busy), F.ok, F.ok + [table],
        F.ok, F.err(.noEntry), F.err(.noEntry), F.err(.noEntry), F.err(.exists),
        F.err(.notSupported), F.err(.noEntry), F.err(.noEntry),
      ])
  }
}
