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
  @Option(help: "Stop starting sequences after this much wall time (90s, 10m, 1h30m).")
  var budget: Budget?
  @Flag(help: "Print one line per sequence.") var verbose = false
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

  func validate() throws {
    guard count > 0 else { throw ValidationError("--count must be at least 1 (got \(count))") }
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
    if let compareKernel {
      guard target != .model else { throw ValidationError("--compare-kernel runs kernels: not with --target model") }
      var isDir: ObjCBool = false
      guard compareKernel == "debian" || (FileManager.default.fileExists(atPath: compareKernel, isDirectory: &isDir) && isDir.boolValue)
      else { throw ValidationError("--compare-kernel \(compareKernel): no such directory; give a kernel tree or `debian`") }
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
    let runID = "fuzz-\(worldOption.world)-\(seed)-\(count)-l\(length)-\(target.rawValue)"
    var writer = ReportWriter(
      directory: reports + "/" + runID,
      title: "harness fuzz: world \(worldOption.world), seeds \(seed)..<\(seed + UInt64(count)), \(length) ops each, target \(target.rawValue)")
    print(writer.title)
    var stats = CampaignStats()
    var verdicts: [VerdictLine] = []
    var groups: [VerdictGroup] = []
    let ledger = try findings.map { dir throws(HarnessError) in try Ledger.load(dir) } ?? Ledger.project()
    let guestWorlds = try target == .model ? [] : selectedGuestWorlds(worlds)
    let artifacts = target == .model ? nil : try await kernel.build()
    writer.identity = artifacts?.identity.inWorld(worldOption.world) ?? .modelOnly(world: worldOption.world)
    print("kernel: \(writer.identity!.source)")
    let progress = Progress(total: count * (target == .model ? worlds.count : guestWorlds.count))
    func record(_ name: String, _ sequence: OpSequence, _ result: SequenceResult, _ world: World) throws {
      stats.add(sequence, result.observed, explanation: result.explanation)
      if let hits = result.ruleHits { stats.add(rules: hits) }
      let known = result.knownIDs(ledger)
      let line = VerdictLine(name: name, verdict: result.verdict, known: known, explanation: result.explanation)
      verdicts.append(line)
      if let known {
        print("\(name): \(result.verdict.signature!) (known: \(known); \(line.deviationNote ?? ""))")
      } else if result.verdict != .match {
        let w = result.world ?? world
        if let cause = result.rootCause(ledger, world: w) {
          VerdictGroup.add(name, result, cause: cause, world: world.name, to: &groups)
        }
        try writer.writeVerdict(result, name: name, world: result.world ?? world, worldName: world.name)
        if let console = result.console {
          try Corpus.writeAtomically(console, to: "\(writer.directory)/\(name)/console.log")
        }
        let behind = line.deviationNote.map { "; " + $0 } ?? ""
        print("\(name): \(result.verdict.signature!) (\(writer.directory)/\(name)/diff.txt\(behind))")
      } else if verbose {
        print("\(name): ok")
      }
      if let dir = saveSequences {
        let text = SequenceFormat.print(sequence.withExpectations(result.observed))
        try Corpus.writeAtomically(text, to: "\(dir)/\(name).seq")
      }
      progress.step(ops: sequence.steps.count, verdicts: verdicts.count { $0.isNew })
    }
    let seeds = (0..<UInt64(count)).map { seed + $0 }
    let multi = (target == .model ? worlds.count : guestWorlds.count) > 1
    var resetLines: [String] = []
    let share = budget.map { $0.duration / max(1, target == .model ? worlds.count : guestWorlds.count) }
    var budgetStops: [String] = []
    func outOfTime(_ start: ContinuousClock.Instant, _ world: String, _ done: Int) -> Bool {
      guard let share, ContinuousClock.now - start >= share else { return false }
      budgetStops.append("\(world): --budget ran out after \(done) of \(count) sequences")
      return true
    }
    if let artifacts {
      for gw in guestWorlds {
        let start = ContinuousClock.now
        let r = try await GuestRun.campaign(
          gw, artifacts: artifacts, seeds: seeds, length: length, reset: reset,
          ledger: ledger, shouldStop: { done in outOfTime(start, gw.name, done) }
        ) { s, seq, result in
          try record(multi ? "\(gw.name)-seed-\(s)" : "seed-\(s)", seq, result, gw.model)
        }
        resetLines.append(r.line(gw.name))
        // Timings: on the terminal only, never in the (deterministic) report.
        var times: [String] = []
        if r.restores > 0 { times.append("mean snapshot restore \(Bench.Guest.ms(r.restoreTime / r.restores))") }
        if r.cleanResets > 0 { times.append("mean clean reset \(Bench.Guest.ms(r.cleanTime / r.cleanResets))") }
        if !times.isEmpty {
          FileHandle.standardError.write(Data("\(gw.name): \(times.joined(separator: ", "))\n".utf8))
        }
      }
    } else {
      for world in worlds {
        let start = ContinuousClock.now
        for (done, s) in seeds.enumerated() {
          if outOfTime(start, world.name, done) { break }
          let sequence = Generator.generate(world: world, seed: s, length: length)
          try record(multi ? "\(world.name)-seed-\(s)" : "seed-\(s)", sequence, ModelRun.run(sequence, world: world), world)
        }
      }
    }
    progress.finish()
    groups = VerdictGroup.ordered(groups)
    if let artifacts, !groups.isEmpty, !minimizeBudget.isZero {
      // One representative per group, minimized in a guest of its world (group-N/).
      let start = ContinuousClock.now
      let total = groups.count
      try await GroupMinimizer.minimize(&groups, writer: writer, artifacts: artifacts, ledger: ledger, budget: minimizeBudget) { i, g in
        FileHandle.standardError.write(
          Data("minimizing group-\(i + 1) of \(total) (\(g.members[0]), \(g.cause))\n".utf8))
      }
      FileHandle.standardError.write(Data("minimized \(groups.count) group(s) in \(Bench.Guest.ms(ContinuousClock.now - start))\n".utf8))
    }
    try writer.writeSummary(results: verdicts, stats: stats, groups: groups, notes: resetLines + budgetStops)
    let new = verdicts.count(where: \.isNew)
    let known = verdicts.count { $0.known != nil }
    print("sequences \(stats.sequences), ops \(stats.ops), new verdicts \(new), known \(known)")
    if let compared = stats.comparedLine { print(compared) }
    if !groups.isEmpty { print("new groups: \(groups.count)") }
    for (i, g) in groups.enumerated() { print(g.summaryLines(i + 1), terminator: "") }
    for line in resetLines + budgetStops { print(line) }
    print("report: \(writer.directory)/summary.txt")
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
      worlds: guestWorlds, seeds: seeds, length: length, reset: reset, ledger: try Ledger.project(), this: this, other: other
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

/// Running a sequence on the model alone.
enum ModelRun {
  /// Runs the model, checking its invariants after every op and the text round trip.
  static func run(_ sequence: OpSequence, world: World) -> SequenceResult {
    var m = Machine(world: world)
    m.countRules()
    var observed: [[Observation]] = []
    for (i, op) in sequence.ops.enumerated() {
      observed.append(m.apply(op))
      if let v = m.invariantViolation() {
        var r = SequenceResult(sequence: sequence, observed: observed, verdict: .modelInvariant(step: i, message: v))
        r.ruleHits = m.ruleHits
        return r
      }
    }
    let text = SequenceFormat.print(sequence.withExpectations(observed))
    if (try? SequenceFormat.parse(text)).map(SequenceFormat.print) != text {
      return SequenceResult(
        sequence: sequence, observed: observed,
        verdict: .modelInvariant(step: sequence.steps.count - 1, message: "text form does not round-trip"))
    }
    var r = SequenceResult(sequence: sequence, observed: observed, verdict: .match)
    r.ruleHits = m.ruleHits
    return r
  }
}

/// How the guest is brought back to its boot state between sequences.
enum ResetMode: String, CaseIterable, ExpressibleByArgument, Sendable {
  /// The agent tears down what the sequence made and checks the guest is as it booted
  /// (`reset`, VM/agent/PROTOCOL.md), after a match or a known finding that showed nothing worse
  /// than a WARN; a snapshot restore instead after anything else, or when the check finds
  /// something left over. A divergence the ledger does not know, met on a guest that had
  /// already run other sequences, is run again on a restored guest before it is reported.
  case clean
  /// A snapshot restore (`loadvm`) before every sequence.
  case snapshot
}

/// Running sequences in the guest and diffing them against the model.
///
/// One guest serves many sequences: it boots once and takes a snapshot when the agent is ready.
/// Between sequences it is reset either by the agent's teardown (``ResetMode/clean``: QEMU's
/// translated code stays warm, which a restore throws away) or from the snapshot
/// (GUEST.md: tens of milliseconds instead of a boot). A guest that died, or whose restore
/// failed, is replaced by a fresh boot, and the campaign says so in its counts.
enum GuestRun {
  /// How the guest was reset between sequences.
  struct Resets: Sendable {
    var boots = 0
    var restores = 0
    /// Restores that failed and fell back to a reboot.
    var fallbacks = 0
    var restoreTime: Duration = .zero
    /// Teardowns by the agent after which the guest was as it booted.
    var cleanResets = 0
    var cleanTime: Duration = .zero
    /// Teardowns that found something left over (the guest was restored instead): the seed
    /// that ran before and what was left.
    var refused: [(seed: UInt64, what: String)] = []
    /// Sequences run again on a restored guest because they diverged on a reused one.
    var reruns = 0

    /// The summary's line for `world` (no timings: the report is deterministic).
    func line(_ world: String) -> String {
      var l = "\(world): \(boots) boots, \(restores) snapshot restores, \(fallbacks) fell back to reboot"
      if cleanResets + refused.count + reruns > 0 {
        l += ", \(cleanResets) clean resets by the agent, \(refused.count) refused, \(reruns) reruns on a restored guest"
      }
      for r in refused { l += "\n  reset after seed \(r.seed) refused: \(r.what)" }
      return l
    }
  }

  /// Runs `seeds` of `world`; `onResult` is called after each sequence, in seed order.
  /// `ledger`: the findings it knows; with clean resets, a divergence met on a reused guest is
  /// rerun on a restored one unless the ledger explains it (a recorded kernel finding needs no
  /// second run to be reported as known; anything else must reproduce from its seed alone
  /// before it is reported as new).
  static func campaign(
    _ world: GuestWorld, artifacts: GuestArtifacts, seeds: [UInt64], length: Int,
    reset mode: ResetMode = .clean, ledger: Ledger = Ledger(),
    shouldStop: (Int) -> Bool = { _ in false },
    onBoot: (GuestSession) -> Void = { _ in },
    onResult: (UInt64, OpSequence, SequenceResult) throws -> Void
  ) async throws -> Resets {
    var resets = Resets()
    var next = 0
    var stopped = false
    while next < seeds.count && !stopped {
      resets.boots += 1
      next = try await GuestSession.with(world, artifacts: artifacts) { g in
        var i = next
        onBoot(g)
        let canSnapshot = g.takeSnapshot()
        /// Seeds run on this guest since it was last fresh (booted or restored).
        var history: [UInt64] = []
        var needsRestore = false
        func restore() -> Bool {
          let start = ContinuousClock.now
          guard canSnapshot, g.restoreSnapshot() else {
            resets.fallbacks += canSnapshot ? 1 : 0
            return false
          }
          resets.restores += 1
          resets.restoreTime += ContinuousClock.now - start
          history = []
          return true
        }
        while i < seeds.count {
          if shouldStop(i) {
            stopped = true
            break
          }
          if needsRestore {
            guard restore() else { break }
          }
          var (s, r) = runOne(g, seed: seeds[i], length: length, ledger: ledger)
          if r.verdict != .match, !history.isEmpty, r.knownIDs(ledger) == nil {
            // Judged on a fresh guest: what is reported must reproduce from the seed alone.
            let before = history
            guard restore() else { break }
            resets.reruns += 1
            let (_, fresh) = runOne(g, seed: seeds[i], length: length, ledger: ledger)
            r = fresh.verdict == .match ? r.carried(after: before) : fresh
          }
          try onResult(seeds[i], s, r)
          history.append(seeds[i])
          i += 1
          needsRestore = true
          if mode == .clean, g.fatal == nil, r.verdict == .match || Self.isCleanable(r, ledger: ledger) {
            let start = ContinuousClock.now
            let dirty = g.cleanReset()
            if dirty.isEmpty {
              resets.cleanResets += 1
              resets.cleanTime += ContinuousClock.now - start
              needsRestore = false
            } else {
              resets.refused.append((seeds[i - 1], dirty.joined(separator: "; ")))
            }
          }
          if g.fatal != nil && !canSnapshot { break }
        }
        return i
      }
    }
    return resets
  }

  /// Whether a sequence that did not match may still be followed by a clean reset instead of a
  /// restore: its divergence is known, no entry that explains it says `reset: restore` (findings
  /// that leave the PFN-space tree corrupted), no deviation left the state undefined, and the
  /// kernel reported nothing worse than a WARN (no oops, BUG, panic, hang, lockup; no agent
  /// error). The reset's checks still decide; a later divergence that the ledger does not know
  /// is rerun on a restored guest anyway.
  static func isCleanable(_ r: SequenceResult, ledger: Ledger) -> Bool {
    guard case .divergence = r.verdict, r.knownIDs(ledger) != nil, let e = r.explanation, e.undefinedAt == nil,
      !ledger.entries(explaining: e).contains(where: \.needsRestore)
    else { return false }
    return !r.observed.joined().contains {
      if case .guestFailure(let kind, _) = $0 { kind != "warn" } else { false }
    }
  }

  /// Generates seed `seed` for the world the guest reported, runs it, judges it.
  static func runOne(_ g: GuestSession, seed: UInt64, length: Int, ledger: Ledger) -> (OpSequence, SequenceResult) {
    let consoleStart = g.console.text.count
    let sequence = Generator.generate(world: g.world, seed: seed, length: length)
    var observed: [[Observation]] = []
    for op in sequence.ops {
      observed.append(g.apply(op))
      if g.fatal != nil { break }
    }
    let clock = ContinuousClock()
    let start = clock.now
    let (predicted, hits) = Machine.runCountingRules(sequence.ops, in: g.world)
    var verdict = Verdict.match
    if let d = Differ.firstDivergence(ops: sequence.ops, expected: predicted, observed: observed) {
      verdict = .divergence(d)
    }
    var r = SequenceResult(sequence: sequence, observed: observed, verdict: verdict)
    r.world = g.world
    r.ruleHits = hits
    let judged = clock.now
    r.triage(ledger, world: g.world)
    // Where the host's time goes (`bench guest`): the model and the diff, and the triage.
    g.profile?.add(OpProfile.judging, judged - start)
    if verdict != .match { g.profile?.add(OpProfile.triage, clock.now - judged) }
    if verdict != .match { r.console = String(g.console.tail(4000).suffix(max(0, g.console.text.count - consoleStart))) }
    return (sequence, r)
  }
}

/// Progress on standard error: a rewritten line on a terminal, a plain line every 10% otherwise.
/// Never on standard output, so output stays byte-identical across runs.
final class Progress {
  private let total: Int
  private var done = 0
  private var ops = 0
  private let start = ContinuousClock.now
  private let isTTY = isatty(STDERR_FILENO) == 1
  private var lastPlain = -1

  init(total: Int) { self.total = total }

  func step(ops n: Int, verdicts: Int) {
    done += 1
    ops += n
    let elapsed = ContinuousClock.now - start
    let secs = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let rate = secs > 0 ? Int(Double(ops) / secs) : 0
    let line = "\(done)/\(total) sequences, \(rate) ops/s, \(verdicts) verdicts"
    if isTTY {
      FileHandle.standardError.write(Data(("\r" + line + "   ").utf8))
    } else if total >= 10, done * 10 / total != lastPlain {
      lastPlain = done * 10 / total
      FileHandle.standardError.write(Data((line + "\n").utf8))
    }
  }

  func finish() {
    if isTTY { FileHandle.standardError.write(Data("\n".utf8)) }
  }
}

/// A wall-time budget: `90s`, `10m`, `1h30m`, `2h` (whole numbers, units h, m, s).
struct Budget: ExpressibleByArgument, Sendable {
  let duration: Duration

  init?(argument: String) {
    var total: Int64 = 0
    var number = ""
    for c in argument {
      if c.isASCII && c.isNumber {
        number.append(c)
        continue
      }
      guard let n = Int64(number), let unit: Int64 = ["h": 3600, "m": 60, "s": 1][c] else { return nil }
      total += n * unit
      number = ""
    }
    guard number.isEmpty, total > 0 else { return nil }
    duration = .seconds(total)
  }

  static var defaultCompletionKind: CompletionKind { .default }
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
