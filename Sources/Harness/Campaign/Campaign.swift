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

  /// What decides a campaign's seeds and sequences (the report's title and directory name).
  struct Parameters: Codable, Equatable, Sendable {
    var world: String
    var seed: UInt64
    var count: Int
    var length: Int
    /// `model`, `qemu` or `both`.
    var target: String
    var reset: String

    var isModelOnly: Bool { target == Target.model.rawValue }
    var seeds: [UInt64] { (0..<UInt64(count)).map { seed + $0 } }
    var runID: String { "fuzz-\(world)-\(seed)-\(count)-l\(length)-\(target)" }
    var title: String {
      "harness fuzz: world \(world), seeds \(seed)..<\(seed + UInt64(count)), \(length) ops each, target \(target)"
    }
  }

  /// Runs the campaign and writes its report; returns the number of new verdicts.
  /// `artifacts`: the guest to run (`nil` for the model alone).
  func run(artifacts: GuestArtifacts?) async throws -> Int {
    let ledger = try Ledger.project()
    var recorder = CampaignRecorder(
      directory: reports + "/" + parameters.runID, title: parameters.title, ledger: ledger, verbose: verbose,
      saveSequences: saveSequences)
    print(recorder.writer.title)
    recorder.writer.identity =
      artifacts?.identity.inWorld(parameters.world) ?? .modelOnly(world: parameters.world)
    print("kernel: \(recorder.writer.identity!.source)")
    let seeds = parameters.seeds
    let runs = artifacts == nil ? worlds.count : guestWorlds.count
    let progress = Progress(total: seeds.count * runs)
    let multi = runs > 1
    let share = budget.map { $0.duration / max(1, runs) }
    var notes: [String] = []
    var budgetStops: [String] = []
    if let artifacts {
      for gw in guestWorlds {
        let deadline = share.map { ContinuousClock.now + $0 }
        let r = try await GuestRun.campaign(
          gw, artifacts: artifacts, seeds: seeds, length: parameters.length,
          reset: ResetMode(rawValue: parameters.reset) ?? .clean, ledger: ledger,
          shouldStop: { _ in deadline.map { ContinuousClock.now >= $0 } ?? false }
        ) { s, seq, result in
          try recorder.record(multi ? "\(gw.name)-seed-\(s)" : "seed-\(s)", seq, result, world: gw.model)
          progress.step(ops: seq.steps.count, verdicts: recorder.newCount)
        }
        notes.append(r.line(gw.name))
        if let stop = r.stoppedAfter { budgetStops.append(Budget.stopLine(gw.name, done: stop, of: seeds.count)) }
        // Timings: on the terminal only, never in the (deterministic) report.
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
        for (done, s) in seeds.enumerated() {
          if let deadline, ContinuousClock.now >= deadline {
            budgetStops.append(Budget.stopLine(world.name, done: done, of: seeds.count))
            break
          }
          let sequence = Generator.generate(world: world, seed: s, length: parameters.length)
          try recorder.record(
            multi ? "\(world.name)-seed-\(s)" : "seed-\(s)", sequence, ModelRun.run(sequence, world: world), world: world)
          progress.step(ops: sequence.steps.count, verdicts: recorder.newCount)
        }
      }
    }
    progress.finish()
    return try recorder.finish(notes: notes + budgetStops)
  }
}

/// Records a campaign's verdicts as they come (in seed order): a line on standard output per
/// verdict, a report folder per new one, the summary at the end.
struct CampaignRecorder {
  var writer: ReportWriter
  let ledger: Ledger
  var verbose = false
  var saveSequences: String?
  private(set) var stats = CampaignStats()
  private(set) var verdicts: [VerdictLine] = []

  init(directory: String, title: String, ledger: Ledger, verbose: Bool = false, saveSequences: String? = nil) {
    writer = ReportWriter(directory: directory, title: title)
    self.ledger = ledger
    self.verbose = verbose
    self.saveSequences = saveSequences
  }

  var newCount: Int { verdicts.count(where: \.isNew) }

  /// One sequence's verdict: counted, printed, and (when new) written to its folder.
  mutating func record(_ name: String, _ sequence: OpSequence, _ result: SequenceResult, world: World) throws {
    stats.add(sequence, result.observed, explanation: result.explanation)
    let known = result.knownIDs(ledger)
    let line = VerdictLine(name: name, verdict: result.verdict, known: known, explanation: result.explanation)
    verdicts.append(line)
    if let known {
      print("\(name): \(result.verdict.signature!) (known: \(known); \(line.deviationNote ?? ""))")
    } else if result.verdict != .match {
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
  }

  /// Writes the summary (with `notes`) and prints the closing lines; returns the new verdicts.
  func finish(notes: [String]) throws -> Int {
    try writer.writeSummary(results: verdicts, stats: stats, notes: notes)
    let new = verdicts.count(where: \.isNew)
    let known = verdicts.count { $0.known != nil }
    print("sequences \(stats.sequences), ops \(stats.ops), new verdicts \(new), known \(known)")
    if let compared = stats.comparedLine { print(compared) }
    for line in notes { print(line) }
    print("report: \(writer.directory)/summary.txt")
    return new
  }
}
