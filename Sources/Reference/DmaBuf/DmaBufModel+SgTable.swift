/// One physical range of a dma-buf: a `phys_vec` entry (`paddr`, `len`) of docs/contract.md section 6.
package struct PhysRange: Hashable, Sendable {
  /// `paddr`: the BAR's physical address plus the range's offset (C7.1).
  package var address: UInt64
  /// `len`, in bytes; positive and page aligned once export validation passed (C7.1).
  package var length: UInt64
  package init(address: UInt64, length: UInt64) {
    self.address = address
    self.length = length
  }
}

/// How `dma_buf_phys_vec_to_sgt()` turns physical ranges into DMA addresses (C6.2–C6.4).
package enum DMAMode: Hashable, Sendable {
  /// C6.2 `BUS_ADDR`: `paddr + bus_offset`, per range.
  case busAddress(busOffset: UInt64)
  /// C6.3 `THRU_HOST_BRIDGE` with a translating IOMMU: one IOVA range whose base is `base`.
  case iova(base: Symbol)
  /// C6.4 `THRU_HOST_BRIDGE` without translation: physical addresses, per range.
  case direct
}

extension DmaBufModel {
  /// `MAX_SG_ENT_SZ`: the largest page-aligned `unsigned int`, 4 GiB − 4 KiB (section 6).
  package static let maxSgEntrySize: UInt64 = 0xFFFF_F000

  /// The sg table `dma_buf_phys_vec_to_sgt()` returns for `ranges` in `mode` (C6.2–C6.5).
  ///
  /// `orig_nents` is always 0 (C6.5: no CPU list); `nents` is the number of entries.
  package static func sgTable(_ ranges: [PhysRange], mode: DMAMode) -> SgTable {
    var entries: [SgEntry] = []
    switch mode {
    case .busAddress(let busOffset):
      // C6.2: each range in order at paddr + bus_offset, chunked; never merged (C6.5).
      for r in ranges {
        entries += chunks(length: r.length) { .concrete(r.address &+ busOffset &+ $0) }
      }
    case .iova(let base):
      // C6.3: ranges linked consecutively into one IOVA range of `size`; the table covers
      // [iova, iova + size) in ⌈size / MAX_SG_ENT_SZ⌉ entries.
      let size = ranges.reduce(UInt64(0)) { $0 &+ $1.length }
      entries = chunks(length: size) { .iova(base, offset: $0) }
    case .direct:
      // C6.4: DMA address = physical address, chunked as in C6.2.
      for r in ranges {
        entries += chunks(length: r.length) { .concrete(r.address &+ $0) }
      }
    }
    return SgTable(nents: entries.count, origNents: 0, entries: entries)
  }

  /// The DMA address each range is handed in `mode`, in range order (C6.2–C6.4): its bus
  /// address, its physical address, or its place in the IOVA allocation, where range i starts
  /// at the sum of the lengths in front of it (C6.3: linked one after the other).
  package static func rangeDecisions(_ ranges: [PhysRange], mode: DMAMode) -> [DMARangeDecision] {
    switch mode {
    case .busAddress(let busOffset):
      return ranges.map { DMARangeDecision(.bus, $0, .concrete($0.address &+ busOffset)) }
    case .direct:
      return ranges.map { DMARangeDecision(.direct, $0, .concrete($0.address)) }
    case .iova(let base):
      var offset: UInt64 = 0
      return ranges.map { r in
        defer { offset &+= r.length }
        return DMARangeDecision(.iova, r, .iova(base, offset: offset))
      }
    }
  }

  /// ⌈length / MAX_SG_ENT_SZ⌉ entries, all `MAX_SG_ENT_SZ` long but the last (C6.2); the
  /// address of each comes from its byte offset into the run.
  private static func chunks(length: UInt64, address: (UInt64) -> DMAAddress) -> [SgEntry] {
    var entries: [SgEntry] = []
    var offset: UInt64 = 0
    while offset < length {
      let n = min(maxSgEntrySize, length - offset)
      entries.append(SgEntry(address(offset), n))
      offset += n
    }
    return entries
  }
}
