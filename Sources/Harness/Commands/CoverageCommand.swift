import ArgumentParser
import Foundation

/// `harness coverage`: kernel coverage folders (`fuzz --coverage DIR`) merged, rendered, shown.
struct CoverageCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "coverage",
    abstract: "Merge and show the kernel coverage of campaigns (harness fuzz --coverage DIR).",
    discussion: """
      A coverage folder holds coverage.info (lcov: line, branch and function counts of the \
      series' files, paths relative to the kernel tree), src/ (the sources measured), \
      html/index.html (genhtml) and summary.json (per file and per function).

      Examples:
        harness coverage merge cov-mf/ cov-p2p/ -o cov-all/
        harness coverage show cov-all/ --functions
      """,
    subcommands: [Merge.self, Show.self])

  /// `harness coverage merge`: counts added, the HTML rendered again.
  struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Add up coverage folders or .info files into a new folder and render it.",
      discussion: """
        Counts of the same file and line add up. A .info file's sources are taken from src/ \
        beside it. The output folder gets coverage.info, src/, html/ and summary.json.

        Example: harness coverage merge cov-1/ cov-2/coverage.info -o cov/
        """)
    @Argument(help: ArgumentHelp("Coverage folders or lcov .info files.", valueName: "INPUT"))
    var inputs: [String]
    @Option(name: .shortAndLong, help: ArgumentHelp("The folder to write.", valueName: "DIR"))
    var output: String
    @Option(help: "The report's title.") var title = "harness: kernel coverage of the series"

    func validate() throws {
      guard !inputs.isEmpty else { throw ValidationError("give at least one INPUT") }
    }

    func run() async throws {
      var merged = LCOVInfo()
      for input in inputs {
        let folder = try CoverageFolder(input)
        merged.add(try folder.load())
        try CoverageReport.copySources(
          from: folder.sources, files: merged.files.keys.sorted(), to: output)
      }
      let summary = try await CoverageReport.render(merged, in: output, title: title)
      for line in summary.lines { print(line) }
      print("coverage: \(output)/\(CoverageReport.htmlName)/index.html")
    }
  }

  /// `harness coverage show`: per file (and per function) tables.
  struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "Print a coverage folder's (or .info file's) line and branch coverage as Markdown tables.",
      discussion: "Example: harness coverage show cov/ --functions")
    @Argument(help: ArgumentHelp("A coverage folder or an lcov .info file.", valueName: "INPUT"))
    var input: String
    @Flag(help: "Also one row per function.") var functions = false

    func run() throws {
      let summary = CoverageSummary(try CoverageFolder(input).load())
      print(summary.markdown, terminator: "")
      if functions {
        print()
        print(summary.functionMarkdown(), terminator: "")
      }
    }
  }
}

/// A coverage input on the command line: a folder with coverage.info, or a .info file.
private struct CoverageFolder {
  var info: String
  /// Where its sources are (src/ beside the tracefile).
  var sources: String

  init(_ path: String) throws(HarnessError) {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
      throw .usage(
        "\(path): no such file or folder; give a coverage folder (harness fuzz --coverage DIR) or an lcov .info file"
      )
    }
    info = isDir.boolValue ? path + "/" + CoverageReport.infoName : path
    let dir = (info as NSString).deletingLastPathComponent
    sources = (dir.isEmpty ? "." : dir) + "/" + CoverageReport.sourceName
  }

  func load() throws(HarnessError) -> LCOVInfo {
    guard let text = try? String(contentsOfFile: info, encoding: .utf8) else {
      throw .usage("\(info): cannot read it; a coverage folder has \(CoverageReport.infoName)")
    }
    do { return try LCOVInfo(parsing: text, name: info) } catch { throw .usage("\(error)") }
  }
}
