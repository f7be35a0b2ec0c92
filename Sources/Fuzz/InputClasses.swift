import Reference

/// The input classes of op fields (``InputClass``): which classes a field's domain has, how a
/// value of each class is drawn, and which class a value belongs to, in a world.
///
/// A value is classified as a boundary when it is one of its domain's edges (even when the rule
/// accepts it: `pages=1`, the device memory's first PFN), else valid or invalid by the rule the
/// op is checked against. The values of one class, per domain (bytes for addresses, offsets and
/// lengths; pages for counts and offsets into a region; `R` the region's pages, `S` the BAR's
/// size, `F`…`L` the device memory's PFNs):
/// - user address: valid page-aligned in the map window; edges the window's start, + 1,
///   + page − 1, + page, + page + 1, its last page, its end, a page past it, 2^63, 2^64 − a page,
///   2^64 − 1; invalid unaligned or past 2^60. Not 0 or `TASK_SIZE`: the logical process's own
///   memory and the guest's paging depth (5-level: `TASK_SIZE` 2^56) are not the model's.
/// - page count: valid 1…R; edges 0, 1, R, R + 1, 2^20 ± 1 (4 GiB), 2^52, 2^63, 2^64 − 1.
/// - region index: valid 2, 4; edges 0, 1, 3, 5, 255; invalid the rest.
/// - page offset in a region: valid below R; edges 0, 1, R − 1, R, R + 1, 2^28 ± 1 (the region
///   bits of `vm_pgoff`), 2^40 − 1.
/// - PFN: valid F…L; edges 0, 1, F − 1, F, L, L + 1, the edges of the sections around the
///   device memory, 2^20 (4 GiB), 2^52 − 1, 2^52, 2^63, 2^64 − 1; invalid RAM and PFNs far past.
/// - `memory_failure()` flags: valid subsets of `MF_COUNT_INCREASED | MF_ACTION_REQUIRED |
///   MF_MUST_KILL | MF_SW_SIMULATED`; edges `MF_SOFT_OFFLINE`, 2^31, 2^32 − 1.
/// - export region: valid the exporter's BARs; edges 0, 1, 5, 6, 7, 8, 2^32 − 1.
/// - export offset and length: valid page-aligned inside the BAR; edges 0, 1, page − 1, page,
///   page + 1, S − page, S, S + page, 4 GiB ± a page, 2^63, 2^64 − a page, 2^64 − 1.
/// - feature: valid `GET`; edges `PROBE`, `PROBE | GET`, neither, every flag bit; invalid
///   `GET | SET` and unknown bits. `argsz`: valid above what the ranges need; edges 0, 7, 8, 23,
///   24, needed − 1, needed, needed + 1, 2^32 − 1. `nr`: valid the number of ranges; edges 0,
///   that + 1, 262144, 262145, 2^32 − 1. Payload flags: valid 0; edges 1, 2^31, 2^32 − 1. Open
///   flags: valid accepted bits; edges 0, all accepted bits, 2^32 − 1. A left-out optional field
///   is valid (its default is).
/// - config offset: valid where the write fits the config space (size C); edges 0, 1, 3, 4, 5,
///   C − width, C − 1, C, 0x100, 0x1000, 2^40 − 1; invalid past C. Config width: valid 2…7;
///   edges 0, 1, 8 (every width is written).
package enum InputClasses {
  static let page: UInt64 = 1 << Arch.pageShift
  static let fourGiB: UInt64 = 1 << 32
  static let top: UInt64 = .max

  /// The classes of a domain, in ``InputClass`` order.
  package static func classes(of d: FieldDomain) -> [InputClass] {
    switch d {
    case .reference: []
    case .anyValue: [.valid]
    case .choice, .marker: [.valid, .invalid]
    case .exitCode, .configWidth: [.valid, .boundary]
    default: [.valid, .boundary, .invalid]
    }
  }

  /// What the values of a field are judged against: the world, and the op's other fields.
  package struct Context {
    package var world: World
    package var kind: OpKind
    package var values: [FieldValue]

    var regionPages: UInt64 { (world.deviceMemory?.pages ?? 0x4000) / 2 }
    var memory: (first: UInt64, last: UInt64) {
      let m = world.deviceMemory ?? DeviceMemory(firstPFN: 0xf8000, pages: 0x4000)
      return (m.firstPFN, m.firstPFN + m.pages - 1)
    }
    /// The exporter an export names.
    var exporter: Exporter? {
      if kind == .vfioConfig, case .name(let d) = values[0] { return world.exporters.first { $0.name.raw == d } }
      guard kind == .export, case .name(let d) = values[1] else { return nil }
      return world.exporters.first { $0.name.raw == d }
    }
    /// The size of the BAR an export's region names (the exporter's BAR 2, or 1 MiB, when it
    /// names none).
    var barSize: UInt64 {
      guard let x = exporter else { return 1 << 20 }
      if case .unsigned(let r) = values[2], let bar = x.bars.first(where: { UInt64($0.index) == r }) {
        return bar.size
      }
      return (x.bars.first { $0.index == 2 } ?? x.bars.first)?.size ?? 1 << 20
    }
    var rangeCount: UInt64 {
      if case .ranges(let r) = values[3] { return UInt64(r.count) }
      return 0
    }
    /// A config write's config-space size and width.
    var configSize: UInt64 { exporter?.configSize ?? 256 }
    var configWidth: UInt64 {
      if kind == .vfioConfig, case .unsigned(let w) = values[2] { return w }
      return 2
    }
    /// The `nr_ranges` the kernel reads.
    var effectiveNr: UInt64 {
      if case .unsigned(let n) = values[6] { return n }
      return rangeCount
    }
  }

  /// The edges of a numeric domain.
  static func edges(_ d: FieldDomain, _ c: Context) -> [UInt64] {
    let p = page
    switch d {
    case .userAddress:
      // Relative to the map window: the logical process's own memory (the agent's binary at
      // 4 MiB, its heap, its stack below 2^47) lies outside the model's knowledge, and so does
      // the guest's TASK_SIZE (2^47 or 2^56 with 5-level paging): a range reaching there is
      // not predictable. Past 2^56 nothing is user space either way.
      let w = c.world.mapWindow
      return [
        w.lowerBound, w.lowerBound &+ 1, w.lowerBound &+ p &- 1, w.lowerBound &+ p, w.lowerBound &+ p &+ 1,
        w.upperBound &+ 1 &- p, w.upperBound &+ 1, w.upperBound &+ 1 &+ p, 1 << 63, top &- p &+ 1, top,
      ]
    case .pageCount:
      let r = c.regionPages
      return [0, 1, r, r &+ 1, (1 << 20) &- 1, 1 << 20, (1 << 20) &+ 1, 1 << 52, 1 << 63, top]
    case .regionIndex: return [0, 1, 3, 5, 0xff]
    case .regionPageOffset:
      let r = c.regionPages
      return [0, 1, r &- 1, r, r &+ 1, (1 << 28) &- 1, 1 << 28, (1 << 28) &+ 1, (1 << 40) &- 1]
    case .pfn:
      let (f, l) = c.memory
      let shift = Arch.sectionPFNShift
      let sectionStart = (f >> shift) << shift
      let nextSection = ((l >> shift) &+ 1) << shift
      return [
        0, 1, f &- 1, f, l, l &+ 1, sectionStart, nextSection &- 1, nextSection, 1 << 20, (1 << 52) &- 1, 1 << 52,
        1 << 63, top,
      ]
    case .mfFlags: return [0x8, 1 << 31, 0xffff_ffff]
    case .barIndex: return [0, 1, 5, 6, 7, 8, 0xffff_ffff]
    case .dmaRanges:
      let s = c.barSize
      return [0, 1, p &- 1, p, p &+ 1, s &- p, s, s &+ p, fourGiB &- p, fourGiB, fourGiB &+ p, 1 << 63, top &- p &+ 1, top]
    case .feature:
      let dmaBuf = UInt64(ExportRequest.featureDMABuf)
      let probe = UInt64(ExportRequest.probe)
      return [probe | dmaBuf, probe | UInt64(ExportRequest.get) | dmaBuf, dmaBuf, 0xffff_0000 | dmaBuf]
    case .argsz:
      let needed = 24 &+ 16 * min(c.effectiveNr, 1 << 20)
      return [0, 7, 8, 23, 24, needed &- 1, needed, needed &+ 1, 0xffff_ffff]
    case .nrRanges:
      let m = UInt64(DmaBufModel.maxRanges)
      return [0, c.rangeCount &+ 1, m, m &+ 1, 0xffff_ffff]
    case .exportFlags: return [1, 1 << 31, 0xffff_ffff]
    case .openFlags: return [0, UInt64(DmaBufModel.acceptedOpenFlags), 0xffff_ffff]
    case .prctlArg(let valid): return [valid.max()! + 1, 1 << 63, top]
    case .configOffset:
      let size = c.configSize
      return [0, 1, 3, 4, 5, size - min(size, c.configWidth), size - 1, size, 0x100, 0x1000, 1 << 40 - 1]
    case .configWidth: return [0, 1, 8]
    case .ioasBytes:
      return [0, 1, p &- 1, p, p &+ 1, fourGiB &- p, fourGiB, fourGiB &+ p, 1 << 63, top &- p &+ 1, top]
    case .ioasIOVA:
      // 0xfee00000: the MSI window, which the IOVA space leaves out.
      let space: UInt64 = 1 << 39
      return [0, 1, p &- 1, p, p &+ 1, 0xfee0_0000, fourGiB, space &- p, space, 1 << 48, 1 << 63, top &- p &+ 1, top]
    default: return []
    }
  }

  /// Whether a numeric value (not an edge) is what the rule expects.
  static func isValid(_ d: FieldDomain, _ v: UInt64, _ c: Context, field: String = "") -> Bool {
    switch d {
    case .userAddress: return v & (page - 1) == 0 && c.world.mapWindow.contains(v)
    case .pageCount: return v >= 1 && v <= c.regionPages
    case .regionIndex: return DeviceMemory.regionIndexes.contains(v)
    case .regionPageOffset: return v < c.regionPages
    case .pfn: return c.memory.first <= v && v <= c.memory.last
    case .mfFlags: return v & ~0x27 == 0
    case .barIndex: return c.exporter?.bars.contains { UInt64($0.index) == v } ?? false
    case .dmaRanges:
      let aligned = v & (page - 1) == 0
      return field == "offset" ? aligned && v < c.barSize : aligned && v > 0 && v <= c.barSize
    case .feature: return v == UInt64(ExportRequest.get | ExportRequest.featureDMABuf)
    case .argsz: return v > 24 + 16 * min(c.effectiveNr, 1 << 20) + 1
    case .nrRanges: return v == c.rangeCount
    case .exportFlags: return v == 0
    case .openFlags: return v & ~UInt64(DmaBufModel.acceptedOpenFlags) == 0
    case .prctlArg(let valid): return valid.contains(v)
    case .configOffset: return v < c.configSize && c.configWidth <= c.configSize - v
    case .configWidth: return v <= 8
    case .ioasBytes: return v & (page - 1) == 0 && v <= fourGiB
    case .ioasIOVA: return v & (page - 1) == 0 && v < 1 << 39 && !(0xfee0_0000...0xfeef_ffff).contains(v)
    default: return true
    }
  }

  /// The class of one value of a field (`nil` for a reference); `field` tells an export
  /// range's `offset` from its `length`.
  package static func classify(_ d: FieldDomain, _ v: FieldValue, _ c: Context, field: String = "") -> InputClass? {
    switch (d, v) {
    case (.reference, _): return nil
    case (.anyValue, _): return .valid
    case (.choice(let invalid), .choice(let s)): return invalid.contains(s) ? .invalid : .valid
    case (.marker, .flag(let present)): return present ? .invalid : .valid
    case (.exitCode, .signed(let n)): return [0, 1, 255, 256, -1, Int64(Int32.min), Int64(Int32.max)].contains(n) ? .boundary : .valid
    case (.earlyKill, .signed(let n)):
      if [2, -1, Int64.min, Int64.max, 1 << 32].contains(n) { return .boundary }
      return n == 0 || n == 1 ? .valid : .invalid
    case (_, .absent): return .valid
    case (_, .unsigned(let n)):
      if edges(d, c).contains(n) { return .boundary }
      return isValid(d, n, c, field: field) ? .valid : .invalid
    default: return nil
    }
  }

  /// A value of class `k` for field `f` (a class its domain has, not `.reference`); `part`
  /// is `offset` or `length` for an export's ranges.
  package static func draw(
    _ f: FieldSpec, _ k: InputClass, _ c: Context, _ rng: inout PRNG, part: String = ""
  ) -> FieldValue {
    let d = f.domain
    let field = part.isEmpty ? f.name : part
    switch d {
    case .choice(let invalid):
      guard case .choice(let words) = f.type else { preconditionFailure("\(f.name) is not a choice") }
      return .choice(rng.pick(k == .invalid ? invalid : words.filter { !invalid.contains($0) }))
    case .marker: return .flag(k == .invalid)
    case .exitCode:
      return .signed(k == .boundary ? rng.pick([0, 1, 255, 256, -1, Int64(Int32.min), Int64(Int32.max)]) : 2 + Int64(rng.below(253)))
    case .earlyKill:
      switch k {
      case .valid: return .signed(Int64(rng.below(2)))
      case .boundary: return .signed(rng.pick([2, -1, Int64.min, Int64.max, 1 << 32]))
      case .invalid: return .signed(rng.chance(50) ? 3 + Int64(rng.below(100)) : -2 - Int64(rng.below(100)))
      }
    default:
      if k == .boundary { return .unsigned(rng.pick(edges(d, c))) }
      // A value that happens to be an edge (RAM's PFN 1, an offset of one page) is drawn again.
      var v: UInt64 = 0
      for _ in 0..<8 {
        v = k == .valid ? validNumber(d, c, &rng, field: field) : invalidNumber(d, c, &rng, field: field)
        if classify(d, .unsigned(v), c, field: field) == k { break }
      }
      return .unsigned(v)
    }
  }

  private static func validNumber(_ d: FieldDomain, _ c: Context, _ rng: inout PRNG, field: String) -> UInt64 {
    switch d {
    case .userAddress: return c.world.mapWindow.lowerBound + rng.below(256) << 18
    case .pageCount: return 2 + rng.below(c.regionPages > 3 ? c.regionPages - 2 : 1)
    case .regionIndex: return rng.pick(DeviceMemory.regionIndexes)
    case .regionPageOffset: return 2 + rng.below(c.regionPages > 4 ? c.regionPages - 3 : 1)
    case .pfn: return c.memory.first + 1 + rng.below(max(1, c.memory.last - c.memory.first - 1))
    case .mfFlags: return rng.pick([0x0, 0x20, 0x2, 0x22, 0x24, 0x26, 0x1])
    case .barIndex: return UInt64(c.exporter.map { rng.pick($0.bars).index } ?? 2)
    case .dmaRanges:
      let pages = max(2, c.barSize >> Arch.pageShift)
      return (field == "offset" ? 1 + rng.below(pages - 1) : 2 + rng.below(max(1, min(63, pages - 2)))) << Arch.pageShift
    case .feature: return UInt64(ExportRequest.get | ExportRequest.featureDMABuf)
    case .argsz: return 24 + 16 * min(c.effectiveNr, 1 << 20) + 2 + rng.below(64)
    case .nrRanges: return c.rangeCount
    case .exportFlags: return 0
    case .openFlags: return UInt64(ExportRequest.defaultOpenFlags & (rng.chance(50) ? 0xffff_ffff : 0o2))
    case .prctlArg(let valid): return rng.pick(valid)
    case .configOffset: return 6 + rng.below(max(1, c.configSize - 6 - min(c.configSize - 6, c.configWidth)))
    case .configWidth: return 2 + rng.below(6)
    case .ioasBytes: return (2 + rng.below(62)) << Arch.pageShift
    case .ioasIOVA: return (1 + rng.below(1 << 20)) << (Arch.pageShift + 4)
    default: return 0
    }
  }

  private static func invalidNumber(_ d: FieldDomain, _ c: Context, _ rng: inout PRNG, field: String) -> UInt64 {
    switch d {
    case .userAddress:
      if rng.chance(50) { return c.world.mapWindow.lowerBound + rng.below(256) << 18 + 1 + rng.below(page - 2) }
      return (1 << 60) + rng.below(1 << 40) << Arch.pageShift  // past any TASK_SIZE
    case .pageCount:
      // At most 24 GiB: from the map window a range stays far below the process's stack.
      return rng.chance(50) ? c.regionPages + 2 + rng.below(1 << 19) : (1 << 21) + rng.below(1 << 22)
    case .regionIndex: return 6 + rng.below(0xf9)
    case .regionPageOffset:
      let r = c.regionPages
      return rng.chance(50) ? r + 2 + rng.below((1 << 28) - r - 3) : (1 << 28) + 2 + rng.below((1 << 40) - (1 << 28) - 3)
    case .pfn:
      if rng.chance(50), let ram = c.world.ram.first { return rng.inRange(ram) }
      let (_, l) = c.memory
      let nextSection = ((l >> Arch.sectionPFNShift) + 1) << Arch.sectionPFNShift
      return nextSection + 1 + rng.below(1 << 36)
    case .mfFlags:
      let bits: [UInt64] = [4, 6, 7] + Array(8...30)
      return (1 << rng.pick(bits)) | rng.pick([0, 0x20, 0x2])
    case .barIndex: return 9 + rng.below(0xffff_fff0)
    case .dmaRanges:
      let s = c.barSize
      if rng.chance(50) { return rng.below(max(1, s >> Arch.pageShift)) << Arch.pageShift + 1 + rng.below(page - 2) }
      return s &+ (2 + rng.below(1 << 20)) << Arch.pageShift
    case .feature:
      let base = UInt64(ExportRequest.get | ExportRequest.featureDMABuf)
      return rng.chance(50) ? base | UInt64(ExportRequest.set) : base | 1 << (19 + rng.below(12))
    case .argsz:
      let needed = 24 + 16 * min(c.effectiveNr, 1 << 20)
      return needed > 27 && rng.chance(50) ? 25 + rng.below(needed - 27) : 9 + rng.below(14)
    case .nrRanges:
      let m = UInt64(DmaBufModel.maxRanges)
      return rng.chance(50) ? c.rangeCount + 2 + rng.below(1000) : m + 2 + rng.below(0xffff_ffff - m - 3)
    case .exportFlags: return 2 + rng.below(0x7fff_fffd)
    case .openFlags:
      let accepted = UInt64(DmaBufModel.acceptedOpenFlags)
      let other = rng.pick((0..<31).filter { accepted & 1 << $0 == 0 })
      return UInt64(ExportRequest.defaultOpenFlags) | 1 << other
    case .prctlArg(let valid): return valid.max()! + 2 + rng.below(1000)
    case .configOffset: return c.configSize + 1 + rng.below(rng.chance(50) ? 0x1000 : 1 << 39)
    case .configWidth: return 2
    case .ioasBytes:
      // Not page aligned, or page aligned past 4 GiB (at most 2^40).
      if rng.chance(50) { return (1 + rng.below(64)) << Arch.pageShift + 1 + rng.below(page - 2) }
      return fourGiB + (2 + rng.below(1 << 27)) << Arch.pageShift
    case .ioasIOVA:
      // Not page aligned, or page aligned past the 48 bits of any IOMMU here (below 2^63).
      if rng.chance(50) { return (1 + rng.below(1 << 20)) << (Arch.pageShift + 4) + 1 + rng.below(page - 2) }
      return (1 << 48) + (2 + rng.below(1 << 30)) << Arch.pageShift
    default: return 0
    }
  }
}

/// Per op field, how many values of each input class a campaign's ops held (summary.json's
/// `inputClasses`), and how many ops held more than one value outside the valid class.
package struct InputCensus: Sendable, Equatable, Codable {
  /// `keyword.field` (`mmap.addr`; an export's ranges as `export.offset` and `export.length`)
  /// to class to values.
  package var draws: [String: [String: Int]] = [:]
  /// Per keyword, ops with two or more values outside the valid class (the combinations).
  package var combinations: [String: Int] = [:]

  package init() {}

  /// Counts the fields of `op` in `world`.
  package mutating func add(_ op: Op, world: World) {
    let kind = op.kind
    let spec = kind.spec
    let values = op.fieldValues
    let context = InputClasses.Context(world: world, kind: kind, values: values)
    var outside = 0
    func count(_ field: String, _ k: InputClass) {
      draws[spec.keyword + "." + field, default: [:]][k.rawValue, default: 0] += 1
      if k != .valid { outside += 1 }
    }
    for (f, v) in zip(spec.fields, values) {
      if case .ranges(let ranges) = v {
        for r in ranges {
          count("offset", InputClasses.classify(f.domain, .unsigned(r.offset), context, field: "offset")!)
          count("length", InputClasses.classify(f.domain, .unsigned(r.length), context, field: "length")!)
        }
      } else if let k = InputClasses.classify(f.domain, v, context, field: f.name) {
        count(f.name, k)
      }
    }
    if outside > 1 { combinations[spec.keyword, default: 0] += 1 }
  }

  /// Adds another part of the campaign's counts (a shard's).
  package mutating func merge(_ o: InputCensus) {
    for (field, classes) in o.draws {
      draws[field, default: [:]].merge(classes, uniquingKeysWith: +)
    }
    combinations.merge(o.combinations, uniquingKeysWith: +)
  }

  /// The share of each class in a field's values (0…1, three decimals).
  package var shares: [String: [String: Double]] {
    draws.mapValues { classes in
      let total = classes.values.reduce(0, +)
      return classes.mapValues { (Double($0) / Double(max(1, total)) * 1000).rounded() / 1000 }
    }
  }

  private enum Keys: String, CodingKey { case draws, shares, combinations }

  package init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: Keys.self)
    draws = try c.decode([String: [String: Int]].self, forKey: .draws)
    combinations = try c.decode([String: Int].self, forKey: .combinations)
  }

  package func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: Keys.self)
    try c.encode(draws, forKey: .draws)
    try c.encode(shares, forKey: .shares)
    try c.encode(combinations, forKey: .combinations)
  }
}
