import Reference

/// The kernel decisions of a step as the contract predicts them and as the guest's libbpf
/// observer reported them (``KernelDecision``), when they differ.
package struct DecisionDifference: Hashable, Sendable {
  package var expected: [String]
  package var observed: [String]
}

/// Compares the kernel's decisions inside the series (the libbpf observer's `walk`, `signal` and
/// `map-type` lines) with the model's, step by step, and finds an op's error chain (its
/// `error-chain` line) for triage.
///
/// The decisions are no part of a sequence's expectations: a campaign compares them after the
/// observations matched, so the corpus and the ledger are judged as before, and a guest without
/// the observer (a kernel without BTF) is compared as before.
package enum ObserverCheck {
  /// The observer's lines a comparison covers, by keyword.
  package static let comparedKinds: Set<String> = ["walk", "signal", "map-type"]

  /// The keyword of an observer line.
  package static func keyword(_ line: String) -> String { String(line.prefix { $0 != " " }) }

  /// The lines of `observed` the comparison covers, in their order.
  package static func comparable(_ observed: [String]) -> [String] {
    observed.filter { comparedKinds.contains(keyword($0)) }
  }

  /// The first step (up to `steps`) whose decisions differ, as a divergence of that step whose
  /// observations are `observations[step]` (they matched); `nil` when all agree. A step where the
  /// observer lost records (`dropped N`) is not compared.
  package static func firstDivergence(
    ops: [Op], predicted: [[KernelDecision]], observed: [[String]], observations: [[Observation]]
  ) -> Divergence? {
    for i in 0..<min(ops.count, predicted.count, observed.count) {
      if observed[i].contains(where: { keyword($0) == "dropped" }) { continue }
      let e = predicted[i].map(\.description)
      let o = comparable(observed[i])
      guard e != o else { continue }
      let k = (0..<min(e.count, o.count)).first { e[$0] != o[$0] } ?? min(e.count, o.count)
      let sample = k < e.count ? e[k] : o[k]
      let how = k < e.count && k < o.count ? "different" : k < e.count ? "missing" : "unexpected"
      let sig = Signature(kind: "\(keyword(sample))-\(how)", item: item(sample), op: ops[i].keyword)
      let seen = i < observations.count ? observations[i] : []
      return Divergence(
        step: i, op: ops[i], expected: seen, observed: seen, signature: sig,
        decisions: DecisionDifference(expected: e, observed: o))
    }
    return nil
  }

  /// The contract item a decision line belongs to.
  static func item(_ line: String) -> String {
    switch keyword(line) {
    case "walk": "C3.1"
    case "signal": line.contains(" AR ") ? "C3.2" : "C3.3"
    default: "C6.6"
    }
  }

  /// The error chain of a step's observer lines (`fn=-ERRNO …`, innermost first), if any.
  package static func errorChain(_ observed: [String]) -> String? {
    observed.first { keyword($0) == "error-chain" }.map { String($0.dropFirst("error-chain ".count)) }
  }
}
