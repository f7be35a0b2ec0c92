import Reference

/// The kernel decisions of a step as the contract predicts them and as the guest's libbpf
/// observer reported them (``KernelDecision``), when they differ.
package struct DecisionDifference: Hashable, Sendable {
  package var expected: [String]
  package var observed: [String]
}

/// Compares the kernel's decisions inside the series (the libbpf observer's `walk`, `signal`,
/// `map-type` and `dma-range` lines) with the model's, step by step, and finds an op's error
/// chain (its `error-chain` line) for triage.
///
/// The decisions are no part of a sequence's expectations: a campaign compares them after the
/// observations matched, so the corpus and the ledger are judged as before, and a guest without
/// the observer (a kernel without BTF) is compared as before.
///
/// A value the kernel chooses is compared as a symbol: a `dma-range iova` line's base
/// (`iova=$iova1+0x2000` predicted, `iova=0xffffe000+0x2000` observed) binds `$iova1` on first
/// sight, in the bindings the observations made (the map's sg table starts at `$iova1`), so the
/// base must be the table's and every range linked into the allocation must name the same one,
/// at the offset the model gives it.
package enum ObserverCheck {
  /// The observer's lines a comparison covers, by keyword.
  package static let comparedKinds: Set<String> = ["walk", "signal", "map-type", "dma-range"]

  /// The keyword of an observer line.
  package static func keyword(_ line: String) -> String { String(line.prefix { $0 != " " }) }

  /// The lines of `observed` the comparison covers, in their order.
  package static func comparable(_ observed: [String]) -> [String] {
    observed.filter { comparedKinds.contains(keyword($0)) }
  }

  /// The first divergence of a guest run of `ops` in `world`: of its observations
  /// (``Differ``), or, when they match the contract and the guest had the observer
  /// (`observer` not `nil`), of the kernel's decisions. The verdict a campaign, `minimize` and
  /// the campaign's minimization judge a run by, before triage.
  package static func judge(ops: [Op], observed: [[Observation]], observer: [[String]]?, world: World) -> Divergence? {
    let (predicted, decisions, _) = Machine.runWithDecisions(ops, in: world)
    if let d = Differ.firstDivergence(ops: ops, expected: predicted, observed: observed) { return d }
    guard let observer else { return nil }
    return firstDivergence(
      ops: ops, predicted: decisions, observed: observer, observations: observed,
      bindings: Differ.bindings(ops: ops, expected: predicted, observed: observed))
  }

  /// The first step whose decisions differ, as a divergence of that step whose observations
  /// are `observations[step]` (they matched); `nil` when all agree. A step where the observer
  /// lost records (`dropped N`) is not compared. `bindings`: the symbols the observations bound
  /// (``Differ/bindings(ops:expected:observed:)``); `steps`: only these steps are compared (all
  /// when `nil`).
  package static func firstDivergence(
    ops: [Op], predicted: [[KernelDecision]], observed: [[String]], observations: [[Observation]],
    bindings: [String: UInt64] = [:], steps: Set<Int>? = nil
  ) -> Divergence? {
    var b = bindings
    for i in 0..<min(ops.count, predicted.count, observed.count) {
      if let steps, !steps.contains(i) { continue }
      if observed[i].contains(where: { keyword($0) == "dropped" }) { continue }
      if isUndecidedRace(ops[i], i < observations.count ? observations[i] : []) { continue }
      let e = predicted[i].map(\.description)
      let o = comparable(observed[i])
      var trial = b
      let k = (0..<min(e.count, o.count)).first { !matches(e[$0], o[$0], &trial) } ?? min(e.count, o.count)
      if k == e.count && k == o.count {
        b = trial
        continue
      }
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

  /// Whether step `op` is an `mf-race` in which a process ended: the first call's signal
  /// killed it, and whether the second call still walks it depends on whether it has exited
  /// yet (seen both ways on the same sequence, mf seed 12), so the step's decisions are not
  /// compared. Its observations are (one end, both events).
  static func isUndecidedRace(_ op: Op, _ observations: [Observation]) -> Bool {
    guard case .mfRace = op else { return false }
    return observations.contains { $0.endedProcess != nil }
  }

  /// Whether observer line `observed` is the predicted `expected`, binding the symbols of
  /// `expected` (`iova=$NAME+0xOFF` against `iova=0xBASE+0xOFF`: `$NAME` is `BASE`; the offsets
  /// are the same) in `bindings`; a symbol already bound must have that value.
  package static func matches(_ expected: String, _ observed: String, _ bindings: inout [String: UInt64]) -> Bool {
    if expected == observed { return true }
    let e = expected.split(separator: " ", omittingEmptySubsequences: false)
    let o = observed.split(separator: " ", omittingEmptySubsequences: false)
    guard e.count == o.count else { return false }
    var b = bindings
    for (x, y) in zip(e, o) where x != y {
      guard let (key, name, offset) = symbolic(x), let (key2, base, offset2) = concrete(y),
        key == key2, offset == offset2
      else { return false }
      if let v = b[name], v != base { return false }
      b[name] = base
    }
    bindings = b
    return true
  }

  /// `KEY=$NAME+0xOFF`: (KEY, NAME, OFF).
  private static func symbolic(_ token: Substring) -> (Substring, String, UInt64)? {
    guard let eq = token.firstIndex(of: "="), token[token.index(after: eq)...].hasPrefix("$"),
      let plus = token.lastIndex(of: "+"), plus > eq, let off = hex(token[token.index(after: plus)...])
    else { return nil }
    let name = token[token.index(eq, offsetBy: 2)..<plus]
    guard !name.isEmpty else { return nil }
    return (token[..<eq], String(name), off)
  }

  /// `KEY=0xBASE+0xOFF`: (KEY, BASE, OFF); `KEY=0xBASE` (a `dma=` address): (KEY, BASE, 0).
  private static func concrete(_ token: Substring) -> (Substring, UInt64, UInt64)? {
    if let eq = token.firstIndex(of: "="), !token[eq...].contains("+"),
      let base = hex(token[token.index(after: eq)...])
    {
      return (token[..<eq], base, 0)
    }
    guard let eq = token.firstIndex(of: "="), let plus = token.lastIndex(of: "+"), plus > eq,
      let base = hex(token[token.index(after: eq)..<plus]), let off = hex(token[token.index(after: plus)...])
    else { return nil }
    return (token[..<eq], base, off)
  }

  private static func hex(_ s: Substring) -> UInt64? {
    guard s.hasPrefix("0x") else { return nil }
    return UInt64(s.dropFirst(2), radix: 16)
  }

  /// The contract item a decision line belongs to.
  static func item(_ line: String) -> String {
    switch keyword(line) {
    case "walk": "C3.1"
    case "signal": line.contains(" AR ") ? "C3.2" : "C3.3"
    case "dma-range": line.hasPrefix("dma-range bus") ? "C6.2" : line.hasPrefix("dma-range iova") ? "C6.3" : "C6.4"
    default: "C6.6"
    }
  }

  /// The error chain of a step's observer lines (`fn=-ERRNO …`, innermost first), if any.
  package static func errorChain(_ observed: [String]) -> String? {
    observed.first { keyword($0) == "error-chain" }.map { String($0.dropFirst("error-chain ".count)) }
  }
}
