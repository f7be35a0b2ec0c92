import ArgumentParser
import Foundation
import Fuzz
import Reference
import Synchronization

/// `harness bench guided`: guided generation against plain seeds, side by side in one run.
extension Bench {
  struct Guided: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Guided generation (--guided) against the same budget of plain seeds, in one run.",
      discussion: """
        Runs the two arms of each round one after the other, alternating which goes first, on \
        the same world and length: plain seeds BASE…, and a guided campaign from an empty \
        corpus (a scratch folder) starting at the same seed. On the model (--target model) both \
        arms run the same number of sequences (--count); in the guest (--target qemu) both run \
        for the same wall time (--budget, counted from the guest's boot) on the coverage \
        flavour of the kernel, the guided arm with each sequence's kernel lines as feedback. \
        Reports per arm: the model rules the contract's predictions took, and in the guest the \
        lines of the series' files the guest ran (on the arm's summed counts, read as gcov reads \
        them). Round r uses seed base SEED + 10000·r.

        Examples:
          swift run harness bench guided --target model --world mf --count 150 --rounds 4
          swift run harness bench guided --target qemu --world mf --budget 3m --rounds 1
        """)

    @Option(help: "Where the arms run: model (same number of sequences) or qemu (same wall time, coverage kernel).")
    var target: Target = .model
    @Option(help: "Sequences per arm (model; default 150), or the most each arm may run (qemu; default: as many as the budget allows).")
    var count: Int?
    @Option(help: "Wall time per arm in the guest (e.g. 3m, 90s).") var budget = Budget(argument: "3m")!
    @Option(help: "Rounds (each runs both arms; round r starts at seed SEED + 10000·r).") var rounds = 2
    @Option(help: "First seed.") var seed: UInt64 = 1
    @Option(help: "Ops per sequence.") var length = 30
    @OptionGroup var worldOption: WorldOption
    @OptionGroup(title: "Kernel under test") var kernel: KernelOptions

    /// What one arm reached.
    struct Arm {
      var sequences = 0
      var rules: Set<Rule> = []
      var lines: Set<String>? = nil
      var kept: Int? = nil
      /// In the guest: how the counts were collected.
      var collections: String? = nil
      /// Wall time of the arm (on the model the guided arm screens up to
      /// ``GuidedSource/candidates`` candidates per sequence it runs).
      var time: Duration = .zero
      var text: String {
        "\(sequences) sequences, \(rules.count) rules" + (lines.map { ", \($0.count) series lines" } ?? "")
          + (kept.map { ", \($0) kept" } ?? "") + " in \(Timing.ms(time))" + (collections.map { " (\($0))" } ?? "")
      }
    }

    func validate() throws {
      guard target != .both else { throw ValidationError("--target model or qemu") }
      guard worldOption.world != "all", World.named(worldOption.world) != nil else {
        throw ValidationError("--world: one of " + World.builtin.map(\.name).joined(separator: ", "))
      }
      guard (count ?? 1) > 0, rounds > 0, length > 0 else { throw ValidationError("--count, --rounds and --length must be positive") }
    }

    func run() async throws {
      let world = World.named(worldOption.world)!
      let artifacts = target == .model ? nil : try await kernel.build(coverage: true)
      let scratch = try PrivateFiles.makeDirectory(in: FileManager.default.temporaryDirectory.path, prefix: "harness-bench-guided")
      defer { PrivateFiles.remove(scratch) }
      var totals: [Bool: Arm] = [false: Arm(), true: Arm()]
      // The arms of every round, per arm (`true`: guided).
      var perRound: [Bool: [Arm]] = [:]
      let unit = target == .model ? "\(sequences) sequences" : "\(budget.duration)"
      print("bench guided: \(world.name), \(target.rawValue), \(unit) per arm, \(rounds) rounds, length \(length)")
      for r in 0..<rounds {
        let base = seed &+ UInt64(r) * 10000
        // Alternating which arm goes first: a host whose load drifts favours neither.
        for guided in (r % 2 == 0 ? [false, true] : [true, false]) {
          let corpus = guided ? "\(scratch)/round-\(r)" : nil
          let start = ContinuousClock.now
          var arm =
            if let artifacts {
              try await guestArm(world, artifacts, base: base, corpus: corpus)
            } else {
              try modelArm(world, base: base, corpus: corpus)
            }
          arm.time = ContinuousClock.now - start
          print("round \(r + 1) (seed \(base)): \(guided ? "guided" : "seeds "): \(arm.text)")
          totals[guided]!.sequences += arm.sequences
          totals[guided]!.time += arm.time
          totals[guided]!.rules.formUnion(arm.rules)
          if let l = arm.lines { totals[guided]!.lines = (totals[guided]!.lines ?? []).union(l) }
          if let k = arm.kept { totals[guided]!.kept = (totals[guided]!.kept ?? 0) + k }
          perRound[guided, default: []].append(arm)
        }
      }
      for guided in [false, true] {
        let arms = perRound[guided] ?? []
        let rules = arms.map { String($0.rules.count) }.joined(separator: ", ")
        let lines = arms.compactMap { $0.lines.map { String($0.count) } }.joined(separator: ", ")
        print(
          "\(guided ? "guided" : "seeds "): rules per round \(rules)" + (lines.isEmpty ? "" : "; series lines per round \(lines)")
            + "; over all rounds: \(totals[guided]!.text)")
      }
      // Rules the arms reached in a different number of rounds: where one arm is ahead.
      for rule in Rule.allCases {
        let n = [false, true].map { a in (perRound[a] ?? []).count { $0.rules.contains(rule) } }
        if n[0] != n[1] { print("rounds that reached \(rule.rawValue): seeds \(n[0]), guided \(n[1])") }
      }
      let s = totals[false]!.rules, g = totals[true]!.rules
      let onlyG = g.subtracting(s).map(\.rawValue).sorted(), onlyS = s.subtracting(g).map(\.rawValue).sorted()
      if !onlyG.isEmpty { print("rules only guided reached: " + onlyG.joined(separator: "; ")) }
      if !onlyS.isEmpty { print("rules only the seeds reached: " + onlyS.joined(separator: "; ")) }
    }

    /// Sequences per arm: on the model `--count` (150); in the guest at most `--count`.
    private var sequences: Int { count ?? (target == .model ? 150 : 1_000_000) }

    /// `count` sequences on the model: seeds from `base`, or guided from an empty `corpus`.
    private func modelArm(_ world: World, base: UInt64, corpus: String?) throws -> Arm {
      let guided = try corpus.map { dir throws(HarnessError) in
        try GuidedSource(world: world, seed: base, length: length, corpus: dir)
      }
      var arm = Arm()
      for i in 0..<sequences {
        let s = guided?.sequence(i, world: world) ?? Generator.generate(world: world, seed: base &+ UInt64(i), length: length)
        let result = ModelRun.run(s, world: world)
        try guided?.record(i, name: "guided-\(base &+ UInt64(i))", s, result, world: world)
        arm.sequences += 1
        arm.rules.formUnion(result.ruleHits?.counts.keys ?? [:].keys)
      }
      try guided?.finish()
      arm.kept = guided?.keptNow
      return arm
    }

    /// One guest on the coverage kernel for `budget`: seeds from `base`, or guided from an empty
    /// `corpus` with each sequence's kernel lines as feedback.
    private func guestArm(_ world: World, _ artifacts: GuestArtifacts, base: UInt64, corpus: String?) async throws -> Arm {
      let gw = try GuestWorld.named(world.name)
      var a = artifacts
      let coverage = try CampaignCoverage.start(&a, directory: "", perSequence: corpus != nil)
      let guided = try corpus.map { dir throws(HarnessError) in
        try GuidedSource(world: world, seed: base, length: length, corpus: dir)
      }
      defer { guided?.release() }
      var source: (@Sendable (Int, World) -> OpSequence)? = nil
      if let guided { source = { @Sendable i, w in guided.sequence(i, world: w) } }
      // The budget runs from the guest's first boot: both arms get the same time for sequences.
      let deadline = Mutex<ContinuousClock.Instant?>(nil)
      let budget = budget.duration
      var arm = Arm()
      _ = try await GuestRun.campaign(
        gw, artifacts: a, seeds: (0..<UInt64(sequences)).map { base &+ $0 }, length: length,
        ledger: try Ledger.project(), jobs: 1,
        shouldStop: { _ in
          Interruption.isInterrupted || deadline.withLock { $0.map { ContinuousClock.now >= $0 } ?? false }
        },
        onBoot: { _ in deadline.withLock { $0 = $0 ?? ContinuousClock.now + budget } },
        sequence: source
      ) { s, seq, result in
        try guided?.record(Int(s - base), name: "guided-\(s)", seq, result, world: gw.model)
        arm.sequences += 1
        arm.rules.formUnion(result.ruleHits?.counts.keys ?? [:].keys)
      }
      try guided?.finish()
      arm.lines = try SequenceLines(notes: coverage.collector.notes).lines(of: coverage.collector.counts)
      let cost = coverage.collector.cost
      arm.collections = "counts collected \(coverage.collector.collections) times in \(Timing.ms(cost.time))"
        + (corpus == nil ? "" : ", kernel lines worked out in \(Timing.ms(coverage.collector.linesTime))")
        + (coverage.collector.failures.isEmpty ? "" : "; " + coverage.collector.failures.prefix(2).joined(separator: "; "))
      arm.kept = guided?.keptNow
      return arm
    }
  }
}
