import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// Guided generation (`fuzz --guided`): what it reaches against the same budget of seeds, its
/// files, and its determinism. Model only.
@Suite struct GuidedTests {
  /// The rules and features (rules with hit-count buckets, and ``StateFeature``s) `count`
  /// sequences reach in `world`: plain seeds, or guided (corpus in `corpus`).
  static func reach(_ world: World, count: Int, guidedIn corpus: String?, seed: UInt64 = 1) throws -> (rules: Set<Rule>, features: Int) {
    let source = try corpus.map { try GuidedSource(world: world, seed: seed, length: 30, corpus: $0) }
    var rules: Set<Rule> = []
    var features: Set<GuidedSource.Feature> = []
    for i in 0..<count {
      let s = source?.sequence(i, world: world) ?? Generator.generate(world: world, seed: seed + UInt64(i), length: 30)
      let r = ModelRun.run(s, world: world)
      #expect(r.verdict == .match, "\(world.name) sequence \(i): \(r.verdict)")
      rules.formUnion(r.ruleHits?.counts.keys ?? [:].keys)
      features.formUnion(GuidedSource.features(s.ops, in: world).keys)
      try source?.record(i, name: "guided-\(seed + UInt64(i))", s, r, world: world)
    }
    return (rules, features.count)
  }

  /// On the same budget (500 sequences of 30 ops per world, seeds 1…), guided generation
  /// reaches at least the rules the seeds reach. (At this budget both reach every rule the
  /// world's seeds reach at 1,000; below it guided is ahead: ``screeningReachesMoreRulesThanSeeds``.)
  @Test(arguments: ["mf", "p2p-switch"])
  func reachesAsManyRulesAsSeeds(world name: String) throws {
    let world = World.named(name)!
    let dir = scratchDirectory("guided-reach")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let seeds = try Self.reach(world, count: 500, guidedIn: nil)
    let guided = try Self.reach(world, count: 500, guidedIn: dir)
    #expect(guided.rules.count >= seeds.rules.count, "seeds only: \(seeds.rules.subtracting(guided.rules).map(\.rawValue))")
    print("\(name), 500 sequences: rules seeds \(seeds.rules.count) guided \(guided.rules.count), features seeds \(seeds.features) guided \(guided.features)")
  }

  /// A guided campaign saves every sequence it ran under runs/ with the contract's predictions
  /// (each replays on the model to exactly those), keeps some under kept/, and writes the same
  /// files and report when run again on a fresh corpus; a second campaign on the same corpus
  /// starts from what the first kept.
  @Test func savedSequencesReplayAndRunsRepeat() async throws {
    let base = scratchDirectory("guided-files")
    defer { try? FileManager.default.removeItem(atPath: base) }
    let world = World.named("mf")!
    func campaign(_ corpus: String, _ reports: String) async throws -> String {
      var c = Campaign(
        parameters: .init(world: "mf", seed: 1, count: 40, length: 30, target: "model", reset: "clean", guided: true),
        worlds: [world], guestWorlds: [], reports: reports, saveSequences: nil, budget: nil)
      c.corpus = corpus
      _ = try await c.run(artifacts: nil)
      return c.directory
    }
    let report = try await campaign(base + "/c1", base + "/r1")
    let runs = base + "/c1/mf/runs"
    let files = try FileManager.default.contentsOfDirectory(atPath: runs).sorted()
    let record = try CampaignRecord.load(report + "/campaign.json")
    #expect(Set(files) == Set(record.sequences.map { $0.name + ".seq" }))
    #expect(files.count == 40)
    for f in files {
      let s = try Corpus.load(runs + "/" + f)
      #expect(s.steps.count == 30)
      #expect(s.steps.map { $0.expected ?? [] } == Machine.run(s.ops, in: world), "\(f)")
    }
    // The summaries report the outcome shares (balance).
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report + "/summary.json")))
    let outcomes = ((json as? [String: Any])?["stats"] as? [String: Any])?["outcomes"] as? [String: Any]
    #expect((outcomes?["of"] as? [String: Int]) == ["signal": 40, "killed": 40])
    #expect((outcomes?["targetPercent"] as? [String: Int]) == ["signal": 25, "killed": 10])
    #expect(try String(contentsOfFile: report + "/summary.txt", encoding: .utf8).contains("\noutcomes: signal "))
    let kept = try FileManager.default.contentsOfDirectory(atPath: base + "/c1/mf/kept")
    #expect(!kept.isEmpty && Set(kept).isSubset(of: Set(files)))
    #expect(files.contains { ((try? String(contentsOfFile: runs + "/" + $0, encoding: .utf8)) ?? "").contains("# guided: ") })
    // Again, on a fresh corpus: the same sequences and report.
    let again = try await campaign(base + "/c2", base + "/r2")
    #expect(differingFiles(reportFiles(report), reportFiles(again)) == [])
    #expect(differingFiles(reportFiles(base + "/c1"), reportFiles(base + "/c2")) == [])
    // Again, on the first corpus: it starts from the kept sequences.
    let third = try await campaign(base + "/c1", base + "/r3")
    let summary = try String(contentsOfFile: third + "/summary.txt", encoding: .utf8)
    #expect(summary.contains("(\(kept.count) kept before)"), "\(summary)")
  }

  /// With each sequence's kernel lines (`--coverage`), a sequence whose model features are all
  /// known is kept for a line no kept sequence ran, not for a line one did; the lines are saved
  /// beside it and count as known for the next campaign on the same corpus.
  @Test func keepsASequenceForANewKernelLine() throws {
    let dir = scratchDirectory("guided-lines")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let world = World.named("mf")!
    let s = Generator.generate(world: world, seed: 5, length: 30)
    var r = ModelRun.run(s, world: world)
    let source = try GuidedSource(world: world, seed: 1, length: 30, corpus: dir)
    #expect(try source.record(0, name: "guided-1", s, r, world: world) == true)
    #expect(try source.record(1, name: "guided-2", s, r, world: world) == false)
    r.kernelLines = ["mm/memory-failure.c:2100"]
    #expect(try source.record(2, name: "guided-3", s, r, world: world) == true)
    #expect(try source.record(3, name: "guided-4", s, r, world: world) == false)
    let saved = try String(contentsOfFile: dir + "/mf/kept/guided-3.lines", encoding: .utf8)
    #expect(saved == "mm/memory-failure.c:2100\n")
    #expect(source.line.contains("(1 kernel lines)"), "\(source.line)")
    let next = try GuidedSource(world: world, seed: 1, length: 30, corpus: dir)
    #expect(try next.record(0, name: "guided-5", s, r, world: world) == false)
    r.kernelLines = ["mm/memory-failure.c:2100", "drivers/pci/p2pdma.c:7"]
    #expect(try next.record(1, name: "guided-6", s, r, world: world) == true)
  }

  /// Each sequence is screened on the model before it runs: over four rounds of 150 sequences
  /// in `mf` (bases 1, 10001, 20001, 30001), guided generation reaches more rules per round,
  /// summed, than the same number of plain seeds (docs/measurements.md has the figures).
  @Test func screeningReachesMoreRulesThanSeeds() throws {
    let world = World.named("mf")!
    var seeds = 0, guided = 0
    for r in 0..<4 {
      let base = 1 + UInt64(r) * 10000
      let dir = scratchDirectory("guided-screen")
      defer { try? FileManager.default.removeItem(atPath: dir) }
      seeds += try Self.reach(world, count: 150, guidedIn: nil, seed: base).rules.count
      guided += try Self.reach(world, count: 150, guidedIn: dir, seed: base).rules.count
    }
    print("mf, 4 rounds of 150 sequences: rules per round summed, seeds \(seeds), guided \(guided)")
    #expect(guided > seeds)
  }

  /// A sequence whose kernel lines are still being worked out is judged once they are, in
  /// order: `record` says so (`nil`), the next round's sequences wait for it, and a new line in
  /// it keeps it then.
  @Test func pendingKernelLinesAreJudgedInOrderBeforeTheNextRound() throws {
    let dir = scratchDirectory("guided-pending")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let world = World.named("mf")!
    let source = try GuidedSource(world: world, seed: 1, length: 30, corpus: dir)
    let gate = DispatchSemaphore(value: 0)
    let n = GuidedSource.roundSize
    for i in 0..<n {
      let s = source.sequence(i, world: world)
      var r = ModelRun.run(s, world: world)
      if i == 1 {
        r.pendingKernelLines = PendingLines {
          gate.wait()
          return ["drivers/dma-buf/dma-buf-mapping.c:42"]
        }
      }
      let kept = try source.record(i, name: "guided-\(i + 1)", s, r, world: world)
      #expect((kept == nil) == (i >= 1), "sequence \(i + 1): \(String(describing: kept))")
    }
    // The next round waits for the pending lines.
    let next = Locked<OpSequence?>(nil)
    let t = Thread {
      let s = source.sequence(n, world: world)
      next.update { $0 = s }
    }
    t.start()
    usleep(300_000)
    #expect(next.value == nil)
    gate.signal()
    try source.finish()
    while next.value == nil { usleep(10_000) }
    let kept = try String(contentsOfFile: dir + "/mf/kept/guided-2.lines", encoding: .utf8)
    #expect(kept == "drivers/dma-buf/dma-buf-mapping.c:42\n")
    #expect(source.line.contains("(1 kernel lines)"), "\(source.line)")
  }

  /// `bench guided` on the model: both arms in one run, each round's two arms alternating which
  /// goes first, the same number of sequences each, rules per round per arm; the guided arm's
  /// rules are those of a guided campaign from an empty corpus at the same seed.
  @Test func benchRunsBothArms() throws {
    let r = try runHarness(["bench", "guided", "--target", "model", "--world", "p2p-switch", "--count", "20", "--rounds", "2", "--seed", "5"])
    #expect(r.status == 0, "\(r.err)")
    let lines = r.out.split(separator: "\n").map(String.init)
    let rounds = lines.filter { $0.hasPrefix("round ") }
    #expect(rounds.count == 4)
    #expect(rounds.map { $0.contains("guided:") } == [false, true, true, false], "\(rounds)")
    #expect(rounds.allSatisfy { $0.contains(": 20 sequences, ") })
    let dir = scratchDirectory("bench-guided")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let guided = try Self.reach(World.named("p2p-switch")!, count: 20, guidedIn: dir, seed: 5)
    #expect(rounds[1].contains(": 20 sequences, \(guided.rules.count) rules,"), "\(rounds[1])")
    #expect(lines.contains { $0.hasPrefix("seeds : rules per round ") })
    #expect(lines.contains { $0.hasPrefix("guided: rules per round ") })
  }
}
