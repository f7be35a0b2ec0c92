/// The dma-buf half's deviations (``Deviation``), predicted only when switched on. Two of them
/// are conditions in ``DmaBufModel/validateExport(_:exporter:deviations:)`` (each skips one
/// check of C7.1/C7.2: `export-argsz-ignores-ranges`, `export-open-flags-unchecked`); the
/// rest is here.
extension DmaBufModel {
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
