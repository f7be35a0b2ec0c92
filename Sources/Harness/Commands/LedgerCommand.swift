import ArgumentParser
import Foundation

/// `harness ledger`: the findings ledger against a kernel.
struct LedgerCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ledger",
    abstract: "The findings ledger (Corpora/findings) against a kernel.",
    subcommands: [Check.self])

  /// `harness ledger check`: still, fixed or changed, per finding.
  struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Replay every ledger entry on a kernel: still diverges as recorded, fixed, or changed.",
      discussion: """
        Each entry's sequence.seq runs in a fresh guest of its world on the kernel under test \
        (--jobs guests at once; the output is in the ledger's order whatever --jobs) \
        (Debian's 7.3.4 unless --kernel-src names a tree) and is diffed against the contract. \
        still: the ledger's deviations explain every observation, the entry's own among \
        them, and the first divergence is at the step where its observed.seq first diverges. \
        fixed: the kernel does what the contract says for the whole sequence (without the \
        entry's deviation). changed: it diverges otherwise (the diff is printed).

        An entry is expected to be still, except a model-bug-fixed one (expected to match) \
        and those --expect-fixed names (the entries your patch should fix). Exit status 0 when \
        every entry shows what it should, 1 otherwise; with --bisect, git bisect run's codes \
        (0 good, 1 bad, 125 skip when the kernel does not build or boot, or the host lacks \
        something). Text on standard output, progress on standard error, and \
        REPORTS/ledger-check/ (summary.txt, ktap.txt, summary.json, a folder per entry not as \
        expected).

        Examples:
          harness ledger check
          harness ledger check --kernel-src ~/src/linux --expect-fixed 0006
          git bisect run harness ledger check --bisect --kernel-src . --only 0006 --expect-fixed 0006
        """)

    @OptionGroup(title: "Kernel under test") var kernel: KernelOptions
    @Option(
      name: .customLong("expect-fixed"),
      help: ArgumentHelp("Entries your change should fix (ids or their numbers, comma-separated): fixed is then success, still a failure.", valueName: "ID,…"))
    var expectFixed: [String] = []
    @Option(help: ArgumentHelp("Check only these entries (ids or numbers, comma-separated).", valueName: "ID,…"))
    var only: [String] = []
    @Option(help: "Directory for reports; the run writes REPORTS/ledger-check/.") var reports: String = "reports"
    @Option(help: ArgumentHelp("Also write the JSON summary to this file.", valueName: "FILE")) var json: String?
    @Option(help: ArgumentHelp("The ledger to check (default: the project's Corpora/findings).", valueName: "DIR"))
    var findings: String?
    @Flag(help: "Exit with git bisect run's codes: 0 good, 1 bad, 125 skip (not a verdict on the kernel).")
    var bisect = false
    @OptionGroup var jobsOption: JobsOption

    func run() async throws {
      try await Bisect.run(enabled: bisect) {
        let directory = findings ?? Ledger.projectDirectory()
        var ledger = try Ledger.load(directory)
        if ledger.entries.isEmpty { throw HarnessError.usage("\(directory): no ledger entries (NNNN-name/finding.txt)") }
        let expect = try LedgerCheck.resolve(expectFixed, in: ledger)
        if !only.isEmpty {
          let keep = try LedgerCheck.resolve(only, flag: "--only", in: ledger)
          ledger.entries.removeAll { !keep.contains($0.id) }
        }
        let artifacts = try await kernel.build()
        let identity = artifacts.identity.inWorld(try LedgerCheck.worlds(of: ledger, directory: directory))
        print("harness ledger check: \(ledger.entries.count) entries on \(identity.source)")
        let start = ContinuousClock.now
        let results = try await LedgerCheck.run(ledger, directory: directory, artifacts: artifacts, expectFixed: expect, jobs: jobsOption.jobs) { i, r in
          print(LedgerCheck.line(r))
          let elapsed = Timing.seconds(ContinuousClock.now - start)
          FileHandle.standardError.write(Data(String(format: "%d/%d entries, %.1f s\n", i + 1, ledger.entries.count, elapsed).utf8))
        }
        let dir = reports + "/ledger-check"
        try LedgerCheck.write(results, identity: identity, to: dir)
        if let json { try Corpus.writeAtomically(LedgerCheck.json(results, identity: identity), to: json) }
        let text = LedgerCheck.text(results, identity: identity)
        // The diffs and the count (the per-entry lines were printed as they came).
        print(text.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(1 + results.count).joined(separator: "\n"), terminator: "")
        print("report: \(dir)/summary.txt")
        if LedgerCheck.status(results) != .ok { throw Finished(.divergence) }
      }
    }
  }
}
