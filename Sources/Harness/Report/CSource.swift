/// A C file of the reproducer runtime (`VM/repro`) or a uapi header, cut into its top-level
/// definitions, so that a reproducer can carry only the definitions its program reaches.
///
/// The files follow one layout rule, which the reproducer tests check: a definition (a function
/// with its comment, a struct, a table, a `#define`, a declaration) starts in column 0 and ends
/// with its closing `}`/`};`, its `;` or its preprocessor line; blank lines separate them. The
/// file's own header comment, `#include` lines and include guard are not definitions.
struct CSource: Sendable {
  struct Definition: Sendable, Equatable {
    /// The definition's text, its leading comment included, without a final newline.
    var text: String
    /// Identifiers it defines or declares.
    var names: Set<String>
    /// Identifiers its code mentions (comments and string literals left out).
    var uses: Set<String>
  }

  var path: String
  var definitions: [Definition]
  /// Its `#include <…>` lines (the project's own includes are left out).
  var systemIncludes: [String]

  init(path: String, text: String) {
    self.init(path: path, text: text, isFile: true)
  }

  /// `isFile`: the text is a whole file (its header comment and include guard are skipped);
  /// otherwise the inside of a conditional block.
  private init(path: String, text: String, isFile: Bool) {
    self.path = path
    var definitions: [Definition] = []
    var includes: [String] = []
    var current: [Substring] = []
    var depth = 0
    var inComment = false
    var inMacro = false
    var conditional = 0
    var headerDone = !isFile
    func flush() {
      let text = current.joined(separator: "\n")
      current = []
      guard !text.isEmpty else { return }
      let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
      if let open = lines.firstIndex(where: { $0.hasPrefix("#if") }), lines.last?.hasPrefix("#endif") == true {
        // A conditional block: one definition for everything inside, or an include.
        let inner = lines[(open + 1)..<(lines.count - 1)]
        if inner.allSatisfy({ $0.hasPrefix("#include") }) {
          includes.append(text)
          return
        }
        let nested = CSource(path: path, text: inner.joined(separator: "\n"), isFile: false)
        let names = nested.definitions.reduce(into: Set<String>()) { $0.formUnion($1.names) }
        let uses = nested.definitions.reduce(into: Set<String>()) { $0.formUnion($1.uses) }
        definitions.append(Definition(text: text, names: names, uses: uses.subtracting(names)))
        return
      }
      let code = CSource.code(of: text)
      let names = CSource.names(definedBy: code)
      guard !names.isEmpty else { return }
      definitions.append(Definition(text: text, names: names, uses: CSource.uses(in: code).subtracting(names)))
    }
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      if conditional > 0 {
        current.append(line)
        if line.hasPrefix("#if") { conditional += 1 }
        if line.hasPrefix("#endif") {
          conditional -= 1
          if conditional == 0 { flush() }
        }
        continue
      }
      if current.isEmpty && depth == 0 && !inComment {
        if trimmed.isEmpty || line.hasPrefix("// SPDX") || line.hasPrefix("/* SPDX") || line == "#define _GNU_SOURCE" {
          continue
        }
        if line.hasPrefix("#include") {
          if line.contains("<") { includes.append(String(line)) }
          continue
        }
        // An include guard (`#ifndef NAME_H`, `#define NAME_H`, the last `#endif`).
        if isFile && (line.hasPrefix("#ifndef ") || line.hasPrefix("#define ")) && line.hasSuffix("_H") { continue }
        if isFile && line.hasPrefix("#endif") { continue }
      }
      if depth == 0 && !inComment && line.hasPrefix("#if") {
        conditional = 1
        current.append(line)
        continue
      }
      // The file's header comment: the first comment, before any definition.
      if !headerDone {
        if current.isEmpty && line.hasPrefix("/*") {
          headerDone = line.contains("*/")
          current = headerDone ? [] : ["<header>"]
          continue
        }
        if current == ["<header>"] {
          if line.contains("*/") {
            headerDone = true
            current = []
          }
          continue
        }
        headerDone = true
      }
      if trimmed.isEmpty && depth == 0 && !inComment && !inMacro {
        flush()
        continue
      }
      current.append(line)
      if inMacro || (depth == 0 && !inComment && trimmed.hasPrefix("#")) {
        inMacro = trimmed.hasSuffix("\\")
        if !inMacro { flush() }
        continue
      }
      (depth, inComment) = CSource.scan(line, depth: depth, inComment: inComment)
      if depth == 0 && !inComment && (trimmed.hasSuffix(";") || trimmed == "}") { flush() }
    }
    flush()
    self.definitions = definitions
    self.systemIncludes = includes
  }

  /// Brace depth and comment state after `line`.
  private static func scan(_ line: Substring, depth: Int, inComment: Bool) -> (Int, Bool) {
    var depth = depth
    var inComment = inComment
    var quote: Character? = nil
    var previous: Character = " "
    var escaped = false
    for c in line {
      defer { previous = c }
      if inComment {
        if previous == "*" && c == "/" { inComment = false }
        continue
      }
      if let q = quote {
        if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == q { quote = nil }
        continue
      }
      switch c {
      case "\"", "'": quote = c
      case "*" where previous == "/": inComment = true
      case "/" where previous == "/": return (depth, false)
      case "{": depth += 1
      case "}": depth -= 1
      default: break
      }
    }
    return (depth, inComment)
  }

  /// The text without comments and string or character literals.
  static func code(of text: String) -> String {
    var out = ""
    var inComment = false
    var lineComment = false
    var quote: Character? = nil
    var escaped = false
    var previous: Character = " "
    for c in text {
      defer { previous = c }
      if lineComment {
        if c == "\n" { lineComment = false; out.append(c) }
        continue
      }
      if inComment {
        if previous == "*" && c == "/" { inComment = false; out.append(" ") }
        continue
      }
      if let q = quote {
        if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == q { quote = nil; out.append(c) }
        continue
      }
      switch c {
      case "\"", "'":
        quote = c
        out.append(c)
      case "*" where previous == "/":
        out.removeLast()
        inComment = true
      case "/" where previous == "/":
        out.removeLast()
        lineComment = true
      default: out.append(c)
      }
    }
    return out
  }

  /// The identifiers a definition's code refers to: member names (after `.` or `->`, and the
  /// declarators of a struct's members) are not references.
  static func uses(in code: String) -> Set<String> {
    var names: Set<String> = []
    var word = ""
    var afterMember = false
    var previous: Character = " "
    var beforePrevious: Character = " "
    let isStruct = code.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("struct ") && code.contains("{")
    var members: Set<String> = []
    if isStruct, let open = code.firstIndex(of: "{") {
      for piece in code[open...].split(separator: ";") {
        let declarator = piece.prefix { $0 != "[" && $0 != ":" }
        if let last = identifiers(in: String(declarator)).isEmpty ? nil : CSource.lastIdentifier(String(declarator)) {
          members.insert(last)
        }
      }
    }
    for c in code + " " {
      if c == "_" || c.isLetter || (c.isNumber && !word.isEmpty) {
        if word.isEmpty {
          afterMember = (previous == "." && beforePrevious != ".") || (previous == ">" && beforePrevious == "-")
        }
        word.append(c)
      } else {
        if !word.isEmpty && !afterMember && !members.contains(word) { names.insert(word) }
        word = ""
      }
      if !c.isWhitespace {
        beforePrevious = previous
        previous = c
      }
    }
    return names
  }

  /// The text without comments (literals kept), without blank or trailing-space lines.
  static func withoutComments(_ text: String) -> String {
    var out = ""
    var inComment = false
    var quote: Character? = nil
    var escaped = false
    var previous: Character = " "
    for c in text {
      defer { previous = c }
      if inComment {
        if previous == "*" && c == "/" { inComment = false }
        continue
      }
      if let q = quote {
        out.append(c)
        if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == q { quote = nil }
        continue
      }
      if c == "\"" || c == "'" { quote = c }
      if c == "*" && previous == "/" {
        out.removeLast()
        inComment = true
        continue
      }
      out.append(c)
    }
    return out.split(separator: "\n").map { line in
      var l = String(line)
      while l.last == " " || l.last == "\t" { l.removeLast() }
      return l
    }.filter { !$0.isEmpty }.joined(separator: "\n")
  }

  static func identifiers(in code: String) -> Set<String> {
    var names: Set<String> = []
    var word = ""
    for c in code + " " {
      if c == "_" || c.isLetter || (c.isNumber && !word.isEmpty) {
        word.append(c)
      } else {
        if !word.isEmpty { names.insert(word) }
        word = ""
      }
    }
    return names
  }

  /// The names a definition's code defines or declares: a macro, a function (or its
  /// prototype), a struct, a typedef, the enumerators of an enum, a variable or table.
  static func names(definedBy code: String) -> Set<String> {
    let t = code.trimmingCharacters(in: .whitespacesAndNewlines)
    if t.hasPrefix("#define") {
      return firstIdentifier(String(t.dropFirst(7))).map { [$0] } ?? []
    }
    if t.hasPrefix("enum") {
      guard let open = t.firstIndex(of: "{"), let close = t.lastIndex(of: "}") else { return [] }
      return Set(
        t[t.index(after: open)..<close].split(separator: ",").compactMap {
          firstIdentifier(String($0))
        })
    }
    // The head: up to the first `{`, `=` or `;`.
    let head = String(t.prefix { $0 != "{" && $0 != "=" && $0 != ";" })
    if head.hasPrefix("typedef"), let star = head.range(of: "(*") {
      return firstIdentifier(String(head[star.upperBound...])).map { [$0] } ?? []
    }
    if let paren = head.firstIndex(of: "(") {
      return lastIdentifier(String(head[..<paren])).map { [$0] } ?? []
    }
    if head.hasPrefix("struct ") && t.dropFirst(head.count).hasPrefix("{") {
      return firstIdentifier(String(head.dropFirst(7))).map { [$0] } ?? []
    }
    let declarator = String(head.prefix { $0 != "[" })
    return lastIdentifier(declarator).map { [$0] } ?? []
  }

  private static func firstIdentifier(_ s: String) -> String? {
    let trimmed = s.drop { !($0 == "_" || $0.isLetter) }
    let word = trimmed.prefix { $0 == "_" || $0.isLetter || $0.isNumber }
    return word.isEmpty ? nil : String(word)
  }

  static func lastIdentifier(_ s: String) -> String? {
    let trimmed = s.reversed().drop { !($0 == "_" || $0.isLetter || $0.isNumber) }
    let word = String(trimmed.prefix { $0 == "_" || $0.isLetter || $0.isNumber }.reversed())
    return word.isEmpty || word.first!.isNumber ? nil : word
  }
}

extension CSource {
  /// The definitions of `sources` that `roots` reach, transitively, per source in file order.
  static func closure(of roots: Set<String>, in sources: [CSource]) -> [[CSource.Definition]] {
    var needed: Set<String> = []
    var work = Array(roots)
    var byName: [String: [(Int, Int)]] = [:]
    for (s, source) in sources.enumerated() {
      for (d, def) in source.definitions.enumerated() {
        for n in def.names { byName[n, default: []].append((s, d)) }
      }
    }
    var taken: Set<[Int]> = []
    while let name = work.popLast() {
      guard needed.insert(name).inserted else { continue }
      for (s, d) in byName[name] ?? [] where taken.insert([s, d]).inserted {
        work.append(contentsOf: sources[s].definitions[d].uses.subtracting(needed))
      }
    }
    return sources.indices.map { s in
      sources[s].definitions.indices.filter { taken.contains([s, $0]) }.map { sources[s].definitions[$0] }
    }
  }
}
