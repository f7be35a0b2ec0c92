import Reference
import Testing

/// C7.4–C7.7: usable and revoked, notifications, restore, permanence of close.
@Suite struct DmaBufRevocationTests {
  typealias F = DmaBufFixtures

  /// b1 = one page at the BAR's start; its table in the p2p-switch world.
  static let table1 = Observation.sgTable(
    F.a(1), SgTable(nents: 1, origNents: 0, entries: [SgEntry(.concrete(0x2_0000_0000), 0x1000)]))

  /// Open x0, export b1, attach a1 and a2 to it, map a1.
  static let setup: [Op] = [
    .vfioOpen(F.x(0)), F.export(1, [(0, 0x1000)]), F.attach(1, 1), F.attach(2, 1), .map(F.a(1)),
  ]
  static let setupOut: [[Observation]] = [F.ok, F.exported(1), F.ok, F.ok, F.ok + [table1]]

  private func after(_ ops: [Op], in world: World = .p2pSwitch) -> [[Observation]] {
    let out = F.run(Self.setup + ops, in: world)
    #expect(Array(out.prefix(Self.setup.count)) == Self.setupOut)
    return Array(out.dropFirst(Self.setup.count))
  }

  private let notifyBoth: [Observation] = F.ok + [.notify(F.a(1)), .notify(F.a(2))]
  /// A restore may notify (C7.5, C7.8: permitted, not required).
  private let mayNotifyBoth: [Observation] = F.ok + [.optional(.notify(F.a(1))), .optional(.notify(F.a(2)))]
  /// A reset: revoked (notified), then usable again (may be notified), per attachment.
  private let resetBoth: [Observation] =
    F.ok + [.notify(F.a(1)), .optional(.notify(F.a(1))), .notify(F.a(2)), .optional(.notify(F.a(2)))]

  @Test func memoryOffRevokes() {
    let out = after([
      .vfioMemory(F.x(0), enabled: false), .map(F.a(1)), .unmap(F.a(1)), F.attach(3, 1),
      .map(F.a(2)), .fdinfo(F.b(1)),
    ])
    F.expectSame(
      out,
      [
        notifyBoth, F.err(.noDevice), F.err(.invalid), F.err(.noDevice), F.err(.noDevice),
        F.ok + [.fdinfo(F.b(1), size: 0x1000, exporter: "vfio_pci_core")],
      ])
  }

  @Test func memoryOnRestoresMayNotify() {
    let out = after([
      .vfioMemory(F.x(0), enabled: false), .vfioMemory(F.x(0), enabled: true), .map(F.a(1)),
      F.attach(3, 1),
    ])
    F.expectSame(out, [notifyBoth, mayNotifyBoth, F.ok + [Self.table1], F.ok])
  }

  @Test func revokingTwiceNotifiesOnce() {
    let out = after([
      .vfioMemory(F.x(0), enabled: false), .vfioMemory(F.x(0), enabled: false),
      .vfioReset(F.x(0)), .vfioClose(F.x(0)),
    ])
    F.expectSame(out, [notifyBoth, F.ok, F.ok, F.ok])
  }

  @Test func resetRevokesThenRestores() {
    let out = after([.vfioReset(F.x(0)), .unmap(F.a(1)), .map(F.a(1)), .vfioReset(F.x(0))])
    F.expectSame(out, [resetBoth, F.err(.invalid), F.ok + [Self.table1], resetBoth])
  }

  /// C7.5: each importer mode's report when a revocation finds the attachment mapped, after the
  /// attachment's notifications; none for an unmapped one (a2) or for the default mode; and the
  /// mapping is gone afterwards whatever the mode (the op waited for the unmap).
  @Test(arguments: [
    (ImporterMode.unmap, nil), (.remap, ImporterEvent.remap(.error(.noDevice))), (.delayed, .revoke(.waited)),
    (.never, .revoke(.blocked)),
  ] as [(ImporterMode, ImporterEvent?)])
  func importerModeReports(mode: ImporterMode, event: ImporterEvent?) {
    let report = event.map { [Observation.importer(F.a(1), $0)] } ?? []
    let out = after([
      .importerMode(F.a(1), mode), .importerMode(F.a(2), mode), .vfioMemory(F.x(0), enabled: false),
      .unmap(F.a(1)), .vfioMemory(F.x(0), enabled: true), .map(F.a(1)), .vfioReset(F.x(0)),
    ])
    F.expectSame(
      out,
      [
        F.ok, F.ok, F.ok + [.notify(F.a(1))] + report + [.notify(F.a(2))], F.err(.invalid), mayNotifyBoth,
        F.ok + [Self.table1],
        F.ok + [.notify(F.a(1)), .optional(.notify(F.a(1)))] + report + [.notify(F.a(2)), .optional(.notify(F.a(2)))],
      ])
  }

  /// `importer-mode` of an attachment that is not live: -ENOENT (harness rule).
  @Test func importerModeOfDetachedOrUnknown() {
    let out = after([.detach(F.a(2)), .importerMode(F.a(2), .never), .importerMode(F.a(9), .remap)])
    F.expectSame(out, [F.ok, F.err(.noEntry), F.err(.noEntry)])
  }

  /// C6.7: unmap of an IOVA table reports that nothing stays mapped; of a bus-address table
  /// (behind a switch) nothing is reported.
  @Test func unmapChecksOnlyIOVATables() {
    let zen = F.run(Self.setup + [.unmap(F.a(1))], in: .p2pHostBridgeZen)
    F.expectSame(zen.last!, F.ok + [.importer(F.a(1), .stale(0))])
    F.expectSame(after([.unmap(F.a(1))]), [F.ok])
  }

  /// The zen world's exporter cannot reset: -EINVAL, nothing revoked, the mapping stays.
  @Test func failingResetRevokesNothing() {
    let out = F.run(Self.setup + [.vfioReset(F.x(0)), .unmap(F.a(1))], in: .p2pHostBridgeZen)
    F.expectSame(Array(out.suffix(2)), [F.err(.invalid), F.ok + [.importer(F.a(1), .stale(0))]])
  }

  @Test func closeIsPermanentAcrossReopen() {
    let out = after([
      .vfioClose(F.x(0)), .map(F.a(1)), .vfioOpen(F.x(0)), .map(F.a(1)),
      .vfioMemory(F.x(0), enabled: true), .map(F.a(2)), F.attach(3, 1), .vfioReset(F.x(0)),
      .vfioMemory(F.x(0), enabled: false), F.export(2, [(0x1000, 0x1000)]), F.attach(3, 2),
      .vfioMemory(F.x(0), enabled: true), F.attach(3, 2), .map(F.a(3)), .vfioClose(F.x(0)),
    ])
    F.expectSame(
      out,
      [
        notifyBoth, F.err(.noDevice), F.ok, F.err(.noDevice), F.ok, F.err(.noDevice),
        F.err(.noDevice), F.ok, F.ok,
        // Exported while memory is off: starts revoked (C7.4), usable once memory is on.
        F.exported(2), F.err(.noDevice), F.ok, F.ok,
        F.ok + [
          .sgTable(
            F.a(3),
            SgTable(nents: 1, origNents: 0, entries: [SgEntry(.concrete(0x2_0000_1000), 0x1000)]))
        ],
        // Only a3's buf was still usable.
        F.ok + [.notify(F.a(3))],
      ])
  }

  @Test func detachedAttachmentsAreNotNotified() {
    let out = after([.detach(F.a(1)), .vfioMemory(F.x(0), enabled: false), .detach(F.a(1))])
    F.expectSame(out, [F.ok, F.ok + [.notify(F.a(2))], F.err(.noEntry)])
  }

  /// The importer's reference keeps a closed buf alive: still notified, still mappable.
  @Test func closedBufFdStillNotifies() {
    let out = after([
      .bufClose(F.b(1)), .map(F.a(2)), .vfioReset(F.x(0)), .bufClose(F.b(1)), F.attach(3, 1),
    ])
    F.expectSame(
      out,
      [
        F.ok,
        F.ok + [
          .sgTable(
            F.a(2),
            SgTable(nents: 1, origNents: 0, entries: [SgEntry(.concrete(0x2_0000_0000), 0x1000)]))
        ],
        resetBoth, F.err(.badFD), F.err(.badFD),
      ])
  }

  /// C7.6: revoking x0 leaves x1's bufs usable and mapped; notifications in creation order
  /// across bufs of x0.
  @Test func otherDeviceUndisturbed() {
    let out = F.run(
      [
        .vfioOpen(F.x(0)), .vfioOpen(F.x(1)), F.export(1, [(0, 0x1000)]),
        F.export(2, device: 1, [(0x2000, 0x1000)]), F.export(3, [(0x5000, 0x2000)]),
        F.attach(1, 1), F.attach(2, 2), F.attach(3, 3), F.attach(4, 1),
        .map(F.a(2)), .map(F.a(3)),
        .vfioMemory(F.x(0), enabled: false), .vfioReset(F.x(0)), .vfioClose(F.x(0)),
        .unmap(F.a(2)), .map(F.a(2)), .vfioReset(F.x(1)),
      ], in: F.twoExporters)
    let table2 = Observation.sgTable(
      F.a(2),
      SgTable(nents: 1, origNents: 0, entries: [SgEntry(.concrete(0x100_0000_2000), 0x1000)]))
    let table3 = Observation.sgTable(
      F.a(3),
      SgTable(nents: 1, origNents: 0, entries: [SgEntry(.concrete(0x2_0000_5000), 0x2000)]))
    F.expectSame(
      Array(out.suffix(7)),
      [
        F.ok + [table3],
        F.ok + [.notify(F.a(1)), .notify(F.a(3)), .notify(F.a(4))],
        F.ok, F.ok, F.ok, F.ok + [table2],
        F.ok + [.notify(F.a(2)), .optional(.notify(F.a(2)))],
      ])
    #expect(out[9] == F.ok + [table2])
  }
}
