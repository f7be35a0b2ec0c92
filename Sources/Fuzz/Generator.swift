import Reference

/// Generates seeded random sequences for a world: mostly meaningful ops chosen from the current
/// abstract state, and some deliberately invalid ones.
///
/// The generator runs the reference model alongside (it asks it which processes, threads,
/// mappings and spaces exist) and keeps the names of dma-bufs and attachments from the results.
/// Same world, seed and length: the same sequence, forever (``PRNG`` is fixed).
package struct Generator {
  package let world: World
  private var rng: PRNG
  private var machine: Machine
  private var ops: [Op] = []
  private var processCount = 0
  private var spaceCount = 0
  private var bufCount = 0
  private var attachmentCount = 0
  private var nextThread: [ProcessName: Int] = [:]
  /// dma-bufs whose export returned an fd, and whether the fd is still open.
  private var bufs: [(name: BufName, isOpen: Bool)] = []
  private var attachments: [AttachmentName] = []
  private var ioasCount = 0
  private var ioasMappingCount = 0

  package init(world: World, seed: UInt64) {
    self.world = world
    self.rng = PRNG(seed: seed)
    self.machine = Machine(world: world)
  }

  /// The sequence of `length` ops for `seed` in `world`.
  package static func generate(world: World, seed: UInt64, length: Int) -> OpSequence {
    var g = Generator(world: world, seed: seed)
    for _ in 0..<length { g.step() }
    return OpSequence(world: world.name, seed: seed, ops: g.ops)
  }

  /// Chooses one op, applies it to the model, records it.
  package mutating func step() {
    let op = withInputClasses(nextOp())
    let obs = machine.apply(op)
    track(op, obs)
    ops.append(op)
  }

  /// The ops so far (generated and replayed).
  package var sequence: [Op] { ops }

  /// Records `op` as if it had been generated (``Mutator``: a kept sequence's ops around new
  /// ones): applies it to the model, keeps the names it creates, and moves the fresh-name
  /// counters past them.
  package mutating func replay(_ op: Op) {
    reserveNames(in: [op])
    let obs = machine.apply(op)
    track(op, obs)
    ops.append(op)
  }

  /// Records `op` with one to three of its fields replaced by values of another class than
  /// valid (``InputClasses``; ops without such fields unchanged), as ``replay(_:)`` does.
  package mutating func replayReclassed(_ op: Op) {
    replay(withInputClasses(op, always: true))
  }

  /// Moves the fresh-name counters past every name `ops` create, so generated ops never
  /// reuse them.
  package mutating func reserveNames(in ops: [Op]) {
    func number<K>(_ n: Name<K>) -> Int { Int(n.raw.dropFirst(K.prefix.count)) ?? 0 }
    for op in ops {
      switch op {
      case .spawn(let p), .fork(_, child: let p): processCount = max(processCount, number(p))
      case .threadCreate(let t): nextThread[t.process] = max(nextThread[t.process, default: 1], t.index + 1)
      case .spaceCreate(let s, _, _, _): spaceCount = max(spaceCount, number(s))
      case .export(let b, _, _): bufCount = max(bufCount, number(b))
      case .attach(let a, _, _, _): attachmentCount = max(attachmentCount, number(a))
      case .ioasAlloc(let s), .ioasDevice(let s, _): ioasCount = max(ioasCount, number(s))
      case .ioasMapFile(let m, _, _, _, _, _): ioasMappingCount = max(ioasMappingCount, number(m))
      default: break
      }
    }
  }

  private var mf: MemoryFailureModel { machine.memoryFailure }

  /// Per kind, the fields whose domain has a class besides valid (``InputClasses``).
  private static let classedFields: [[Int]] = OpKind.allCases.map { k in
    k.spec.fields.indices.filter { InputClasses.classes(of: k.spec.fields[$0].domain).count > 1 }
  }
  /// Per kind, how often (%) an op gets some fields from another class: 5 % and 3 % more per
  /// classed field, so that each class of each field has its share (at least 2 %, InputClassTests)
  /// while most ops stay as the state logic drew them.
  private static let classedPercent: [Int] = classedFields.map { $0.isEmpty ? 0 : min(30, 5 + 3 * $0.count) }

  /// The op, or, for ``classedPercent`` % of the ops that have classed fields, the op with one
  /// field (two thirds of the time), two or three (the combinations) replaced by a value of
  /// another class than valid: a boundary or an invalid value (``InputClasses``). The state
  /// logic above draws mostly valid values (and some invalid ones of its own).
  private mutating func withInputClasses(_ op: Op, always: Bool = false) -> Op {
    let kind = op.kind
    let percent = Self.classedPercent[kind.rawValue]
    guard percent > 0, always || rng.chance(percent) else { return op }
    var candidates = Self.classedFields[kind.rawValue]
    let fields = kind.spec.fields
    var values = op.fieldValues
    for _ in 0..<min(candidates.count, rng.pick([1, 1, 1, 1, 2, 3])) {
      let i = candidates.remove(at: rng.below(candidates.count))
      let f = fields[i]
      let k = rng.pick(InputClasses.classes(of: f.domain).dropFirst())
      let context = InputClasses.Context(world: world, kind: kind, values: values)
      if case .ranges(var ranges) = values[i] {
        // Each range's offset and its length, each half of the time, from class k.
        if ranges.isEmpty { ranges.append(DMARange(offset: 0, length: 1 << Arch.pageShift)) }
        for j in ranges.indices {
          if rng.chance(50), case .unsigned(let v) = InputClasses.draw(f, k, context, &rng, part: "offset") {
            ranges[j].offset = v
          }
          if rng.chance(50), case .unsigned(let v) = InputClasses.draw(f, k, context, &rng, part: "length") {
            ranges[j].length = v
          }
        }
        values[i] = .ranges(ranges)
      } else {
        values[i] = InputClasses.draw(f, k, context, &rng)
      }
    }
    return Op(kind, values)
  }

  private mutating func nextOp() -> Op {
    var menu: [(Int, (inout Generator) -> Op)] = []
    menu.reserveCapacity(32)
    // A world with both halves (mf-p2p-switch): each op from one half, at even odds, so that
    // neither half's menu crowds out the other's and both reach their rare outcomes
    // (OutcomeTests; the memory-failure half had 55 % until the dma-buf menu grew). Worlds with
    // one half draw nothing here.
    let bothHalves = world.deviceMemory != nil && !world.exporters.isEmpty && !world.importers.isEmpty
    let dmaBufHalf = bothHalves ? rng.chance(50) : true
    if world.deviceMemory != nil, !(bothHalves && dmaBufHalf) {
      let hasProc = !mf.processes.isEmpty
      let hasVMA = mf.processes.contains { !$0.vmas.isEmpty }
      // Balance (Outcome): steer towards the states where a memory failure signals, by
      // weighting the ops that build them while they are missing: a mapping process, a
      // registered space over what it maps, a handler (or the default action) for its SIGBUS,
      // then an inject into what is armed.
      let armed = !armedPFNs.isEmpty
      let uncovered = hasVMA && !armed
      let dispositions = armedPFNs.compactMap { a in mf.processes.first { $0.name == a.process }?.disposition }
      let undecided = dispositions.contains(.default)
      let handled = dispositions.contains(.handler)
      menu += [
        (mf.processes.count < 5 ? 8 : 1, { $0.spawn() }),
        (hasProc ? 4 : 0, { $0.fork() }),
        (hasProc ? 4 : 0, { $0.thread() }),
        (hasProc ? 2 : 0, { $0.threadExit() }),
        (hasProc ? 1 : 0, { $0.exit() }),
        (hasProc ? 7 : 0, { $0.prctl() }),
        (hasProc ? (undecided ? (handled ? 10 : 18) : 5) : 0, { $0.sigbus() }),
        (hasProc ? 4 : 0, { $0.sigmask() }),
        (2, { $0.sysctl() }),
        (hasProc ? (hasVMA ? 8 : 14) : 0, { $0.mmap() }),
        (hasVMA ? 3 : 0, { $0.munmap() }),
        (hasVMA ? 2 : 0, { $0.madvise() }),
        (hasVMA ? 2 : 0, { $0.mprotect() }),
        (hasVMA ? 2 : 0, { $0.mremap() }),
        (mf.spaces.count < 6 ? (mf.spaces.isEmpty ? 10 : uncovered ? 7 : 4) : 1, { $0.spaceCreate() }),
        (mf.spaces.isEmpty ? 0 : (mf.spaces.contains(where: \.isRegistered) ? (uncovered ? 6 : 3) : 12), { $0.spaceRegister() }),
        (mf.spaces.isEmpty ? 0 : 2, { $0.spaceUnregister() }),
        (mf.spaces.isEmpty ? 0 : 1, { $0.spaceDestroy() }),
        (hasProc ? (handled ? 10 : 5) : 0, { $0.injectInThread(sysfs: true) }),
        (hasProc ? (handled ? 11 : armed ? 7 : 5) : 0, { $0.injectInThread(sysfs: false) }),
        (armed ? 5 : 3, { .injectQueue(pfn: $0.pfn(), flags: $0.mfFlags()) }),
        (2, { .injectMCE(pfn: $0.pfn()) }),
        (hasVMA ? 1 : 0, { $0.hwpoison() }),
        (1, { .corruptPFN(pfn: $0.pfn()) }),
        (2, { _ in .mfLog }),
        (1, { _ in .hwCorrupted }),
        (1, { $0.misnamed() }),
        (hasProc ? 1 : 0, { $0.injectActionRequired() }),
        (armed ? 2 : 1, { .mfRace(pfn: $0.pfn()) }),
      ]
    }
    if !world.exporters.isEmpty, !world.importers.isEmpty, dmaBufHalf {
      let hasBuf = !bufs.isEmpty
      let hasAtt = !attachments.isEmpty
      // Balance (Outcome): once a table is mapped, the ops that revoke it (C7.6) weigh more.
      let hasMapped = machine.dmaBuf.attachments.contains { $0.mapping != nil }
      menu += [
        (4, { .vfioOpen($0.rng.pick($0.world.exporters).name) }),
        (hasMapped ? 3 : 1, { .vfioClose($0.rng.pick($0.world.exporters).name) }),
        (hasMapped ? 9 : 4, { .vfioMemory($0.revokeTarget(), enabled: $0.rng.chance(hasMapped ? 35 : 55)) }),
        (hasMapped ? 5 : 2, { .vfioReset($0.revokeTarget()) }),
        (12, { $0.export() }),
        (hasBuf ? 1 : 0, { .bufClose($0.rng.pick($0.bufs).name) }),
        (hasBuf ? 2 : 0, { .fdinfo($0.rng.pick($0.bufs).name) }),
        (hasBuf ? 8 : 0, { $0.attach() }),
        (hasAtt ? 13 : 0, { .map($0.rng.pick($0.attachments)) }),
        (hasAtt ? 4 : 0, { .unmap($0.rng.pick($0.attachments)) }),
        (hasAtt ? 1 : 0, { .detach($0.rng.pick($0.attachments)) }),
        (hasBuf ? 1 : 0, { .bufinfo($0.rng.pick($0.bufs).name) }),
        // Balance (Outcome): only while no attachment is live (map-revoked stays above 25 %);
        // the attach records are read once their attachments are detached.
        (hasBuf && !hasAtt ? 1 : 0, { _ in .dmabufTrace }),
      ]
      menu += Self.powerMenu
      menu += Self.importerMenu(hasAttachment: hasAtt)
      // Balance (Outcome): while a table is mapped, the iommufd ops give way to those that
      // revoke it.
      if !hasMapped { menu += iommufdMenu }
    }
    precondition(!menu.isEmpty, "world \(world.name) offers no ops")
    return menu[rng.weighted(menu.lazy.map(\.0))].1(&self)
  }

  private mutating func track(_ op: Op, _ obs: [Observation]) {
    switch op {
    case .export(let b, _, _):
      if case .result(.symbol) = obs.first { bufs.append((b, true)) }
    case .bufClose(let b):
      if let i = bufs.firstIndex(where: { $0.name == b }) { bufs[i].isOpen = false }
    case .attach(let a, _, _, _):
      if obs.first == .result(.zero) { attachments.append(a) }
    case .detach(let a):
      attachments.removeAll { $0 == a }
    default: break
    }
  }
}

// MARK: - Memory-failure ops

extension Generator {
  private mutating func newProcessName() -> ProcessName {
    processCount += 1
    return ProcessName(index: processCount)
  }

  private mutating func anyProcess() -> ProcessState { rng.pick(mf.processes) }

  private mutating func anyThread() -> ThreadRef {
    let p = anyProcess()
    return ThreadRef(p.name, rng.pick(p.threads).index)
  }

  private mutating func spawn() -> Op { .spawn(newProcessName()) }

  private mutating func fork() -> Op {
    let t = anyThread()
    return .fork(t, child: newProcessName())
  }

  private mutating func thread() -> Op {
    let p = anyProcess().name
    let n = nextThread[p, default: 1]
    nextThread[p] = n + 1
    return .threadCreate(ThreadRef(p, n))
  }

  private mutating func threadExit() -> Op {
    let p = anyProcess()
    // Mostly a live thread of a process with several, the first one (the leader) a quarter of
    // the time; sometimes the last one (-EINVAL) or one that never lived (-ESRCH).
    if p.threads.count > 1, rng.chance(85) {
      let t = rng.chance(25) ? p.threads[0] : rng.pick(p.threads.dropFirst())
      return .threadExit(ThreadRef(p.name, t.index))
    }
    if p.threads.count == 1, rng.chance(50) { return .threadExit(ThreadRef(p.name, p.threads[0].index)) }
    return .threadExit(ThreadRef(p.name, nextThread[p.name, default: 1] + 3))
  }

  private mutating func exit() -> Op { .exit(anyProcess().name, code: Int32(rng.below(4))) }

  private mutating func prctl() -> Op {
    var t = anyThread()
    let unset = mf.processes.flatMap { p in p.threads.filter { $0.policy == nil }.map { ThreadRef(p.name, $0.index) } }
    if !unset.isEmpty, rng.chance(60) { t = rng.pick(unset) }
    if rng.chance(15) { return .mceKillGet(t) }
    // Valid combinations (C3.7) most of the time, then arbitrary ones.
    let valid: [(UInt64, UInt64)] = [(1, 1), (1, 1), (1, 0), (1, 2), (0, 0)]
    if rng.chance(85) {
      let (a2, a3) = rng.pick(valid)
      return .mceKill(t, arg2: a2, arg3: a3)
    }
    return .mceKill(t, arg2: rng.below(4), arg3: rng.chance(20) ? rng.next() : rng.below(5))
  }

  /// Mostly a handler for a process whose disposition is still the default, preferably one
  /// that maps the device memory (so a later failure there is delivered, C3.4).
  private mutating func sigbus() -> Op {
    let d: Disposition = rng.pick([.handler, .handler, .handler, .handler, .default, .ignore])
    let unset = mf.processes.filter { $0.disposition == .default }
    let mapping = unset.filter { !$0.vmas.isEmpty }
    if !mapping.isEmpty, rng.chance(75) {
      return .sigbus(rng.pick(mapping).name, rng.chance(85) ? .handler : d)
    }
    let p = !unset.isEmpty && rng.chance(70) ? rng.pick(unset).name : anyProcess().name
    return .sigbus(p, d)
  }

  private mutating func sigmask() -> Op { .sigmask(anyThread(), blocked: rng.chance(50)) }

  private mutating func sysctl() -> Op {
    .sysctlEarlyKill(rng.chance(85) ? Int64(rng.below(2)) : rng.pick([2, -1, 7, 1 << 32]))
  }

  /// The map window is cut in slots of 64 pages; a mapping starts at a slot (overlaps happen
  /// when a slot is reused, which tests `MAP_FIXED_NOREPLACE`).
  private mutating func slotAddress() -> UInt64 {
    world.mapWindow.lowerBound + rng.below(256) << 18
  }

  private mutating func mmap() -> Op {
    let p = anyProcess().name
    guard let memory = world.deviceMemory else { return .spawn(newProcessName()) }
    let region = rng.chance(92) ? rng.pick(DeviceMemory.regionIndexes) : rng.pick([0, 1, 3, 5])
    let regionPages = memory.pages / 2
    let pages = rng.chance(90) ? 1 + rng.below(16) : rng.pick([0, 64, regionPages])
    // Mostly a few hot offsets near the region's start, so processes share PFNs.
    var pgoff =
      rng.chance(75)
      ? rng.below(UInt64(24)) : rng.below(max(1, regionPages - min(pages, regionPages) + 1))
    if rng.chance(5) { pgoff = regionPages - 1 }  // past the region's end
    var addr = slotAddress()
    if rng.chance(3) { addr += 0x800 }  // unaligned
    return .mmap(p, addr: addr, pages: pages, region: region, pgoff: pgoff)
  }

  private mutating func someVMA() -> (ProcessName, VMA)? {
    let withVMAs = mf.processes.filter { !$0.vmas.isEmpty }
    guard !withVMAs.isEmpty else { return nil }
    let p = rng.pick(withVMAs)
    return (p.name, rng.pick(p.vmas))
  }

  /// A range over a VMA: whole, head, tail or middle part, sometimes spilling past it.
  private mutating func rangeOver(_ v: VMA) -> (addr: UInt64, pages: UInt64) {
    switch rng.below(5) {
    case 0, 1: return (v.start, v.pages)
    case 2: return (v.start, 1 + rng.below(v.pages))
    case 3:
      let k = rng.below(v.pages)
      return (v.start + k << 12, v.pages - k)
    default:
      let k = rng.below(v.pages)
      return (v.start + k << 12, 1 + rng.below(v.pages + 2))
    }
  }

  private mutating func munmap() -> Op {
    guard let (p, v) = someVMA() else { return spawn() }
    let (addr, pages) = rangeOver(v)
    return .munmap(p, addr: addr, pages: rng.chance(3) ? 0 : pages)
  }

  private mutating func madvise() -> Op {
    guard let (p, v) = someVMA() else { return spawn() }
    let (addr, pages) = rangeOver(v)
    return .madviseDontFork(p, addr: addr, pages: pages)
  }

  private mutating func spaceCreate() -> Op {
    spaceCount += 1
    let s = SpaceName(index: spaceCount)
    let cb: CallbackFlavour = rng.weighted([5, 80, 15]) == 0 ? .none : (rng.chance(84) ? .nvgrace : .strict)
    guard let memory = world.deviceMemory else {
      return .spaceCreate(s, first: 0xf8000, last: 0xfbfff, callback: cb)
    }
    let first = memory.firstPFN
    let last = first + memory.pages - 1
    let half = memory.pages / 2
    let (a, b): (UInt64, UInt64)
    switch rng.weighted([45, 12, 12, 15, 8, 8]) {
    case 0: (a, b) = (first, last)
    case 1: (a, b) = (first, first + half - 1)
    case 2: (a, b) = (first + half, last)
    case 3:
      let x = first + rng.below(UInt64(32))
      (a, b) = (x, rng.inRange(x...last))
    case 4: (a, b) = (last + 1, last + 1 + rng.below(UInt64(0x100)))  // outside the device memory
    default: (a, b) = (rng.inRange(first...last), rng.inRange(first...last))  // maybe inverted
    }
    return .spaceCreate(s, first: a, last: b, callback: cb)
  }

  private mutating func anySpaceName() -> SpaceName {
    if rng.chance(5) || mf.spaces.isEmpty { return SpaceName(index: spaceCount + 1 + rng.below(3)) }
    return rng.pick(mf.spaces).name
  }

  /// Mostly a space that can register (not registered, overlapping none that is), preferably
  /// one over a PFN a process maps.
  private mutating func spaceRegister() -> Op {
    let free = mf.spaces.filter { s in
      !s.isRegistered && s.callback != .none && !mf.spaces.contains { $0.isRegistered && $0.overlaps(s) }
    }
    let mapped = mappedRanges
    let useful = free.filter { s in mapped.contains { s.first <= $0.last && $0.first <= s.last } }
    if !useful.isEmpty, rng.chance(70) { return .spaceRegister(rng.pick(useful).name) }
    if !free.isEmpty, rng.chance(75) { return .spaceRegister(rng.pick(free).name) }
    return .spaceRegister(anySpaceName())
  }

  /// Per VMA over the device memory, the PFNs it maps (its process, first and last PFN).
  private var mappedRanges: [(process: ProcessName, first: UInt64, last: UInt64)] {
    guard let memory = world.deviceMemory else { return [] }
    return mf.processes.flatMap { p in
      p.vmas.compactMap { v -> (ProcessName, UInt64, UInt64)? in
        guard let r = memory.region(v.pgoff >> 28) else { return nil }
        let offset = v.pgoff & (1 << 28 - 1)
        guard offset < r.pages, v.pages > 0 else { return nil }
        return (p.name, r.firstPFN + offset, r.firstPFN + min(r.pages, offset + v.pages) - 1)
      }
    }
  }

  /// The mapped PFNs (``mappedRanges``) that a registered space with a callback covers: where a
  /// memory failure walks into a process that maps it (C3.1).
  private var armedPFNs: [(process: ProcessName, first: UInt64, last: UInt64)] {
    let registered = mf.spaces.filter { $0.isRegistered && $0.callback != .none }
    guard !registered.isEmpty else { return [] }
    return mappedRanges.flatMap { m in
      registered.compactMap { s -> (ProcessName, UInt64, UInt64)? in
        let (a, b) = (max(m.first, s.first), min(m.last, s.last))
        return a <= b ? (m.process, a, b) : nil
      }
    }
  }
  private mutating func spaceUnregister() -> Op { .spaceUnregister(anySpaceName()) }
  private mutating func spaceDestroy() -> Op { .spaceDestroy(anySpaceName()) }

  /// `memory_failure()` flags: usually `MF_SW_SIMULATED` or 0, sometimes other documented bits.
  /// `MF_SOFT_OFFLINE` (0x8) is rare: on the queue it means soft offline, not memory failure
  /// (Corpora/findings/0004), and the agent then waits out its bounded wait for an event.
  private mutating func mprotect() -> Op {
    guard let (p, v) = someVMA() else { return spawn() }
    let (addr, pages) = rangeOver(v)
    return .mprotect(p, addr: addr, pages: pages, prot: rng.pick(Protection.allCases))
  }

  /// A range over a VMA moved to a slot of the map window (sometimes onto another mapping,
  /// which it replaces, or onto itself: -EINVAL).
  private mutating func mremap() -> Op {
    guard let (p, v) = someVMA() else { return spawn() }
    let (addr, pages) = rangeOver(v)
    return .mremap(p, addr: addr, pages: pages, to: rng.chance(5) ? addr : slotAddress())
  }

  private mutating func hwpoison() -> Op {
    guard let (p, v) = someVMA() else { return spawn() }
    let (addr, pages) = rangeOver(v)
    return .madviseHWPoison(p, addr: addr, pages: pages)
  }

  private mutating func mfFlags() -> UInt32 {
    rng.chance(2) ? 0x8 : rng.pick([0x20, 0x20, 0x0, 0x2, 0x22, 0x24, 0x26, 0x1])
  }

  /// A PFN to poison: mostly one a process maps, sometimes elsewhere in the device memory, just
  /// past a mapping, outside the device memory (no struct page either), or RAM (`-EPERM`).
  private mutating func pfn() -> UInt64 {
    guard let memory = world.deviceMemory else { return 0xf8000 }
    switch rng.weighted([60, 14, 10, 12, 4]) {
    case 0:
      let armed = armedPFNs
      if !armed.isEmpty, rng.chance(60) {
        let a = rng.pick(armed)
        return rng.inRange(a.first...a.last)
      }
      if let (_, v) = someVMA(), let r = memory.region(v.pgoff >> 28) {
        return r.firstPFN + (v.pgoff & (1 << 28 - 1)) + rng.below(v.pages)
      }
      return memory.firstPFN + rng.below(memory.pages)
    case 1: return memory.firstPFN + rng.below(memory.pages)
    case 2:
      if let (_, v) = someVMA(), let r = memory.region(v.pgoff >> 28) {
        return r.firstPFN + (v.pgoff & (1 << 28 - 1)) + v.pages
      }
      return memory.firstPFN
    case 3:
      let next = memory.firstPFN + memory.pages
      let sectionEnd = (next >> Arch.sectionPFNShift + 1) << Arch.sectionPFNShift
      let candidate = next + rng.below(max(1, sectionEnd - next))
      return world.isInjectable(candidate) ? candidate : memory.firstPFN
    default:
      return world.ram.first.map { rng.inRange($0) } ?? 0x100
    }
  }

  /// Mostly from a thread of a process that maps the device memory (AR for current, C3.2);
  /// often into a PFN it maps under a registered space (``armedPFNs``).
  private mutating func injectInThread(sysfs: Bool) -> Op {
    let armed = armedPFNs
    if !armed.isEmpty, rng.chance(70) {
      // Two times in three a process with a handler, when there is one (C3.4 rather than C3.3).
      let handled = armed.filter { a in mf.processes.contains { $0.name == a.process && $0.disposition == .handler } }
      let a = rng.pick(!handled.isEmpty && rng.chance(67) ? handled : armed)
      if let proc = mf.processes.first(where: { $0.name == a.process }) {
        let t = ThreadRef(a.process, rng.pick(proc.threads).index)
        let pfn = rng.inRange(a.first...a.last)
        return sysfs ? .injectSysfs(t, pfn: pfn) : .injectShim(t, pfn: pfn, flags: mfFlags())
      }
    }
    var t = anyThread()
    if rng.chance(60), let (p, _) = someVMA(), let proc = mf.processes.first(where: { $0.name == p }) {
      t = ThreadRef(p, rng.pick(proc.threads).index)
    }
    return sysfs ? .injectSysfs(t, pfn: pfn()) : .injectShim(t, pfn: pfn(), flags: mfFlags())
  }

  /// An action-required machine check consumed by a thread (C5.4): half the time a thread of
  /// a process that maps an armed PFN (C3.2), else any thread and any PFN (a thread whose
  /// process does not map it, an uncovered PFN: the plain SIGBUS).
  private mutating func injectActionRequired() -> Op {
    let armed = armedPFNs
    if !armed.isEmpty, rng.chance(50) {
      let a = rng.pick(armed)
      if let proc = mf.processes.first(where: { $0.name == a.process }) {
        return .injectMCEAR(ThreadRef(a.process, rng.pick(proc.threads).index), pfn: rng.inRange(a.first...a.last))
      }
    }
    return .injectMCEAR(anyThread(), pfn: pfn())
  }

  /// An op naming something that does not exist (harness rules: -ESRCH, -ENOENT).
  private mutating func misnamed() -> Op {
    let ghost = ProcessName(index: processCount + 50)
    switch rng.below(3) {
    case 0: return .sigbus(ghost, .handler)
    case 1: return .injectShim(ThreadRef(ghost, 0), pfn: pfn(), flags: 0x20)
    default: return .spaceRegister(SpaceName(index: spaceCount + 50))
    }
  }
}

// MARK: - dma-buf ops

extension Generator {
  private mutating func export() -> Op {
    bufCount += 1
    let b = BufName(index: bufCount)
    let x = rng.pick(world.exporters)
    let bar = x.bars.first { $0.index == 2 } ?? x.bars.first
    let size = bar?.size ?? 0x10_0000
    let pageCount = size >> 12
    var ranges: [DMARange] = []
    for _ in 0..<(1 + rng.below(3)) {
      let big = rng.chance(10)
      let pages = big ? min(pageCount, 0x100001 + rng.below(0x1000)) : 1 + rng.below(64)
      let off = rng.below(max(1, pageCount - pages + 1)) << 12
      ranges.append(DMARange(offset: off, length: pages << 12))
    }
    var r = ExportRequest(region: bar?.index ?? 2, ranges: ranges)
    if rng.chance(20) {
      // Deliberately invalid or unusual (C7.1, C7.2): one field off at a time.
      switch rng.below(14) {
      case 0: r.argsz = UInt32(rng.below(8))
      case 1: r.feature = r.effectiveFeature | 1 << (19 + UInt32(rng.below(8)))
      case 2: r.feature = ExportRequest.featureDMABuf | ExportRequest.get | ExportRequest.set
      case 3: r.feature = ExportRequest.featureDMABuf | ExportRequest.probe | (rng.chance(50) ? ExportRequest.get : 0)
      case 4: r.argsz = 8 + UInt32(rng.below(16))
      case 5: r.nrRanges = 0
      case 6: r.flags = 1 << UInt32(rng.below(32))
      case 7: r.region = rng.pick([0, 1, 5, 6, 9])
      case 8: r.nrRanges = rng.pick([262_145, UInt32.max, 1 << 20])
      case 9: r.ranges[0].length = rng.pick([0, 0x800, 0x1001])
      case 10: r.ranges[0].offset = rng.pick([0x10, size, size - 0x1000, UInt64.max & ~0xfff])
      case 11: r.ranges.append(DMARange(offset: 0, length: UInt64(1) << 63))
      case 12:
        // C7.1: argsz against the range array (24 + 16 per range): just below it (often by one
        // byte, else down to 24), exactly at it, or above it.
        let needed =
          ExportRequest.headerSize + ExportRequest.payloadSize
          + ExportRequest.rangeSize * UInt32(r.ranges.count)
        switch rng.below(3) {
        case 0:
          r.argsz = needed - 1 - (rng.chance(50) ? 0 : UInt32(rng.below(Int(needed - 24))))
        case 1: r.argsz = needed
        default: r.argsz = needed + 1 + UInt32(rng.below(64))
        }
      default:
        // C7.2: open flags with a bit outside the access mode, O_NONBLOCK and O_CLOEXEC, alone
        // or beside the default ones; a quarter of the time only accepted bits.
        let accepted = DmaBufModel.acceptedOpenFlags
        if rng.chance(25) {
          r.openFlags = UInt32(rng.below(UInt64(1) << 32)) & accepted
        } else {
          let other = rng.pick((0..<32).filter { accepted & 1 << $0 == 0 })
          r.openFlags = (rng.chance(50) ? ExportRequest.defaultOpenFlags : 0) | 1 << other
        }
      }
    }
    return .export(b, x.name, r)
  }

  /// The exporter a revoking op (memory off, reset) targets: in a world with several, mostly
  /// (70 %) one whose buf is mapped, so that the mapping is revoked while another device's
  /// bufs must stay undisturbed (C7.6); with one exporter, that one.
  private mutating func revokeTarget() -> DeviceName {
    if world.exporters.count > 1, rng.chance(70) {
      let dmaBuf = machine.dmaBuf
      let mapped = dmaBuf.attachments.filter { $0.mapping != nil }.compactMap { dmaBuf.buf($0.buf)?.device }
      if !mapped.isEmpty { return rng.pick(mapped) }
    }
    return rng.pick(world.exporters).name
  }

  private mutating func attach() -> Op {
    attachmentCount += 1
    let a = AttachmentName(index: attachmentCount)
    let b = rng.pick(bufs).name
    return .attach(a, b, importer: rng.pick(world.importers).name, isDynamic: rng.chance(94))
  }
}

// MARK: - Importer modes

extension Generator {
  /// `importer-mode` (C7.5): what an attachment's importer does when notified while mapped.
  fileprivate static func importerMenu(hasAttachment: Bool) -> [(Int, (inout Generator) -> Op)] {
    [(hasAttachment ? 3 : 0, { $0.importerMode() })]
  }

  /// Mostly a mapped attachment (the mode matters only when a revocation finds it mapped), and
  /// mostly a mode other than the default.
  private mutating func importerMode() -> Op {
    let mapped = machine.dmaBuf.attachments.filter { $0.mapping != nil && !$0.isDetached }.map(\.name)
    let a = !mapped.isEmpty && rng.chance(70) ? rng.pick(mapped) : rng.pick(attachments)
    return .importerMode(a, ImporterMode.allCases[rng.weighted([1, 3, 3, 3])])
  }
}

// MARK: - Power and config-space ops

extension Generator {
  /// The device power ops (C7.4–C7.6) and their weights.
  fileprivate static var powerMenu: [(Int, (inout Generator) -> Op)] {
    [
    (1, { .vfioLowPowerEntry($0.rng.pick($0.world.exporters).name) }),
    (1, { .vfioLowPowerWakeup($0.rng.pick($0.world.exporters).name, wakeup: $0.rng.chance(85) ? .eventfd : $0.rng.pick([.absent, .file])) }),
    (1, { .vfioLowPowerExit($0.rng.pick($0.world.exporters).name) }),
    (4, { $0.configWrite() }),
    (1, { .vfioHotReset($0.rng.pick($0.world.exporters).name) }),
    (1, { .vfioPower($0.rng.pick($0.world.exporters).name) }),
    ]
  }

  /// Mostly `PCI_COMMAND` (MEMORY on or off, as a byte, a word or with the status), else
  /// PMCSR (D0 or D3hot, where the device has the capability) or another register.
  private mutating func configWrite() -> Op {
    let x = rng.pick(world.exporters)
    let command: UInt64 = rng.chance(55) ? 0x6 : 0x4  // MEMORY | MASTER, or MASTER alone
    switch rng.below(8) {
    case 0, 1, 2: return .vfioConfig(x.name, offset: 0x4, width: 2, value: command)
    case 3: return .vfioConfig(x.name, offset: 0x4, width: 1, value: command)
    case 4: return .vfioConfig(x.name, offset: 0x4, width: 4, value: command)
    case 5:
      if let pm = x.pmCapability {
        return .vfioConfig(x.name, offset: pm + DmaBufModel.pmcsrOffset, width: 2, value: rng.pick([0, 3]))
      }
      return .vfioConfig(x.name, offset: 0x5, width: 1, value: rng.below(0x100))
    default:
      // Another register: the cache line size, latency timer, interrupt line, capability space.
      let offset = rng.pick([0xc, 0xd, 0x3c, 0x40 + rng.below(0xc0)] as [UInt64])
      let width = rng.pick([1, 2, 4] as [UInt64])
      let end = min(offset + width, x.configSize)
      return .vfioConfig(x.name, offset: end - width, width: width, value: rng.below(1 << (8 * width)))
    }
  }
}

// MARK: - iommufd as a second importer

extension Generator {
  /// The iommufd ops (C7.3–C7.5, DmaBufModel+IOMMUFD.swift) and their weights: an IOAS or two,
  /// maps of the bufs into them, unmaps.
  fileprivate var iommufdMenu: [(Int, (inout Generator) -> Op)] {
    let state = machine.dmaBuf.iommufd
    let hasLive = state.mappings.contains(where: \.isLive)
    let open = world.exporters.filter { machine.dmaBuf.devices[$0.name]?.isOpen ?? false }
    let named = state.ioases.contains { $0.device != nil && !machine.dmaBuf.isGone($0) }
    return [
      (state.ioases.isEmpty ? (bufs.isEmpty ? 1 : 2) : state.ioases.count < 2 ? 1 : 0, { $0.ioasAlloc() }),
      (open.isEmpty ? 0 : named ? 1 : 2, { $0.ioasDevice() }),
      (state.ioases.isEmpty || bufs.isEmpty ? 0 : 3, { $0.ioasMapFile() }),
      (hasLive ? 4 : 0, { $0.ioasUnmap() }),
    ]
  }

  private mutating func ioasAlloc() -> Op {
    ioasCount += 1
    return .ioasAlloc(IOASName(index: ioasCount))
  }

  /// The IOAS of an exporter, mostly an open one.
  private mutating func ioasDevice() -> Op {
    ioasCount += 1
    let open = world.exporters.filter { machine.dmaBuf.devices[$0.name]?.isOpen ?? false }
    let x = open.isEmpty || rng.chance(5) ? rng.pick(world.exporters) : rng.pick(open)
    return .ioasDevice(IOASName(index: ioasCount), x.name)
  }

  /// Mostly the whole buf or a page-aligned part of it, at a kernel-chosen IOVA or in a small
  /// fixed window (so that fixed maps meet now and then); sometimes a range outside the buf.
  private mutating func ioasMapFile() -> Op {
    ioasMappingCount += 1
    let m = IOASMappingName(index: ioasMappingCount)
    let state = machine.dmaBuf.iommufd
    // Mostly an IOAS that is still there (not of a device whose open ended).
    let present = state.ioases.filter { !machine.dmaBuf.isGone($0) }
    let s = rng.pick(present.isEmpty || rng.chance(5) ? state.ioases : present).name
    // iommufd takes single-range bufs only (iommufd.h): mostly one of those, usable if any is.
    let single = bufs.filter { b in machine.dmaBuf.buf(b.name).map { $0.ranges.count == 1 } ?? false }
    let usable = single.filter { b in machine.dmaBuf.buf(b.name).map { machine.dmaBuf.isUsable($0) } ?? false }
    let b = rng.chance(80) && !single.isEmpty ? rng.pick(usable.isEmpty || rng.chance(15) ? single : usable).name : rng.pick(bufs).name
    let size = machine.dmaBuf.buf(b)?.size ?? 0x1000
    let page: UInt64 = 1 << Arch.pageShift
    let pages = max(1, size >> Arch.pageShift)
    var start: UInt64 = 0
    var length = size
    if rng.chance(40) {
      let first = rng.below(pages)
      start = first << Arch.pageShift
      length = (1 + rng.below(pages - first)) << Arch.pageShift
    }
    if rng.chance(12) {
      // Outside the buf or unusual (the model's interpretations): one field off.
      switch rng.below(5) {
      case 0: length = 0
      case 1: length = size + page
      case 2: start = size
      case 3: start = UInt64.max & ~(page - 1)
      default:
        start = rng.below(page)
        let room = min(length, size - start)
        length = room - min(room - 1, rng.below(page))
      }
    }
    let holdsChosen = state.mappings.contains { m in
      guard m.ioas == s, m.isLive, case .chosen = m.address else { return false }
      return true
    }
    var iova: UInt64? = nil
    if !holdsChosen ? rng.chance(55) : rng.chance(5) {
      // A third of the time inside a live fixed mapping of the IOAS (revoked or not): in use.
      let fixed: [(UInt64, UInt64)] = state.mappings.compactMap { m in
        guard m.ioas == s, m.isLive, case .fixed(let a) = m.address else { return nil }
        return (a, m.length)
      }
      if !fixed.isEmpty, rng.chance(35) {
        let (a, n) = rng.pick(fixed)
        iova = a + rng.below(max(1, n >> Arch.pageShift)) << Arch.pageShift
      } else if rng.chance(4) {
        // The x86 MSI window, reserved in a device's IOAS (the model's interpretation).
        iova = 0xfee0_0000 + rng.below(16) << 16
      } else {
        iova = 0x1_0000_0000 + rng.below(8) << 20
      }
    }
    return .ioasMapFile(m, s, b, start: start, length: length, iova: iova)
  }

  private mutating func ioasUnmap() -> Op {
    let state = machine.dmaBuf.iommufd
    let live = state.mappings.filter(\.isLive)
    if live.isEmpty || rng.chance(5) {
      return .ioasUnmap(rng.pick(state.mappings.map(\.name)))
    }
    return .ioasUnmap(rng.pick(live).name)
  }
}
