/// The dma-buf half's deviations (``Deviation``), predicted only when switched on. Two of them
/// are conditions in ``DmaBufModel/validateExport(_:exporter:deviations:)`` (each skips one
/// check of C7.1/C7.2: `export-argsz-ignores-ranges`, `export-open-flags-unchecked`); two are
/// conditions in DmaBufModel+Power.swift (`low-power-entry-revokes` in the low-power entry,
/// `config-outside-fault` in the config write); the rest is here.
extension DmaBufModel {
  /// low-power-entry-revokes (C7.4): what ends the revocation a low-power entry made. Every op
  /// that may make the device's bufs usable again (MEMORY written, the end of a reset or hot
  /// reset, PMCSR written, a low-power exit) lifts it, whether or not the entry is still in
  /// effect; C7.4's own conditions (memory on, D0, open) then decide. Without the deviation
  /// the flag is never set and this changes nothing.
  static func liftLowPowerRevoke(_ state: inout DeviceState) {
    state.lowPowerRevokedBelow = nil
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
