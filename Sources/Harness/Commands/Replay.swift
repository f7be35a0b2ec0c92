import ArgumentParser
import Foundation
import Fuzz
import Reference

/// `harness replay`: run sequence files and compare with their recorded expectations.
struct Replay: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run sequence files; print the observations; compare with recorded expectations.",
    discussion: """
      Prints each sequence with the target's observations as its expectations, in the corpus \
      format (so the output is itself a sequence file). When the file records expectations, \
      the first divergence from them is reported on standard error and the exit status is 1.

      Examples:
        harness replay Corpora/regression/mf-ar-forced-blocked-dies.seq
        harness replay --quiet Corpora/regression/*.seq
      """)

  @Argument(help: "Sequence files (Corpora/README.md format).") var files: [String]
  @Option(help: "Where sequences run: model.") var target: Target = .model
  @Flag(help: "Print only divergences and a summary line, not the observations.") var quiet = false

  func validate() throws {
    if files.isEmpty { throw ValidationError("give at least one sequence file") }
  }

  func run() async throws {
    var diverged = 0
    for file in files {
      let s = try Corpus.load(file)
      let world = try Corpus.world(of: s, file: file)
      let observed = Machine.run(s.ops, in: world)
      if !quiet { print(SequenceFormat.print(s.withExpectations(observed)), terminator: "") }
      if let d = Differ.firstDivergence(ops: s.ops, expected: s.steps.map(\.expected), observed: observed) {
        diverged += 1
        let r = SequenceResult(sequence: s, observed: observed, verdict: .divergence(d))
        FileHandle.standardError.write(Data("\(file): \(ReportWriter.describe(r))".utf8))
      }
    }
    if quiet { print("replayed \(files.count) files, \(diverged) diverged") }
    if diverged > 0 { throw Finished(.divergence) }
  }
}
