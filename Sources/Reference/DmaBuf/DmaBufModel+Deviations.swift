/// The dma-buf half's deviations (``Deviation``), predicted only when switched on. Two of them
/// are conditions in ``DmaBufModel/validateExport(_:exporter:deviations:)`` (each skips one
/// check of C7.1/C7.2: `export-argsz-ignores-ranges`, `export-open-flags-unchecked`); two are
/// conditions in DmaBufModel+Power.swift (`low-power-entry-revokes` in the low-power entry,
/// `config-outside-fault` in the config write); `reset-method-stale-bus` is a condition of the
/// reset; the rest is here.
extension DmaBufModel {
  /// low-power-entry-revokes (C7.4): what ends the revocation a low-power entry made. Every op
  /// that may make the device's bufs usable again (MEMORY written, the end of a reset or hot
  /// reset, PMCSR written, a low-power exit) lifts it, whether or not the entry is still in
  /// effect; C7.4's own conditions (memory on, D0, open) then decide. Without the deviation
  /// the flag is never set and this changes nothing.
  static func liftLowPowerRevoke(_ state: inout DeviceState) {
    state.lowPowerRevokedBelow = nil
  }

  /// reset-method-stale-bus (C7.6): whether `exporter`'s reported reset is a bus reset alone on
  /// a bus it shares with another function, which cannot be done.
  static func staleBusReset(_ exporter: Exporter, _ world: World) -> Bool {
    exporter.resetMethods == ["bus"] && world.sharesBus(exporter)
  }

  /// iova-multi-range-fails (C6.3): mapping a buf of two or more ranges through an IOVA fails
  /// with `-EADDRINUSE` (each range is linked at IOVA offset 0, so the second collides) and maps
  /// nothing; `nil` when the map goes through.
  static func iovaLinkFailure(_ buf: BufState) -> Errno? {
    buf.ranges.count >= 2 ? Errno(98) : nil  // EADDRINUSE
  }

  /// iova-multi-range-fails: what the failing map hands its ranges (the observer's
  /// `dma-range iova` lines): the first range linked at offset 0 of the allocation `base`, the
  /// second at offset 0 too, where linking fails with `error`; the rest is never linked.
  static func iovaLinkFailureDecisions(_ buf: BufState, base: Symbol, error: Errno) -> [DMARangeDecision] {
    [
      DMARangeDecision(.iova, buf.ranges[0], .iova(base, offset: 0)),
      DMARangeDecision(.iova, buf.ranges[1], .iova(base, offset: 0), error: error),
    ]
  }
}

extension DmaBufModel {
  /// iova-no-room-per-range: the IOVA space of an importer with a narrow DMA mask, as
  /// `alloc_iova()` hands it out (drivers/iommu/iova.c): page frames from 1 up to the mask,
  /// without the ranges its DMA domain reserves and those allocated; a request of n pages is
  /// rounded up to a power of two when under 32 pages (the IOVA caches' rule), and placed at the
  /// highest address aligned to n rounded up to a power of two.
  ///
  /// Not followed (so a sequence that depends on them stays unexplained): the kernel searches
  /// down from its last allocation before it looks above it, and keeps freed allocations under
  /// 32 pages in per-CPU caches (given back when an allocation fails). Both move addresses,
  /// which are compared as symbols; they can also put a small allocation inside the gap a large
  /// one needs later. The world runs with strict IOTLB invalidation (`iommu.strict=1`), so an
  /// unmap frees its IOVA at once instead of after the flush queue's 10 ms.
  package struct IOVASpace: Sendable {
    /// Reserved page ranges, sorted.
    let reserved: [ClosedRange<UInt64>]
    /// The highest page frame the mask allows.
    let limit: UInt64

    /// The space of `importer`, or `nil` when its mask is wider than 32 bits or its reserved
    /// ranges were not reported (then the contract's C6.3 stands).
    init?(_ importer: Importer) {
      guard importer.dmaMaskBits <= 32, importer.dmaMaskBits >= 13, let r = importer.iovaReserved else { return nil }
      limit = (UInt64(1) << UInt64(importer.dmaMaskBits - Int(Arch.pageShift))) - 1
      reserved = r.map { ($0.lowerBound >> Arch.pageShift)...($0.upperBound >> Arch.pageShift) }
    }

    /// The page range an allocation of `bytes` gets, avoiding `taken`; `nil` when none fits.
    func allocate(bytes: UInt64, avoiding taken: [ClosedRange<UInt64>]) -> ClosedRange<UInt64>? {
      var pages = (bytes + (1 << Arch.pageShift) - 1) >> Arch.pageShift
      guard pages > 0, pages <= limit else { return nil }
      if pages < 32 { pages = Self.powerOfTwo(atLeast: pages) }
      let align = Self.powerOfTwo(atLeast: pages)
      let busy = (reserved + taken).sorted { $0.lowerBound < $1.lowerBound }
      // Free gaps from the top: below each busy range (and below limit + 1).
      var high = limit + 1  // first frame above the gap
      var best: UInt64? = nil
      for b in busy.reversed() + [0...0] where b.lowerBound < high {
        let low = max(b.upperBound + 1, 1)
        if high >= pages, high - pages >= low {
          let start = (high - pages) / align * align
          if start >= low {
            best = start
            break
          }
        }
        high = min(high, b.lowerBound)
      }
      return best.map { $0...($0 + pages - 1) }
    }

    private static func powerOfTwo(atLeast n: UInt64) -> UInt64 {
      n <= 1 ? 1 : UInt64(1) << UInt64(64 - (n - 1).leadingZeroBitCount)
    }
  }
}
