import Foundation

/// Line, branch and function counts per source file: the content of an lcov tracefile
/// (`.info`, as `geninfo` writes it: `SF`, `FN`, `FNDA`, `BRDA`, `DA` records).
///
/// Invariant: per file, every count is non-negative; a branch whose block never ran has no
/// count (`-` in the file), which is different from a count of 0 (lcov's convention, kept so
/// genhtml draws it the same). Files are kept by path; merging adds counts.
struct LCOVInfo: Equatable, Sendable {
  /// One source file's records.
  struct File: Equatable, Sendable {
    /// Function name → first line.
    var functions: [String: Int] = [:]
    /// Function name → times entered.
    var functionHits: [String: UInt64] = [:]
    /// Line → times run.
    var lines: [Int: UInt64] = [:]
    /// (line, block, branch) → times taken, nil when the block never ran.
    var branches: [BranchID: UInt64?] = [:]

    var linesHit: Int { lines.values.count { $0 > 0 } }
    var branchesHit: Int { branches.values.count { ($0 ?? 0) > 0 } }
    var functionsHit: Int { functions.keys.count { (functionHits[$0] ?? 0) > 0 } }

    mutating func add(_ other: File) {
      for (name, line) in other.functions { functions[name] = functions[name] ?? line }
      for (name, n) in other.functionHits { functionHits[name, default: 0] &+= n }
      for (line, n) in other.lines { lines[line, default: 0] &+= n }
      for (id, n) in other.branches {
        switch (branches[id], n) {
        case (.none, _): branches[id] = n
        case (.some(.none), _): branches[id] = n
        case (.some(.some(let a)), .some(let b)): branches[id] = a &+ b
        case (.some(.some), .none): break
        }
      }
    }
  }

  struct BranchID: Hashable, Comparable, Sendable {
    var line: Int
    var block: Int
    var branch: Int
    static func < (a: BranchID, b: BranchID) -> Bool {
      (a.line, a.block, a.branch) < (b.line, b.block, b.branch)
    }
  }

  var files: [String: File] = [:]

  /// A line that does not parse.
  struct ParseError: Error, CustomStringConvertible {
    var description: String
  }

  init() {}

  /// Parses a tracefile; `name` is used in error messages (`name:line: …`).
  init(parsing text: String, name: String = "<info>") throws(ParseError) {
    var current: (path: String, file: File)?
    for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
      func bad(_ why: String) -> ParseError {
        ParseError(description: "\(name):\(n + 1): \(why): `\(line)`")
      }
      guard let colon = line.firstIndex(of: ":") else {
        if line == "end_of_record" {
          guard let c = current else { throw bad("end_of_record without SF") }
          files[c.path, default: File()].add(c.file)
          current = nil
        } else if !line.isEmpty {
          throw bad("not an lcov record")
        }
        continue
      }
      let key = line[..<colon]
      let fields = line[line.index(after: colon)...].split(
        separator: ",", omittingEmptySubsequences: false)
      if key == "SF" {
        current = (String(line[line.index(after: colon)...]), File())
        continue
      }
      if key == "TN" { continue }
      guard current != nil else { throw bad("record outside SF … end_of_record") }
      switch key {
      case "FN":
        // FN:<line>,<name> (lcov 1.x); FN:<line>,<end>,<name> (2.x).
        guard fields.count >= 2, let l = Int(fields[0]) else { throw bad("bad FN") }
        current!.file.functions[String(fields[fields.count - 1])] = l
      case "FNDA":
        guard fields.count == 2, let c = UInt64(fields[0]) else { throw bad("bad FNDA") }
        current!.file.functionHits[String(fields[1]), default: 0] &+= c
      case "DA":
        guard fields.count >= 2, let l = Int(fields[0]), let c = UInt64(fields[1]) else {
          throw bad("bad DA")
        }
        current!.file.lines[l, default: 0] &+= c
      case "BRDA":
        guard fields.count == 4, let l = Int(fields[0]), let b = Int(fields[1]),
          let r = Int(fields[2])
        else {
          throw bad("bad BRDA")
        }
        let taken: UInt64? = fields[3] == "-" ? nil : UInt64(fields[3])
        if fields[3] != "-", taken == nil { throw bad("bad BRDA count") }
        var one = File()
        one.branches[BranchID(line: l, block: b, branch: r)] = taken
        current!.file.add(one)
      case "FNF", "FNH", "LF", "LH", "BRF", "BRH", "VER", "FNL", "FNA":
        continue  // totals are recomputed; lcov 2.x's extra records are not needed here
      default:
        throw bad("unknown record \(key)")
      }
    }
    if current != nil {
      throw ParseError(description: "\(name): ends inside a record (no end_of_record)")
    }
  }

  /// The tracefile, files and records sorted (the same counts give the same bytes).
  var text: String {
    var out = ""
    for path in files.keys.sorted() {
      let f = files[path]!
      out += "TN:\nSF:\(path)\n"
      let fns = f.functions.sorted { ($0.value, $0.key) < ($1.value, $1.key) }
      for (name, line) in fns { out += "FN:\(line),\(name)\n" }
      for (name, _) in fns { out += "FNDA:\(f.functionHits[name] ?? 0),\(name)\n" }
      out += "FNF:\(f.functions.count)\nFNH:\(f.functionsHit)\n"
      for (id, n) in f.branches.sorted(by: { $0.key < $1.key }) {
        out += "BRDA:\(id.line),\(id.block),\(id.branch),\(n.map(String.init) ?? "-")\n"
      }
      out += "BRF:\(f.branches.count)\nBRH:\(f.branchesHit)\n"
      for (line, n) in f.lines.sorted(by: { $0.key < $1.key }) { out += "DA:\(line),\(n)\n" }
      out += "LF:\(f.lines.count)\nLH:\(f.linesHit)\nend_of_record\n"
    }
    return out
  }

  /// Counts added file by file.
  mutating func add(_ other: LCOVInfo) {
    for (path, f) in other.files { files[path, default: File()].add(f) }
  }

  /// Only the files `keep` accepts, renamed to what it returns.
  func mapFiles(_ keep: (String) -> String?) -> LCOVInfo {
    var out = LCOVInfo()
    for (path, f) in files {
      if let p = keep(path) { out.files[p, default: File()].add(f) }
    }
    return out
  }
}
