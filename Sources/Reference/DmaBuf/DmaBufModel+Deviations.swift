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
}
