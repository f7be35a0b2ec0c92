import Foundation
import Subprocess
import SystemPackage

/// Turns summed counts into a coverage folder, and renders one: `coverage.info` (lcov
/// tracefile, source paths relative to the kernel tree), `src/` (the sources it was measured
/// on), `html/index.html` (genhtml, with branches) and `summary.json`.
///
/// The counts become lines with Debian's lcov: `geninfo` runs the host's `gcov` (the compiler
/// that built the kernel, VM/build.sh) on the guest's `.gcno` notes and the summed `.gcda`
/// counts; `--initial` on the notes alone gives every line of every file, so a file whose
/// code never ran still shows at 0 %. Only the series' files are kept (not the headers whose
/// inline functions they expand).
enum CoverageReport {
  /// The folder's files.
  static let infoName = "coverage.info"
  static let htmlName = "html"
  static let sourceName = "src"
  static let summaryName = "summary.json"

  /// Writes `directory` from `collector`'s counts and returns the summary.
  static func write(_ collector: CoverageCollector, to directory: String, title: String)
    async throws -> CoverageSummary
  {
    let info = try await info(counts: collector.counts, notes: collector.notes)
    try copySources(
      from: collector.notes.directory + "/src", files: info.files.keys.sorted(), to: directory)
    return try await render(info, in: directory, title: title, collections: collector.collections)
  }

  /// The lcov data of `counts` (source path → summed counts), measured with `notes`.
  static func info(counts: [String: GCDA], notes: CoverageNotes) async throws -> LCOVInfo {
    let tools = try Tools.find()
    let fm = FileManager.default
    // Private (PrivateFiles: mkdtemp, 0700): nothing another user puts in /tmp is written through.
    let work = try PrivateFiles.makeDirectory(in: fm.temporaryDirectory.path, prefix: "harness-coverage")
    defer { PrivateFiles.remove(work) }
    for e in notes.entries {
      let stem = work + "/" + e.source.dropLast(2)
      try fm.createDirectory(
        atPath: (stem as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try fm.copyItem(atPath: notes.directory + "/" + e.notes, toPath: stem + ".gcno")
      if let c = counts[e.source] { try c.data.write(to: URL(fileURLWithPath: stem + ".gcda")) }
    }
    var info = try await geninfo(tools, work, initial: true)
    if !counts.isEmpty { info.add(try await geninfo(tools, work, initial: false)) }
    // Keep the series' files, named as in the tree.
    return info.mapFiles { path in
      notes.entries.first { path == $0.source || path.hasSuffix("/" + $0.source) }?.source
    }
  }

  /// Writes `info` into `directory` (coverage.info, summary.json) and renders it with genhtml
  /// (html/) from the sources in `directory/src`.
  static func render(_ info: LCOVInfo, in directory: String, title: String, collections: Int? = nil)
    async throws
    -> CoverageSummary
  {
    let tools = try Tools.find()
    let fm = FileManager.default
    try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try Corpus.writeAtomically(info.text, to: directory + "/" + infoName)
    let summary = CoverageSummary(info, collections: collections)
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    try Corpus.writeAtomically(
      String(decoding: try enc.encode(summary), as: UTF8.self) + "\n",
      to: directory + "/" + summaryName)
    let html = directory + "/" + htmlName
    try? fm.removeItem(atPath: html)
    // Source paths in the tracefile are relative to the tree: genhtml runs where they resolve,
    // and is told to show them from there (it would otherwise make them absolute, and strip a
    // prefix it guesses from some of them).
    let absolute = directory.hasPrefix("/") ? directory : fm.currentDirectoryPath + "/" + directory
    let src = (absolute as NSString).standardizingPath + "/" + sourceName
    let missing = info.files.keys.filter { !fm.fileExists(atPath: src + "/" + $0) }
    guard missing.isEmpty else {
      throw HarnessError(
        .usage,
        "\(directory): no source for \(missing.sorted().joined(separator: ", ")) in \(src); a coverage folder needs the sources it was measured on"
      )
    }
    try await runTool(
      tools.genhtml,
      [
        "--quiet", "--branch-coverage", "--legend", "--prefix", src, "--title", title, "--output-directory", html,
        "../" + infoName,
      ],
      in: src, what: "genhtml")
    return summary
  }

  /// Copies the measured sources into `directory/src` (the ones a folder does not have yet).
  static func copySources(from source: String, files: [String], to directory: String) throws {
    let fm = FileManager.default
    for f in files {
      let to = directory + "/" + sourceName + "/" + f
      guard !fm.fileExists(atPath: to), fm.fileExists(atPath: source + "/" + f) else { continue }
      try fm.createDirectory(
        atPath: (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try fm.copyItem(atPath: source + "/" + f, toPath: to)
    }
  }

  private static func geninfo(_ tools: Tools, _ work: String, initial: Bool) async throws
    -> LCOVInfo
  {
    let out = work + (initial ? "/initial.info" : "/counts.info")
    try await runTool(
      tools.geninfo,
      [
        "--quiet", "--gcov-tool", tools.gcov, "--rc", "lcov_branch_coverage=1", "--output-filename",
        out,
      ]
        + (initial ? ["--initial"] : []) + [work],
      in: work, what: "geninfo")
    let text = try String(contentsOfFile: out, encoding: .utf8)
    do { return try LCOVInfo(parsing: text, name: out) } catch {
      throw HarnessError(.internal, "geninfo wrote a tracefile the harness cannot read: \(error)")
    }
  }

  private static func runTool(_ tool: String, _ args: [String], in dir: String, what: String)
    async throws
  {
    let r = try await Subprocess.run(
      .path(FilePath(tool)), arguments: Arguments(args), workingDirectory: FilePath(dir),
      output: .discarded, error: .string(limit: 1 << 16))
    guard case .exited(0) = r.terminationStatus else {
      // lcov 1.16's geninfo warns about redefined subroutines on every run: not the error.
      let err = r.standardError.split(separator: "\n").filter { !$0.contains("redefined at") }
      throw HarnessError(
        .internal,
        "\(what) failed (\(r.terminationStatus)):\n\(err.suffix(20).joined(separator: "\n"))")
    }
  }

  /// lcov's programs and gcov (VM/packages lists them; VM/build.sh installs what is missing).
  struct Tools {
    var geninfo: String
    var genhtml: String
    var gcov: String

    static func find() throws(HarnessError) -> Tools {
      guard let geninfo = HostTools.find("geninfo"), let genhtml = HostTools.find("genhtml") else {
        throw .environment(
          "lcov's geninfo/genhtml not found; install it: apt-get update && apt-get install -y lcov")
      }
      guard let gcov = HostTools.find("gcov") else {
        throw .environment(
          "gcov not found (it comes with the gcc that builds the kernel); install it: apt-get update && apt-get install -y gcc"
        )
      }
      return Tools(geninfo: geninfo, genhtml: genhtml, gcov: gcov)
    }
  }
}
