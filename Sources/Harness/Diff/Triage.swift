import Fuzz
import Reference

/// How far the contract and the known deviations account for a sequence's observations.
package struct Explanation: Hashable, Sendable {
  /// The smallest set of deviations under which the model predicts every observation (empty
  /// when the contract alone does); for an unexplained sequence, the set that explained the
  /// longest prefix.
  package var deviations: [Deviation]
  /// The first observation no set of deviations explains, found under ``deviations`` (which
  /// explain everything before it); `nil` when the whole run is explained.
  package var unexplained: Divergence?
  /// The op at which one of ``deviations`` left the kernel's state undefined: the comparison
  /// ended there ("known, state undefined").
  package var undefinedAt: Int?
  /// How many ops were compared: up to the end, the undefined state or the unexplained op.
  package var comparedOps: Int

  package var isExplained: Bool { unexplained == nil }
}

/// Triage by explanation: which known deviations (``Deviation``) make the model predict a whole
/// run.
///
/// A divergence is *known* when some set of the ledger's deviations explains every observation
/// of the sequence, and *new* otherwise, whatever its first difference looks like: a new bug
/// whose first symptom resembles a known one is not explained by that one's deviation, and a new
/// bug after a known one in the same sequence is the first observation left unexplained.
package enum Triage {
  /// The largest set of deviations tried together: four, as a world where one deviation
  /// applies to every reset met sequences that needed three others beside it (README,
  /// "the multifunction worlds"). Only deviations that change a prediction of the sequence
  /// are combined.
  package static let maxSetSize = 4

  /// The explanation of `observed` (the run of `ops` in `world`) by the contract and sets of
  /// `candidates`, smallest sets first, in ``Deviation`` order within a size.
  ///
  /// `recorded`: a sequence file's expectations, per op (`nil` where it has none). A step whose
  /// recorded expectation is not the contract's prediction (written by hand) is compared as
  /// written under every set: no deviation explains away what a person wrote down.
  package static func explain(
    ops: [Op], observed: [[Observation]], world: World, candidates: Set<Deviation>, recorded: [[Observation]?]? = nil
  ) -> Explanation {
    let n = min(ops.count, observed.count)
    let contract = Machine.predict(ops, in: world, deviations: [])
    func expectations(_ p: Prediction) -> [[Observation]?] {
      guard let recorded else { return p.steps }
      return p.steps.indices.map { i in
        guard i < recorded.count, let r = recorded[i], r != contract.steps[i], p.steps[i] != nil else { return p.steps[i] }
        return r
      }
    }
    let base = expectations(contract)
    guard let first = Differ.firstDivergence(ops: ops, expected: base, observed: observed) else {
      return Explanation(deviations: [], unexplained: nil, undefinedAt: nil, comparedOps: n)
    }
    // Deviations that change a prediction of this sequence: alone, or beside all the others
    // (one deviation can make another's rule apply: a process the contract kills early lives
    // on when the kernel soft-offlines instead, and is then SIGKILLed by another).
    let all = Machine.predict(ops, in: world, deviations: candidates)
    let relevant = candidates.sorted().filter {
      Machine.predict(ops, in: world, deviations: [$0]) != contract
        || Machine.predict(ops, in: world, deviations: candidates.subtracting([$0])) != all
    }
    var best = (deviations: [Deviation](), divergence: first)
    for size in 1...max(1, min(maxSetSize, relevant.count)) where size <= relevant.count {
      for set in combinations(relevant, size) {
        let p = Machine.predict(ops, in: world, deviations: Set(set))
        guard let d = Differ.firstDivergence(ops: ops, expected: expectations(p), observed: observed) else {
          let end = p.undefined.map { min($0.step, n) } ?? n
          return Explanation(deviations: set, unexplained: nil, undefinedAt: p.undefined?.step, comparedOps: end)
        }
        if d.step > best.divergence.step { best = (set, d) }
      }
    }
    return Explanation(
      deviations: best.deviations, unexplained: best.divergence, undefinedAt: nil, comparedOps: best.divergence.step + 1)
  }

  /// The `k`-element subsets of `items`, in lexicographic order of positions.
  static func combinations<T>(_ items: [T], _ k: Int) -> [[T]] {
    guard k > 0 else { return [[]] }
    guard k <= items.count else { return [] }
    var out: [[T]] = []
    for (i, x) in items.enumerated() {
      for rest in combinations(Array(items[(i + 1)...]), k - 1) { out.append([x] + rest) }
    }
    return out
  }
}

extension SequenceResult {
  /// Judges a diverging run by explanation against `ledger`'s deviations: sets ``explanation``;
  /// when no set explains the run, the verdict's divergence becomes the first unexplained
  /// observation (after the known ones it sits behind). A match or a model invariant is left
  /// as it is.
  package mutating func triage(_ ledger: Ledger, world: World) {
    guard case .divergence = verdict else {
      if verdict == .match {
        explanation = Explanation(deviations: [], unexplained: nil, undefinedAt: nil, comparedOps: min(sequence.ops.count, observed.count))
      }
      return
    }
    let e = ledger.explain(ops: sequence.ops, observed: observed, world: world)
    explanation = e
    if let u = e.unexplained {
      var d = u
      if !carriedAfter.isEmpty { d.signature.kind = "carried-" + d.signature.kind }
      verdict = .divergence(d)
    }
  }

  /// The ids of the ledger entries that explain this run, comma-separated; `nil` when it is not
  /// a known divergence.
  package func knownIDs(_ ledger: Ledger) -> String? {
    guard verdict != .match, carriedAfter.isEmpty, let e = explanation else { return nil }
    let ids = ledger.entries(explaining: e).map(\.id)
    return ids.isEmpty ? nil : ids.joined(separator: ", ")
  }
}

/// What a new verdict is grouped by: most likely one root cause per group.
///
/// Two runs whose first differences look different (a missing signal in one, a wrong return in
/// another) are one group when the same deviations of the model explain them both; the ledger
/// need not know those deviations (a campaign with an empty ledger still groups the findings
/// the model already describes). A run no deviation explains is grouped by the first
/// observation nothing explains (its kind, contract item and op).
package enum RootCause: Hashable, Comparable, Sendable, CustomStringConvertible {
  /// The model's deviations explain every observation with these, which no ledger entry has.
  case deviations([Deviation])
  /// The first observation no set of deviations explains.
  case unexplained(Signature)

  package var description: String {
    switch self {
    case .deviations(let ds): "explained by deviation \(ds.map(\.rawValue).joined(separator: " + ")) (no ledger entry)"
    case .unexplained(let s): "unexplained \(s)"
    }
  }

  package static func < (a: Self, b: Self) -> Bool { a.description < b.description }
}

extension SequenceResult {
  /// The group of a new verdict (``RootCause``): explained by the model's deviations beyond
  /// `ledger`'s, or by its first observation that none explains. A carried verdict or a broken
  /// model invariant is grouped by its signature.
  package func rootCause(_ ledger: Ledger, world: World) -> RootCause? {
    guard let signature = verdict.signature else { return nil }
    guard case .divergence = verdict, carriedAfter.isEmpty else { return .unexplained(signature) }
    let e = Triage.explain(ops: sequence.ops, observed: observed, world: world, candidates: Set(Deviation.allCases))
    if e.isExplained {
      let beyond = e.deviations.filter { !ledger.deviations.contains($0) }
      return beyond.isEmpty ? .unexplained(signature) : .deviations(beyond)
    }
    return .unexplained(e.unexplained!.signature)
  }
}
