import ArgumentParser
import Foundation
import Fuzz
import Reference

/// `harness replay`: run sequence files and compare with their recorded expectations.
struct Replay: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run sequence files; print the observations; compare with the contract.",
    discussion: """
      Prints each sequence with the target's observations as its expectations, in the corpus \
      format (so the output is itself a sequence file). A value the kernel chose (a pid, an fd, \
      an IOVA) is shown by the model's name for it ($p1, $b2, $iova1) up to the first \
      divergence, as the comparison binds it, so that the output does not depend on the boot; \
      from the divergence on, as the guest gave it. The observations are compared with the \
      file's recorded expectations, or, where it has none, with the model's predictions for \
      the world the guest reported; the first divergence is reported on standard error and \
      the exit status is 1. With --target qemu each file runs in a fresh guest (built on \
      first use; --jobs guests at once, the output in the files' order); a divergence that is a kernel failure or a hang is followed by the last 40 \
      lines of the guest's console (the oops, the WARN, or the stuck thread's kernel stack).

      Examples:
        harness replay Corpora/regression/mf-ar-forced-blocked-dies.seq
        harness replay --quiet Corpora/regression/*.seq
        harness replay --target qemu Corpora/regression/mf-ao-early-kill.seq
        git bisect run harness replay --bisect --kernel-src . Corpora/findings/0006-*/sequence.seq

      --bisect (implies --target qemu) exits with git bisect run's codes: 0 good (every file \
      does what its expectations say), 1 bad (a divergence, a kernel failure or a hang), 125 \
      skip (the kernel does not build or boot, the host lacks something: not a verdict on \
      the kernel).
      """)

  @Argument(help: "Sequence files (Corpora/README.md format).") var files: [String]
  @Option(help: "Where sequences run: model, or qemu (alias both: the guest, compared with the contract).") var target: Target = .model
  @OptionGroup(title: "Kernel under test") var kernel: KernelOptions
  @Flag(help: "Print only divergences and a summary line, not the observations.") var quiet = false
  @Flag(help: "Exit with git bisect run's codes: 0 good, 1 bad, 125 skip (not a verdict on the kernel); runs in the guest.")
  var bisect = false
  @OptionGroup var jobsOption: JobsOption

  func validate() throws {
    if files.isEmpty { throw ValidationError("give at least one sequence file") }
  }

  func run() async throws {
    try await Bisect.run(enabled: bisect) { try await replay(target: bisect ? .qemu : target) }
  }

  private func replay(target: Target) async throws {
    // Read and check every file first: bad input never leaves a partial report.
    var loaded: [(file: String, sequence: OpSequence, world: World)] = []
    for file in files {
      let s = try Corpus.load(file)
      loaded.append((file, s, try Corpus.world(of: s, file: file)))
    }
    let artifacts = target == .model ? nil : try await kernel.build()
    let ledger = try Ledger.project()
    var diverged = 0
    // In the guest, --jobs files at once; the output in the files' order.
    let runs: [Int: GuestReplay]
    if let artifacts {
      var collected: [Int: GuestReplay] = [:]
      try await Parallel.forEach(loaded.map(\.sequence), jobs: jobsOption.jobs) { s in
        try await GuestSession.with(try GuestWorld.named(s.world), artifacts: artifacts) { g in
          GuestReplay(observed: s.ops.map { g.apply($0) }, world: g.world, console: g.console.tail(40))
        }
      } onResult: { i, r in collected[i] = r }
      runs = collected
    } else {
      runs = [:]
    }
    for (i, (file, s, builtin)) in loaded.enumerated() {
      let observed: [[Observation]]
      var world = builtin
      var console = ""
      if let run = runs[i] {
        (observed, world, console) = (run.observed, run.world, run.console)
      } else {
        observed = Machine.run(s.ops, in: world)
      }
      let predicted = Machine.run(s.ops, in: world)
      let expected = s.steps.enumerated().map { i, step in step.expected ?? predicted[i] }
      if !quiet {
        let shown = Differ.symbolic(ops: s.ops, expected: expected, observed: observed)
        print(SequenceFormat.print(s.withExpectations(shown)), terminator: "")
      }
      if let d = Differ.firstDivergence(ops: s.ops, expected: expected, observed: observed) {
        diverged += 1
        // Known or new: the ledger's deviations against the whole run (steps with hand-written
        // expectations compared as written).
        let e = Triage.explain(
          ops: s.ops, observed: observed, world: world, candidates: ledger.deviations, recorded: s.steps.map(\.expected))
        let r = SequenceResult(sequence: s, observed: observed, verdict: .divergence(e.unexplained ?? d))
        let line = VerdictLine(name: file, verdict: r.verdict, known: nil, explanation: e)
        let ids = ledger.entries(explaining: e).map(\.id).joined(separator: ", ")
        let verdict = e.isExplained ? "known: \(ids) (\(line.deviationNote ?? ""))" : "new" + (line.deviationNote.map { " (\($0))" } ?? "")
        FileHandle.standardError.write(Data("\(file): \(verdict)\n\(ReportWriter.describe(r))".utf8))
        // A kernel failure or a hang: the console holds its evidence (an oops, a WARN, the
        // stuck thread's kernel stack).
        if d.signature.kind.hasPrefix("guest-failure"), !console.isEmpty {
          FileHandle.standardError.write(Data("--- guest console, last 40 lines ---\n\(console)\n".utf8))
        }
      }
    }
    if quiet { print("replayed \(files.count) files on \(target.rawValue), \(diverged) diverged") }
    if diverged > 0 { throw Finished(.divergence) }
  }
}

/// One file's run in a guest.
private struct GuestReplay: Sendable {
  var observed: [[Observation]]
  var world: World
  var console: String
}
