import Reference
import Testing

/// C7.4–C7.6 through the power ops: low power, raw config writes, hot reset, the power state.
/// The guest's exporters (ivshmem) have no PM capability; the PM branch is the model's own
/// (DmaBufModel+Power.swift's interpretations), checked here in a world whose exporter has one.
@Suite struct DmaBufPowerTests {
  typealias F = DmaBufFixtures

  static let table1 = DmaBufRevocationTests.table1

  /// Open x0, export b1, attach a1, map a1.
  static let setup: [Op] = [.vfioOpen(F.x(0)), F.export(1, [(0, 0x1000)]), F.attach(1, 1), .map(F.a(1))]

  /// p2p-switch whose exporter has a PM capability at 0x40 (PMCSR at 0x44).
  static let withPM: World = {
    var w = World.p2pSwitch
    w.name = "p2p-switch-pm"
    w.exporters[0].pmCapability = 0x40
    return w
  }()

  private func after(_ ops: [Op], in world: World) -> [[Observation]] {
    let out = F.run(Self.setup + ops, in: world)
    #expect(out.prefix(Self.setup.count).last == F.ok + [Self.table1])
    return Array(out.dropFirst(Self.setup.count))
  }

  private let notified: [Observation] = F.ok + [.notify(F.a(1))]
  private let mayBeNotified: [Observation] = F.ok + [.optional(.notify(F.a(1)))]
  private func power(_ n: Int64) -> [Observation] { [.result(.number(n))] }

  @Test func lowPowerWithoutPMStaysInD0() {
    let out = after(
      [
        .vfioLowPowerEntry(F.x(0)), .vfioPower(F.x(0)), .map(F.a(1)), .vfioLowPowerWakeup(F.x(0), wakeup: .eventfd),
        .vfioLowPowerExit(F.x(0)), .vfioLowPowerExit(F.x(0)), .vfioLowPowerWakeup(F.x(0), wakeup: .eventfd),
      ], in: .p2pSwitch)
    F.expectSame(out, [F.ok, power(0), F.err(.busy), F.err(.invalid), F.ok, F.ok, F.ok])
  }

  @Test func wakeupFDIsCheckedFirst() {
    let out = after(
      [
        .vfioLowPowerWakeup(F.x(0), wakeup: .absent), .vfioLowPowerWakeup(F.x(0), wakeup: .file),
        .vfioLowPowerEntry(F.x(0)), .vfioLowPowerWakeup(F.x(0), wakeup: .absent),
      ], in: .p2pSwitch)
    // A negative fd (-1) and one that is not an eventfd are both -EINVAL (interpretation).
    F.expectSame(out, [F.err(.invalid), F.err(.invalid), F.ok, F.err(.invalid)])
  }

  @Test func lowPowerWithPMRevokesUntilExit() {
    let out = after(
      [
        .vfioLowPowerEntry(F.x(0)), .vfioPower(F.x(0)), .map(F.a(1)), .vfioLowPowerExit(F.x(0)),
        .vfioPower(F.x(0)), .map(F.a(1)),
      ], in: Self.withPM)
    F.expectSame(out, [notified, power(3), F.err(.noDevice), mayBeNotified, power(0), F.ok + [Self.table1]])
  }

  @Test func configWritesOfCommandAndPMCSR() {
    let out = after(
      [
        // The command register's high byte leaves MEMORY alone; its low byte (alone, as a word,
        // or with the status register) clears and sets it.
        .vfioConfig(F.x(0), offset: 5, width: 1, value: 0), .vfioConfig(F.x(0), offset: 3, width: 2, value: 0),
        .vfioConfig(F.x(0), offset: 4, width: 4, value: 0xffff_0006),
        // PMCSR: D3hot revokes, D1 is discarded, D0 restores.
        .vfioConfig(F.x(0), offset: 0x44, width: 2, value: 3), .vfioPower(F.x(0)),
        .vfioConfig(F.x(0), offset: 0x44, width: 1, value: 1), .vfioPower(F.x(0)),
        .vfioConfig(F.x(0), offset: 0x42, width: 4, value: 0), .vfioPower(F.x(0)),
      ], in: Self.withPM)
    F.expectSame(
      out, [F.ok, notified, mayBeNotified, notified, power(3), F.ok, power(3), mayBeNotified, power(0)])
  }

  @Test func configWritesOutsideTheRegionFail() {
    let out = after(
      [
        .vfioConfig(F.x(0), offset: 0xff, width: 2, value: 0), .vfioConfig(F.x(0), offset: 0x100, width: 0, value: 0),
        .vfioConfig(F.x(0), offset: .max, width: 2, value: 0), .vfioConfig(F.x(0), offset: 0xfc, width: 4, value: 0),
        .vfioConfig(F.x(0), offset: 0, width: 0, value: 0), .map(F.a(1)),
      ], in: .p2pSwitch)
    F.expectSame(out, [F.err(.invalid), F.ok, F.err(.invalid), F.ok, F.ok, F.err(.busy)])
  }

  @Test func hotResetRevokesWhereTheBusResets() {
    F.expectSame(
      after([.vfioHotReset(F.x(0)), .map(F.a(1))], in: .p2pSwitch),
      [F.ok + [.notify(F.a(1)), .optional(.notify(F.a(1)))], F.ok + [Self.table1]])
    let root = F.run(
      [.vfioOpen(F.x(0)), F.export(1, [(0, 0x1000)]), F.attach(1, 1), .vfioHotReset(F.x(0)), .map(F.a(1))],
      in: .p2pHostBridgeZen)
    #expect(root[3] == F.err(.noDevice))
  }

  @Test func powerOpsNeedAnOpenDevice() {
    let ops: [Op] = [
      .vfioLowPowerEntry(F.x(0)), .vfioLowPowerWakeup(F.x(0), wakeup: .eventfd), .vfioLowPowerExit(F.x(0)),
      .vfioConfig(F.x(0), offset: 4, width: 2, value: 6), .vfioHotReset(F.x(0)), .vfioPower(F.x(0)),
      .vfioPower(F.x(7)),
    ]
    F.expectSame(F.run(ops, in: .p2pSwitch), Array(repeating: F.err(.badFD), count: 6) + [F.err(.noEntry)])
  }

  @Test func aNewOpenStartsInD0WithoutLowPower() {
    let out = F.run(
      [
        .vfioOpen(F.x(0)), .vfioLowPowerEntry(F.x(0)), .vfioPower(F.x(0)), .vfioClose(F.x(0)), .vfioOpen(F.x(0)),
        .vfioPower(F.x(0)), .vfioLowPowerEntry(F.x(0)),
      ], in: Self.withPM)
    F.expectSame(out, [F.ok, F.ok, power(3), F.ok, F.ok, power(0), F.ok])
  }
}
