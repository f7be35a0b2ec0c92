import Foundation
import Fuzz
import Reference

/// A standalone C reproducer for a sequence: one straight-line `main()`, one call per op with
/// the op's line as a comment, each followed by a comparison of everything the harness compares
/// for that op (result, signals, process ends, memory-failure events, importer notifications, sg
/// tables, fdinfo, and any kernel WARN/BUG/oops/hang) with the contract's prediction. Output is
/// KTAP; the exit status is kselftest's: 0 the kernel does what the contract says, 1 a step
/// diverges, 4 the shim or the series is missing (or a machine check never came).
///
/// The program carries only the runtime definitions it reaches (``CSource/closure(of:in:)``)
/// from the real C files under `VM/repro`, so it builds anywhere with `gcc -static`.
///
/// Shape: a guardian process forks the *runner*, which runs the ops (`VM/repro/guard.c`). A
/// sequence with at most one logical process that lives to its end, with one thread, runs
/// that process's ops in the runner itself; otherwise every logical thread serves a channel
/// (`VM/repro/task.c`) and the runner coordinates.
enum Reproducer {
  struct Unsupported: Error {
    var step: Int
    var reason: String
  }

  /// What the reproducer's header says besides the sequence: where it comes from, and, for a
  /// ledger entry, the finding.
  struct Context: Sendable {
    /// The sequence file, as the user named it.
    var source: String
    /// `Finding 0002 (kernel-bug, C1.2): summary`, for a ledger entry.
    var finding: String? = nil
    /// The diverging step (1-based) and what the kernel did there, as observation lines.
    var divergence: (step: Int, observed: [String])? = nil
    /// The kernel the observation comes from, in one line or a short paragraph.
    var kernel: String? = nil
    /// Where the short form's source is kept, for its build line.
    var reproPath = "repro.c"
  }

  /// The runtime sources: `VM/repro/repro.h`, its `.c` files in the order they are emitted,
  /// and the shim's uapi header.
  struct Runtime: Sendable {
    var header: CSource
    var shim: CSource
    var files: [CSource]

    static let fileOrder = ["check.c", "signal.c", "guard.c", "task.c", "mf.c", "trace.c", "kmsg.c", "vfio.c", "dmabuf.c", "race.c"]

    /// Reads the runtime from the project's `VM` directory.
    static func load(vm: String) throws(HarnessError) -> Runtime {
      func read(_ path: String) throws(HarnessError) -> CSource {
        do {
          return CSource(path: path, text: try String(contentsOfFile: vm + "/" + path, encoding: .utf8))
        } catch {
          throw HarnessError.environment("\(vm)/\(path) not found: run harness from the project's top directory")
        }
      }
      return Runtime(
        header: try read("repro/repro.h"), shim: try read("shim/harness_shim.h"),
        files: try fileOrder.map { f throws(HarnessError) in try read("repro/" + f) })
    }
  }

  /// How a reproducer is written.
  enum Form: Sendable {
    /// The program alone: it includes `VM/repro/repro.h` and is linked with the runtime files
    /// it needs (the header's build line lists them). What the ledger keeps.
    case short
    /// One self-contained file: the program followed by the runtime definitions it reaches,
    /// for a mail or a machine without the harness.
    case standalone
  }

  /// A reproducer: its C source and, for the short form, the runtime files to link with it
  /// (paths relative to the project's top directory).
  struct Program: Sendable {
    var source: String
    var runtimeFiles: [String]
  }

  /// The reproducer for `sequence`, whose contract predictions are `predicted`.
  static func generate(
    _ sequence: OpSequence, predicted: [[Observation]], world: World, runtime: Runtime,
    context: Context, form: Form = .short
  ) throws(Unsupported) -> Program {
    let plan = try Plan(sequence, predicted: predicted)
    var body: [String] = []
    for (i, op) in sequence.ops.enumerated() {
      let (call, how) = try plan.call(i, op, sequence, world)
      let expected = predicted[i].map(SequenceFormat.print)
      let opText = SequenceFormat.print(op)
      body.append("\t/* \(opText) */")
      let oneLine = "\tbegin(\(i + 1), \(cString(opText)), \(cString(expected.joined(separator: "\n"))), \(how));"
      if expected.count <= 1 && oneLine.count + 7 <= 80 {
        body.append(oneLine)
      } else {
        body.append("\tbegin(\(i + 1), \(cString(opText)),")
        if expected.isEmpty { body.append("\t      \"\", \(how));") }
        for (k, line) in expected.enumerated() {
          let last = k == expected.count - 1
          body.append("\t      \(cString(last ? line : line + "\n"))" + (last ? ", \(how));" : ""))
        }
      }
      body.append("\tend(\(call));")
      body.append("")
    }
    let endFunction = plan.endFunction(needsTrace: plan.needsTrace, needsMCE: plan.needsMCE)
    let tables = plan.tables()
    let main = mainFunction(plan, body: body, steps: sequence.ops.count)
    let generated = (tables.isEmpty ? "" : tables + "\n") + endFunction + "\n" + main
    let roots = CSource.identifiers(in: CSource.code(of: generated))
    let sources = [runtime.header, runtime.shim] + runtime.files
    let reached = CSource.closure(of: roots, in: sources)
    let files = zip(runtime.files, reached[2...]).filter { !$1.isEmpty }.map { "VM/repro/" + ($0.0.path as NSString).lastPathComponent }
    let head = header(sequence, context: context, plan: plan, form: form, runtimeFiles: files)
    switch form {
    case .short:
      let source = head + "#include \"repro.h\"\n" + (reached[1].isEmpty ? "" : "#include \"harness_shim.h\"\n")
        + "\n" + generated
      return Program(source: source, runtimeFiles: files)
    case .standalone:
      var includes: [String] = []
      for (s, defs) in zip(sources, reached) where !defs.isEmpty || s.path.hasSuffix(".h") {
        for line in s.systemIncludes where !includes.contains(line) { includes.append(line) }
      }
      let declarations = reached[0].map(\.text).joined(separator: "\n")
      let uapi = reached[1].map { CSource.withoutComments($0.text) }
      let helpers = reached[2...].flatMap { $0 }.map(\.text)
      let source = head
        + "#define _GNU_SOURCE\n" + includes.joined(separator: "\n") + "\n\n"
        + declarations + "\n"
        + (uapi.isEmpty ? "" : "\n/* The shim's uapi (VM/shim/harness_shim.h of the harness): what this program uses. */\n" + uapi.joined(separator: "\n") + "\n")
        + "\n" + generated
        + "\n/* The runtime (VM/repro of the harness): what main() uses. */\n\n"
        + helpers.joined(separator: "\n\n") + "\n"
      return Program(source: source, runtimeFiles: [])
    }
  }

  /// A C string literal.
  static func cString(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
      switch c {
      case "\\": out += "\\\\"
      case "\"": out += "\\\""
      case "\n": out += "\\n"
      default: out.unicodeScalars.append(c)
      }
    }
    return out + "\""
  }

  private static func mainFunction(_ plan: Plan, body: [String], steps: Int) -> String {
    var setup = ["\tsetvbuf(stdout, NULL, _IOLBF, 0);", "\tprintf(\"KTAP version 1\\n\");"]
    if plan.usesMF { setup.append("\trequire_symbol(\"register_pfn_address_space\");") }
    if plan.usesDmaBuf { setup.append("\trequire_symbol(\"dma_buf_phys_vec_to_sgt\");") }
    setup.append("\tshim_open();")
    if plan.usesDmaBuf { setup.append("\tdmabuf_open();") }
    if plan.needsTrace { setup.append("\ttrace_open();") }
    setup.append("\tkmsg_open();")
    if plan.needsMFLog { setup.append("\tmf_log_open();") }
    if plan.needsCorrupted { setup.append("\tcorrupted_open();") }
    if plan.needsDmaBufTrace { setup.append("\tbuf_trace_open();") }
    if !plan.isSolo { setup.append("\ttasks_init();") }
    setup.append("\tprintf(\"1..\(steps)\\n\");")
    setup.append("\tguard();")
    return "int main(void)\n{\n" + setup.joined(separator: "\n") + "\n\n"
      + body.joined(separator: "\n") + "\treturn finish();\n}\n"
  }
}

extension Reproducer {
  /// Who runs each op: the logical processes and threads of the sequence in creation order,
  /// and the dma-buf objects by name.
  struct Plan {
    var processes: [ProcessName] = []
    var threads: [ThreadRef] = []
    var spaces: [SpaceName] = []
    var bufs: [BufName] = []
    var attachments: [AttachmentName] = []
    var ioases: [IOASName] = []
    var ioasMappings: [IOASMappingName] = []
    /// One logical process (or none), one thread, alive to the end: the runner is it.
    var isSolo = true
    var usesMF = false
    var usesDmaBuf = false
    var needsTrace = false
    var needsMCE = false
    /// `inject-mce-ar`: its result is memory_failure()'s return, read from the trace.
    var needsActionRequired = false
    /// `mf-log` reads the kernel log from the start; `hw-corrupted` compares with the start.
    var needsMFLog = false
    var needsCorrupted = false
    /// `dmabuf-trace` reads the dma_buf tracepoints from the start (tracefs instance).
    var needsDmaBufTrace = false
    /// The thread that runs op i when it is a process's op: its first live thread (t0 until it
    /// exits), by the predicted results of the thread ops before it.
    var processRunner: [Int: ThreadRef] = [:]

    init(_ sequence: OpSequence, predicted: [[Observation]]) throws(Unsupported) {
      var live: [ProcessName: [ThreadRef]] = [:]
      for (i, op) in sequence.ops.enumerated() {
        let succeeded = predicted[i].first.map { if case .result(let r) = $0 { r.isSuccess } else { false } } ?? false
        switch op {
        case .spawn(let p): if live[p] == nil { live[p] = [ThreadRef(p, 0)] }
        case .fork(_, let child): if live[child] == nil { live[child] = [ThreadRef(child, 0)] }
        case .threadCreate(let t):
          processRunner[i] = live[t.process]?.first
          if succeeded { live[t.process, default: []].append(t) }
        case .threadExit(let t): if succeeded { live[t.process]?.removeAll { $0 == t } }
        case .exit(let p, _), .sigbus(let p, _), .mmap(let p, _, _, _, _), .munmap(let p, _, _),
          .madviseDontFork(let p, _, _), .mprotect(let p, _, _, _), .mremap(let p, _, _, _),
          .madviseHWPoison(let p, _, _):
          processRunner[i] = live[p]?.first
        default: break
        }
        switch op {
        case .spawn(let p): addProcess(p)
        case .fork(let t, let child):
          addThread(t)
          addProcess(child)
        default: for t in Self.threads(of: op) { addThread(t) }
        }
        switch op {
        case .fork, .threadCreate, .threadExit, .exit: isSolo = false
        // The racing threads must belong to no logical process (the agent's are its own).
        case .mfRace: isSolo = false
        default: break
        }
        if predicted[i].contains(where: { if case .processEnd = $0.required { true } else { false } }) {
          isSolo = false
        }
        switch op {
        case .spaceCreate(let s, _, _, _): if !spaces.contains(s) { spaces.append(s) }
        case .export(let b, _, _): if !bufs.contains(b) { bufs.append(b) }
        case .attach(let a, let b, _, _):
          if !attachments.contains(a) { attachments.append(a) }
          if !bufs.contains(b) { bufs.append(b) }
        case .ioasAlloc(let s), .ioasDevice(let s, _): if !ioases.contains(s) { ioases.append(s) }
        case .ioasMapFile(let m, let s, let b, _, _, _):
          if !ioasMappings.contains(m) { ioasMappings.append(m) }
          if !ioases.contains(s) { ioases.append(s) }
          if !bufs.contains(b) { bufs.append(b) }
        case .ioasUnmap(let m): if !ioasMappings.contains(m) { ioasMappings.append(m) }
        case .injectShim, .injectSysfs, .injectQueue: needsTrace = true
        case .injectMCE:
          needsTrace = true
          needsMCE = true
        case .injectMCEAR:
          needsTrace = true
          needsMCE = true
          needsActionRequired = true
        case .mfLog: needsMFLog = true
        case .mfRace: needsTrace = true
        case .hwCorrupted: needsCorrupted = true
        case .dmabufTrace: needsDmaBufTrace = true
        default: break
        }
        if op.isDmaBuf { usesDmaBuf = true } else { usesMF = true }
        guard spaces.count <= 256 else { throw Unsupported(step: i, reason: "more than 256 spaces") }
        guard ioases.count <= 256, ioasMappings.count <= 256 else {
          throw Unsupported(step: i, reason: "more than 256 IOASes or IOAS mappings")
        }
      }
      if processes.count > 1 || threads.count > processes.count { isSolo = false }
      guard threads.count <= 32, processes.count <= 16 else {
        throw Unsupported(step: 0, reason: "more than 32 threads or 16 processes")
      }
    }

    private mutating func addProcess(_ p: ProcessName) {
      if !processes.contains(p) { processes.append(p) }
      addThread(ThreadRef(p, 0))
    }

    private mutating func addThread(_ t: ThreadRef) {
      if !processes.contains(t.process) { processes.append(t.process) }
      if !threads.contains(ThreadRef(t.process, 0)) { threads.append(ThreadRef(t.process, 0)) }
      if !threads.contains(t) { threads.append(t) }
    }

    /// The threads an op names (that must exist for it to run).
    static func threads(of op: Op) -> [ThreadRef] {
      switch op {
      case .threadCreate(let t), .threadExit(let t), .mceKill(let t, _, _), .mceKillGet(let t),
        .sigmask(let t, _), .injectSysfs(let t, _), .injectShim(let t, _, _), .injectMCEAR(let t, _):
        [t]
      case .exit(let p, _), .sigbus(let p, _), .mmap(let p, _, _, _, _), .munmap(let p, _, _),
        .madviseDontFork(let p, _, _), .mprotect(let p, _, _, _), .mremap(let p, _, _, _), .madviseHWPoison(let p, _, _):
        [ThreadRef(p, 0)]
      default: []
      }
    }

    /// The C name of a thread's task.
    func task(_ t: ThreadRef) -> String { "T_" + "\(t)".uppercased().replacingOccurrences(of: ".", with: "_").replacingOccurrences(of: "-", with: "_") }

    /// The call that runs op `i`, and its `begin()` flags.
    func call(_ i: Int, _ op: Op, _ sequence: OpSequence, _ world: World) throws(Unsupported) -> (String, String) {
      func hex(_ v: UInt64) -> String { v > UInt64(Int64.max) ? SequenceFormat.hex(v) + "UL" : SequenceFormat.hex(v) }
      /// `fn(args)` in thread t: directly in the runner when it is that thread.
      func inThread(_ t: ThreadRef, _ fn: String, _ args: [String]) -> String {
        let padded = (args + ["0", "0", "0", "0"]).prefix(4).joined(separator: ", ")
        return isSolo ? "\(fn)(\(padded))" : "call(\(task(t)), \(fn), \(padded))"
      }
      func local(_ fn: String, _ args: [String]) -> String {
        "\(fn)(" + (args + ["0", "0", "0", "0"]).prefix(4).joined(separator: ", ") + ")"
      }
      func index<T: Equatable>(_ x: T, _ xs: [T]) -> Int { xs.firstIndex(of: x) ?? 255 }
      /// The thread that runs a process's op.
      func first(_ p: ProcessName) -> ThreadRef { processRunner[i] ?? ThreadRef(p, 0) }
      switch op {
      case .spawn(let p):
        return (isSolo ? "become(\"\(p)\")" : "spawn(\(task(ThreadRef(p, 0))))", "0")
      case .fork(let t, let child): return ("fork_from(\(task(t)), \(task(ThreadRef(child, 0))))", "0")
      case .threadCreate(let t): return ("thread_create(\(task(first(t.process))), \(task(t)))", "0")
      case .threadExit(let t): return ("thread_exit(\(task(t)))", "0")
      case .exit(let p, let code): return ("proc_exit(\(task(first(p))), \(code))", "0")
      case .sigbus(let p, let d):
        return (inThread(first(p), "set_sigbus", [d == .handler ? "1" : d == .default ? "0" : "2"]), "0")
      case .mceKill(let t, let a2, let a3):
        return (inThread(t, "mce_kill", [a2 < 1024 ? "\(a2)" : hex(a2), a3 < 1024 ? "\(a3)" : hex(a3)]), "0")
      case .mceKillGet(let t): return (inThread(t, "mce_kill_get", []), "0")
      case .sigmask(let t, let blocked): return (inThread(t, "mask_sigbus", [blocked ? "1" : "0"]), "0")
      case .mmap(let p, let addr, let pages, let region, let pgoff):
        return (inThread(first(p), "map_device", [hex(addr), "\(pages)", "\(region)", hex(pgoff)]), "0")
      case .munmap(let p, let addr, let pages):
        return (inThread(first(p), "unmap_device", [hex(addr), "\(pages)"]), "0")
      case .madviseDontFork(let p, let addr, let pages):
        return (inThread(first(p), "dontfork", [hex(addr), "\(pages)"]), "0")
      case .mprotect(let p, let addr, let pages, let prot):
        return (inThread(first(p), "protect_device", [hex(addr), "\(pages)", "\(index(prot, Protection.allCases))"]), "0")
      case .mremap(let p, let addr, let pages, let to):
        return (inThread(first(p), "move_device", [hex(addr), "\(pages)", hex(to)]), "0")
      case .madviseHWPoison(let p, let addr, let pages):
        return (inThread(first(p), "hwpoison_range", [hex(addr), "\(pages)"]), "0")
      case .corruptPFN(let pfn): return (local("corrupt_pfn", [hex(pfn)]), "0")
      case .mfLog: return (local("mf_log", []), "0")
      case .hwCorrupted: return (local("hw_corrupted", []), "0")
      case .injectSysfs(let t, let pfn): return (inThread(t, "hard_offline", [hex(pfn)]), "INJECT_SYSFS")
      case .injectShim(let t, let pfn, let flags):
        return (inThread(t, "poison", [hex(pfn), hex(UInt64(flags)), "HARNESS_SHIM_POISON_CALL"]), "INJECT_SHIM")
      case .sysctlEarlyKill(let v): return (local("sysctl_early_kill", ["\(v)"]), "0")
      case .spaceCreate(let s, let first, let last, let cb):
        let flavour = ["none": "HARNESS_SHIM_CALLBACK_NONE", "nvgrace": "HARNESS_SHIM_CALLBACK_NVGRACE", "strict": "HARNESS_SHIM_CALLBACK_STRICT"][cb.rawValue]!
        return (local("space_create", ["\(index(s, spaces))", flavour, hex(first), hex(last)]), "0")
      case .spaceRegister(let s): return (local("space_op", ["HARNESS_SHIM_SPACE_REGISTER", "\(index(s, spaces))"]), "0")
      case .spaceUnregister(let s): return (local("space_op", ["HARNESS_SHIM_SPACE_UNREGISTER", "\(index(s, spaces))"]), "0")
      case .spaceDestroy(let s): return (local("space_op", ["HARNESS_SHIM_SPACE_DESTROY", "\(index(s, spaces))"]), "0")
      case .injectQueue(let pfn, let flags):
        return (local("poison", [hex(pfn), hex(UInt64(flags)), "HARNESS_SHIM_POISON_QUEUE"]), "WAIT_QUEUE")
      case .injectMCE(let pfn): return (local("inject_mce", [hex(pfn)]), "WAIT_MCE")
      case .injectMCEAR(let t, let pfn):
        return (inThread(t, "inject_mce_ar", [hex(pfn)]), "INJECT_SHIM | INJECT_MCE_AR | WAIT_MCE")
      case .vfioOpen(let d): return ("vfio_open(\(try Self.suffix(d.raw, i)))", "0")
      case .vfioClose(let d): return ("vfio_close(\(try Self.suffix(d.raw, i)))", "0")
      case .vfioMemory(let d, let on): return ("vfio_memory(\(try Self.suffix(d.raw, i)), \(on ? 1 : 0))", "0")
      case .vfioReset(let d): return ("vfio_reset(\(try Self.suffix(d.raw, i)))", "0")
      case .vfioLowPowerEntry(let d): return ("vfio_low_power_op(\(try Self.suffix(d.raw, i)), 0, 0)", "0")
      case .vfioLowPowerWakeup(let d, let fd):
        return ("vfio_low_power_op(\(try Self.suffix(d.raw, i)), 1, \(WakeupFD.allCases.firstIndex(of: fd)!))", "0")
      case .vfioLowPowerExit(let d): return ("vfio_low_power_op(\(try Self.suffix(d.raw, i)), 2, 0)", "0")
      case .vfioConfig(let d, let offset, let width, let value):
        return ("vfio_config(\(try Self.suffix(d.raw, i)), \(hex(offset)), \(width), \(hex(value)))", "0")
      case .vfioHotReset(let d): return ("vfio_hot_reset(\(try Self.suffix(d.raw, i)))", "0")
      case .vfioPower(let d): return ("vfio_power(\(try Self.suffix(d.raw, i)))", "0")
      case .export(let b, let d, let r):
        let ranges = r.ranges.flatMap { [hex($0.offset), hex($0.length)] }
        let array = ranges.isEmpty ? "NULL" : "(const unsigned long long[]){ " + ranges.joined(separator: ", ") + " }"
        let args = [
          "\(index(b, bufs))", try Self.suffix(d.raw, i), hex(UInt64(r.effectiveFeature)), "\(r.effectiveArgsz)", "\(r.region)",
          hex(UInt64(r.effectiveOpenFlags)), hex(UInt64(r.flags)), "\(r.effectiveNrRanges)", "\(r.ranges.count)", array,
        ]
        return ("export_buf(" + args.joined(separator: ", ") + ")", "0")
      case .bufClose(let b): return ("buf_close(\(index(b, bufs)))", "0")
      case .fdinfo(let b): return ("buf_fdinfo(\(index(b, bufs)))", "0")
      case .attach(let a, let b, let importer, let isDynamic):
        return ("imp_attach(\(index(a, attachments)), \(index(b, bufs)), \(try Self.suffix(importer.raw, i)), \(isDynamic ? 1 : 0))", "0")
      case .map(let a): return ("imp_map(\(index(a, attachments)))", "0")
      case .unmap(let a): return ("imp_unmap(\(index(a, attachments)))", "0")
      case .detach(let a): return ("imp_detach(\(index(a, attachments)))", "0")
      case .importerMode(let a, let mode):
        let constant = ["unmap": "HARNESS_SHIM_MODE_UNMAP", "remap": "HARNESS_SHIM_MODE_REMAP", "delayed": "HARNESS_SHIM_MODE_DELAYED", "never": "HARNESS_SHIM_MODE_NEVER"][mode.rawValue]!
        return ("imp_mode(\(index(a, attachments)), \(constant))", "0")
      case .ioasAlloc(let s): return ("ioas_alloc(\(index(s, ioases)))", "0")
      case .ioasMapFile(let m, let s, let b, let start, let length, let iova):
        let args = [
          "\(index(m, ioasMappings))", "\(index(s, ioases))", "\(index(b, bufs))", hex(start), hex(length),
          iova == nil ? "0" : "1", hex(iova ?? 0),
        ]
        return ("ioas_map_file(" + args.joined(separator: ", ") + ")", "0")
      case .ioasUnmap(let m): return ("ioas_unmap(\(index(m, ioasMappings)))", "0")
      case .ioasDevice(let s, let d): return ("ioas_device(\(index(s, ioases)), \(try Self.suffix(d.raw, i)))", "0")
      case .mfRace(let pfn):
        // Two memory_failure() calls at once from the runner's threads (VM/repro/race.c).
        return ("inject_check(\(hex(pfn))) ?: mf_race_calls(shim_fd, \(hex(pfn)))", "0")
      case .bufinfo(let b): return ("buf_bufinfo(\(index(b, bufs)))", "0")
      case .dmabufTrace: return ("buf_trace()", "0")
      }
    }

    /// `x0` -> `0`: exporters and importers are numbered by the guest.
    static func suffix(_ name: String, _ step: Int) throws(Unsupported) -> String {
      guard let n = Int(name.drop { $0.isLetter }), n >= 0 else {
        throw Unsupported(step: step, reason: "`\(name)` is not a numbered device or importer name")
      }
      return String(n)
    }

    /// The names the runtime prints, and the task layout (only what the program needs).
    func tables() -> String {
      var out: [String] = []
      func list(_ xs: [String]) -> String { xs.isEmpty ? "{ \"\" }" : "{ " + xs.map { "\"\($0)\"" }.joined(separator: ", ") + " }" }
      if !isSolo {
        out.append("enum { " + threads.map(task).joined(separator: ", ") + " };")
        out.append("const int ntasks = \(threads.count);")
        out.append("const char *const task_name[] = \(list(threads.map(\.description)));")
        out.append("const int task_proc[] = { " + threads.map { String(processes.firstIndex(of: $0.process)!) }.joined(separator: ", ") + " };")
        out.append("const char *const proc_name[] = \(list(processes.map(\.description)));")
      }
      if usesDmaBuf {
        out.append("const char *const buf_name[] = \(list(bufs.map(\.description)));")
        out.append("const char *const att_name[] = \(list(attachments.map(\.description)));")
      }
      return out.isEmpty ? "" : out.joined(separator: "\n") + "\n"
    }

    /// `end()`: after each op, what it returned and what the kernel did meanwhile.
    func endFunction(needsTrace: Bool, needsMCE: Bool) -> String {
      var lines = ["/* After each op: what it returned and what the kernel did meanwhile. */", "static void end(long ret)", "{"]
      let soloThread = isSolo ? threads.first : nil
      if soloThread != nil { lines += ["\tstruct signal_record sig[MAX_SIGNALS];", "\tint n;"] }
      // An op that failed queued nothing and raised nothing: no wait.
      if needsTrace || !isSolo {
        lines += [isSolo ? "\tint how = ret < 0 ? 0 : step_how();" : "\tint how = ret < 0 && ret != TASK_DIED ? 0 : step_how();"]
      }
      if lines.count > 3 { lines.append("") }
      lines.append(isSolo ? "\tstep_returned(ret);" : "\tif (ret != TASK_DIED)\n\t\tstep_returned(ret);")
      if needsMCE {
        lines += [
          "\tif (trace_collect(how) < 0) {",
          "\t\tstep_skip(\"no machine check came: inject it from QEMU's monitor (line above), or run under harness repro --run\");",
          "\t\treturn;", "\t}",
        ]
      } else if needsTrace {
        lines.append("\ttrace_collect(how);")
      }
      if needsActionRequired {
        // inject-mce-ar's thread answers 0; memory_failure() ran in it.
        lines += ["\tif (how & INJECT_MCE_AR && ret == 0)", "\t\tret = trace_died_ret(0);"]
      }
      // After the wait: a queued failure or a machine check signals when it runs.
      if !isSolo { lines.append("\tsync_all();") }
      if !isSolo { lines += ["\tif (ret == TASK_DIED)", "\t\tret = how & INJECT_ANY ? trace_died_ret(how & INJECT_SYSFS) : -ESRCH;"] }
      lines.append("\tobs_ret(ret);")
      if let t = soloThread {
        lines += ["\tn = signals_take(sig);", "\tsignals_report(\"\(t)\", 0, sig, n);"]
      }
      if usesDmaBuf { lines.append("\timp_collect();") }
      lines += ["\tkmsg_collect();", "\tstep_done();", "}"]
      return lines.joined(separator: "\n") + "\n"
    }
  }
}

