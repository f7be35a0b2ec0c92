/// The reference model of both series for one world: applies ops, predicts observations.
///
/// Pure: no I/O, no clocks, no randomness. The two halves share nothing but the world: the
/// memory-failure half (docs/contract.md, sections 1–5) and the dma-buf half (sections 6, 7).
/// With ``deviations`` empty it predicts what the contract says; each deviation switched on
/// predicts one known kernel behaviour instead where its rule applies (``Deviation``).
package struct Machine: Sendable {
  package let world: World
  package let deviations: Set<Deviation>
  package private(set) var memoryFailure: MemoryFailureModel
  package private(set) var dmaBuf: DmaBufModel

  package init(world: World, deviations: Set<Deviation> = []) {
    self.world = world
    self.deviations = deviations
    self.memoryFailure = MemoryFailureModel(world: world, deviations: deviations)
    self.dmaBuf = DmaBufModel(world: world, deviations: deviations)
  }

  /// The deviation that left the kernel's state undefined, if one did: from the op that did it,
  /// the model predicts nothing.
  package var undefined: Deviation? { memoryFailure.undefined }

  /// Applies `op` and returns what the contract predicts, in canonical order.
  package mutating func apply(_ op: Op) -> [Observation] {
    if op.isDmaBuf {
      let o = dmaBuf.apply(op)
      decisions = dmaBuf.decisions
      return o
    }
    let o = memoryFailure.apply(op)
    decisions = memoryFailure.decisions
    return o
  }

  /// What the kernel decides inside the series during the last op applied (``KernelDecision``).
  package private(set) var decisions: [KernelDecision] = []

  /// Runs a whole sequence from a fresh state, counting rules: the observations of each op, the
  /// kernel decisions the contract predicts for each, and the rules taken.
  package static func runWithDecisions(_ ops: [Op], in world: World)
    -> (observations: [[Observation]], decisions: [[KernelDecision]], rules: RuleHits)
  {
    var m = Machine(world: world)
    m.countRules()
    var observed: [[Observation]] = []
    var decisions: [[KernelDecision]] = []
    for op in ops {
      observed.append(m.apply(op))
      decisions.append(m.decisions)
    }
    return (observed, decisions, m.ruleHits)
  }

  /// Runs a whole sequence from a fresh state: the observations of each op.
  package static func run(_ ops: [Op], in world: World) -> [[Observation]] {
    var m = Machine(world: world)
    return ops.map { m.apply($0) }
  }

  /// Runs a whole sequence from a fresh state with `deviations` on: the observations of each op
  /// up to the op that left the state undefined, if one did.
  package static func predict(_ ops: [Op], in world: World, deviations: Set<Deviation>) -> Prediction {
    var m = Machine(world: world, deviations: deviations)
    var steps: [[Observation]?] = []
    for (i, op) in ops.enumerated() {
      let o = m.apply(op)
      if let by = m.undefined {
        steps += Array(repeating: nil, count: ops.count - i)
        return Prediction(steps: steps, undefined: (i, by))
      }
      steps.append(o)
    }
    return Prediction(steps: steps, undefined: nil)
  }

  /// Starts counting the rules the model takes (model-rule coverage), from zero.
  package mutating func countRules() {
    memoryFailure.ruleHits = RuleHits()
    dmaBuf.ruleHits = RuleHits()
  }

  /// The rules taken since ``countRules()`` (none when counting is off).
  package var ruleHits: RuleHits {
    var h = memoryFailure.ruleHits ?? RuleHits()
    h.merge(dmaBuf.ruleHits ?? RuleHits())
    return h
  }

  /// Runs a whole sequence from a fresh state, counting rules: the observations of each op and
  /// the rules taken.
  package static func runCountingRules(_ ops: [Op], in world: World) -> ([[Observation]], RuleHits) {
    var m = Machine(world: world)
    m.countRules()
    let observed = ops.map { m.apply($0) }
    return (observed, m.ruleHits)
  }

  /// Checks the invariants of both halves; `nil` when they hold.
  package func invariantViolation() -> String? {
    memoryFailure.invariantViolation() ?? dmaBuf.invariantViolation()
  }
}
