/// The kind of an ``Op``: one case per case of `Op`, each with its ``OpSpec``.
///
/// This is the one description of every op (syzkaller keeps one per system call): its keyword,
/// its half, the contract items it exercises, where it runs, whether it completes later, and its
/// fields in the order of its text form, with their input classes. The text format's parser and
/// printer, the differ's contract item, the guest's asynchronous handling, the agent's dispatch
/// table (`VM/agent/ops.h`, written by `harness spec agent-header`) and the input-class census
/// are derived from it. docs/adding-an-op.md lists what a new op still needs by hand.
package enum OpKind: Int, CaseIterable, Hashable, Sendable {
  case spawn, fork, threadCreate, threadExit, exit, mceKill, mceKillGet, sigbus, sigmask
  case sysctlEarlyKill, mmap, munmap, madviseDontFork, mprotect, mremap
  case spaceCreate, spaceRegister, spaceUnregister, spaceDestroy
  case injectSysfs, injectShim, injectQueue, injectMCE, madviseHWPoison, corruptPFN
  case mfLog, hwCorrupted
  case vfioOpen, vfioClose, vfioMemory, vfioReset, export, bufClose, fdinfo, attach, map, unmap
  case detach
  case vfioLowPowerEntry, vfioLowPowerWakeup, vfioLowPowerExit, vfioConfig, vfioHotReset, vfioPower
  case importerMode
  case ioasAlloc, ioasMapFile, ioasUnmap, ioasDevice
  case injectMCEAR
  case mfRace, bufinfo
  case dmabufTrace

  /// The kind's description.
  package var spec: OpSpec { Self.specs[rawValue] }

  /// The kind's half (``OpSpec/half``), without copying its spec: the model asks for every op.
  package var half: OpHalf { Self.halves[rawValue] }

  /// The kinds written with `keyword` (two for `prctl`), in declaration order.
  package static func kinds(keyword: Substring) -> [OpKind]? { byKeyword[keyword] }

  private static let specs: [OpSpec] = allCases.map(\.describe)
  private static let halves: [OpHalf] = specs.map(\.half)
  private static let byKeyword: [Substring: [OpKind]] = Dictionary(
    grouping: allCases, by: { Substring($0.describe.keyword) })
}

/// Which half of the model an op belongs to.
package enum OpHalf: String, Hashable, Sendable {
  /// Sections 1–5: PFN spaces, processes, mappings, memory failures.
  case memoryFailure = "memory-failure"
  /// Sections 6, 7: VFIO export and the shim's importer.
  case dmaBuf = "dma-buf"
}

/// Who performs an op in the guest (VM/agent/PROTOCOL.md).
package enum OpPlacement: String, Hashable, Sendable {
  /// The host (QEMU's monitor), before the agent waits for the effect.
  case host
  /// The agent itself (the coordinator of the logical processes).
  case coordinator
  /// The first thread (`t0`) of the op's process.
  case process
  /// The thread the op names.
  case thread
}

/// One op's description (``OpKind/spec``).
package struct OpSpec: Sendable {
  /// The op's first token in the text format (`inject-shim`). Two kinds may share one
  /// (`prctl`): the first ``Token/word(_:)`` where their syntax differs tells them apart.
  package var keyword: String
  package var half: OpHalf
  /// The contract items (docs/contract.md) the op exercises; the first is the one a divergence
  /// of its result contradicts (`harness` for the harness's own rules).
  package var items: [String]
  package var placement: OpPlacement
  /// Whether the op's effect happens later, from a kernel worker or a machine check: the agent
  /// waits for it, and the host reads the console up to the agent's marker.
  package var isAsynchronous = false
  /// Whether a SIGBUS handler may run in a thread other than the one that answered, or a
  /// pending SIGBUS change its fate: after the op every live thread reports its signal log.
  package var collectsSignals = false
  /// The op line after the keyword, left to right.
  package var syntax: [Token]

  /// One element of an op line.
  package enum Token: Sendable {
    /// A literal word (`dontfork`, `mce-kill`).
    case word(String)
    case field(FieldSpec)
  }

  /// The fields, in the order of ``Op/fieldValues``.
  package var fields: [FieldSpec] {
    syntax.compactMap { if case .field(let f) = $0 { f } else { nil } }
  }
}

/// One field of an op: how it is written and what kind of value it holds.
package struct FieldSpec: Sendable {
  /// The field's name (`addr`), the key of a keyed field.
  package var name: String
  package var type: FieldType
  package var form: FieldForm
  /// What a positional field is, for parse errors (`a process name`).
  package var what: String
  /// A number the text format refuses: why, or `nil` when it is acceptable.
  package var check: (@Sendable (UInt64) -> String?)?
  /// What the values mean, which decides the field's input classes (``InputClass``).
  package var domain: FieldDomain

  package init(
    _ name: String, _ type: FieldType, _ form: FieldForm = .positional, what: String = "",
    domain: FieldDomain = .reference, check: (@Sendable (UInt64) -> String?)? = nil
  ) {
    self.name = name
    self.type = type
    self.form = form
    self.what = what
    self.domain = domain
    self.check = check
  }
}

/// A field's kind of value.
package enum FieldType: Sendable {
  case process, space, device, importer, buf, attachment, ioas, ioasMapping
  /// `P.tN`
  case thread
  /// Unsigned, at most `max`, printed in hex or decimal.
  case unsigned(max: UInt64, hex: Bool)
  /// Signed of `bits` (32 or 64) bits, printed in decimal.
  case signed(bits: Int)
  /// A Boolean written as one of two words.
  case flag(yes: String, no: String)
  /// One of the words, listed in the order parse errors name them.
  case choice([String])
  /// `OFFSET+LENGTH,…` or `none` (an export's ranges).
  case ranges
  /// A Boolean written as a word present (true) or absent (false) at the end of the line.
  case marker(String)
}

/// A class of inputs of a field (docs/contract.md is silent on most of them; the model's
/// prediction for each is defined, and marked as an interpretation where the contract is silent).
package enum InputClass: String, CaseIterable, Hashable, Sendable, Comparable {
  /// What the op's rule expects (an aligned address in the map window, a PFN of the device
  /// memory, an exporter's BAR…).
  case valid
  /// An edge: 0, 1, page − 1, page, page + 1, the region's or BAR's size, 4 GiB ± a page,
  /// 2^63, 2^64 − 1, a memory section's edges, the first value past a valid set.
  case boundary
  /// Anything else the op's rule refuses.
  case invalid

  package static func < (a: Self, b: Self) -> Bool {
    allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
  }
}

/// What a field's values mean: the source of its input classes, how values of each class are
/// drawn and how a value is classified (Fuzz's `InputClasses`).
package enum FieldDomain: Hashable, Sendable {
  /// A name or a thread: valid or not by the sequence's state, drawn by the generator's state
  /// logic (names of things that exist, sometimes of things that do not); not classified.
  case reference
  /// Every value is valid (a disposition, a mask flag, memory decoding on or off).
  case anyValue
  /// A word, some of which the rule refuses (`callback=none`: C1.1).
  case choice(invalid: [String])
  /// A marker word whose presence the rule refuses (`static`: C7.3).
  case marker
  /// `exit_group()`'s status: any 32-bit value, of which the parent sees the low byte.
  case exitCode
  /// A `prctl` argument: valid values, the first one past them is a boundary.
  case prctlArg(valid: [UInt64])
  /// `vm.memory_failure_early_kill` (C3.9).
  case earlyKill
  /// A user address for a mapping (bytes).
  case userAddress
  /// A number of pages.
  case pageCount
  /// A VFIO-style region index of the shim's device memory (2 and 4).
  case regionIndex
  /// A page offset into a region.
  case regionPageOffset
  /// A PFN.
  case pfn
  /// `memory_failure()` flags.
  case mfFlags
  /// An export's region index (a BAR).
  case barIndex
  /// An export's ranges: each range's offset and length in bytes (census keys `.offset` and
  /// `.length`).
  case dmaRanges
  /// An export's feature word (the low 16 bits are always 11).
  case feature
  /// An export's `argsz`.
  case argsz
  /// An export's `nr_ranges`.
  case nrRanges
  /// An export's payload `flags`.
  case exportFlags
  /// An export's `open_flags` (C7.2).
  case openFlags
  /// A byte offset into a device's config space (its VFIO config region).
  case configOffset
  /// The number of bytes of a config-space write (0…8).
  case configWidth
  /// A byte offset into a dma-buf or a byte count of an iommufd map (`start`, `length`): valid
  /// when page aligned and at most 4 GiB (the model's interpretation of iommufd.h: a device's
  /// IOAS maps whole pages).
  case ioasBytes
  /// A fixed IOVA of an iommufd map: valid when page aligned below 2^39 (the IOVA space the
  /// model interprets the worlds' IOMMUs to have).
  case ioasIOVA
}

/// Where a field's value stands in the op line.
package enum FieldForm: Hashable, Sendable {
  /// A token of its own.
  case positional
  /// `name=value`.
  case keyed
  /// `name=value` or nothing: ``FieldValue/absent`` when left out.
  case optionalKeyed
  /// `name=value`, left out when the value is 0 (and 0 when left out).
  case keyedUnlessZero
}

/// The value of one field of an op (``Op/fieldValues``).
package enum FieldValue: Hashable, Sendable {
  /// A name of the field's kind (`p1`, `s2`).
  case name(String)
  case thread(ThreadRef)
  case unsigned(UInt64)
  case signed(Int64)
  case flag(Bool)
  case choice(String)
  case ranges([DMARange])
  /// An optional field left out.
  case absent

  fileprivate func name<K>() -> Name<K> {
    guard case .name(let s) = self, let n = Name<K>(s) else { preconditionFailure("not a name: \(self)") }
    return n
  }
  fileprivate var thread: ThreadRef {
    guard case .thread(let t) = self else { preconditionFailure("not a thread: \(self)") }
    return t
  }
  fileprivate var unsigned: UInt64 {
    guard case .unsigned(let v) = self else { preconditionFailure("not unsigned: \(self)") }
    return v
  }
  fileprivate var uint32: UInt32 { UInt32(truncatingIfNeeded: unsigned) }
  fileprivate var optionalUInt32: UInt32? { self == .absent ? nil : uint32 }
  fileprivate var signed: Int64 {
    guard case .signed(let v) = self else { preconditionFailure("not signed: \(self)") }
    return v
  }
  fileprivate var flag: Bool {
    guard case .flag(let b) = self else { preconditionFailure("not a flag: \(self)") }
    return b
  }
  fileprivate var choice: String {
    guard case .choice(let s) = self else { preconditionFailure("not a choice: \(self)") }
    return s
  }
  fileprivate var ranges: [DMARange] {
    guard case .ranges(let r) = self else { preconditionFailure("not ranges: \(self)") }
    return r
  }
}

// MARK: - The descriptions

extension OpKind {
  private typealias F = FieldSpec
  private static let process = F("process", .process, what: "a process name")
  private static let thread = F("thread", .thread)
  private static let space = F("space", .space, what: "a space name")
  private static let device = F("device", .device, what: "a device name")
  private static let buf = F("buf", .buf, what: "a dma-buf name")
  private static let attachment = F("attachment", .attachment, what: "an attachment name")
  private static let ioas = F("ioas", .ioas, what: "an IOAS name")
  private static func hex(_ name: String, _ domain: FieldDomain, max: UInt64 = .max) -> F {
    F(name, .unsigned(max: max, hex: true), .keyed, domain: domain)
  }
  private static func decimal(_ name: String, _ domain: FieldDomain, max: UInt64 = .max) -> F {
    F(name, .unsigned(max: max, hex: false), .keyed, domain: domain)
  }
  private static let u32 = UInt64(UInt32.max)

  /// The description of each kind: the one place an op's facts are written.
  private var describe: OpSpec {
    typealias S = OpSpec
    let f = Self.self
    switch self {
    case .spawn:
      return S(keyword: "spawn", half: .memoryFailure, items: ["C3.8"], placement: .coordinator, syntax: [.field(f.process)])
    case .fork:
      return S(
        keyword: "fork", half: .memoryFailure, items: ["C3.8"], placement: .thread,
        syntax: [.field(f.thread), .field(F("child", .process, what: "the child's process name"))])
    case .threadCreate:
      return S(keyword: "thread", half: .memoryFailure, items: ["C3.8"], placement: .process, syntax: [.field(f.thread)])
    case .threadExit:
      return S(keyword: "thread-exit", half: .memoryFailure, items: ["C3.8"], placement: .thread, syntax: [.field(f.thread)])
    case .exit:
      return S(
        keyword: "exit", half: .memoryFailure, items: ["C3.8"], placement: .process,
        syntax: [.field(f.process), .field(F("code", .signed(bits: 32), .keyed, domain: .exitCode))])
    case .mceKill:
      return S(
        keyword: "prctl", half: .memoryFailure, items: ["C3.7"], placement: .thread,
        syntax: [
          .field(f.thread), .word("mce-kill"), .field(F("arg2", .unsigned(max: .max, hex: false), what: "arg2", domain: .prctlArg(valid: [0, 1]))),
          .field(F("arg3", .unsigned(max: .max, hex: false), what: "arg3", domain: .prctlArg(valid: [0, 1, 2]))),
        ])
    case .mceKillGet:
      return S(
        keyword: "prctl", half: .memoryFailure, items: ["C3.7"], placement: .thread,
        syntax: [.field(f.thread), .word("mce-kill-get")])
    case .sigbus:
      return S(
        keyword: "sigbus", half: .memoryFailure, items: ["C3.3"], placement: .process, collectsSignals: true,
        syntax: [
          .field(f.process),
          .field(F("disposition", .choice(Disposition.allCases.map(\.rawValue)), what: "disposition", domain: .anyValue)),
        ])
    case .sigmask:
      return S(
        keyword: "sigmask", half: .memoryFailure, items: ["C3.3"], placement: .thread, collectsSignals: true,
        syntax: [.field(f.thread), .field(F("blocked", .flag(yes: "block", no: "unblock"), domain: .anyValue))])
    case .sysctlEarlyKill:
      return S(
        keyword: "sysctl", half: .memoryFailure, items: ["C3.9"], placement: .coordinator,
        syntax: [.field(F("early-kill", .signed(bits: 64), .keyed, domain: .earlyKill))])
    case .mmap:
      return S(
        keyword: "mmap", half: .memoryFailure, items: ["C3.8", "C4.2"], placement: .process,
        syntax: [
          .field(f.process), .field(f.hex("addr", .userAddress)), .field(f.decimal("pages", .pageCount)),
          .field(f.decimal("region", .regionIndex, max: 0xff)), .field(f.hex("pgoff", .regionPageOffset, max: 1 << 40 - 1)),
        ])
    case .munmap:
      return S(
        keyword: "munmap", half: .memoryFailure, items: ["C3.8"], placement: .process,
        syntax: [.field(f.process), .field(f.hex("addr", .userAddress)), .field(f.decimal("pages", .pageCount))])
    case .madviseDontFork:
      return S(
        keyword: "madvise", half: .memoryFailure, items: ["C3.8"], placement: .process,
        syntax: [
          .field(f.process), .field(f.hex("addr", .userAddress)), .field(f.decimal("pages", .pageCount)), .word("dontfork"),
        ])
    case .mprotect:
      return S(
        keyword: "mprotect", half: .memoryFailure, items: ["C3.8"], placement: .process,
        syntax: [
          .field(f.process), .field(f.hex("addr", .userAddress)), .field(f.decimal("pages", .pageCount)),
          .field(F("prot", .choice(Protection.allCases.map(\.rawValue)), .keyed, what: "protection", domain: .anyValue)),
        ])
    case .mremap:
      return S(
        keyword: "mremap", half: .memoryFailure, items: ["C3.8", "C3.4"], placement: .process,
        syntax: [
          .field(f.process), .field(f.hex("addr", .userAddress)), .field(f.decimal("pages", .pageCount)),
          .field(f.hex("to", .userAddress)),
        ])
    case .spaceCreate:
      return S(
        keyword: "space-create", half: .memoryFailure, items: ["harness", "C1.1"], placement: .coordinator,
        syntax: [
          .field(f.space), .field(f.hex("first", .pfn)), .field(f.hex("last", .pfn)),
          .field(F("callback", .choice(["nvgrace", "strict", "none"]), .keyed, domain: .choice(invalid: ["none"]))),
        ])
    case .spaceRegister:
      return S(
        keyword: "space-register", half: .memoryFailure, items: ["C1.1", "C1.3", "C1.4"], placement: .coordinator,
        syntax: [.field(f.space)])
    case .spaceUnregister:
      return S(keyword: "space-unregister", half: .memoryFailure, items: ["C1.2"], placement: .coordinator, syntax: [.field(f.space)])
    case .spaceDestroy:
      return S(keyword: "space-destroy", half: .memoryFailure, items: ["harness", "C1.2"], placement: .coordinator, syntax: [.field(f.space)])
    case .injectSysfs:
      return S(
        keyword: "inject-sysfs", half: .memoryFailure, items: ["C5.1", "C2.2", "C2.3", "C2.4", "C3.2", "C3.3"],
        placement: .thread, collectsSignals: true, syntax: [.field(f.thread), .field(f.hex("pfn", .pfn))])
    case .injectShim:
      return S(
        keyword: "inject-shim", half: .memoryFailure, items: ["C5.3", "C2.2", "C2.3", "C2.4", "C2.6", "C3.2", "C3.3"],
        placement: .thread, collectsSignals: true,
        syntax: [.field(f.thread), .field(f.hex("pfn", .pfn)), .field(f.hex("flags", .mfFlags, max: f.u32))])
    case .injectQueue:
      return S(
        keyword: "inject-queue", half: .memoryFailure, items: ["C5.3", "C2.3", "C2.4", "C3.3"], placement: .coordinator,
        isAsynchronous: true, collectsSignals: true,
        syntax: [.field(f.hex("pfn", .pfn)), .field(f.hex("flags", .mfFlags, max: f.u32))])
    case .injectMCE:
      return S(
        keyword: "inject-mce", half: .memoryFailure, items: ["C5.4", "C2.3", "C2.4", "C3.3"], placement: .host,
        isAsynchronous: true, collectsSignals: true, syntax: [.field(f.hex("pfn", .pfn))])
    case .madviseHWPoison:
      return S(
        keyword: "madvise", half: .memoryFailure, items: ["C5.2"], placement: .process,
        syntax: [
          .field(f.process), .field(f.hex("addr", .userAddress)), .field(f.decimal("pages", .pageCount)), .word("hwpoison"),
        ])
    case .corruptPFN:
      return S(
        keyword: "corrupt-pfn", half: .memoryFailure, items: ["C5.2"], placement: .coordinator, collectsSignals: true,
        syntax: [.field(f.hex("pfn", .pfn))])
    case .mfLog:
      return S(keyword: "mf-log", half: .memoryFailure, items: ["C2.7"], placement: .coordinator, syntax: [])
    case .hwCorrupted:
      return S(keyword: "hw-corrupted", half: .memoryFailure, items: ["C2.8"], placement: .coordinator, syntax: [])
    case .vfioOpen:
      return S(keyword: "vfio-open", half: .dmaBuf, items: ["C7.6"], placement: .coordinator, syntax: [.field(f.device)])
    case .vfioClose:
      return S(keyword: "vfio-close", half: .dmaBuf, items: ["C7.6", "C7.5"], placement: .coordinator, syntax: [.field(f.device)])
    case .vfioMemory:
      return S(
        keyword: "vfio-memory", half: .dmaBuf, items: ["C7.6", "C7.4", "C7.5"], placement: .coordinator,
        syntax: [.field(f.device), .field(F("enabled", .flag(yes: "on", no: "off"), domain: .anyValue))])
    case .vfioReset:
      return S(keyword: "vfio-reset", half: .dmaBuf, items: ["C7.6", "C7.5"], placement: .coordinator, syntax: [.field(f.device)])
    case .export:
      return S(
        keyword: "export", half: .dmaBuf, items: ["C7.1", "C7.2"], placement: .coordinator,
        syntax: [
          .field(f.buf), .field(f.device), .field(F("region", .unsigned(max: f.u32, hex: false), .keyed, domain: .barIndex)),
          .field(F("ranges", .ranges, .keyed, domain: .dmaRanges)), .field(
            F("feature", .unsigned(max: f.u32, hex: true), .optionalKeyed, domain: .feature) { v in
              v & 0xffff == UInt64(ExportRequest.featureDMABuf)
                ? nil : "feature index (low 16 bits) must be \(ExportRequest.featureDMABuf) (DMA_BUF)"
            }),
          .field(F("argsz", .unsigned(max: f.u32, hex: false), .optionalKeyed, domain: .argsz)),
          .field(F("nr", .unsigned(max: f.u32, hex: false), .optionalKeyed, domain: .nrRanges)),
          .field(F("flags", .unsigned(max: f.u32, hex: true), .keyedUnlessZero, domain: .exportFlags)),
          .field(F("open", .unsigned(max: f.u32, hex: true), .optionalKeyed, domain: .openFlags)),
        ])
    case .bufClose:
      return S(keyword: "buf-close", half: .dmaBuf, items: ["C7.2"], placement: .coordinator, syntax: [.field(f.buf)])
    case .fdinfo:
      return S(keyword: "fdinfo", half: .dmaBuf, items: ["C7.2"], placement: .coordinator, syntax: [.field(f.buf)])
    case .attach:
      return S(
        keyword: "attach", half: .dmaBuf, items: ["C7.3"], placement: .coordinator,
        syntax: [
          .field(f.attachment), .field(f.buf), .field(F("importer", .importer, .keyed)), .field(F("static", .marker("static"), domain: .marker)),
        ])
    case .map:
      return S(keyword: "map", half: .dmaBuf, items: ["C7.4", "C6.1", "C7.7"], placement: .coordinator, syntax: [.field(f.attachment)])
    case .unmap:
      return S(keyword: "unmap", half: .dmaBuf, items: ["C7.7"], placement: .coordinator, syntax: [.field(f.attachment)])
    case .detach:
      return S(keyword: "detach", half: .dmaBuf, items: ["C7.7"], placement: .coordinator, syntax: [.field(f.attachment)])
    case .vfioLowPowerEntry:
      return S(
        keyword: "vfio-low-power", half: .dmaBuf, items: ["C7.4", "C7.5"], placement: .coordinator,
        syntax: [.field(f.device), .word("entry")])
    case .vfioLowPowerWakeup:
      return S(
        keyword: "vfio-low-power", half: .dmaBuf, items: ["C7.4", "C7.5"], placement: .coordinator,
        syntax: [
          .field(f.device), .word("wakeup"),
          .field(F("efd", .choice(WakeupFD.allCases.map(\.rawValue)), .keyed, domain: .choice(invalid: ["none", "file"]))),
        ])
    case .vfioLowPowerExit:
      return S(
        keyword: "vfio-low-power", half: .dmaBuf, items: ["C7.4", "C7.5"], placement: .coordinator,
        syntax: [.field(f.device), .word("exit")])
    case .vfioConfig:
      return S(
        keyword: "vfio-config", half: .dmaBuf, items: ["C7.6", "C7.4", "C7.5"], placement: .coordinator,
        syntax: [
          .field(f.device), .field(f.hex("offset", .configOffset, max: 1 << 40 - 1)),
          .field(f.decimal("width", .configWidth, max: 8)), .field(F("value", .unsigned(max: .max, hex: true), .keyed, domain: .anyValue)),
        ])
    case .vfioHotReset:
      return S(keyword: "vfio-hot-reset", half: .dmaBuf, items: ["C7.5", "C7.6"], placement: .coordinator, syntax: [.field(f.device)])
    case .vfioPower:
      return S(keyword: "vfio-power", half: .dmaBuf, items: ["C7.4"], placement: .coordinator, syntax: [.field(f.device)])
    case .importerMode:
      return S(
        keyword: "importer-mode", half: .dmaBuf, items: ["harness", "C7.5", "C6.7"], placement: .coordinator,
        syntax: [.field(f.attachment), .field(F("mode", .choice(ImporterMode.allCases.map(\.rawValue)), what: "an importer mode", domain: .anyValue))])
    case .ioasAlloc:
      return S(keyword: "ioas-alloc", half: .dmaBuf, items: ["harness"], placement: .coordinator, syntax: [.field(f.ioas)])
    case .ioasMapFile:
      return S(
        keyword: "ioas-map-file", half: .dmaBuf, items: ["C7.4", "C7.3", "C7.5"], placement: .coordinator,
        syntax: [
          .field(F("mapping", .ioasMapping, what: "an IOAS mapping name")), .field(f.ioas), .field(f.buf),
          .field(f.hex("start", .ioasBytes)), .field(f.hex("length", .ioasBytes)),
          .field(F("iova", .unsigned(max: .max, hex: true), .optionalKeyed, domain: .ioasIOVA)),
        ])
    case .ioasUnmap:
      return S(
        keyword: "ioas-unmap", half: .dmaBuf, items: ["C7.5", "C7.7"], placement: .coordinator,
        syntax: [.field(F("mapping", .ioasMapping, what: "an IOAS mapping name"))])
    case .ioasDevice:
      return S(keyword: "ioas-device", half: .dmaBuf, items: ["harness"], placement: .coordinator, syntax: [.field(f.ioas), .field(f.device)])
    case .injectMCEAR:
      // The host injects while the thread spins in user mode (VM/agent/PROTOCOL.md).
      return S(
        keyword: "inject-mce-ar", half: .memoryFailure, items: ["C5.4", "C2.3", "C2.4", "C3.2", "C3.3"],
        placement: .thread, isAsynchronous: true, collectsSignals: true,
        syntax: [.field(f.thread), .field(f.hex("pfn", .pfn))])
    case .mfRace:
      return S(
        keyword: "mf-race", half: .memoryFailure, items: ["C2.1", "C2.3", "C2.4", "C3.3"], placement: .coordinator,
        collectsSignals: true, syntax: [.field(f.hex("pfn", .pfn))])
    case .bufinfo:
      return S(keyword: "bufinfo", half: .dmaBuf, items: ["C7.8", "C7.2"], placement: .coordinator, syntax: [.field(f.buf)])
    case .dmabufTrace:
      return S(keyword: "dmabuf-trace", half: .dmaBuf, items: ["C7.8"], placement: .coordinator, syntax: [])
    }
  }
}

// MARK: - Ops as fields

extension Op {
  /// The op's kind.
  package var kind: OpKind {
    switch self {
    case .spawn: .spawn
    case .fork: .fork
    case .threadCreate: .threadCreate
    case .threadExit: .threadExit
    case .exit: .exit
    case .mceKill: .mceKill
    case .mceKillGet: .mceKillGet
    case .sigbus: .sigbus
    case .sigmask: .sigmask
    case .sysctlEarlyKill: .sysctlEarlyKill
    case .mmap: .mmap
    case .munmap: .munmap
    case .madviseDontFork: .madviseDontFork
    case .mprotect: .mprotect
    case .mremap: .mremap
    case .spaceCreate: .spaceCreate
    case .spaceRegister: .spaceRegister
    case .spaceUnregister: .spaceUnregister
    case .spaceDestroy: .spaceDestroy
    case .injectSysfs: .injectSysfs
    case .injectShim: .injectShim
    case .injectQueue: .injectQueue
    case .injectMCE: .injectMCE
    case .madviseHWPoison: .madviseHWPoison
    case .corruptPFN: .corruptPFN
    case .mfLog: .mfLog
    case .hwCorrupted: .hwCorrupted
    case .vfioOpen: .vfioOpen
    case .vfioClose: .vfioClose
    case .vfioMemory: .vfioMemory
    case .vfioReset: .vfioReset
    case .export: .export
    case .bufClose: .bufClose
    case .fdinfo: .fdinfo
    case .attach: .attach
    case .map: .map
    case .unmap: .unmap
    case .detach: .detach
    case .vfioLowPowerEntry: .vfioLowPowerEntry
    case .vfioLowPowerWakeup: .vfioLowPowerWakeup
    case .vfioLowPowerExit: .vfioLowPowerExit
    case .vfioConfig: .vfioConfig
    case .vfioHotReset: .vfioHotReset
    case .vfioPower: .vfioPower
    case .importerMode: .importerMode
    case .ioasAlloc: .ioasAlloc
    case .ioasMapFile: .ioasMapFile
    case .ioasUnmap: .ioasUnmap
    case .ioasDevice: .ioasDevice
    case .injectMCEAR: .injectMCEAR
    case .mfRace: .mfRace
    case .bufinfo: .bufinfo
    case .dmabufTrace: .dmabufTrace
    }
  }

  /// The op's field values, in the order of its kind's ``OpSpec/fields``.
  package var fieldValues: [FieldValue] {
    func n<K>(_ x: Name<K>) -> FieldValue { .name(x.raw) }
    func u<T: BinaryInteger>(_ x: T) -> FieldValue { .unsigned(UInt64(x)) }
    func o(_ x: UInt32?) -> FieldValue { x.map { .unsigned(UInt64($0)) } ?? .absent }
    switch self {
    case .spawn(let p): return [n(p)]
    case .fork(let t, let child): return [.thread(t), n(child)]
    case .threadCreate(let t), .threadExit(let t), .mceKillGet(let t): return [.thread(t)]
    case .exit(let p, let code): return [n(p), .signed(Int64(code))]
    case .mceKill(let t, let a2, let a3): return [.thread(t), u(a2), u(a3)]
    case .sigbus(let p, let d): return [n(p), .choice(d.rawValue)]
    case .sigmask(let t, let blocked): return [.thread(t), .flag(blocked)]
    case .sysctlEarlyKill(let v): return [.signed(v)]
    case .mmap(let p, let addr, let pages, let region, let pgoff): return [n(p), u(addr), u(pages), u(region), u(pgoff)]
    case .munmap(let p, let addr, let pages), .madviseDontFork(let p, let addr, let pages),
      .madviseHWPoison(let p, let addr, let pages):
      return [n(p), u(addr), u(pages)]
    case .mprotect(let p, let addr, let pages, let prot): return [n(p), u(addr), u(pages), .choice(prot.rawValue)]
    case .mremap(let p, let addr, let pages, let to): return [n(p), u(addr), u(pages), u(to)]
    case .corruptPFN(let pfn): return [u(pfn)]
    case .mfLog, .hwCorrupted: return []
    case .spaceCreate(let s, let first, let last, let cb): return [n(s), u(first), u(last), .choice(cb.rawValue)]
    case .spaceRegister(let s), .spaceUnregister(let s), .spaceDestroy(let s): return [n(s)]
    case .injectSysfs(let t, let pfn): return [.thread(t), u(pfn)]
    case .injectShim(let t, let pfn, let flags): return [.thread(t), u(pfn), u(flags)]
    case .injectQueue(let pfn, let flags): return [u(pfn), u(flags)]
    case .injectMCE(let pfn): return [u(pfn)]
    case .vfioOpen(let d), .vfioClose(let d), .vfioReset(let d): return [n(d)]
    case .vfioLowPowerEntry(let d), .vfioLowPowerExit(let d), .vfioHotReset(let d), .vfioPower(let d): return [n(d)]
    case .injectMCEAR(let t, let pfn): return [.thread(t), u(pfn)]
    case .vfioLowPowerWakeup(let d, let fd): return [n(d), .choice(fd.rawValue)]
    case .vfioConfig(let d, let offset, let width, let value): return [n(d), u(offset), u(width), u(value)]
    case .vfioMemory(let d, let on): return [n(d), .flag(on)]
    case .export(let b, let d, let r):
      return [
        n(b), n(d), u(r.region), .ranges(r.ranges), o(r.feature), o(r.argsz), o(r.nrRanges), u(r.flags), o(r.openFlags),
      ]
    case .bufClose(let b), .fdinfo(let b): return [n(b)]
    case .attach(let a, let b, let i, let isDynamic): return [n(a), n(b), n(i), .flag(!isDynamic)]
    case .map(let a), .unmap(let a), .detach(let a): return [n(a)]
    case .importerMode(let a, let m): return [n(a), .choice(m.rawValue)]
    case .ioasAlloc(let s): return [n(s)]
    case .ioasMapFile(let m, let s, let b, let start, let length, let iova):
      return [n(m), n(s), n(b), u(start), u(length), iova.map { .unsigned($0) } ?? .absent]
    case .ioasUnmap(let m): return [n(m)]
    case .ioasDevice(let s, let d): return [n(s), n(d)]
    case .mfRace(let pfn): return [u(pfn)]
    case .bufinfo(let b): return [n(b)]
    case .dmabufTrace: return []
    }
  }

  /// The op of `kind` with field values `v` (as ``fieldValues`` gives them; each of its field's
  /// type, as the parser reads them).
  package init(_ kind: OpKind, _ v: [FieldValue]) {
    switch kind {
    case .spawn: self = .spawn(v[0].name())
    case .fork: self = .fork(v[0].thread, child: v[1].name())
    case .threadCreate: self = .threadCreate(v[0].thread)
    case .threadExit: self = .threadExit(v[0].thread)
    case .exit: self = .exit(v[0].name(), code: Int32(truncatingIfNeeded: v[1].signed))
    case .mceKill: self = .mceKill(v[0].thread, arg2: v[1].unsigned, arg3: v[2].unsigned)
    case .mceKillGet: self = .mceKillGet(v[0].thread)
    case .sigbus: self = .sigbus(v[0].name(), Disposition(rawValue: v[1].choice)!)
    case .sigmask: self = .sigmask(v[0].thread, blocked: v[1].flag)
    case .sysctlEarlyKill: self = .sysctlEarlyKill(v[0].signed)
    case .mmap:
      self = .mmap(v[0].name(), addr: v[1].unsigned, pages: v[2].unsigned, region: v[3].unsigned, pgoff: v[4].unsigned)
    case .munmap: self = .munmap(v[0].name(), addr: v[1].unsigned, pages: v[2].unsigned)
    case .madviseDontFork: self = .madviseDontFork(v[0].name(), addr: v[1].unsigned, pages: v[2].unsigned)
    case .mprotect:
      self = .mprotect(v[0].name(), addr: v[1].unsigned, pages: v[2].unsigned, prot: Protection(rawValue: v[3].choice)!)
    case .mremap: self = .mremap(v[0].name(), addr: v[1].unsigned, pages: v[2].unsigned, to: v[3].unsigned)
    case .madviseHWPoison: self = .madviseHWPoison(v[0].name(), addr: v[1].unsigned, pages: v[2].unsigned)
    case .corruptPFN: self = .corruptPFN(pfn: v[0].unsigned)
    case .mfLog: self = .mfLog
    case .hwCorrupted: self = .hwCorrupted
    case .spaceCreate:
      self = .spaceCreate(
        v[0].name(), first: v[1].unsigned, last: v[2].unsigned, callback: CallbackFlavour(rawValue: v[3].choice)!)
    case .spaceRegister: self = .spaceRegister(v[0].name())
    case .spaceUnregister: self = .spaceUnregister(v[0].name())
    case .spaceDestroy: self = .spaceDestroy(v[0].name())
    case .injectSysfs: self = .injectSysfs(v[0].thread, pfn: v[1].unsigned)
    case .injectShim: self = .injectShim(v[0].thread, pfn: v[1].unsigned, flags: v[2].uint32)
    case .injectQueue: self = .injectQueue(pfn: v[0].unsigned, flags: v[1].uint32)
    case .injectMCE: self = .injectMCE(pfn: v[0].unsigned)
    case .vfioOpen: self = .vfioOpen(v[0].name())
    case .vfioClose: self = .vfioClose(v[0].name())
    case .vfioMemory: self = .vfioMemory(v[0].name(), enabled: v[1].flag)
    case .vfioReset: self = .vfioReset(v[0].name())
    case .export:
      self = .export(
        v[0].name(), v[1].name(),
        ExportRequest(
          region: v[2].uint32, ranges: v[3].ranges, feature: v[4].optionalUInt32, argsz: v[5].optionalUInt32,
          nrRanges: v[6].optionalUInt32, flags: v[7].uint32, openFlags: v[8].optionalUInt32))
    case .bufClose: self = .bufClose(v[0].name())
    case .fdinfo: self = .fdinfo(v[0].name())
    case .attach: self = .attach(v[0].name(), v[1].name(), importer: v[2].name(), isDynamic: !v[3].flag)
    case .map: self = .map(v[0].name())
    case .unmap: self = .unmap(v[0].name())
    case .detach: self = .detach(v[0].name())
    case .vfioLowPowerEntry: self = .vfioLowPowerEntry(v[0].name())
    case .vfioLowPowerWakeup: self = .vfioLowPowerWakeup(v[0].name(), wakeup: WakeupFD(rawValue: v[1].choice)!)
    case .vfioLowPowerExit: self = .vfioLowPowerExit(v[0].name())
    case .vfioConfig: self = .vfioConfig(v[0].name(), offset: v[1].unsigned, width: v[2].unsigned, value: v[3].unsigned)
    case .vfioHotReset: self = .vfioHotReset(v[0].name())
    case .vfioPower: self = .vfioPower(v[0].name())
    case .importerMode: self = .importerMode(v[0].name(), ImporterMode(rawValue: v[1].choice)!)
    case .ioasAlloc: self = .ioasAlloc(v[0].name())
    case .ioasMapFile:
      self = .ioasMapFile(
        v[0].name(), v[1].name(), v[2].name(), start: v[3].unsigned, length: v[4].unsigned,
        iova: v[5] == .absent ? nil : v[5].unsigned)
    case .ioasUnmap: self = .ioasUnmap(v[0].name())
    case .ioasDevice: self = .ioasDevice(v[0].name(), v[1].name())
    case .injectMCEAR: self = .injectMCEAR(v[0].thread, pfn: v[1].unsigned)
    case .mfRace: self = .mfRace(pfn: v[0].unsigned)
    case .bufinfo: self = .bufinfo(v[0].name())
    case .dmabufTrace: self = .dmabufTrace
    }
  }

  /// The op's kind, as its first token in the text format (`spawn`, `inject-shim`…).
  package var keyword: String { kind.spec.keyword }

  /// Every op keyword, once each, in declaration order.
  package static let allKeywords: [String] = {
    var out: [String] = []
    for k in OpKind.allCases where !out.contains(k.spec.keyword) { out.append(k.spec.keyword) }
    return out
  }()

  /// Whether the op belongs to the dma-buf half (sections 6, 7).
  package var isDmaBuf: Bool { kind.half == .dmaBuf }

  /// The contract item a divergence of the op's result contradicts: its kind's first item, but
  /// for an export with open flags the contract refuses C7.2 (they decide the prediction from
  /// C7.1's check (7) on).
  package var contractItem: String {
    if case .export(_, _, let r) = self, r.effectiveOpenFlags & ~DmaBufModel.acceptedOpenFlags != 0 { return "C7.2" }
    return kind.spec.items[0]
  }
}
