import ArgumentParser
import Foundation
import Fuzz
import Reference
import Glibc

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
    subcommands: [Model.self, Guest.self])

  /// Boot time, op round trip and QEMU memory of the `mf` guest.
  struct Guest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Guest boot time, op round trip and QEMU RSS.",
      discussion: "Example:\n  swift run -c release harness bench guest --boots 10 --ops 500")
    @Option(help: "Boots to time (the median is reported).") var boots = 10
    @Option(help: "Simple ops to time in one guest (the median is reported).") var ops = 500

    func run() async throws {
      let artifacts = try await GuestBuild.build()
      let world = try GuestWorld.named("mf")
      let clock = ContinuousClock()
      var bootTimes: [Duration] = []
      var rss = 0
      for _ in 0..<boots {
        let start = clock.now
        rss = try await GuestSession.with(world, artifacts: artifacts) { g in
          bootTimes.append(clock.now - start)
          return g.qemuRSSKiB
        }
      }
      let restores = try await GuestSession.with(world, artifacts: artifacts) { g in
        guard g.takeSnapshot() else { return [Duration]() }
        var times: [Duration] = []
        for _ in 0..<20 {
          _ = g.apply(.spawn(ProcessName("p1")!))  // dirty the guest a little
          times.append(clock.measure { _ = g.restoreSnapshot() })
        }
        return times
      }
      let (simple, spawn) = try await GuestSession.with(world, artifacts: artifacts) { g in
        // A simple op: a space operation on a name that does not exist (no process to sync).
        let ghost = Op.spaceRegister(SpaceName("s999")!)
        var simple: [Duration] = []
        for _ in 0..<ops { simple.append(clock.measure { _ = g.apply(ghost) }) }
        // An op with one live process to synchronise.
        let p = ProcessName("p1")!
        _ = g.apply(.spawn(p))
        var withProcess: [Duration] = []
        for _ in 0..<ops { withProcess.append(clock.measure { _ = g.apply(.mceKillGet(ThreadRef(p, 0))) }) }
        return (simple, withProcess)
      }
      print("boot to agent ready: median \(Self.median(bootTimes)) over \(boots) boots (includes QEMU start and teardown)")
      print("simple op round trip: median \(Self.median(simple)) over \(ops) ops (space-register of an unknown name)")
      print("op with one process: median \(Self.median(spawn)) over \(ops) ops (prctl mce-kill-get)")
      print("QEMU RSS after boot: \(rss) KiB")
      if !restores.isEmpty {
        let r = Self.median(restores)
        let ratio = Double(r.components.attoseconds / 1_000_000_000_000 + r.components.seconds * 1_000_000)
          / Double(Self.median(bootTimes).components.attoseconds / 1_000_000_000_000 + Self.median(bootTimes).components.seconds * 1_000_000)
        print("snapshot reset (loadvm + agent ping): median \(r) over \(restores.count); \(Int(1 / ratio)) times faster than a boot")
      }
    }

    static func median(_ d: [Duration]) -> Duration { d.sorted()[d.count / 2] }
  }

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
