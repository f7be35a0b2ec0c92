import Foundation
import Fuzz
import Reference

/// Guided generation for one world of a campaign (`harness fuzz --guided --corpus DIR`).
///
/// The campaign's i-th sequence is screened on the model before it runs: of up to
/// ``candidates`` candidates, the first whose prediction reaches a feature (``Feature``) that
/// neither the kept sequences nor the sequences picked before it in its round reach; the first
/// candidate when none does. The first candidate is the plain seed SEED+i (what the campaign
/// without `--guided` runs; always in the first round of a fresh corpus, then ``seedPercent``
/// %), the others are derived from the kept ones by the ``Mutator`` or, one time in three,
/// fresh sequences of a seed of their own. The model runs a sequence in about a millisecond
/// where the guest takes a hundred or more, so the guest runs what the model predicts to be
/// new. A sequence is kept when the model's prediction for it takes a model rule (``Rule``)
/// no kept sequence took, or takes a rule more often than any did (hit counts in buckets 1, 2,
/// 3, 4–7, 8–15, 16+, as AFL counts edges), or runs a deciding op in a new state
/// (``StateFeature``).
///
/// With `--coverage`, a sequence is also kept when the guest ran a line of the series' files no
/// kept sequence ran (each sequence's counts are collected right after it, with those of the
/// reset before it, and turned into lines while the next sequence runs, ``SequenceLines``,
/// ``PendingLines``); those lines are in `kept/NAME.lines`, loaded with the
/// sequence. The kernel decides what is kept then, so the same seed and corpus give the same
/// sequences only as far as the kernel runs the same lines for the same ops (asynchronous
/// work, the reset that a sequence follows).
///
/// Files, under `DIR/<world>/`: `kept/NAME.seq` (the corpus: loaded again by the next
/// campaign on the same DIR, in name order), and `runs/NAME.seq`, every sequence the campaign
/// ran, with the contract's predictions for the world it ran in, so `harness replay` reruns
/// any verdict from its file. NAME is the verdict's name (`guided-N`, `<world>-guided-N`).
///
/// Determinism: the corpus changes only between rounds of ``roundSize`` sequences, and a
/// sequence is generated from the corpus as the previous rounds left it (results taken in
/// order). So the same seed, count, length, kernel and corpus folder give the same sequences
/// and the same report whatever `--jobs`: with N guests, a guest that takes a sequence of the
/// next round waits until every sequence of the current one has been judged (up to
/// ``roundSize`` guests stay busy; more wait). A budget that stops the campaign keeps the
/// sequences run so far, as without `--guided`.
final class GuidedSource: @unchecked Sendable {
  /// Sequences generated from one state of the corpus.
  static let roundSize = 8
  /// How often (percent) a sequence is the plain seed once something is kept.
  static let seedPercent = 40
  /// Candidates screened on the model for each sequence run.
  static let candidates = 16

  let worldName: String
  let seed: UInt64
  let length: Int
  /// `DIR/<world>`.
  let directory: String
  private let condition = NSCondition()
  private var kept: [Mutator.Parent] = []
  /// What each kept sequence reached (in the order of `kept`).
  private var keptFeatures: [Set<Feature>] = []
  private var features: Set<Feature> = []
  /// The sequences of the rounds generated and not all taken yet, by round.
  private var rounds: [Int: [OpSequence]] = [:]
  private var recorded = 0
  /// Per sequence recorded (in order), how many sequences were kept after it.
  private var keptAfter: [Int] = []
  private var released = false
  /// Kept by this campaign; derived and plain sequences run.
  private(set) var keptNow = 0
  private(set) var derived = 0
  private(set) var plain = 0
  /// Kept sequences loaded from the folder at the start.
  private(set) var loaded = 0

  /// Something a sequence reached: a rule taken, with its hit count's bucket (1, 2, 3, 4–7,
  /// 8–15, 16+), a state an op that decides a rare outcome ran in (``StateFeature``), or, on
  /// the coverage kernel, a line of the series' files the guest ran (`SOURCE:LINE`,
  /// ``SequenceLines``).
  enum Feature: Hashable {
    case rule(Rule, bucket: Int)
    case state(String)
    case line(String)
  }


  /// Adds a kept sequence to the corpus.
  private func keep(_ name: String, _ s: OpSequence, _ f: [Feature: Int], depth: Int) {
    // Every kept sequence is picked alike: favouring those with rare features (1 + 4 per
    // feature at most two kept sequences reach) or with many new ones (1 + 2 per new feature)
    // reached fewer rules and features on the same budget (docs/measurements.md).
    kept.append(Mutator.Parent(name: name, sequence: s.bare, weight: 1, depth: depth))
    keptFeatures.append(Set(f.keys))
    features.formUnion(f.keys)
  }

  /// What `ops` reach in `world`, each with the number of ops it took to reach it first.
  static func features(_ ops: [Op], in world: World) -> [Feature: Int] {
    var m = Machine(world: world)
    m.countRules()
    var first: [Feature: Int] = [:]
    for (i, op) in ops.enumerated() {
      for f in StateFeature.of(op, before: m) where first[.state(f)] == nil { first[.state(f)] = i + 1 }
      _ = m.apply(op)
      for (rule, n) in m.ruleHits.counts {
        let f = Feature.rule(rule, bucket: n >= 16 ? 6 : n >= 8 ? 5 : n >= 4 ? 4 : n)
        if first[f] == nil { first[f] = i + 1 }
      }
    }
    return first
  }

  /// Opens (creating) `corpus/<world>/` and loads its kept sequences.
  init(world: World, seed: UInt64, length: Int, corpus: String) throws(HarnessError) {
    self.worldName = world.name
    self.seed = seed
    self.length = length
    directory = corpus + "/" + world.name
    let fm = FileManager.default
    for sub in ["kept", "runs"] {
      do {
        try fm.createDirectory(atPath: directory + "/" + sub, withIntermediateDirectories: true)
      } catch {
        throw HarnessError(.usage, "--corpus \(corpus): cannot create \(directory)/\(sub) (\(error.localizedDescription)); give a writable directory")
      }
    }
    let names = ((try? fm.contentsOfDirectory(atPath: directory + "/kept")) ?? []).filter { $0.hasSuffix(".seq") }.sorted()
    for file in names {
      let path = directory + "/kept/" + file
      let s = try Corpus.load(path)
      guard s.world == world.name else {
        throw HarnessError(.usage, "\(path): a sequence of world \(s.world) among \(world.name)'s kept ones; move it to \(corpus)/\(s.world)/kept")
      }
      var f = Self.features(s.ops, in: world)
      if let text = try? String(contentsOfFile: directory + "/kept/" + file.dropLast(4) + ".lines", encoding: .utf8) {
        for l in text.split(separator: "\n") where f[.line(String(l))] == nil { f[.line(String(l))] = s.steps.count }
      }
      let known = features
      let new = f.filter { !known.contains($0.key) }
      keep(String(file.dropLast(4)), s, f, depth: new.values.max() ?? 0)
    }
    loaded = kept.count
  }

  /// The campaign's `i`-th sequence, for `world` as the guest reported it (the model's world
  /// on the model alone). Waits until the rounds before `i`'s have been recorded.
  func sequence(_ i: Int, world: World) -> OpSequence {
    condition.withLock {
      let r = i / Self.roundSize
      let needed = r * Self.roundSize
      while recorded < needed && !released && !Interruption.isInterrupted {
        _ = condition.wait(until: Date(timeIntervalSinceNow: 0.2))
      }
      if let round = rounds[r] { return round[i - needed] }
      // The corpus as the rounds before left it, not as later sequences (other guests') made it.
      let count = needed == 0 ? loaded : keptAfter[min(needed, keptAfter.count) - 1]
      let parents = Array(kept.prefix(count))
      var known = Set<Feature>()
      for f in keptFeatures.prefix(count) { known.formUnion(f) }
      var round: [OpSequence] = []
      for j in 0..<Self.roundSize {
        let (s, f) = Self.screened(needed + j, parents: parents, known: known, world: world, seed: seed, length: length)
        known.formUnion(f.keys)
        round.append(s)
      }
      rounds = rounds.filter { $0.key >= r }
      rounds[r] = round
      return round[i - needed]
    }
  }

  /// The `i`-th sequence of a round whose corpus is `parents`, screened on the model: the first
  /// of up to ``candidates`` candidates whose predicted features are not all in `known` (the
  /// kept sequences' and those picked before it in its round); the first candidate when none
  /// is. The first candidate is the plain seed SEED+i (``seedPercent`` % of the time once
  /// something is kept, always before), the others are derived from the corpus or, one time
  /// in three, fresh sequences from a seed of their own. Pure: the same arguments give the
  /// same sequence.
  static func screened(
    _ i: Int, parents: [Mutator.Parent], known: Set<Feature>, world: World, seed: UInt64, length: Int
  ) -> (OpSequence, [Feature: Int]) {
    var rng = PRNG(seed: (seed &+ UInt64(i)) ^ 0x6775_6964_6564)
    var first: (OpSequence, [Feature: Int])? = nil
    for c in 0..<candidates {
      let s: OpSequence =
        if c == 0 && (parents.isEmpty || rng.chance(seedPercent)) {
          Generator.generate(world: world, seed: seed &+ UInt64(i), length: length)
        } else if parents.isEmpty || rng.chance(33) {
          fresh(world: world, seed: rng.next(), length: length)
        } else {
          Mutator.derive(from: parents, world: world, seed: rng.next(), length: length)
        }
      let f = features(s.ops, in: world)
      if f.keys.contains(where: { !known.contains($0) }) { return (s, f) }
      if first == nil { first = (s, f) }
    }
    return first!
  }

  /// A sequence generated from `seed` as a plain seed's is, but not one of the campaign's
  /// seeds: no seed of its own (it replays from its file), its origin in a comment.
  private static func fresh(world: World, seed: UInt64, length: Int) -> OpSequence {
    var s = Generator.generate(world: world, seed: seed, length: length)
    s.seed = nil
    if !s.steps.isEmpty { s.steps[0].comments = ["# guided: fresh from seed \(seed)"] }
    return s
  }

  /// Takes the result of the `i`-th sequence (in order): saves it under `runs/`, keeps it
  /// under `kept/` when it reached something new. Returns whether it was kept, or `nil` when
  /// its kernel lines are still being worked out (``PendingLines``): then it is judged, in
  /// order, as soon as they are, and always before the next round's sequences are generated
  /// (``finish()`` waits for the last ones).
  @discardableResult
  func record(_ i: Int, name: String, _ s: OpSequence, _ r: SequenceResult, world: World) throws(HarnessError) -> Bool? {
    let w = r.world ?? world
    let predicted = s.withExpectations(Machine.run(s.ops, in: w))
    let text = SequenceFormat.print(predicted)
    try Corpus.writeAtomically(text, to: "\(directory)/runs/\(name).seq")
    let entry = Pending(
      index: i, name: name, sequence: s, text: text, features: Self.features(s.ops, in: w),
      lines: r.pendingKernelLines, knownLines: r.kernelLines)
    condition.withLock { pending.append(entry) }
    if let future = r.pendingKernelLines {
      future.whenReady { [self] in try? drain() }
    }
    try drain()
    return condition.withLock {
      let kept = judged[i]
      judged = judged.filter { $0.key > i }
      return kept
    }
  }

  /// A recorded sequence not yet judged (its kernel lines pending, or one before it's).
  private struct Pending {
    var index: Int
    var name: String
    var sequence: OpSequence
    var text: String
    var features: [Feature: Int]
    var lines: PendingLines?
    var knownLines: Set<String>?
  }
  private var pending: [Pending] = []
  /// Whether each sequence judged was kept, until ``record`` has returned it.
  private var judged: [Int: Bool] = [:]
  /// The first error met judging a sequence on another thread (rethrown by ``record`` or
  /// ``finish()``).
  private var failure: HarnessError? = nil

  /// Judges the pending sequences in order, as far as their kernel lines are known.
  private func drain() throws(HarnessError) {
    let failed: HarnessError? = condition.withLock {
      while failure == nil, let e = pending.first {
        var lines = e.knownLines
        if let future = e.lines {
          guard let l = future.value else { break }
          lines = l
        }
        pending.removeFirst()
        do throws(HarnessError) {
          judged[e.index] = try judge(e, lines: lines)
        } catch {
          failure = error
          condition.broadcast()
        }
      }
      return failure
    }
    if let failed { throw failed }
  }

  /// Keeps `e` when it reached something no kept sequence did. Called in order, under the lock.
  private func judge(_ e: Pending, lines: Set<String>?) throws(HarnessError) -> Bool {
    var f = e.features
    // Where in the sequence a line was reached is not known: all of it (a tail keeps it whole).
    for l in lines ?? [] { f[.line(l)] = e.sequence.steps.count }
    let new = f.filter { !features.contains($0.key) }
    let isNew = !new.isEmpty
    // Written before the corpus takes it: a kept sequence is on disk before anything derives
    // from it.
    if isNew {
      if let lines {
        try Corpus.writeAtomically(lines.sorted().map { $0 + "\n" }.joined(), to: "\(directory)/kept/\(e.name).lines")
      }
      try Corpus.writeAtomically(e.text, to: "\(directory)/kept/\(e.name).seq")
    }
    if e.sequence.seed == nil { derived += 1 } else { plain += 1 }
    if isNew {
      keep(e.name, e.sequence, f, depth: new.values.max() ?? 0)
      keptNow += 1
    }
    recorded = e.index + 1
    keptAfter.append(kept.count)
    condition.broadcast()
    return isNew
  }

  /// Waits until every recorded sequence has been judged; rethrows what went wrong judging one.
  func finish() throws(HarnessError) {
    let failed: HarnessError? = condition.withLock {
      while !pending.isEmpty && failure == nil {
        _ = condition.wait(until: Date(timeIntervalSinceNow: 0.2))
      }
      return failure
    }
    if let failed { throw failed }
  }

  /// No sequence waits any more (the campaign ended early).
  func release() {
    condition.withLock {
      released = true
      condition.broadcast()
    }
  }

  /// The summary's line.
  var line: String {
    condition.withLock {
      let lines = features.count { if case .line = $0 { true } else { false } }
      return "\(worldName): guided: \(plain) plain seeds and \(derived) derived or fresh sequences run, \(keptNow) kept"
        + " (\(loaded) kept before), \(features.count) features" + (lines > 0 ? " (\(lines) kernel lines)" : "")
    }
  }
}
