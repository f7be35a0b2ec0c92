import Reference

/// A malformed sequence file, op or observation line: where, and what was expected.
package struct FormatError: Error, Hashable, Sendable, CustomStringConvertible {
  package var file: String
  package var line: Int
  package var column: Int
  package var message: String

  package init(file: String, line: Int, column: Int, message: String) {
    self.file = file
    self.line = line
    self.column = column
    self.message = message
  }

  /// `file:line:column: error: message`, the form editors and compilers use.
  package var description: String { "\(file):\(line):\(column): error: \(message)" }
}

extension SequenceFormat {
  /// Parses a whole sequence file (Corpora/README.md).
  package static func parse(_ text: String, file: String = "<input>") throws(FormatError)
    -> OpSequence
  {
    // CR or CRLF line ends: rejected at the first CR (Swift's "\r\n" is one Character, so the
    // file would otherwise read as one line and be echoed whole in the error).
    if let cr = text.utf8.firstIndex(of: 13) {
      let before = text.utf8[..<cr]
      let line = before.reduce(1) { $0 + ($1 == 10 ? 1 : 0) }
      let lineStart = before.lastIndex(of: 10).map { text.utf8.index(after: $0) } ?? text.utf8.startIndex
      let column = text.utf8.distance(from: lineStart, to: cr) + 1
      throw FormatError(
        file: file, line: line, column: column,
        message: "carriage return: sequence files have LF line ends, not CRLF or CR (convert with `sed -i 's/\\r$//' FILE`)")
    }
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    if lines.last == "" { lines.removeLast() }
    func fail(_ n: Int, _ col: Int, _ msg: String) -> FormatError {
      FormatError(file: file, line: n, column: col, message: msg)
    }
    guard let first = lines.first else {
      throw fail(1, 1, "empty file: expected `harness-sequence \(OpSequence.formatVersion)`")
    }
    guard first == "harness-sequence \(OpSequence.formatVersion)" else {
      if first.hasPrefix("harness-sequence ") {
        throw fail(1, 18, "unsupported format version \(quoted(first.dropFirst(17))): expected \(OpSequence.formatVersion)")
      }
      throw fail(1, 1, "expected `harness-sequence \(OpSequence.formatVersion)` as the first line")
    }
    guard lines.count > 1, lines[1].hasPrefix("world ") else {
      throw fail(2, 1, "expected `world NAME` on line 2")
    }
    let world = String(lines[1].dropFirst(6))
    guard !world.isEmpty, !world.contains(" ") else {
      throw fail(2, 7, "expected one world name after `world `")
    }
    var seq = OpSequence(world: world)
    var n = 2
    if n < lines.count, lines[n].hasPrefix("seed ") {
      guard let seed = parseUnsigned(lines[n].dropFirst(5)) else {
        throw fail(n + 1, 6, "expected a seed (a non-negative integer)")
      }
      seq.seed = seed
      n += 1
    }
    guard n < lines.count, lines[n].isEmpty else {
      throw fail(n + 1, 1, "expected an empty line ending the header (or `seed N`)")
    }
    n += 1
    var comments: [String] = []
    while n < lines.count {
      let line = lines[n]
      let lineNo = n + 1
      n += 1
      if line.hasPrefix("#") {
        comments.append(String(line))
        continue
      }
      if line.hasPrefix("  ") {
        guard !seq.steps.isEmpty, comments.isEmpty else {
          throw fail(lineNo, 1, "an expected observation must follow an op line")
        }
        let o = try parseObservation(line.dropFirst(2), file: file, line: lineNo, column: 3)
        // Appended in place: rebuilding the array per line made n observations cost O(n²).
        if seq.steps[seq.steps.count - 1].expected == nil { seq.steps[seq.steps.count - 1].expected = [] }
        seq.steps[seq.steps.count - 1].expected!.append(o)
        continue
      }
      if line.isEmpty { throw fail(lineNo, 1, "unexpected empty line (only the header ends with one)") }
      if line.first == " " {
        throw fail(lineNo, 1, "observations are indented by exactly two spaces")
      }
      let op = try parseOp(line, file: file, line: lineNo)
      seq.steps.append(OpSequence.Step(comments: comments, op: op))
      comments = []
    }
    seq.trailingComments = comments
    return seq
  }

  /// Parses one op line: its keyword, then what its kind's ``OpSpec/syntax`` says.
  package static func parseOp(_ text: Substring, file: String = "<input>", line: Int = 1)
    throws(FormatError) -> Op
  {
    var c = try Cursor(text, file: file, line: line, column: 1)
    let (kw, kwCol) = try c.token("an op")
    guard let kinds = OpKind.kinds(keyword: kw) else {
      throw c.error(kwCol, "unknown op \(quoted(kw)); expected one of: \(Op.allKeywords.joined(separator: ", "))")
    }
    var kind = kinds[0]
    var chosen = kinds.count == 1
    var values: [FieldValue] = []
    var position = 0
    while position < kind.spec.syntax.count {
      switch kind.spec.syntax[position] {
      case .word where !chosen:
        // The kinds that share the keyword differ at their first word (`prctl P.tN mce-kill …`
        // or `prctl P.tN mce-kill-get`).
        func word(_ k: OpKind) -> String? {
          guard position < k.spec.syntax.count, case .word(let w) = k.spec.syntax[position] else { return nil }
          return w
        }
        let what = alternatives(kinds.compactMap(word))
        let (t, col) = try c.token(what)
        guard let k = kinds.first(where: { word($0) == String(t) }) else {
          throw c.error(col, "expected \(what), found \(quoted(t))")
        }
        kind = k
        chosen = true
      case .word(let w): try c.word(w)
      case .field(let f): values.append(try c.field(f))
      }
      position += 1
    }
    try c.end()
    return Op(kind, values)
  }

  /// `` `a` ``, `` `a` or `b` ``, `` `a`, `b` or `c` ``.
  static func alternatives(_ words: [String]) -> String {
    let quoted = words.map { "`\($0)`" }
    guard quoted.count > 1 else { return quoted.first ?? "" }
    return quoted.dropLast().joined(separator: ", ") + " or " + quoted.last!
  }

  /// Parses one observation line (without indentation).
  package static func parseObservation(
    _ text: Substring, file: String = "<input>", line: Int = 1, column: Int = 1
  ) throws(FormatError) -> Observation {
    var c = try Cursor(text, file: file, line: line, column: column)
    let (word, kwCol) = try c.token("an observation")
    // `sig? …`, `notify? …`: what the contract permits without requiring it (C3.5, C7.5).
    let isOptional = word.hasSuffix("?")
    let kw = isOptional ? word.dropLast() : word
    if isOptional && kw != "sig" && kw != "notify" {
      throw c.error(kwCol, "only a signal or a notification can be optional (`sig? …`, `notify? …`), found \(quoted(word))")
    }
    let o: Observation
    switch kw {
    case "=":
      let (v, col) = try c.token("a value")
      guard let value = parseValue(v) else {
        throw c.error(col, "expected a number, an errno (`-EINVAL`) or a symbol (`$p1`), found \(quoted(v))")
      }
      o = .result(value)
    case "sig":
      let t = try c.thread()
      let (s, scol) = try c.token("a signal name")
      guard let signo = Signal.numbers[String(s)] else { throw c.error(scol, "unknown signal \(quoted(s))") }
      let code: Int32
      switch c.peek {
      case "AR": code = SignalCode.actionRequired; _ = try c.token("")
      case "AO": code = SignalCode.actionOptional; _ = try c.token("")
      default: code = try c.int32(key: "code")
      }
      o = .signal(t, signo: signo, code: code, addr: try c.unsigned("addr"), lsb: try c.int32(key: "lsb"))
    case "exit":
      let p: ProcessName = try c.name("a process name")
      if c.peekKey("signal") {
        let (s, scol) = try c.keyedValue("signal")
        guard let n = Signal.numbers[String(s)] ?? Int32(s) else {
          throw c.error(scol, "unknown signal \(quoted(s))")
        }
        o = .processEnd(p, .killed(signal: n))
      } else {
        o = .processEnd(p, .exited(code: try c.int32(key: "code")))
      }
    case "mf":
      let pfn = try c.unsigned("pfn")
      let type = Int(try c.unsigned("type", max: 0xffff))
      let result = try c.keyedChoice("result", MFResultName.self, "`ignored`, `failed`, `delayed` or `recovered`")
      o = .memoryFailure(pfn: pfn, type: type, result: result.value)
    case "notify": o = .notify(try c.name("an attachment name"))
    case "importer":
      let a: AttachmentName = try c.name("an attachment name")
      let (kv, col) = try c.token("remap=V, revoke=R or stale=N")
      if kv.hasPrefix("remap="), let v = parseValue(kv.dropFirst(6)) {
        o = .importer(a, .remap(v))
      } else if kv.hasPrefix("revoke="), let r = RevokeCompletion(rawValue: String(kv.dropFirst(7))) {
        o = .importer(a, .revoke(r))
      } else if kv.hasPrefix("stale="), let n = Int(kv.dropFirst(6)), n >= 0 {
        o = .importer(a, .stale(n))
      } else {
        throw c.error(col, "expected remap=V, revoke=waited|blocked|early or stale=N, found \(quoted(kv))")
      }
    case "sgt":
      let a: AttachmentName = try c.name("an attachment name")
      let nents = Int(try c.unsigned("nents", max: 1 << 31))
      let orig = Int(try c.unsigned("orig", max: 1 << 31))
      var entries: [SgEntry] = []
      while c.peek != nil {
        let (e, col) = try c.token("")
        guard let entry = parseSgEntry(e) else {
          throw c.error(col, "expected an sg entry ADDR/LEN (ADDR `0x…` or `$iovaN+0x…`), found \(quoted(e))")
        }
        entries.append(entry)
      }
      o = .sgTable(a, SgTable(nents: nents, origNents: orig, entries: entries))
    case "fdinfo":
      let b: BufName = try c.name("a dma-buf name")
      let size = try c.unsigned("size")
      let (exp, _) = try c.keyedValue("exp")
      o = .fdinfo(b, size: size, exporter: String(exp))
    case "bufinfo":
      let b: BufName = try c.name("a dma-buf name")
      let size = try c.unsigned("size")
      let (exp, _) = try c.keyedValue("exp")
      let (list, col) = try c.keyedValue("attached")
      var attached: [ImporterName] = []
      if list != "-" {
        for n in list.split(separator: ",", omittingEmptySubsequences: false) {
          guard let i = ImporterName(String(n)) else {
            throw c.error(col, "expected importer names separated by commas, or -, found \(quoted(list))")
          }
          attached.append(i)
        }
      }
      o = .bufinfo(b, size: size, exporter: String(exp), attached: attached)
    case "trace":
      let (event, col) = try c.token("a dma_buf event: export, fd, attach or detach")
      let b: BufName = try c.name("a dma-buf name")
      switch event {
      case "export": o = .dmabufTrace(.export(b))
      case "fd": o = .dmabufTrace(.fd(b))
      case "attach", "detach":
        let i: ImporterName = try c.name("an importer name")
        let (d, dcol) = try c.keyedValue("dynamic")
        guard d == "0" || d == "1" else { throw c.error(dcol, "expected dynamic=0 or dynamic=1") }
        o = .dmabufTrace(event == "attach" ? .attach(b, i, isDynamic: d == "1") : .detach(b, i, isDynamic: d == "1"))
      default:
        throw c.error(col, "expected a dma_buf event export, fd, attach or detach, found \(quoted(event))")
      }
    case "failure":
      let (kind, _) = try c.token("a failure kind")
      let (detail, col) = c.rest
      guard let d = unquote(detail) else {
        throw c.error(col, "expected a double-quoted detail string")
      }
      return .guestFailure(kind: String(kind), detail: d)
    default:
      throw c.error(kwCol, "unknown observation \(quoted(kw)); expected =, sig, exit, mf, notify, importer, sgt, fdinfo, bufinfo, trace or failure")
    }
    try c.end()
    return isOptional ? .optional(o) : o
  }

  /// A decimal or `0x` hexadecimal non-negative integer.
  package static func parseUnsigned(_ s: Substring) -> UInt64? {
    if s.hasPrefix("0x") { return s.count > 2 ? UInt64(s.dropFirst(2), radix: 16) : nil }
    guard let f = s.first, f.isASCII, f.isNumber else { return nil }
    return UInt64(s)
  }

  /// A result value: a number, `-ENAME` / `-N` (an errno), or `$symbol`.
  package static func parseValue(_ s: Substring) -> ResultValue? {
    if s.hasPrefix("$") {
      let name = s.dropFirst()
      guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
      else { return nil }
      return .symbol(Symbol(String(name)))
    }
    if s.hasPrefix("-") {
      let rest = s.dropFirst()
      if let n = Errno.numbers[String(rest)] { return .error(Errno(n)) }
      if let n = Int32(rest), n > 0 { return .error(Errno(n)) }
      return nil
    }
    guard let n = parseUnsigned(s), n <= UInt64(Int64.max) else { return nil }
    return .number(Int64(n))
  }

  private static func parseSgEntry(_ s: Substring) -> SgEntry? {
    let parts = s.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, let len = parseUnsigned(parts[1]) else { return nil }
    if parts[0].hasPrefix("$") {
      let p = parts[0].dropFirst().split(separator: "+", omittingEmptySubsequences: false)
      guard p.count == 2, !p[0].isEmpty, let off = parseUnsigned(p[1]) else { return nil }
      return SgEntry(.iova(Symbol(String(p[0])), offset: off), len)
    }
    guard let a = parseUnsigned(parts[0]) else { return nil }
    return SgEntry(.concrete(a), len)
  }

  private static func unquote(_ s: Substring) -> String? {
    guard s.count >= 2, s.first == "\"", s.last == "\"" else { return nil }
    var out = ""
    var escaped = false
    for ch in s.dropFirst().dropLast() {
      if escaped {
        switch ch {
        case "n": out.append("\n")
        case "\\", "\"": out.append(ch)
        default: return nil
        }
        escaped = false
      } else if ch == "\\" {
        escaped = true
      } else if ch == "\"" {
        return nil
      } else {
        out.append(ch)
      }
    }
    return escaped ? nil : out
  }
}

extension SequenceFormat {
  /// `text` in backquotes for an error message, cut to its first 80 characters: a message
  /// quotes a token, never a whole line or file.
  package static func quoted<S: StringProtocol>(_ text: S) -> String {
    text.count <= 80 ? "`\(text)`" : "`\(text.prefix(80))…` (\(text.utf8.count) bytes)"
  }
}

private func quoted<S: StringProtocol>(_ text: S) -> String { SequenceFormat.quoted(text) }

/// `MFResult` by its printed name, for `keyedChoice`.
private struct MFResultName: RawRepresentable {
  var value: MFResult
  init?(rawValue: String) {
    guard let v = MFResult.allCases.first(where: { $0.name == rawValue }) else { return nil }
    value = v
  }
  var rawValue: String { value.name }
}

/// Reads the tokens of one line, left to right, with their columns.
private struct Cursor {
  let tokens: [(text: Substring, column: Int)]
  let source: Substring
  let startColumn: Int
  let file: String
  let line: Int
  var i = 0
  var lastColumn = 0

  init(_ text: Substring, file: String, line: Int, column: Int) throws(FormatError) {
    self.file = file
    self.line = line
    self.source = text
    self.startColumn = column
    var toks: [(Substring, Int)] = []
    var col = column
    for part in text.split(separator: " ", omittingEmptySubsequences: false) {
      if part.isEmpty {
        throw FormatError(file: file, line: line, column: col, message: "expected one space between tokens")
      }
      if let tab = part.firstIndex(of: "\t") {
        throw FormatError(
          file: file, line: line, column: col + part.distance(from: part.startIndex, to: tab),
          message: "tab character: tokens are separated by one space")
      }
      toks.append((part, col))
      col += part.count + 1
    }
    tokens = toks
  }

  var endColumn: Int { startColumn + source.count }

  func error(_ column: Int, _ message: String) -> FormatError {
    FormatError(file: file, line: line, column: column, message: message)
  }

  var peek: Substring? { i < tokens.count ? tokens[i].text : nil }

  func peekKey(_ key: String) -> Bool { peek?.hasPrefix(key + "=") ?? false }

  /// The rest of the line from the current token on (for quoted strings).
  var rest: (Substring, Int) {
    guard i < tokens.count else { return ("", endColumn) }
    let col = tokens[i].column
    return (source.dropFirst(col - startColumn), col)
  }

  mutating func token(_ what: String) throws(FormatError) -> (Substring, Int) {
    guard i < tokens.count else { throw error(endColumn, "expected \(what) at the end of the line") }
    defer { i += 1 }
    lastColumn = tokens[i].column
    return tokens[i]
  }

  mutating func end() throws(FormatError) {
    if i < tokens.count {
      throw error(tokens[i].column, "unexpected \(quoted(tokens[i].text)) after the end of the line's arguments")
    }
  }

  mutating func word(_ w: String) throws(FormatError) {
    let (t, col) = try token("`\(w)`")
    guard t == w else { throw error(col, "expected `\(w)`, found \(quoted(t))") }
  }

  mutating func flag(yes: String, no: String) throws(FormatError) -> Bool {
    let (t, col) = try token("`\(yes)` or `\(no)`")
    if t == yes { return true }
    if t == no { return false }
    throw error(col, "expected `\(yes)` or `\(no)`, found \(quoted(t))")
  }

  /// The longest name: the agent's buffers hold 31 characters (VM/agent/agent.h, NAME_LEN).
  static let maxNameLength = 31

  mutating func name<K>(_ what: String) throws(FormatError) -> Name<K> {
    let (t, col) = try token(what)
    guard t.utf8.count <= Self.maxNameLength else {
      throw error(col, "\(what) is \(t.utf8.count) characters long, at most \(Self.maxNameLength): \(quoted(t))")
    }
    guard let n = Name<K>(String(t)) else {
      throw error(col, "expected \(what) (a lower-case letter, then letters, digits, _ or -), found \(quoted(t))")
    }
    return n
  }

  mutating func thread() throws(FormatError) -> ThreadRef {
    let (t, col) = try token("a thread (`p1.t0`)")
    guard let dot = t.lastIndex(of: "."), t[..<dot].utf8.count <= Self.maxNameLength, let p = ProcessName(String(t[..<dot])),
      t[t.index(after: dot)...].hasPrefix("t"),
      let n = Int(t[t.index(dot, offsetBy: 2)...]), n >= 0, n < 1 << 20
    else { throw error(col, "expected a thread as PROCESS.tN (`p1.t0`), found \(quoted(t))") }
    return ThreadRef(p, n)
  }

  mutating func keyedValue(_ key: String) throws(FormatError) -> (Substring, Int) {
    let (t, col) = try token("`\(key)=…`")
    guard t.hasPrefix(key + "=") else { throw error(col, "expected `\(key)=…`, found \(quoted(t))") }
    return (t.dropFirst(key.count + 1), col + key.count + 1)
  }

  mutating func keyedName<K>(_ key: String) throws(FormatError) -> Name<K> {
    let (v, col) = try keyedValue(key)
    guard v.utf8.count <= Self.maxNameLength else {
      throw error(col, "the name after `\(key)=` is \(v.utf8.count) characters long, at most \(Self.maxNameLength): \(quoted(v))")
    }
    guard let n = Name<K>(String(v)) else { throw error(col, "expected a name after `\(key)=`, found \(quoted(v))") }
    return n
  }

  mutating func keyedChoice<T: RawRepresentable>(_ key: String, _: T.Type, _ what: String)
    throws(FormatError) -> T where T.RawValue == String
  {
    let (v, col) = try keyedValue(key)
    guard let x = T(rawValue: String(v)) else { throw error(col, "expected \(what), found \(quoted(v))") }
    return x
  }

  mutating func choice<T: RawRepresentable>(_: T.Type, _ what: String) throws(FormatError) -> T
  where T.RawValue == String {
    let (v, col) = try token(what)
    guard let x = T(rawValue: String(v)) else { throw error(col, "expected \(what), found \(quoted(v))") }
    return x
  }

  /// An unsigned number, after `key=` if `key` is given.
  mutating func unsigned(_ key: String?, _ what: String = "", max: UInt64 = .max) throws(FormatError)
    -> UInt64
  {
    let (v, col): (Substring, Int)
    if let key { (v, col) = try keyedValue(key) } else { (v, col) = try token(what) }
    guard let n = SequenceFormat.parseUnsigned(v) else {
      throw error(col, "expected a non-negative number (decimal or 0x hex) for \(key ?? what), found \(quoted(v))")
    }
    guard n <= max else { throw error(col, "\(key ?? what) \(quoted(v)) is out of range (at most \(SequenceFormat.hex(max)))") }
    return n
  }

  mutating func uint32(_ key: String) throws(FormatError) -> UInt32 {
    UInt32(try unsigned(key, max: UInt64(UInt32.max)))
  }

  mutating func signed(key: String) throws(FormatError) -> Int64 {
    let (v, col) = try keyedValue(key)
    let neg = v.hasPrefix("-")
    // -2^63 (`Int64.min`) has no positive counterpart.
    guard let m = SequenceFormat.parseUnsigned(neg ? v.dropFirst() : v), m <= UInt64(Int64.max) + (neg ? 1 : 0) else {
      throw error(col, "expected an integer for \(key), found \(quoted(v))")
    }
    return neg ? Int64(truncatingIfNeeded: 0 &- m) : Int64(m)
  }

  mutating func int32(key: String) throws(FormatError) -> Int32 {
    let col = i < tokens.count ? tokens[i].column + key.count + 1 : endColumn
    let v = try signed(key: key)
    guard let n = Int32(exactly: v) else { throw error(col, "\(key) \(v) is out of range for a 32-bit integer") }
    return n
  }
}

extension Cursor {
  /// One field of an op line, as its spec says it is written.
  mutating func field(_ f: FieldSpec) throws(FormatError) -> FieldValue {
    switch f.form {
    case .optionalKeyed where !peekKey(f.name): return .absent
    case .keyedUnlessZero where !peekKey(f.name): return .unsigned(0)
    default: break
    }
    let keyed = f.form != .positional
    switch f.type {
    case .process, .space, .device, .importer, .buf, .attachment, .ioas, .ioasMapping:
      let n: ProcessName = keyed ? try keyedName(f.name) : try name(f.what)
      return .name(n.raw)
    case .thread: return .thread(try thread())
    case .unsigned(let max, _):
      let v = try unsigned(keyed ? f.name : nil, f.what, max: max)
      if let check = f.check, let message = check(v) { throw error(lastColumn, message) }
      return .unsigned(v)
    case .signed(let bits):
      return .signed(bits == 32 ? Int64(try int32(key: f.name)) : try signed(key: f.name))
    case .flag(let yes, let no): return .flag(try flag(yes: yes, no: no))
    case .choice(let words):
      let what = SequenceFormat.alternatives(words)
      let (v, col) = keyed ? try keyedValue(f.name) : try token(what)
      guard words.contains(String(v)) else { throw error(col, "expected \(what), found \(quoted(v))") }
      return .choice(String(v))
    case .ranges:
      let (text, col) = try keyedValue(f.name)
      var ranges: [DMARange] = []
      if text != "none" {
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
          let pieces = part.split(separator: "+", omittingEmptySubsequences: false)
          guard pieces.count == 2, let off = SequenceFormat.parseUnsigned(pieces[0]),
            let len = SequenceFormat.parseUnsigned(pieces[1])
          else { throw error(col, "expected ranges as OFFSET+LENGTH,… or `none`, found \(quoted(part))") }
          ranges.append(DMARange(offset: off, length: len))
        }
      }
      return .ranges(ranges)
    case .marker(let word):
      guard peek == Substring(word) else { return .flag(false) }
      _ = try token("")
      return .flag(true)
    }
  }
}
