import ArgumentParser
import Foundation
import Fuzz
import Reference

/// `harness fuzz`: generate seeded sequences and judge them.
struct Fuzz: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Generate seeded sequences, run them, report divergences.",
    discussion: """
      Sequence i of a campaign uses seed SEED+i, so `--seed 7 --count 3` runs seeds 7, 8 and 9 \
      and a single seed can be rerun alone. By default (--target both) every sequence runs on \
      the reference model and on the kernel in a QEMU guest (built on first use, booted once, \
      and reset between sequences: see --reset), and the two are diffed. A divergence is known when the \
      deviations of the findings ledger (Corpora/findings) make the model predict every \
      observation of the sequence (the entries and deviations used are named); anything else \
      is new (exit 1), reported at the first observation nothing explains, behind the known \
      deviations before it. The summary says how many ops were compared. \
      With --target model the model runs alone, its invariants checked after every op and the \
      text form checked to round-trip. The same command on the same build prints the same \
      output and writes the same files.

      Examples:
        harness fuzz --seed 1                            # model vs kernel, 100 sequences
        harness fuzz --seed 100 --count 1000 --length 50 --world all --target model
        harness fuzz --seed 7 --save-sequences corpus/   # keep the sequences with predictions
        harness fuzz --seed 1 --count 100000 --world all --budget 10m   # as many as fit in 10 min
        harness fuzz --seed 1 --count 400 --shard 0/4    # a quarter; then: harness merge reports/*-shard-*

      --budget bounds the wall time: no sequence starts after it ran out (a running one \
      finishes), the time is shared equally by the worlds, and the report says how many \
      sequences ran. The sequences themselves do not depend on it.

      A kernel failure on the guest's console (panic, oops, BUG, WARN, lockup, RCU stall) \
      is a verdict of its own, pinned on the op that caused it; so is a hang: an op that \
      keeps a guest thread in the kernel for a second (the agent's watcher puts the thread's \
      kernel stack on the console), or that does not answer within 15 s. Each new one gets \
      a report folder with the console around it; the guest is then restored from its \
      snapshot.

      --compare-kernel OTHER (a tree, or `debian` for Debian's 7.3.4) runs the same seeds on \
      that kernel too and reports, instead of divergences from the contract, the sequences \
      on which the two kernels' observations differ, op by op (what a fix or a backport \
      changed): REPORTS/compare-…/ with each kernel's observations and the diff. Exit status \
      1 when they differ on any sequence, 0 when they agree.
        harness fuzz --seed 81017 --count 100 --kernel-src ~/src/linux --compare-kernel debian

      --coverage DIR runs the campaign on the coverage flavour of the kernel (built on first \
      use: gcov on the series' files only, VM/coverage.files) and writes the line and branch \
      coverage of those files: DIR/coverage.info (lcov), DIR/html/index.html, \
      DIR/summary.json, and per file and per function into the report's summary.json. \
      `harness coverage merge` adds up several such folders.
        harness fuzz --seed 1 --world all --budget 10m --coverage cov/

      --guided --corpus DIR steers generation by the model's rules: a sequence that takes a \
      rule (or takes it more often, or runs a deciding op in a new state) than every sequence \
      before is kept in DIR/<world>/kept. Each sequence is screened on the model before it \
      runs: of up to 16 candidates (the plain seed, sequences derived from the kept ones: a \
      prefix continued, ops inserted, replaced, left out or redrawn from their input classes, \
      two spliced; fresh sequences of their own seed) the first the model predicts to reach \
      something new runs, the plain seed when none does. Every sequence run is saved in \
      DIR/<world>/runs/NAME.seq (NAME as in the report) with the contract's predictions, so \
      `harness replay` reruns any verdict. The next campaign on the same DIR starts from its \
      kept sequences. The same seed, count, kernel and DIR give the same sequences and report \
      whatever --jobs (the corpus changes only between rounds of 8 sequences; more than 8 \
      guests do not help). Not with --shard. With --coverage, a sequence that runs a line of \
      the series' files no kept sequence ran is kept too (each sequence's counts are collected \
      after it and turned into lines while the next one runs); what is kept then follows the \
      kernel.
        harness fuzz --seed 1 --world mf --budget 10m --guided --corpus corpus/ --coverage cov/
        harness fuzz --seed 1 --count 1000 --target model --guided --corpus corpus/
      """)

  @Option(help: "First seed of the campaign.") var seed: UInt64
  @Option(help: "Number of sequences (seeds SEED ..< SEED+COUNT).") var count: Int = 100
  @Option(help: "Ops per sequence.") var length: Int = 30
  @OptionGroup var worldOption: WorldOption
  @OptionGroup(title: "Kernel under test") var kernel: KernelOptions
  @Option(help: "Where sequences run: model (the reference model alone), or qemu/both (the kernel in a guest, diffed against the model).")
  var target: Target = .both
  @Option(
    help: """
      How the guest is reset between sequences: clean (the agent tears down what the sequence \
      made and checks the guest is as it booted; a snapshot restore after anything but a match \
      or a known finding, and a new divergence on a reused guest is rerun on a restored one) or \
      snapshot (a restore before every sequence).
      """)
  var reset: ResetMode = .clean
  @Option(help: "Directory for reports; the run writes REPORTS/<run-id>/.") var reports: String = "reports"
  @Option(help: "Also write every sequence, with the model's predictions, into this directory.")
  var saveSequences: String?
  @Option(help: "Stop starting sequences after this much wall time (90s, 10m, 1h30m; 1s to 8784h).")
  var budget: Budget?
  @Flag(help: "Print one line per sequence.") var verbose = false
  @OptionGroup var jobsOption: JobsOption
  @Option(
    help: ArgumentHelp(
      "Run only shard I of N (0 <= I < N): sequences I, I+N, I+2N… of the campaign, reported in REPORTS/<run-id>-shard-I-of-N/ for `harness merge`. Without it, read from JOB_COMPLETION_INDEX and HARNESS_SHARDS (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (Slurm array).",
      valueName: "I/N"))
  var shard: String?
  @Option(
    name: .customLong("compare-kernel"),
    help: ArgumentHelp("Also run the seeds on this kernel (a tree, or `debian`) and report where the two kernels differ.", valueName: "OTHER"))
  var compareKernel: String?
  @Option(
    help: ArgumentHelp(
      "How much work minimizing each new group's first sequence in the guest may take: a number of runs (the same campaign minimizes to the same sequence), or a wall time (90s, 2m); 0 turns it off.",
      valueName: "RUNS|TIME"))
  var minimizeBudget: MinimizeBudget = .runs(300)
  @Option(
    help: ArgumentHelp(
      "The findings ledger whose deviations make a divergence known (default: the project's Corpora/findings); an empty directory runs with no known findings.",
      valueName: "DIR"))
  var findings: String?
  @Option(
    help: ArgumentHelp(
      "Run on the coverage flavour of the kernel and write the series' line and branch coverage into DIR (coverage.info, html/, summary.json).",
      valueName: "DIR"))
  var coverage: String?
  @Flag(
    help: """
      Guided generation: keep the sequences that take a model rule, or take one more often, than \
      any before, or (with --coverage) run a line of the series' kernel files none ran (in --corpus); \
      run the candidate (the seed, one derived from the kept ones, a fresh one) the model predicts to reach something new; \
      every sequence run is saved there. Without it, the seeds alone.
      """)
  var guided = false
  @Option(
    help: ArgumentHelp(
      "With --guided: the corpus folder (DIR/<world>/kept: sequences kept, loaded again by the next campaign; DIR/<world>/runs: every sequence run, with the contract's predictions).",
      valueName: "DIR"))
  var corpus: String?

  func validate() throws {
    // The seeds are held in memory, 8 bytes each (a larger count ran out of memory).
    guard (1...100_000_000).contains(count) else {
      throw ValidationError("--count must be between 1 and 100000000 (got \(count)); use --budget to stop a long campaign")
    }
    guard (1...100_000).contains(length) else {
      throw ValidationError("--length must be between 1 and 100000 (got \(length))")
    }
    guard seed <= UInt64.max - UInt64(count) else {
      throw ValidationError("--seed \(seed) with --count \(count) runs past the largest seed")
    }
    if let findings {
      var isDir: ObjCBool = false
      guard FileManager.default.fileExists(atPath: findings, isDirectory: &isDir), isDir.boolValue else {
        throw ValidationError("--findings \(findings): no such directory (an empty directory is an empty ledger)")
      }
    }
    if coverage != nil {
      guard target != .model else { throw ValidationError("--coverage measures the kernel: not with --target model") }
      guard compareKernel == nil else { throw ValidationError("--coverage and --compare-kernel cannot be combined") }
    }
    if let compareKernel {
      guard target != .model else { throw ValidationError("--compare-kernel runs kernels: not with --target model") }
      var isDir: ObjCBool = false
      guard compareKernel == "debian" || (FileManager.default.fileExists(atPath: compareKernel, isDirectory: &isDir) && isDir.boolValue)
      else { throw ValidationError("--compare-kernel \(compareKernel): no such directory; give a kernel tree or `debian`") }
    }
    if guided {
      guard corpus != nil else { throw ValidationError("--guided keeps its sequences in a folder: give --corpus DIR") }
      guard compareKernel == nil else { throw ValidationError("--guided and --compare-kernel cannot be combined") }
      guard self.shard == nil else {
        throw ValidationError("--guided derives each sequence from those before it: not with --shard (use --jobs)")
      }
    } else if corpus != nil {
      throw ValidationError("--corpus is the folder of --guided: add --guided, or leave --corpus out")
    }
    let shard: Shard?
    do { shard = try Shard.resolve(flag: self.shard, environment: ProcessInfo.processInfo.environment) } catch {
      throw ValidationError(error.message)
    }
    if shard != nil, compareKernel != nil {
      throw ValidationError("--compare-kernel runs whole campaigns: not with --shard (or a scheduler's shard variables)")
    }
    if worldOption.world != "all", World.named(worldOption.world) == nil {
      throw ValidationError(
        "unknown --world \(worldOption.world); expected one of: \(World.builtin.map(\.name).joined(separator: ", ")), all")
    }
  }

  /// The worlds the guest can run, of those selected (`all` keeps the runnable ones).
  private func selectedGuestWorlds(_ worlds: [World]) throws(HarnessError) -> [GuestWorld] {
    if worldOption.world != "all" { return [try GuestWorld.named(worldOption.world)] }
    let runnable = GuestWorld.all.filter { g in worlds.contains { $0.name == g.name } }
    let rest = worlds.filter { w in !runnable.contains { $0.name == w.name } }.map(\.name)
    if !rest.isEmpty {
      print("note: \(rest.joined(separator: ", ")) cannot run in the guest yet; fuzz them with --target model")
    }
    return runnable
  }

  func run() async throws {
    let worlds = worldOption.world == "all" ? World.builtin : [World.named(worldOption.world)!]
    if let compareKernel { return try await compare(with: compareKernel, worlds: worlds) }
    let guestWorlds = try target == .model ? [] : selectedGuestWorlds(worlds)
    var artifacts = target == .model ? nil : try await kernel.build(coverage: coverage != nil)
    // The guests hand their counts to the collector on their own (CampaignCoverage).
    let kernelCoverage = try coverage.map { dir throws(HarnessError) in
      try CampaignCoverage.start(&artifacts!, directory: dir, perSequence: guided)
    }
    var campaign = Campaign(
      parameters: .init(
        world: worldOption.world, seed: seed, count: count, length: length, target: target.rawValue,
        reset: reset.rawValue, guided: guided ? true : nil),
      worlds: worlds, guestWorlds: guestWorlds, reports: reports, saveSequences: saveSequences, budget: budget,
      verbose: verbose, findings: findings, minimizeBudget: minimizeBudget, jobs: jobsOption.jobs,
      shard: try Shard.resolve(flag: shard, environment: ProcessInfo.processInfo.environment))
    campaign.coverage = kernelCoverage
    campaign.corpus = guided ? corpus : nil
    let new = try await Interruption.graceful { try await campaign.run(artifacts: artifacts) }
    if Interruption.isInterrupted {
      throw Finished(ExitStatus(rawValue: 128 + Interruption.signal) ?? .interrupted)
    }
    if new > 0 { throw Finished(.divergence) }
  }
}

extension Fuzz {
  /// `--compare-kernel`: the seeds on both kernels, the differences reported (KernelCompare).
  func compare(with otherName: String, worlds: [World]) async throws {
    let guestWorlds = try selectedGuestWorlds(worlds)
    let runID = "compare-\(worldOption.world)-\(seed)-\(count)-l\(length)"
    let title = "harness fuzz --compare-kernel: world \(worldOption.world), seeds \(seed)..<\(seed + UInt64(count)), \(length) ops each"
    print(title)
    let this = try await kernel.build()
    var otherRequest = kernel.request
    otherRequest.source = otherName == "debian" ? nil : otherName
    let other = try await GuestBuild.build(otherRequest)
    let thisID = this.identity.inWorld(worldOption.world)
    let otherID = other.identity.inWorld(worldOption.world)
    print("this kernel: \(thisID.source)\nother kernel: \(otherID.source)")
    let seeds = (0..<UInt64(count)).map { seed + $0 }
    let progress = Progress(total: 2 * count * guestWorlds.count)
    let (differences, _) = try await KernelCompare.run(
      worlds: guestWorlds, seeds: seeds, length: length, reset: reset, ledger: try Ledger.project(), this: this, other: other,
      jobs: jobsOption.jobs
    ) { progress.step(ops: length, verdicts: 0) }
    progress.finish()
    let names = guestWorlds.flatMap { gw in seeds.map { guestWorlds.count > 1 ? "\(gw.name)-seed-\($0)" : "seed-\($0)" } }
    let dir = reports + "/" + runID
    try KernelCompare.write(
      differences, names: names, title: title, this: thisID, other: otherID,
      worlds: Dictionary(uniqueKeysWithValues: guestWorlds.map { ($0.name, $0.model) }), to: dir)
    for d in differences {
      print("\(d.name): the kernels differ at step \(d.divergence.step + 1): \(d.divergence.signature) (\(dir)/\(d.name)/diff.txt)")
    }
    print("sequences \(names.count), the kernels differ on \(differences.count)")
    print("report: \(dir)/summary.txt")
    if !differences.isEmpty { throw Finished(.divergence) }
  }
}

extension MinimizeBudget: ExpressibleByArgument {
  package static var defaultCompletionKind: CompletionKind { .default }
  package var defaultValueDescription: String {
    switch self {
    case .runs(let n): "\(n)"
    case .time(let d): "\(d.components.seconds)s"
    }
  }
}
