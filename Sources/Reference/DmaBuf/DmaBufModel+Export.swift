/// What `VFIO_DEVICE_FEATURE` with `VFIO_DEVICE_FEATURE_DMA_BUF` does with a request (C7.1).
package enum ExportDecision: Hashable, Sendable {
  /// The request fails with this errno; no dma-buf is created.
  case rejected(Errno)
  /// `PROBE`: the ioctl returns 0 and creates nothing.
  case probed
  /// `GET` succeeds: a new dma-buf over these physical ranges (in request order).
  case exported([PhysRange])
}

extension DmaBufModel {
  /// The flag bits `VFIO_DEVICE_FEATURE` knows: the feature index and `GET | SET | PROBE`.
  package static let knownFeatureBits: UInt32 =
    0xFFFF | ExportRequest.get | ExportRequest.set | ExportRequest.probe
  /// The most ranges the kernel copies: 4 MiB of 16-byte entries (C7.1).
  package static let maxRanges: UInt32 = 262_144
  /// Region indexes at or above this are not BARs (C7.1).
  package static let barCount: UInt32 = 6
  /// The `open_flags` bits a request may set (C7.2): the access mode (`O_ACCMODE`, 0x3),
  /// `O_NONBLOCK` (0x800) and `O_CLOEXEC` (0x80000).
  package static let acceptedOpenFlags: UInt32 = 0o3 | 0o4000 | 0o2_000_000

  /// C7.1: validates `request` against `exporter`, in the contract's order, first failure wins.
  ///
  /// The device is open (the caller checked); the feature index in the low 16 bits is
  /// `VFIO_DEVICE_FEATURE_DMA_BUF` (the sequence parser only produces 11).
  ///
  /// Interpretation: each per-range check is applied to every range before the next check
  /// starts (so a range past the BAR in range 0 loses to an overflowing range 1).
  /// `argsz` covers the range array (C7.1): below 8 + 16 + 16 × `nr_ranges` is `-EINVAL`, and
  /// nothing past `argsz` is read. `open_flags` with a bit other than the access mode,
  /// `O_NONBLOCK` and `O_CLOEXEC` is `-EINVAL` (C7.2).
  ///
  /// Interpretation: the contract states both rules beside C7.1's numbered list without a
  /// place in it. The `argsz` check against the array belongs to copying the array: it comes
  /// after the region check (8) and before the copy's size limit (9), so an `argsz` that cannot
  /// hold `nr_ranges` entries is `-EINVAL` even when `nr_ranges` > 262144 (nothing beyond
  /// `argsz` may be read, so the array is never sized up for copying), and a bad region still
  /// answers `-ENODEV` first. The computation is in 64 bits: `16 × nr_ranges` cannot wrap.
  /// Interpretation: `open_flags` is a field of the fixed payload like `flags`; its check goes
  /// with (7), before the region (8). It checks bits: both access-mode bits are accepted
  /// whatever their value (3 included), as the contract rejects bits, not values.
  package static func validateExport(
    _ request: ExportRequest, exporter: Exporter, deviations: Set<Deviation> = []
  ) -> ExportDecision {
    validateExportTakingRule(request, exporter: exporter, deviations: deviations).decision
  }

  /// ``validateExport(_:exporter:deviations:)`` with the rule that decided it.
  package static func validateExportTakingRule(
    _ request: ExportRequest, exporter: Exporter, deviations: Set<Deviation> = []
  ) -> (decision: ExportDecision, rule: Rule)
  {
    let flags = request.effectiveFeature
    let isGet = flags & ExportRequest.get != 0
    let isSet = flags & ExportRequest.set != 0
    let isProbe = flags & ExportRequest.probe != 0
    let argsz = request.effectiveArgsz

    // C7.1 (1): header argsz, unknown flag bits, GET and SET together without PROBE.
    if argsz < ExportRequest.headerSize || flags & ~knownFeatureBits != 0
      || (isGet && isSet && !isProbe)
    {
      return (.rejected(.invalid), .exportHeader)
    }
    // C7.1 (2): the driver has no dma-buf support.
    guard exporter.supportsDmaBuf else { return (.rejected(.notSupported), .exportNoSupport) }
    // C7.1 (3): SET is not a dma-buf operation.
    if isSet { return (.rejected(.invalid), .exportSet) }
    // C7.1 (4): PROBE answers 0, nothing else checked.
    if isProbe { return (.probed, .exportProbe) }
    // C7.1 (5): neither GET nor SET (SET was refused above).
    guard isGet else { return (.rejected(.invalid), .exportNoGet) }
    // C7.1 (6): argsz smaller than header + fixed payload.
    if argsz < ExportRequest.headerSize + ExportRequest.payloadSize {
      return (.rejected(.invalid), .exportPayload)
    }
    // C7.1 (7): no ranges, or payload flags set.
    let nr = request.effectiveNrRanges
    if nr == 0 || request.flags != 0 { return (.rejected(.invalid), .exportNoRanges) }
    // C7.2: an open_flags bit other than the access mode, O_NONBLOCK and O_CLOEXEC (with (7),
    // see the doc comment).
    if request.effectiveOpenFlags & ~acceptedOpenFlags != 0, !deviations.contains(.exportOpenFlagsUnchecked) {
      return (.rejected(.invalid), .exportOpenFlags)
    }
    // C7.1 (8): region not a BAR, or a BAR without claimed MMIO (a BAR the device lacks has
    // no claimed MMIO either).
    guard request.region < barCount, let bar = exporter.bar(request.region), bar.isClaimed else {
      return (.rejected(.noDevice), .exportRegion)
    }
    // C7.1: argsz covers header, payload and the whole range array, or nothing of the array is
    // read (before the copy (9), see the doc comment).
    let needed =
      UInt64(ExportRequest.headerSize) + UInt64(ExportRequest.payloadSize)
      + UInt64(ExportRequest.rangeSize) * UInt64(nr)
    if UInt64(argsz) < needed, !deviations.contains(.exportArgszIgnoresRanges) {
      return (.rejected(.invalid), .exportArgszRanges)
    }
    // C7.1 (9): range array too large to copy.
    if nr > maxRanges { return (.rejected(.noMemory), .exportTooMany) }
    // C7.1 (10): zero length, unaligned offset or length. The kernel reads zero ranges past
    // those given (``ExportRequest/rangesAsRead``): one of them is enough, without building up
    // to 262144 of them.
    if Int(nr) > request.ranges.count { return (.rejected(.invalid), .exportMalformed) }
    let ranges = request.rangesAsRead
    let pageMask = Arch.pageSize - 1
    let isMalformed = { (r: DMARange) in
      r.length == 0 || r.offset & pageMask != 0 || r.length & pageMask != 0
    }
    if ranges.contains(where: isMalformed) { return (.rejected(.invalid), .exportMalformed) }
    // C7.1 (11): total length overflowing u64, or with bit 63 set.
    var total: UInt64 = 0
    for r in ranges {
      let (sum, overflow) = total.addingReportingOverflow(r.length)
      if overflow { return (.rejected(.invalid), .exportTotal) }
      total = sum
    }
    if total & (1 << 63) != 0 { return (.rejected(.invalid), .exportTotal) }
    // C7.1 (12): bar_start + offset, or + length, overflowing.
    for r in ranges {
      let (start, o1) = bar.phys.addingReportingOverflow(r.offset)
      let (_, o2) = start.addingReportingOverflow(r.length)
      if o1 || o2 { return (.rejected(.overflow), .exportOverflow) }
    }
    // C7.1 (13): a range ending beyond the BAR (no overflow possible after (12)).
    if ranges.contains(where: { $0.offset + $0.length > bar.size }) {
      return (.rejected(.invalid), .exportBeyondBAR)
    }
    // C7.1: overlapping or unsorted ranges are accepted; the buf covers them in order.
    return (.exported(ranges.map { PhysRange(address: bar.phys + $0.offset, length: $0.length) }), .exported)
  }
}
