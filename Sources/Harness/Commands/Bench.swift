import ArgumentParser
import Foundation
import Fuzz
import Reference

/// `harness bench`: measured figures for the README.
struct Bench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Measure throughput (figures reported in the README).",
    discussion: """
      `model`: generation and model throughput over mixed generated sequences (every world), \
      on one core, and peak memory. Build with -c release for meaningful numbers.

      Example:
        swift run -c release harness bench model
      """,
    subcommands: [Model.self])

  struct Model: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Generator and model throughput.",
      discussion: "Example:\n  swift run -c release harness bench model --sequences 2000 --length 100")
    @Option(help: "Sequences per world.") var sequences = 2000
    @Option(help: "Ops per sequence.") var length = 100
    @Option(help: "Timed repetitions of the model pass (best is reported).") var repeats = 5

    func run() async throws {
      let clock = ContinuousClock()
      var generated: [(World, OpSequence)] = []
      let genTime = clock.measure {
        for world in World.builtin {
          for seed in 0..<UInt64(sequences) {
            generated.append((world, Generator.generate(world: world, seed: seed, length: length)))
          }
        }
      }
      let totalOps = generated.reduce(0) { $0 + $1.1.steps.count }
      var best = Duration.seconds(1_000_000)
      var sink = 0
      for _ in 0..<repeats {
        let t = clock.measure {
          for (world, s) in generated {
            var m = Machine(world: world)
            for op in s.ops { sink &+= m.apply(op).count }
          }
        }
        best = min(best, t)
      }
      print("ops: \(totalOps) in \(generated.count) sequences of \(length) (\(World.builtin.count) worlds)")
      print("generation: \(Self.rate(totalOps, genTime)) ops/s (\(genTime))")
      print("model: \(Self.rate(totalOps, best)) ops/s (best of \(repeats): \(best)), observations \(sink / repeats)")
      print("peak RSS: \(Self.peakRSS()) KiB")
    }

    static func rate(_ n: Int, _ d: Duration) -> Int {
      let s = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
      return s > 0 ? Int(Double(n) / s) : 0
    }

    static func peakRSS() -> Int {
      guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
      for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
      }
      return 0
    }
  }
}
