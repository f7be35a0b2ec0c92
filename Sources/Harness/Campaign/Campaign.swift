import Foundation
import Fuzz
import Reference

/// A fuzz campaign: the seeds of every selected world, run on the model alone or in guests and
/// diffed against it, each verdict recorded in seed order into a report directory.
///
/// `harness fuzz` configures one and calls ``run(artifacts:)``; the engine owns the reset and
/// budget logic (``GuestRun``, ``Budget``) and the per-sequence record (``CampaignRecorder``).
/// Invariant: the report depends only on the parameters, the kernel and the ledger (never on
/// clocks or the host), except where a budget stopped the campaign early.
struct Campaign {
  var parameters: Parameters
  /// The worlds run on the model (`--target model`), or those whose guests run.
  var worlds: [World]
  var guestWorlds: [GuestWorld]
  /// Where `REPORTS/<run-id>/` goes.
  var reports: String
  var saveSequences: String?
  var budget: Budget?
  var verbose = false
  /// The findings ledger's directory (`nil`: the project's).
  var findings: String? = nil
  /// How much minimizing each group of new verdicts may take (``GroupMinimizer``).
  var minimizeBudget: MinimizeBudget = .runs(300)

  /// What decides a campaign's seeds and sequences (the report's title and directory name).
  struct Parameters: Codable, Equatable, Sendable {
    var world: String
    var seed: UInt64
    var count: Int
    var length: Int
    /// `model`, `qemu` or `both`.
    var target: String
    var reset: String
    /// `fuzz --guided` (``GuidedSource``); `nil` for plain seeds.
    var guided: Bool? = nil

    var isModelOnly: Bool { target == Target.model.rawValue }
    var isGuided: Bool { guided == true }
    var seeds: [UInt64] { (0..<UInt64(count)).map { seed + $0 } }
    var runID: String { "fuzz-\(world)-\(seed)-\(count)-l\(length)-\(target)" + (isGuided ? "-guided" : "") }
    var title: String {
      "harness fuzz: world \(world), seeds \(seed)..<\(seed + UInt64(count)), \(length) ops each, target \(target)"
        + (isGuided ? ", guided" : "")
    }
  }

  /// Guests run at once per world (``GuestRun/campaign``): the report does not depend on it.
  var jobs = 1
  /// The part of the seeds this process runs (`nil`: all of them).
  var shard: Shard?
  /// Kernel coverage (`fuzz --coverage`): the guests hand their counts over on their own; the
  /// campaign writes the coverage folder at the end and puts the summary into its report.
  var coverage: CampaignCoverage?
  /// `fuzz --guided --corpus DIR`: the corpus folder (``GuidedSource``).
  var corpus: String?

  /// Where the report goes: `REPORTS/<run-id>/`, or `REPORTS/<run-id>-shard-I-of-N/` for a
  /// shard (merged into the first by `harness merge`).
  var directory: String {
    reports + "/" + parameters.runID + (shard.map { "-shard-\($0.index)-of-\($0.count)" } ?? "")
  }

  /// Runs the campaign and writes its report; returns the number of new verdicts.
  /// `artifacts`: the guest to run (`nil` for the model alone).
  func run(artifacts: GuestArtifacts?) async throws -> Int {
    let ledger = try findings.map { dir throws(HarnessError) in try Ledger.load(dir) } ?? Ledger.project()
    let identity = artifacts?.identity.inWorld(parameters.world) ?? .modelOnly(world: parameters.world)
    var recorder = CampaignRecorder(
      directory: directory, parameters: parameters, identity: identity, ledger: ledger, verbose: verbose,
      saveSequences: saveSequences)
    recorder.shard = shard
    print(recorder.writer.title)
    print("kernel: \(identity.source)")
    // Lazily: a budgeted campaign may ask for far more seeds than it runs.
    let (start, step) = (shard?.index ?? 0, shard?.count ?? 1)
    let seeds = stride(from: start, to: parameters.count, by: step).lazy.map { parameters.seed + UInt64($0) }
    let seedCount = max(0, (parameters.count - start + step - 1) / step)
    if let shard { print("shard \(shard): \(seedCount) of \(parameters.count) sequences per world (every \(shard.count)th from seed \(parameters.seed + UInt64(shard.index)))") }
    let runs = artifacts == nil ? worlds.count : guestWorlds.count
    let progress = Progress(total: seedCount * runs)
    let multi = runs > 1
    let share = budget.map { $0.duration / max(1, runs) }
    /// A sequence's name in the report (and its file's under a guided corpus).
    func name(_ world: String, _ s: UInt64) -> String {
      (multi ? "\(world)-" : "") + (parameters.isGuided ? "guided-\(s)" : "seed-\(s)")
    }
    var guidedLines: [String] = []
    if let artifacts {
      for gw in guestWorlds {
        let deadline = share.map { ContinuousClock.now + $0 }
        let guided = try corpus.map { dir throws(HarnessError) in
          try GuidedSource(world: gw.model, seed: parameters.seed, length: parameters.length, corpus: dir)
        }
        defer { guided?.release() }
        var source: (@Sendable (Int, World) -> OpSequence)? = nil
        if let guided { source = { @Sendable i, w in guided.sequence(i, world: w) } }
        let r = try await GuestRun.campaign(
          gw, artifacts: artifacts, seeds: Array(seeds), length: parameters.length,
          reset: ResetMode(rawValue: parameters.reset) ?? .clean, ledger: ledger, jobs: jobs,
          shouldStop: { _ in Interruption.isInterrupted || (deadline.map { ContinuousClock.now >= $0 } ?? false) },
          sequence: source
        ) { s, seq, result in
          let n = name(gw.name, s)
          try recorder.record(n, seed: s, seq, result, world: gw.model)
          try guided?.record(Int(s - parameters.seed), name: n, seq, result, world: gw.model)
          progress.step(ops: seq.steps.count, verdicts: recorder.newCount)
        }
        if let guided {
          try guided.finish()
          guidedLines.append(guided.line)
        }
        recorder.worlds.append(
          .init(
            name: gw.name, inGuest: true, cleanResets: r.cleanResets, refused: r.refused.map { .init(seed: $0.seed, what: $0.what) },
            budgetStoppedAfter: Interruption.isInterrupted ? nil : r.stoppedAfter))
        // Boots, restores, timings: on the terminal only, never in the (deterministic) report.
        print(r.hostLine(gw.name) + (jobs > 1 ? " (\(jobs) guests at once)" : ""))
        var times: [String] = []
        if r.restores > 0 { times.append("mean snapshot restore \(Timing.ms(r.restoreTime / r.restores))") }
        if r.cleanResets > 0 { times.append("mean clean reset \(Timing.ms(r.cleanTime / r.cleanResets))") }
        if !times.isEmpty {
          FileHandle.standardError.write(Data("\(gw.name): \(times.joined(separator: ", "))\n".utf8))
        }
      }
    } else {
      for world in worlds {
        let deadline = share.map { ContinuousClock.now + $0 }
        var stopped: Int?
        let guided = try corpus.map { dir throws(HarnessError) in
          try GuidedSource(world: world, seed: parameters.seed, length: parameters.length, corpus: dir)
        }
        for (done, s) in seeds.enumerated() {
          if Interruption.isInterrupted { break }
          if let deadline, ContinuousClock.now >= deadline {
            stopped = done
            break
          }
          let sequence =
            guided?.sequence(done, world: world)
            ?? Generator.generate(world: world, seed: s, length: parameters.length)
          let result = ModelRun.run(sequence, world: world)
          try recorder.record(name(world.name, s), seed: s, sequence, result, world: world)
          try guided?.record(done, name: name(world.name, s), sequence, result, world: world)
          progress.step(ops: sequence.steps.count, verdicts: recorder.newCount)
        }
        if let guided {
          try guided.finish()
          guidedLines.append(guided.line)
        }
        recorder.worlds.append(.init(name: world.name, inGuest: false, budgetStoppedAfter: stopped))
      }
    }
    progress.finish()
    recorder.extraNotes = guidedLines
    if Interruption.isInterrupted { recorder.interruption = Interruption.name }
    recorder.groups = VerdictGroup.ordered(recorder.groups)
    if let artifacts, !recorder.groups.isEmpty, !minimizeBudget.isZero, !Interruption.isInterrupted {
      // One representative per group, minimized in a guest of its world (group-N/). A shard
      // leaves it to whoever merges: its groups are part of the campaign's.
      if shard == nil {
        let start = ContinuousClock.now
        let total = recorder.groups.count
        try await GroupMinimizer.minimize(
          &recorder.groups, writer: recorder.writer, artifacts: artifacts, ledger: ledger, budget: minimizeBudget
        ) { i, g in
          FileHandle.standardError.write(
            Data("minimizing group-\(i + 1) of \(total) (\(g.members[0]), \(g.cause))\n".utf8))
        }
        FileHandle.standardError.write(
          Data("minimized \(total) group(s) in \(Timing.ms(ContinuousClock.now - start))\n".utf8))
      }
    }
    if let coverage {
      recorder.coverage = (try await coverage.finish(title: recorder.writer.title), coverage.notes, coverage.html)
    }
    return try recorder.finish()
  }

  /// `harness merge`: the shards' records (and their report folders, copied) into the report one
  /// run over all their seeds writes, under `reports`. Refuses records of different campaigns,
  /// kernels, worlds, ledgers or harness versions, and names the shards missing.
  static func merge(_ shards: [(directory: String, record: CampaignRecord)], reports: String, verbose: Bool = false)
    throws -> Int
  {
    guard let first = shards.first?.record else { throw HarnessError.usage("give the shards' report directories") }
    func differ(_ what: String, _ a: String, _ b: String, _ dir: String) -> HarnessError {
      .usage("\(dir): another \(what) than \(shards[0].directory) (\(b) against \(a)): shards of one campaign only")
    }
    var seen: [Int: String] = [:]
    for (dir, r) in shards {
      guard r.version == CampaignRecord.version else {
        throw differ("record version", "\(first.version)", "\(r.version)", dir)
      }
      guard r.parameters == first.parameters else {
        throw differ("campaign", first.parameters.title, r.parameters.title, dir)
      }
      guard r.identity.harness == first.identity.harness else {
        throw differ("harness version", first.identity.harness, r.identity.harness, dir)
      }
      guard r.identity.world == first.identity.world else { throw differ("world", first.identity.world, r.identity.world, dir) }
      guard r.identity == first.identity else {
        throw differ("kernel", first.identity.kernelIdentity.source, r.identity.kernelIdentity.source, dir)
      }
      guard r.ledger == first.ledger else { throw differ("findings ledger", first.ledger, r.ledger, dir) }
      guard let s = r.shard, s.count == first.shard?.count else {
        throw HarnessError.usage(
          "\(dir): \(r.shard.map { "shard \($0)" } ?? "a whole campaign, not a shard"), where \(shards[0].directory) is "
            + (first.shard.map { "shard \($0)" } ?? "a whole campaign"))
      }
      if let other = seen[s.index] { throw HarnessError.usage("\(dir) and \(other) are both shard \(s)") }
      seen[s.index] = dir
    }
    let n = first.shard!.count
    let missing = (0..<n).filter { seen[$0] == nil }
    guard missing.isEmpty else {
      throw HarnessError.usage(
        "missing shard\(missing.count > 1 ? "s" : "") \(missing.map { "\($0)/\(n)" }.joined(separator: ", ")) of \(first.parameters.runID)"
          + " (have \(seen.keys.sorted().map { "\($0)/\(n)" }.joined(separator: ", ")))")
    }
    // The single run's order: world by world, seed by seed.
    let worldOrder = first.worlds.map(\.name)
    let all = shards.flatMap { sh in sh.record.sequences.map { (sh.directory, $0) } }.sorted {
      (worldOrder.firstIndex(of: $0.1.world) ?? 0, $0.1.seed) < (worldOrder.firstIndex(of: $1.1.world) ?? 0, $1.1.seed)
    }
    var recorder = CampaignRecorder(
      directory: reports + "/" + first.parameters.runID, parameters: first.parameters,
      identity: first.identity.kernelIdentity, ledger: Ledger(), verbose: verbose)
    recorder.ledgerFingerprint = first.ledger
    print(recorder.writer.title)
    print("kernel: \(first.identity.kernelIdentity.source)")
    print("merging \(n) shards: \(seen.keys.sorted().map { seen[$0]! }.joined(separator: ", "))")
    // Folders first (a verdict's files, written by the shard that ran it).
    let fm = FileManager.default
    for (dir, _) in shards {
      for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] {
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: dir + "/" + name, isDirectory: &isDir), isDir.boolValue else { continue }
        let target = recorder.writer.directory + "/" + name
        try? fm.removeItem(atPath: target)
        try fm.createDirectory(atPath: recorder.writer.directory, withIntermediateDirectories: true)
        try fm.copyItem(atPath: dir + "/" + name, toPath: target)
      }
    }
    for (_, s) in all {
      recorder.replay(s)
      // The groups one run would list; the shards minimized none (a shard leaves that to a
      // run of the group's first seed), so the placeholder run is never used.
      if let cause = s.cause?.cause {
        let none = SequenceResult(sequence: OpSequence(world: s.world, ops: []), observed: [], verdict: .match)
        VerdictGroup.add(s.name, none, cause: cause, world: s.world, to: &recorder.groups)
      }
    }
    recorder.groups = VerdictGroup.ordered(recorder.groups)
    for name in worldOrder {
      let parts = shards.compactMap { $0.record.worlds.first { $0.name == name } }
      var note = CampaignRecord.WorldNote(name: name, inGuest: parts.contains(where: \.inGuest))
      note.cleanResets = parts.reduce(0) { $0 + $1.cleanResets }
      note.refused = parts.flatMap(\.refused).sorted { $0.seed < $1.seed }
      if parts.contains(where: { $0.budgetStoppedAfter != nil }) {
        note.budgetStoppedAfter = all.count { $0.1.world == name }
      }
      recorder.worlds.append(note)
    }
    var stats = CampaignStats()
    for (_, r) in shards { stats.merge(r.stats) }
    recorder.stats = stats
    return try recorder.finish()
  }
}

/// Records a campaign's verdicts as they come (in seed order): a line on standard output per
/// verdict, a report folder per new one, the summary and `campaign.json` at the end.
struct CampaignRecorder {
  var writer: ReportWriter
  let parameters: Campaign.Parameters
  let ledger: Ledger
  var ledgerFingerprint: String
  var verbose = false
  var saveSequences: String?
  var shard: Shard?
  var stats = CampaignStats()
  /// What the summary says of each world, in order.
  var worlds: [CampaignRecord.WorldNote] = []
  private(set) var verdicts: [VerdictLine] = []
  private(set) var sequences: [CampaignRecord.Sequence] = []
  /// The new verdicts gathered by root cause, in the order met (``VerdictGroup``).
  var groups: [VerdictGroup] = []
  /// The signal that interrupted the campaign (``Interruption``): the report covers the
  /// sequences that finished before it.
  var interruption: String? = nil
  /// The kernel coverage of the series (`fuzz --coverage`): for summary.txt/json, and printed.
  var coverage: (summary: CoverageSummary, notes: [String], html: String)?
  /// Lines the summary adds after the worlds' notes (`--guided`: what was kept).
  var extraNotes: [String] = []

  init(
    directory: String, parameters: Campaign.Parameters, identity: KernelIdentity, ledger: Ledger,
    verbose: Bool = false, saveSequences: String? = nil
  ) {
    writer = ReportWriter(directory: directory, title: parameters.title, identity: identity)
    self.parameters = parameters
    self.ledger = ledger
    self.ledgerFingerprint = ledger.fingerprint
    self.verbose = verbose
    self.saveSequences = saveSequences
  }

  var newCount: Int { verdicts.count(where: \.isNew) }

  /// One sequence's verdict: counted, printed, and (when new) written to its folder.
  mutating func record(_ name: String, seed: UInt64, _ sequence: OpSequence, _ result: SequenceResult, world: World) throws {
    stats.add(sequence, result.observed, explanation: result.explanation)
    if let hits = result.ruleHits { stats.add(rules: hits) }
    if let lines = result.observerLines {
      // Compared: every step of a sequence whose observations matched (and so of one whose
      // decisions then differed).
      var compared = result.verdict == .match
      if case .divergence(let d) = result.verdict, d.decisions != nil { compared = true }
      stats.add(observer: lines, compared: compared)
    }
    let known = result.knownIDs(ledger)
    var cause: RootCause? = nil
    if known == nil, result.verdict != .match, !result.verdict.isHostFault {
      cause = result.rootCause(ledger, world: result.world ?? world)
      if let cause { VerdictGroup.add(name, result, cause: cause, world: world.name, to: &groups) }
      try writer.writeVerdict(result, name: name, world: result.world ?? world, worldName: world.name)
      if let console = result.console {
        try Corpus.writeAtomically(console, to: "\(writer.directory)/\(name)/console.log")
      }
    }
    if let dir = saveSequences {
      let text = SequenceFormat.print(sequence.withExpectations(result.observed))
      try Corpus.writeAtomically(text, to: "\(dir)/\(name).seq")
    }
    replay(
      .init(
        name: name, world: world.name, seed: seed, verdict: .init(result.verdict), known: known,
        explanation: result.explanation.map(CampaignRecord.ExplanationRecord.init), cause: cause.map(CampaignRecord.CauseRecord.init)))
  }

  /// A recorded verdict (a shard's, when merging): kept for the summary and printed.
  mutating func replay(_ s: CampaignRecord.Sequence) {
    sequences.append(s)
    let line = VerdictLine(name: s.name, verdict: s.verdict.verdict, known: s.known, explanation: s.explanation?.explanation)
    verdicts.append(line)
    let name = s.name
    if case .hostFault(let why) = line.verdict {
      print("\(name): host fault, no verdict on the kernel: \(why)")
    } else if let known = s.known, let signature = line.verdict.signature {
      print("\(name): \(signature) (known: \(known); \(line.deviationNote ?? ""))")
    } else if let signature = line.verdict.signature {
      let behind = line.deviationNote.map { "; " + $0 } ?? ""
      print("\(name): \(signature) (\(writer.directory)/\(name)/diff.txt\(behind))")
    } else if verbose {
      print("\(name): ok")
    }
  }

  /// The summary's notes: per world its resets, then the budget's stops.
  var notes: [String] {
    (interruption.map { ["interrupted by \($0) after \(sequences.count) sequences: this report covers those that finished"] } ?? [])
      + worlds.flatMap(\.lines)
      + worlds.compactMap { w in
        w.budgetStoppedAfter.map { Budget.stopLine(w.name, done: $0, of: parameters.count) }
      } + extraNotes
  }

  /// Writes the summary and `campaign.json`, prints the closing lines; returns the new verdicts.
  func finish() throws -> Int {
    try writer.writeSummary(
      results: verdicts, stats: stats, groups: groups, notes: notes + (coverage?.notes ?? []), coverage: coverage?.summary)
    let record = CampaignRecord(
      parameters: parameters, shard: shard, identity: .init(writer.identity!), ledger: ledgerFingerprint, worlds: worlds,
      stats: stats, sequences: sequences)
    try Corpus.writeAtomically(record.json, to: writer.directory + "/campaign.json")
    let new = verdicts.count(where: \.isNew)
    let known = verdicts.count { $0.known != nil }
    print("sequences \(stats.sequences), ops \(stats.ops), new verdicts \(new), known \(known)")
    if let compared = stats.comparedLine { print(compared) }
    if !groups.isEmpty { print("new groups: \(groups.count)") }
    for (i, g) in groups.enumerated() { print(g.summaryLines(i + 1), terminator: "") }
    for line in notes { print(line) }
    if let coverage {
      for line in coverage.notes + coverage.summary.lines { print(line) }
      print("coverage: \(coverage.html)")
    }
    print("report: \(writer.directory)/summary.txt")
    return new
  }
}
