import Reference

/// The text form of sequences, ops and observations (Corpora/README.md).
package enum SequenceFormat {}

extension SequenceFormat {
  /// The whole file: header, ops, their expectations and comments. Ends with a newline.
  package static func print(_ s: OpSequence) -> String {
    var out = "harness-sequence \(OpSequence.formatVersion)\nworld \(s.world)\n"
    if let seed = s.seed { out += "seed \(seed)\n" }
    out += "\n"
    for step in s.steps {
      for c in step.comments { out += c + "\n" }
      out += print(step.op) + "\n"
      for o in step.expected ?? [] { out += "  " + print(o) + "\n" }
    }
    for c in s.trailingComments { out += c + "\n" }
    return out
  }

  package static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
  package static func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }

  /// One op line.
  package static func print(_ op: Op) -> String {
    let k = op.keyword
    switch op {
    case .spawn(let p): return "\(k) \(p)"
    case .fork(let t, let child): return "\(k) \(t) \(child)"
    case .threadCreate(let t), .threadExit(let t): return "\(k) \(t)"
    case .exit(let p, let code): return "\(k) \(p) code=\(code)"
    case .mceKill(let t, let a2, let a3): return "\(k) \(t) mce-kill \(a2) \(a3)"
    case .mceKillGet(let t): return "\(k) \(t) mce-kill-get"
    case .sigbus(let p, let d): return "\(k) \(p) \(d.rawValue)"
    case .sigmask(let t, let blocked): return "\(k) \(t) \(blocked ? "block" : "unblock")"
    case .sysctlEarlyKill(let v): return "\(k) early-kill=\(v)"
    case .mmap(let p, let addr, let pages, let region, let pgoff):
      return "\(k) \(p) addr=\(hex(addr)) pages=\(pages) region=\(region) pgoff=\(hex(pgoff))"
    case .munmap(let p, let addr, let pages): return "\(k) \(p) addr=\(hex(addr)) pages=\(pages)"
    case .madviseDontFork(let p, let addr, let pages):
      return "\(k) \(p) addr=\(hex(addr)) pages=\(pages) dontfork"
    case .spaceCreate(let s, let first, let last, let cb):
      return "\(k) \(s) first=\(hex(first)) last=\(hex(last)) callback=\(cb.rawValue)"
    case .spaceRegister(let s), .spaceUnregister(let s), .spaceDestroy(let s): return "\(k) \(s)"
    case .injectSysfs(let t, let pfn): return "\(k) \(t) pfn=\(hex(pfn))"
    case .injectShim(let t, let pfn, let flags):
      return "\(k) \(t) pfn=\(hex(pfn)) flags=\(hex(flags))"
    case .injectQueue(let pfn, let flags): return "\(k) pfn=\(hex(pfn)) flags=\(hex(flags))"
    case .injectMCE(let pfn): return "\(k) pfn=\(hex(pfn))"
    case .vfioOpen(let d), .vfioClose(let d), .vfioReset(let d): return "\(k) \(d)"
    case .vfioMemory(let d, let on): return "\(k) \(d) \(on ? "on" : "off")"
    case .export(let b, let d, let r):
      let ranges =
        r.ranges.isEmpty
        ? "none" : r.ranges.map { "\(hex($0.offset))+\(hex($0.length))" }.joined(separator: ",")
      var line = "\(k) \(b) \(d) region=\(r.region) ranges=\(ranges)"
      if let f = r.feature { line += " feature=\(hex(f))" }
      if let a = r.argsz { line += " argsz=\(a)" }
      if let n = r.nrRanges { line += " nr=\(n)" }
      if r.flags != 0 { line += " flags=\(hex(r.flags))" }
      if let o = r.openFlags { line += " open=\(hex(o))" }
      return line
    case .bufClose(let b), .fdinfo(let b): return "\(k) \(b)"
    case .attach(let a, let b, let i, let isDynamic):
      return "\(k) \(a) \(b) importer=\(i)" + (isDynamic ? "" : " static")
    case .map(let a), .unmap(let a), .detach(let a): return "\(k) \(a)"
    }
  }

  package static func print(_ v: ResultValue) -> String {
    switch v {
    case .number(let n): String(n)
    case .error(let e): e.description
    case .symbol(let s): s.description
    }
  }

  package static func print(_ a: DMAAddress) -> String {
    switch a {
    case .concrete(let v): hex(v)
    case .iova(let s, let off): "\(s)+\(hex(off))"
    }
  }

  /// One observation line (without the two-space indentation of an expectation).
  package static func print(_ o: Observation) -> String {
    switch o {
    case .result(let v): return "= " + print(v)
    case .signal(let t, let signo, let code, let addr, let lsb):
      let name = Signal.names[signo] ?? "signo=\(signo)"
      let c =
        switch code {
        case SignalCode.actionRequired: "AR"
        case SignalCode.actionOptional: "AO"
        default: "code=\(code)"
        }
      return "sig \(t) \(name) \(c) addr=\(hex(addr)) lsb=\(lsb)"
    case .processEnd(let p, .exited(let code)): return "exit \(p) code=\(code)"
    case .processEnd(let p, .killed(let sig)):
      return "exit \(p) signal=\(Signal.names[sig] ?? String(sig))"
    case .memoryFailure(let pfn, let type, let result):
      return "mf pfn=\(hex(pfn)) type=\(type) result=\(result.name)"
    case .notify(let a): return "notify \(a)"
    case .sgTable(let a, let t):
      let entries = t.entries.map { "\(print($0.address))/\(hex($0.length))" }
      return (["sgt \(a) nents=\(t.nents) orig=\(t.origNents)"] + entries).joined(separator: " ")
    case .fdinfo(let b, let size, let exp): return "fdinfo \(b) size=\(hex(size)) exp=\(exp)"
    case .guestFailure(let kind, let detail): return "failure \(kind) \(quote(detail))"
    case .optional(let o):
      // `sig? …`: the keyword takes the question mark.
      let line = print(o)
      let space = line.firstIndex(of: " ") ?? line.endIndex
      return line[..<space] + "?" + line[space...]
    }
  }

  /// A double-quoted string with `\\`, `\"` and `\n` escaped.
  package static func quote(_ s: String) -> String {
    var out = "\""
    for c in s {
      switch c {
      case "\\": out += "\\\\"
      case "\"": out += "\\\""
      case "\n": out += "\\n"
      default: out.append(c)
      }
    }
    return out + "\""
  }
}
