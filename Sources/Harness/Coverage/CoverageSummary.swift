import Foundation

/// Line and branch percentages of the series' files, per file and per function: what
/// `summary.json` (key `coverage`) and `summary.txt` carry after `harness fuzz --coverage`.
///
/// A function's lines and branches are those from its first line (lcov's `FN`) up to the next
/// function's first line in the same file (lcov 1.16's tracefiles carry no end line); lines
/// between two functions carry no counts, so this attributes every counted line to the function
/// it belongs to.
struct CoverageSummary: Codable, Equatable, Sendable {
  struct Ratio: Codable, Equatable, Sendable {
    var found: Int
    var hit: Int
    /// `hit / found` in percent, one decimal; 0 when nothing was found.
    var percent: Double

    init(found: Int, hit: Int) {
      self.found = found
      self.hit = hit
      percent = found == 0 ? 0 : (Double(hit) * 1000 / Double(found)).rounded() / 10
    }

    var text: String { "\(String(format: "%.1f", percent)) % (\(hit)/\(found))" }
  }

  struct FileEntry: Codable, Equatable, Sendable {
    var file: String
    var lines: Ratio
    var branches: Ratio
    var functions: Ratio
  }

  struct FunctionEntry: Codable, Equatable, Sendable {
    var file: String
    var function: String
    var line: Int
    /// Times the function was entered.
    var calls: UInt64
    var lines: Ratio
    var branches: Ratio
  }

  var files: [FileEntry]
  var functions: [FunctionEntry]
  /// How many times the guests' counts were collected (before restores and at the end).
  var collections: Int?

  init(_ info: LCOVInfo, collections: Int? = nil) {
    files = []
    functions = []
    self.collections = collections
    for path in info.files.keys.sorted() {
      let f = info.files[path]!
      files.append(
        FileEntry(
          file: path, lines: Ratio(found: f.lines.count, hit: f.linesHit),
          branches: Ratio(found: f.branches.count, hit: f.branchesHit),
          functions: Ratio(found: f.functions.count, hit: f.functionsHit)))
      let starts = f.functions.sorted { ($0.value, $0.key) < ($1.value, $1.key) }
      for (k, (name, first)) in starts.enumerated() {
        let end = k + 1 < starts.count ? starts[k + 1].value : Int.max
        let range = first..<max(first + 1, end)
        let lines = f.lines.filter { range.contains($0.key) }
        let branches = f.branches.filter { range.contains($0.key.line) }
        functions.append(
          FunctionEntry(
            file: path, function: name, line: first, calls: f.functionHits[name] ?? 0,
            lines: Ratio(found: lines.count, hit: lines.values.count { $0 > 0 }),
            branches: Ratio(found: branches.count, hit: branches.values.count { ($0 ?? 0) > 0 })))
      }
    }
  }

  /// All files together.
  var total: FileEntry {
    func sum(_ k: KeyPath<FileEntry, Ratio>) -> Ratio {
      Ratio(
        found: files.reduce(0) { $0 + $1[keyPath: k].found },
        hit: files.reduce(0) { $0 + $1[keyPath: k].hit })
    }
    return FileEntry(
      file: "total", lines: sum(\.lines), branches: sum(\.branches), functions: sum(\.functions))
  }

  /// summary.txt's lines: one per file and the total.
  var lines: [String] {
    var out = ["kernel coverage (lines, branches, functions):"]
    for f in files + [total] {
      out.append(
        "  \(f.file): lines \(f.lines.text), branches \(f.branches.text), functions \(f.functions.text)"
      )
    }
    return out
  }

  /// A Markdown table per file and, for each file, its functions (for the README).
  var markdown: String {
    var out = "| file | lines | branches | functions |\n|---|---|---|---|\n"
    for f in files + [total] {
      out += "| `\(f.file)` | \(f.lines.text) | \(f.branches.text) | \(f.functions.text) |\n"
    }
    return out
  }

  /// One Markdown table of the functions of `file` (or of all files): calls, lines, branches.
  func functionMarkdown(file: String? = nil) -> String {
    var out = "| function | file | calls | lines | branches |\n|---|---|---|---|---|\n"
    for f in functions where file == nil || f.file == file {
      out +=
        "| `\(f.function)` | `\(f.file):\(f.line)` | \(f.calls) | \(f.lines.text) | \(f.branches.text) |\n"
    }
    return out
  }
}
