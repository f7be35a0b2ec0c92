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
      and a single seed can be rerun alone. The same command prints the same output and writes \
      the same files. On the model target every sequence is run on the reference model with its \
      invariants checked after every op, and its text form is checked to round-trip.

      Examples:
        harness fuzz --seed 1
        harness fuzz --seed 100 --count 1000 --length 50 --world all --target model
        harness fuzz --seed 7 --save-sequences corpus/   # keep the sequences with predictions
      """)

  @Option(help: "First seed of the campaign.") var seed: UInt64
  @Option(help: "Number of sequences (seeds SEED ..< SEED+COUNT).") var count: Int = 100
  @Option(help: "Ops per sequence.") var length: Int = 30
  @OptionGroup var worldOption: WorldOption
  @Option(help: "Where sequences run: model (the reference model alone).") var target: Target = .model
  @Option(help: "Directory for reports; the run writes REPORTS/<run-id>/.") var reports: String = "reports"
  @Option(help: "Also write every sequence, with the model's predictions, into this directory.")
  var saveSequences: String?
  @Flag(help: "Print one line per sequence.") var verbose = false

  func validate() throws {
    guard count > 0 else { throw ValidationError("--count must be at least 1 (got \(count))") }
    guard (1...100_000).contains(length) else {
      throw ValidationError("--length must be between 1 and 100000 (got \(length))")
    }
    guard seed <= UInt64.max - UInt64(count) else {
      throw ValidationError("--seed \(seed) with --count \(count) runs past the largest seed")
    }
    if worldOption.world != "all", World.named(worldOption.world) == nil {
      throw ValidationError(
        "unknown --world \(worldOption.world); expected one of: \(World.builtin.map(\.name).joined(separator: ", ")), all")
    }
  }

  func run() async throws {
    let worlds = worldOption.world == "all" ? World.builtin : [World.named(worldOption.world)!]
    let runID = "fuzz-\(worldOption.world)-\(seed)-\(count)-l\(length)-\(target.rawValue)"
    let writer = ReportWriter(
      directory: reports + "/" + runID,
      title: "harness fuzz: world \(worldOption.world), seeds \(seed)..<\(seed + UInt64(count)), \(length) ops each, target \(target.rawValue)")
    print(writer.title)
    var stats = CampaignStats()
    var verdicts: [(name: String, verdict: Verdict)] = []
    let progress = Progress(total: count * worlds.count)
    for world in worlds {
      for i in 0..<count {
        let s = seed + UInt64(i)
        let sequence = Generator.generate(world: world, seed: s, length: length)
        let result = ModelRun.run(sequence, world: world)
        stats.add(sequence, result.observed)
        let name = worlds.count > 1 ? "\(world.name)-seed-\(s)" : "seed-\(s)"
        verdicts.append((name, result.verdict))
        if result.verdict != .match {
          try writer.writeVerdict(result, name: name)
          print("\(name): \(result.verdict.signature!) (\(writer.directory)/\(name)/diff.txt)")
        } else if verbose {
          print("\(name): ok")
        }
        if let dir = saveSequences {
          let text = SequenceFormat.print(sequence.withExpectations(result.observed))
          try Corpus.writeAtomically(text, to: "\(dir)/\(name).seq")
        }
        progress.step(ops: sequence.steps.count, verdicts: verdicts.count { $0.verdict != .match })
      }
    }
    progress.finish()
    try writer.writeSummary(results: verdicts, stats: stats)
    let failing = verdicts.count { $0.verdict != .match }
    print("sequences \(stats.sequences), ops \(stats.ops), verdicts \(failing)")
    print("report: \(writer.directory)/summary.txt")
    if failing > 0 { throw Finished(.divergence) }
  }
}

/// Running a sequence on the model alone.
enum ModelRun {
  /// Runs the model, checking its invariants after every op and the text round trip.
  static func run(_ sequence: OpSequence, world: World) -> SequenceResult {
    var m = Machine(world: world)
    var observed: [[Observation]] = []
    for (i, op) in sequence.ops.enumerated() {
      observed.append(m.apply(op))
      if let v = m.invariantViolation() {
        return SequenceResult(sequence: sequence, observed: observed, verdict: .modelInvariant(step: i, message: v))
      }
    }
    let text = SequenceFormat.print(sequence.withExpectations(observed))
    if (try? SequenceFormat.parse(text)).map(SequenceFormat.print) != text {
      return SequenceResult(
        sequence: sequence, observed: observed,
        verdict: .modelInvariant(step: sequence.steps.count - 1, message: "text form does not round-trip"))
    }
    return SequenceResult(sequence: sequence, observed: observed, verdict: .match)
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
