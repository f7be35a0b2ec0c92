/// iommufd as a second importer of the VFIO dma-bufs: `IOMMU_IOAS_MAP_FILE` of a dma-buf fd
/// (docs/contract.md C7.3–C7.5, and `include/uapi/linux/iommufd.h`, which declares the ioctls).
///
/// The contract names no importer: C7.3 says what any importer must be, C7.4 that attaching
/// and mapping a revoked buf fail with `-ENODEV`, C7.5 that a revocation notifies *every*
/// importer and that new maps work once the device is usable again. iommufd's uapi adds that
/// `IOMMU_IOAS_MAP_FILE` takes "single-range VFIO PCI dma-bufs" and that other dma-bufs "may be
/// rejected", and that all its other arguments and semantics are those of `IOMMU_IOAS_MAP`
/// (`IOMMU_IOAS_MAP_FIXED_IOVA`: "the iova range must currently be unused, existing IOVA
/// cannot be replaced"; `IOMMU_IOAS_UNMAP` returns the bytes unmapped). What follows marks
/// the rest as interpretations.
///
/// Interpretation: each `ioas-alloc` is an IOAS of its own iommufd context with no device
/// attached; nothing narrows its IOVA space, so its IOVA alignment is 1 (`IOMMU_IOAS_IOVA_RANGES`
/// says it can be) and a kernel-chosen IOVA always exists for the small bufs of the worlds.
/// Interpretation: an `ioas-device` IOAS has the exporter attached through the IOMMU of the
/// world (every dma-buf world has one); `IOMMU_IOAS_IOVA_RANGES` says each attached device
/// narrows the IOAS "based on that device's HW restrictions". The model takes them to be those
/// of any x86 IOMMU: an alignment of the page size (4 KiB; "It cannot be higher than the system
/// PAGE_SIZE"), so a `length`, a fixed `iova` or a `start` that is not a multiple of it is
/// `-EINVAL` (`start` because the page tables map whole pages: the mapping's offset in its first
/// page is the buf's); and an IOVA space of 39 bits, the narrowest x86 IOMMU page tables,
/// without the MSI window `0xfee00000…0xfeefffff`, so a fixed range reaching outside is `-EINVAL`.
/// (The generator draws no IOVA between 2^39 and 2^48, where the worlds' IOMMUs may differ.) In
/// the kernel's uapi order: the length's alignment first, then the fixed IOVA's (alignment,
/// overflow, reserved, in use), then `start`'s.
/// Interpretation: iommufd does not map through section 6 (the uapi calls it "not a generic
/// dma-buf import path": it takes the buf's physical range), so the P2P map type of C6.6 plays
/// no part and a map does not depend on the world's topology or IOMMU.
/// Interpretation: the request's numbers are checked before the buf is imported, in this order:
/// `length == 0` is `-EINVAL`; `start + length` past 2^64 is `-EOVERFLOW` ("Mathematics
/// overflowed"); a range that ends past the buf's size is `-EINVAL`. Then the import: a revoked
/// buf is `-ENODEV` (C7.4, the attach fails), a buf of two or more ranges `-EOPNOTSUPP` (the uapi's
/// "may be rejected"; EOPNOTSUPP is its errno for "a known field has a value the kernel does not
/// support"). Then the IOVA: a fixed `iova + length` past 2^64 is `-EOVERFLOW`; a fixed range that
/// meets a mapping of the IOAS is `-EEXIST` (iommufd's "already exists").
/// Interpretation: a revocation (C7.5) reaches iommufd through its `invalidate_mappings`, which
/// takes the buf's pages out of the IOAS's page tables; the mapping itself, an IOVA range the
/// user made, stays in the IOAS until `IOMMU_IOAS_UNMAP` (only the user changes an IOAS's
/// mappings), so it still keeps others from its range and unmapping it still returns its
/// length. A restore does not bring it back (C7.5 promises *new* maps, and the importer has
/// dropped the old one); a new `ioas-map-file` of the buf works again.
/// Interpretation: an IOAS mapping holds its own reference on the dma-buf, so `buf-close` changes
/// nothing for it (as for the shim's attachments).
///
/// Harness rules (Corpora/README.md): `-EEXIST` for a name already used; `-ENOENT` for an
/// unknown IOAS, buf or mapping, and for `ioas-unmap` of a mapping already unmapped; `-EBADF`
/// for a closed buf fd, for `ioas-device` of a device that is not open, and for a map into or an
/// unmap from an `ioas-device` IOAS whose open has ended (`vfio-close` closes the device's
/// iommufd, which takes the IOAS and its mappings with it); `-EPERM` (never called) for a fixed-IOVA map into an IOAS that holds a
/// live kernel-placed mapping: whether the two meet depends on where the kernel put the
/// other, which the model names only as a symbol.
extension DmaBufModel {
  /// The IOASes and their mappings of dma-bufs.
  package struct IOMMUFDState: Hashable, Sendable {
    /// The IOASes allocated or named, in order.
    package var ioases: [IOASState] = []
    /// The mappings in creation order (unmapped ones stay: their names stay used).
    package var mappings: [IOASMapping] = []
    /// How many IOVAs the kernel chose so far: the last one is `$ioas-iova<count>`.
    package var chosenCount = 0

    /// The index of mapping `name`, if it was created.
    func index(_ name: IOASMappingName) -> Int? { mappings.firstIndex { $0.name == name } }
    /// IOAS `name`, if it was allocated or named.
    func ioas(_ name: IOASName) -> IOASState? { ioases.first { $0.name == name } }
  }

  /// An IOAS: of its own iommufd (`ioas-alloc`), or the one an exporter's open attached it to
  /// (`ioas-device`).
  package struct IOASState: Hashable, Sendable {
    package var name: IOASName
    /// The exporter attached to it and the open (its `openCount`) it belongs to.
    package var device: (name: DeviceName, open: Int)?

    package static func == (a: Self, b: Self) -> Bool {
      a.name == b.name && a.device?.name == b.device?.name && a.device?.open == b.device?.open
    }
    package func hash(into h: inout Hasher) {
      h.combine(name)
      h.combine(device?.name)
      h.combine(device?.open)
    }
  }

  /// The page size and the IOVA space of an IOAS with a device attached (the type's
  /// interpretations): 39 bits without the x86 MSI window.
  static let ioasDevicePage: UInt64 = 1 << Arch.pageShift
  static let ioasDeviceIOVAEnd: UInt64 = 1 << 39
  static let msiWindow: ClosedRange<UInt64> = 0xfee0_0000...0xfeef_ffff

  /// Whether `s` is an `ioas-device` IOAS whose open has ended (closed or opened again).
  package func isGone(_ s: IOASState) -> Bool {
    guard let (d, open) = s.device else { return false }
    guard let state = devices[d] else { return true }
    return !state.isOpen || state.openCount != open
  }

  /// Where an IOAS mapping lies.
  package enum IOASAddress: Hashable, Sendable {
    /// Given with `IOMMU_IOAS_MAP_FIXED_IOVA`.
    case fixed(UInt64)
    /// Chosen by the kernel: `$ioas-iova<k>`.
    case chosen(Int)
  }

  /// One `IOMMU_IOAS_MAP_FILE` of a dma-buf that succeeded.
  package struct IOASMapping: Hashable, Sendable {
    package var name: IOASMappingName
    package var ioas: IOASName
    package var buf: BufName
    package var address: IOASAddress
    package var length: UInt64
    /// `IOMMU_IOAS_UNMAP` took it away.
    package var isUnmapped = false
    /// A revocation of its buf reached it (C7.5); it stays in the IOAS until unmapped.
    package var isRevoked = false

    /// Whether it is still in its IOAS (revoked or not).
    package var isLive: Bool { !isUnmapped }
  }

  /// The symbol of the `k`-th IOVA the kernel chose.
  package static func chosenIOVA(_ k: Int) -> Symbol { Symbol("ioas-iova\(k)") }

  mutating func ioasAlloc(_ s: IOASName) -> ResultValue {
    if iommufd.ioas(s) != nil { return .error(.exists) }
    iommufd.ioases.append(IOASState(name: s))
    return .zero
  }

  mutating func ioasDevice(_ s: IOASName, _ d: DeviceName) -> ResultValue {
    if iommufd.ioas(s) != nil { return .error(.exists) }
    guard let state = devices[d] else { return .error(.noEntry) }
    guard state.isOpen else { return .error(.badFD) }
    hit(.ioasDevice)
    iommufd.ioases.append(IOASState(name: s, device: (d, state.openCount)))
    return .zero
  }

  mutating func ioasMapFile(
    _ m: IOASMappingName, _ s: IOASName, _ b: BufName, start: UInt64, length: UInt64, iova: UInt64?
  ) -> ResultValue {
    if iommufd.index(m) != nil { return .error(.exists) }
    guard let ioas = iommufd.ioas(s) else { return .error(.noEntry) }
    if isGone(ioas) { return .error(.badFD) }
    guard let buf = buf(b) else { return .error(.noEntry) }
    guard buf.isFDOpen else { return .error(.badFD) }
    let mine = iommufd.mappings.filter { $0.ioas == s && $0.isLive }
    if iova != nil, mine.contains(where: { if case .chosen = $0.address { true } else { false } }) {
      return .error(.notPermitted)  // harness rule, never called
    }
    // ioas-map-ulong-max: 2^64 - 1 as length or IOVA is refused before anything else.
    if deviations.contains(.ioasMapULongMax), length == .max || iova == .max {
      return .error(.overflow)
    }
    // The request's numbers (see the type's interpretations).
    guard length > 0 else {
      hit(.ioasMapRange)
      return .error(.invalid)
    }
    let (end, overflows) = start.addingReportingOverflow(length)
    if overflows && end != 0 {
      hit(.ioasMapRange)
      return .error(.overflow)
    }
    if overflows || end > buf.size {
      hit(.ioasMapRange)
      return .error(.invalid)
    }
    // C7.4: a revoked buf refuses the import.
    guard isUsable(buf) else {
      hit(.ioasMapRevoked)
      return .error(.noDevice)
    }
    // iommufd.h: single-range VFIO dma-bufs only.
    guard buf.ranges.count == 1 else {
      hit(.ioasMapMultiRange)
      return .error(.notSupported)
    }
    let page = Self.ioasDevicePage
    let attached = ioas.device != nil
    if attached, length % page != 0 {
      hit(.ioasMapUnaligned)
      return .error(.invalid)
    }
    let address: IOASAddress
    if let iova {
      if attached, iova % page != 0 {
        hit(.ioasMapUnaligned)
        return .error(.invalid)
      }
      let (last, over) = iova.addingReportingOverflow(length - 1)
      if over {
        hit(.ioasMapRange)
        return .error(.overflow)
      }
      if attached, last >= Self.ioasDeviceIOVAEnd || Self.msiWindow.overlaps(iova...last) {
        hit(.ioasMapReserved)
        return .error(.invalid)
      }
      // IOMMU_IOAS_MAP_FIXED_IOVA: existing IOVA cannot be replaced, a revoked mapping's included.
      let meets = mine.contains { other in
        guard case .fixed(let o) = other.address else { return false }
        return o <= last && iova <= o &+ (other.length - 1)
      }
      if meets {
        hit(.ioasMapIOVAInUse)
        return .error(.exists)
      }
      address = .fixed(iova)
    } else {
      address = .chosen(iommufd.chosenCount + 1)
    }
    if attached, start % page != 0 {
      hit(.ioasMapUnaligned)
      return .error(.invalid)
    }
    if case .chosen(let k) = address { iommufd.chosenCount = k }
    hit(.ioasMapped)
    iommufd.mappings.append(IOASMapping(name: m, ioas: s, buf: b, address: address, length: length))
    if case .chosen(let k) = address { return .symbol(Self.chosenIOVA(k)) }
    return .zero
  }

  mutating func ioasUnmap(_ m: IOASMappingName) -> ResultValue {
    guard let i = iommufd.index(m), iommufd.mappings[i].isLive else { return .error(.noEntry) }
    if let s = iommufd.ioas(iommufd.mappings[i].ioas), isGone(s) { return .error(.badFD) }
    // C7.7 for this importer: IOMMU_IOAS_UNMAP returns the bytes unmapped, revoked or not.
    hit(iommufd.mappings[i].isRevoked ? .ioasUnmapRevoked : .ioasUnmapped)
    iommufd.mappings[i].isUnmapped = true
    return .number(Int64(bitPattern: iommufd.mappings[i].length))
  }

  /// C7.5: a revocation of the bufs `revoked` reaches every live IOAS mapping of them; nothing
  /// the user sees changes until they map or unmap (the type's interpretations).
  mutating func revokeIOASMappings(_ revoked: Set<BufName>) {
    for i in iommufd.mappings.indices
    where iommufd.mappings[i].isLive && !iommufd.mappings[i].isRevoked && revoked.contains(iommufd.mappings[i].buf) {
      hit(.ioasRevoked)
      iommufd.mappings[i].isRevoked = true
    }
  }

  /// The iommufd part of the invariant: names used once each, mappings in known IOASes of
  /// known single-range bufs, not empty, their chosen IOVA symbols allocated.
  func iommufdInvariantViolation() -> String? {
    if Set(iommufd.ioases.map(\.name)).count != iommufd.ioases.count { return "an IOAS name used twice" }
    if Set(iommufd.mappings.map(\.name)).count != iommufd.mappings.count { return "an IOAS mapping name used twice" }
    for m in iommufd.mappings {
      if iommufd.ioas(m.ioas) == nil { return "mapping \(m.name): unknown IOAS \(m.ioas)" }
      guard let b = buf(m.buf) else { return "mapping \(m.name): unknown buf \(m.buf)" }
      if b.ranges.count != 1 { return "mapping \(m.name): buf \(m.buf) of \(b.ranges.count) ranges" }
      if m.length == 0 { return "mapping \(m.name): empty" }
      if case .chosen(let k) = m.address, k < 1 || k > iommufd.chosenCount {
        return "mapping \(m.name): $ioas-iova\(k) never chosen"
      }
    }
    return nil
  }
}
