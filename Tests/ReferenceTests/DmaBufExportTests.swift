import Reference
import Testing

/// C7.1: export validation, one test per check, in order; plus the harness rules around export.
@Suite struct DmaBufExportTests {
  typealias F = DmaBufFixtures

  static let get = ExportRequest.get | 11
  static let exporter = World.p2pSwitch.exporter(F.x(0))!
  static let noDmaBuf: Exporter = {
    var e = exporter
    e.supportsDmaBuf = false
    return e
  }()

  /// A well-formed request for one page at the BAR's start, modified by `edit`.
  private func request(_ edit: (inout ExportRequest) -> Void = { _ in }) -> ExportRequest {
    var r = ExportRequest(region: 2, ranges: [DMARange(offset: 0, length: 0x1000)])
    edit(&r)
    return r
  }

  private func decide(_ r: ExportRequest, _ e: Exporter = exporter) -> ExportDecision {
    DmaBufModel.validateExport(r, exporter: e)
  }

  @Test func wellFormedRequestExportsItsRangesInOrder() {
    let r = request {
      $0.ranges = [DMARange(offset: 0x5000, length: 0x2000), DMARange(offset: 0, length: 0x1000)]
    }
    F.expectSame(
      decide(r),
      .exported([
        PhysRange(address: 0x2_0000_5000, length: 0x2000),
        PhysRange(address: 0x2_0000_0000, length: 0x1000),
      ]))
  }

  // (1) checked before dma-buf support: an exporter without it still answers -EINVAL.

  @Test func argszBelowHeaderIsInvalid() {
    #expect(decide(request { $0.argsz = 7 }, Self.noDmaBuf) == .rejected(.invalid))
  }

  @Test func unknownFlagBitsAreInvalid() {
    let r = request { $0.feature = Self.get | 1 << 19 }
    #expect(decide(r, Self.noDmaBuf) == .rejected(.invalid))
  }

  @Test func getAndSetWithoutProbeAreInvalid() {
    let r = request { $0.feature = Self.get | ExportRequest.set }
    #expect(decide(r, Self.noDmaBuf) == .rejected(.invalid))
  }

  // (2)

  @Test func exporterWithoutDmaBufSupportIsNotSupported() {
    #expect(decide(request(), Self.noDmaBuf) == .rejected(.notSupported))
    // Even a probe: (2) comes before (4).
    let probe = request { $0.feature = ExportRequest.probe | 11 }
    #expect(decide(probe, Self.noDmaBuf) == .rejected(.notSupported))
  }

  // (3)

  @Test func setIsInvalidEvenWithProbe() {
    #expect(decide(request { $0.feature = ExportRequest.set | 11 }) == .rejected(.invalid))
    let all = ExportRequest.get | ExportRequest.set | ExportRequest.probe | 11
    #expect(decide(request { $0.feature = all }) == .rejected(.invalid))
  }

  // (4)

  @Test func probeAnswersZeroWithoutCheckingTheRest() {
    let junk = request {
      $0.argsz = 8
      $0.nrRanges = 0
      $0.flags = 1
      $0.region = 9
      $0.ranges = [DMARange(offset: 1, length: 0)]
    }
    var probe = junk
    probe.feature = ExportRequest.probe | 11
    #expect(decide(probe) == .probed)
    probe.feature = ExportRequest.probe | Self.get
    #expect(decide(probe) == .probed)
  }

  @Test func probeThroughTheModelCreatesNoBuf() {
    let probe = Op.export(F.b(1), F.x(0), request { $0.feature = ExportRequest.probe | 11 })
    let out = F.run(
      [.vfioOpen(F.x(0)), probe, .fdinfo(F.b(1)), F.export(1, [(0, 0x1000)])],
      in: .p2pSwitch)
    F.expectSame(out, [F.ok, F.ok, F.err(.noEntry), F.exported(1)])
  }

  // (5)

  @Test func neitherGetNorSetIsInvalid() {
    #expect(decide(request { $0.feature = 11 }) == .rejected(.invalid))
  }

  // (6)

  @Test func argszBelowHeaderAndPayloadIsInvalid() {
    #expect(decide(request { $0.argsz = 23 }) == .rejected(.invalid))
    // Probe: (6) is not reached, whatever argsz says about the ranges.
    let probe = request {
      $0.feature = ExportRequest.probe | Self.get
      $0.argsz = 24
      $0.nrRanges = 5
    }
    #expect(decide(probe) == .probed)
  }

  // (7), before (8): region 9 would be -ENODEV.

  @Test func noRangesAreInvalid() {
    let r = request {
      $0.nrRanges = 0
      $0.region = 9
    }
    #expect(decide(r) == .rejected(.invalid))
  }

  @Test func payloadFlagsAreInvalid() {
    let r = request {
      $0.flags = 1
      $0.region = 9
    }
    #expect(decide(r) == .rejected(.invalid))
  }

  // (8), before (9) and (10).

  @Test(arguments: [UInt32(6), 7, 0xFFFF_FFFF])
  func regionNotABarIsNoDevice(region: UInt32) {
    let r = request {
      $0.region = region
      $0.nrRanges = 262_145
    }
    #expect(decide(r) == .rejected(.noDevice))
  }

  @Test func barTheDeviceLacksOrDidNotClaimIsNoDevice() {
    // x0 (ivshmem-plain) has BAR0 and BAR2, no BAR1.
    let unaligned = request {
      $0.ranges = [DMARange(offset: 0x800, length: 0x1000)]
      $0.region = 1
    }
    #expect(decide(unaligned) == .rejected(.noDevice))
    var e = Self.exporter
    e.bars[1].isClaimed = false
    #expect(decide(request(), e) == .rejected(.noDevice))
  }

  // C7.1 (revised 2026-12-03): argsz covers the range array, 8 + 16 + 16 × nr_ranges.

  /// `argsz` just below, at and above what `count` ranges need.
  @Test(arguments: [1, 2, 3])
  func argszMustCoverTheRangeArray(count: Int) {
    let ranges = (0..<count).map { DMARange(offset: UInt64($0) << 16, length: 0x1000) }
    let needed = UInt32(24 + 16 * count)
    let exported = ExportDecision.exported(
      ranges.map { PhysRange(address: F.barPhys + $0.offset, length: $0.length) })
    for (argsz, expected) in [
      (UInt32(24), ExportDecision.rejected(.invalid)), (needed - 1, .rejected(.invalid)),
      (needed, exported), (needed + 1, exported), (needed + 0x1000, exported),
    ] {
      let r = request {
        $0.ranges = ranges
        $0.argsz = argsz
      }
      #expect(decide(r) == expected, "\(count) ranges, argsz \(argsz)")
    }
  }

  @Test func argszCountsNrRangesNotTheRangesGiven() {
    let two = [DMARange(offset: 0, length: 0x1000), DMARange(offset: 0x10000, length: 0x1000)]
    // Two ranges, argsz for one: -EINVAL.
    let short = request {
      $0.ranges = two
      $0.argsz = 40
    }
    #expect(decide(short) == .rejected(.invalid))
    // nr_ranges 1: argsz 40 covers the array the request describes; only its range is read.
    var one = short
    one.nrRanges = 1
    #expect(decide(one) == .exported([PhysRange(address: F.barPhys, length: 0x1000)]))
    // The default argsz counts nr_ranges, given ranges or not.
    #expect(request { $0.nrRanges = 2 }.effectiveArgsz == 56)
  }

  /// Interpretation: the check comes with copying the array, after (8) and before (9).
  @Test func argszCheckComesAfterTheRegionAndBeforeTheCopyLimit() {
    let badRegion = request {
      $0.region = 9
      $0.argsz = 24
    }
    #expect(decide(badRegion) == .rejected(.noDevice))
    // 262145 ranges: -ENOMEM when argsz covers them, -EINVAL when it does not.
    #expect(decide(request { $0.nrRanges = 262_145 }) == .rejected(.noMemory))
    let short = request {
      $0.nrRanges = 262_145
      $0.argsz = 24 + 16 * 262_144
    }
    #expect(decide(short) == .rejected(.invalid))
    // The default argsz counts at most 2^20 ranges: more can never be covered.
    #expect(decide(request { $0.nrRanges = UInt32.max }) == .rejected(.invalid))
  }

  @Test func argszCheckDoesNotWrap() {
    // 24 + 16 × 0xFFFF_FFFF wraps to 8 in 32 bits: in 64 bits it is far above any argsz.
    let r = request {
      $0.nrRanges = UInt32.max
      $0.argsz = UInt32.max
    }
    #expect(decide(r) == .rejected(.invalid))
    // The most ranges a u32 argsz can cover: 24 + 16 × 268435454 = 0xFFFF_FFF8.
    let most = request {
      $0.nrRanges = 268_435_454
      $0.argsz = UInt32.max
    }
    #expect(decide(most) == .rejected(.noMemory))
    let oneMore = request {
      $0.nrRanges = 268_435_455
      $0.argsz = UInt32.max
    }
    #expect(decide(oneMore) == .rejected(.invalid))
  }

  // C7.2 (revised 2026-12-03): open_flags takes the access mode, O_NONBLOCK and O_CLOEXEC.

  @Test(arguments: [UInt32(0), 1, 2, 3, 0x800, 0x80000, 0x80002, 0x80802, 0x80803])
  func acceptedOpenFlagsExport(openFlags: UInt32) {
    let r = request { $0.openFlags = openFlags }
    #expect(decide(r) == .exported([PhysRange(address: F.barPhys, length: 0x1000)]))
  }

  /// Every bit outside the accepted set, alone and beside valid flags.
  @Test(arguments: (0..<32).filter { ![0, 1, 11, 19].contains($0) })
  func otherOpenFlagBitsAreInvalid(bit: Int) {
    let alone = request { $0.openFlags = 1 << UInt32(bit) }
    #expect(decide(alone) == .rejected(.invalid))
    let beside = request { $0.openFlags = ExportRequest.defaultOpenFlags | 1 << UInt32(bit) }
    #expect(decide(beside) == .rejected(.invalid))
  }

  /// Interpretation: open_flags is checked with (7): after PROBE and dma-buf support, before
  /// the region (8), the copy limit (9) and the ranges (10).
  @Test func openFlagsCheckComesWithThePayloadFlags() {
    let o_creat: UInt32 = 0o100
    let probe = request {
      $0.feature = ExportRequest.probe | 11
      $0.openFlags = o_creat
    }
    #expect(decide(probe) == .probed)
    #expect(decide(request { $0.openFlags = o_creat }, Self.noDmaBuf) == .rejected(.notSupported))
    for edit: (inout ExportRequest) -> Void in [
      { $0.region = 9 }, { $0.nrRanges = 262_145 }, { $0.ranges[0].offset = 0x800 },
      { $0.ranges[0].offset = F.barSize },
    ] {
      let r = request {
        edit(&$0)
        $0.openFlags = o_creat
      }
      #expect(decide(r) == .rejected(.invalid), "\(r)")
    }
  }

  @Test func badOpenFlagsLeaveTheNameFree() {
    var bad = request { $0.openFlags = 0o100 }
    bad.ranges = [DMARange(offset: 0, length: 0x1000)]
    let out = F.run(
      [.vfioOpen(F.x(0)), .export(F.b(1), F.x(0), bad), .fdinfo(F.b(1)), F.export(1, [(0, 0x1000)])],
      in: .p2pSwitch)
    F.expectSame(out, [F.ok, F.err(.invalid), F.err(.noEntry), F.exported(1)])
  }

  // (9), before (10): the missing ranges read as zero-length ones.

  @Test func tooManyRangesIsNoMemory() {
    #expect(decide(request { $0.nrRanges = 262_145 }) == .rejected(.noMemory))
    #expect(decide(request { $0.nrRanges = 262_144 }) == .rejected(.invalid))
  }

  // (10), before (11)–(13).

  @Test(arguments: [
    (UInt64(0), UInt64(0)), (0x800, 0x1000), (0x1000, 0x1800), (0x1_0000_0000_0000, 0),
  ])
  func zeroOrUnalignedRangeIsInvalid(offset: UInt64, length: UInt64) {
    // The first range alone would be -EOVERFLOW (12): (10) is checked on every range first.
    let r = request {
      $0.ranges = [
        DMARange(offset: 0xFFFF_FFFE_0000_0000, length: 0x1000),
        DMARange(offset: offset, length: length),
      ]
    }
    #expect(decide(r) == .rejected(.invalid))
  }

  // (11), before (12): at offset 0x7FFF_FF80_0000_0000 the BAR address is 2^63, so each of
  // these ranges would also fail (12) with -EOVERFLOW.

  static let highOffset: UInt64 = 0x7FFF_FF80_0000_0000

  @Test func totalWithBit63IsInvalid() {
    let r = request { $0.ranges = [DMARange(offset: Self.highOffset, length: 1 << 63)] }
    #expect(decide(r) == .rejected(.invalid))
  }

  @Test func totalOverflowingIsInvalid() {
    // The sum wraps to 0: only the overflow check catches it.
    let half = DMARange(offset: Self.highOffset, length: 0x8000_0000_0000_0000)
    #expect(decide(request { $0.ranges = [half, half] }) == .rejected(.invalid))
  }

  // (12)

  @Test func barStartPlusOffsetOverflowing() {
    // 0x2_0000_0000 + 0xFFFF_FFFE_0000_0000 = 2^64.
    let r = request { $0.ranges = [DMARange(offset: 0xFFFF_FFFE_0000_0000, length: 0x1000)] }
    #expect(decide(r) == .rejected(.overflow))
  }

  @Test func barStartPlusOffsetPlusLengthOverflowing() {
    // Start 0xFFFF_FFFF_FFFF_F000, end 2^64 + 0x1000.
    let r = request { $0.ranges = [DMARange(offset: 0xFFFF_FFFD_FFFF_F000, length: 0x2000)] }
    #expect(decide(r) == .rejected(.overflow))
  }

  // (13)

  @Test func rangeEndingBeyondTheBarIsInvalid() {
    let past = request { $0.ranges = [DMARange(offset: F.barSize - 0x1000, length: 0x2000)] }
    #expect(decide(past) == .rejected(.invalid))
    let exact = request { $0.ranges = [DMARange(offset: F.barSize - 0x2000, length: 0x2000)] }
    #expect(
      decide(exact)
        == .exported([
          PhysRange(
            address: F.barPhys + F.barSize - 0x2000,
            length: 0x2000)
        ]))
  }

  /// Interpretation: (12) runs over every range before (13), so a range past the BAR in front
  /// of an overflowing one answers -EOVERFLOW.
  @Test func overflowOnALaterRangeBeatsPastTheBar() {
    let r = request {
      $0.ranges = [
        DMARange(offset: F.barSize, length: 0x1000),
        DMARange(offset: 0xFFFF_FFFE_0000_0000, length: 0x1000),
      ]
    }
    #expect(decide(r) == .rejected(.overflow))
  }

  /// Two failing checks, the earlier wins.
  @Test func earlierCheckWins() {
    // (10) unaligned beats (12) overflowing, in one range: -EINVAL, not -EOVERFLOW.
    let r = request { $0.ranges = [DMARange(offset: 0xFFFF_FFFE_0000_0800, length: 0x1000)] }
    #expect(decide(r) == .rejected(.invalid))
    var e = Self.exporter
    e.bars[1].isClaimed = false
    // (7) flags != 0 beats (8) unclaimed BAR: -EINVAL, not -ENODEV.
    #expect(decide(request { $0.flags = 4 }, e) == .rejected(.invalid))
    // (8) beats (9).
    #expect(decide(request { $0.nrRanges = 300_000 }, e) == .rejected(.noDevice))
  }

  @Test func overlappingAndUnsortedRangesAreAccepted() {
    let out = F.run(
      [.vfioOpen(F.x(0)), F.export(1, [(0x2000, 0x2000), (0x1000, 0x2000)]), .fdinfo(F.b(1))],
      in: .p2pSwitch)
    F.expectSame(
      out,
      [F.ok, F.exported(1), F.ok + [.fdinfo(F.b(1), size: 0x4000, exporter: "vfio_pci_core")]])
  }

  // Harness rules around export.

  @Test func harnessRules() {
    let out = F.run(
      [
        F.export(1, device: 5, [(0, 0x1000)]),  // unknown device
        F.export(1, [(0, 0x1000)]),  // device not open
        .vfioOpen(F.x(0)),
        .vfioOpen(F.x(0)),  // already open
        F.export(1, [(0, 0)]),  // fails: the name stays free
        F.export(1, [(0, 0x1000)]),
        F.export(1, device: 5, [(0, 0x1000)]),  // name used: before the unknown device
        .vfioOpen(F.x(5)),
        .vfioClose(F.x(5)),
        .vfioMemory(F.x(5), enabled: true),
        .vfioReset(F.x(5)),
      ], in: .p2pSwitch)
    F.expectSame(
      out,
      [
        F.err(.noEntry), F.err(.badFD), F.ok, F.err(.busy), F.err(.invalid), F.exported(1),
        F.err(.exists), F.err(.noEntry), F.err(.noEntry), F.err(.noEntry), F.err(.noEntry),
      ])
  }

  @Test func closedDeviceOpsAreBadFD() {
    let out = F.run(
      [
        .vfioClose(F.x(0)), .vfioMemory(F.x(0), enabled: false), .vfioReset(F.x(0)),
        .vfioOpen(F.x(0)), .vfioClose(F.x(0)), .vfioClose(F.x(0)),
      ], in: .p2pSwitch)
    F.expectSame(
      out, [F.err(.badFD), F.err(.badFD), F.err(.badFD), F.ok, F.ok, F.err(.badFD)])
  }

  @Test func bufCloseAndFdinfo() {
    let out = F.run(
      [
        .vfioOpen(F.x(0)), F.export(1, [(0, 0x3000), (0x10000, 0x1_0000_0000)]),
        .fdinfo(F.b(1)), .bufClose(F.b(1)), .fdinfo(F.b(1)), .bufClose(F.b(1)),
        .bufClose(F.b(2)), .fdinfo(F.b(2)), F.attach(1, 1),
      ], in: .p2pSwitch)
    F.expectSame(
      out,
      [
        F.ok, F.exported(1),
        F.ok + [.fdinfo(F.b(1), size: 0x1_0000_3000, exporter: "vfio_pci_core")],
        F.ok, F.err(.badFD), F.err(.badFD), F.err(.noEntry), F.err(.noEntry), F.err(.badFD),
      ])
  }
}
