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

  /// One op line: its keyword, then what its kind's ``OpSpec/syntax`` says.
  package static func print(_ op: Op) -> String {
    let spec = op.kind.spec
    var line = spec.keyword
    var values = op.fieldValues.makeIterator()
    for token in spec.syntax {
      switch token {
      case .word(let w): line += " " + w
      case .field(let f): line += print(values.next()!, of: f)
      }
    }
    return line
  }

  /// One field as it follows the previous token: ` p1`, ` addr=0x1000`, or nothing (an optional
  /// field left out).
  private static func print(_ v: FieldValue, of f: FieldSpec) -> String {
    let text: String
    switch v {
    case .absent: return ""
    case .unsigned(0) where f.form == .keyedUnlessZero: return ""
    case .flag(let b):
      switch f.type {
      case .flag(let yes, let no): text = b ? yes : no
      case .marker(let word): return b ? " " + word : ""
      default: preconditionFailure("flag value for \(f.name)")
      }
    case .name(let s), .choice(let s): text = s
    case .thread(let t): text = t.description
    case .unsigned(let n):
      if case .unsigned(_, hex: true) = f.type { text = hex(n) } else { text = String(n) }
    case .signed(let n): text = String(n)
    case .ranges(let r):
      text = r.isEmpty ? "none" : r.map { "\(hex($0.offset))+\(hex($0.length))" }.joined(separator: ",")
    }
    return f.form == .positional ? " " + text : " \(f.name)=" + text
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
    case .importer(let a, .remap(let v)): return "importer \(a) remap=" + print(v)
    case .importer(let a, .revoke(let c)): return "importer \(a) revoke=\(c.rawValue)"
    case .importer(let a, .stale(let n)): return "importer \(a) stale=\(n)"
    case .sgTable(let a, let t):
      let entries = t.entries.map { "\(print($0.address))/\(hex($0.length))" }
      return (["sgt \(a) nents=\(t.nents) orig=\(t.origNents)"] + entries).joined(separator: " ")
    case .fdinfo(let b, let size, let exp): return "fdinfo \(b) size=\(hex(size)) exp=\(exp)"
    case .bufinfo(let b, let size, let exp, let attached):
      let list = attached.isEmpty ? "-" : attached.map(\.description).joined(separator: ",")
      return "bufinfo \(b) size=\(hex(size)) exp=\(exp) attached=\(list)"
    case .dmabufTrace(.export(let b)): return "trace export \(b)"
    case .dmabufTrace(.fd(let b)): return "trace fd \(b)"
    case .dmabufTrace(.attach(let b, let i, let dynamic)): return "trace attach \(b) \(i) dynamic=\(dynamic ? 1 : 0)"
    case .dmabufTrace(.detach(let b, let i, let dynamic)): return "trace detach \(b) \(i) dynamic=\(dynamic ? 1 : 0)"
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
