/// The reference model of both series for one world: applies ops, predicts observations.
///
/// Pure: no I/O, no clocks, no randomness. The two halves share nothing but the world: the
/// memory-failure half (docs/contract.md, sections 1–5) and the dma-buf half (sections 6, 7).
package struct Machine: Sendable {
  package let world: World
  package private(set) var memoryFailure: MemoryFailureModel
  package private(set) var dmaBuf: DmaBufModel

  package init(world: World) {
    self.world = world
    self.memoryFailure = MemoryFailureModel(world: world)
    self.dmaBuf = DmaBufModel(world: world)
  }

  /// Applies `op` and returns what the contract predicts, in canonical order.
  package mutating func apply(_ op: Op) -> [Observation] {
    op.isDmaBuf ? dmaBuf.apply(op) : memoryFailure.apply(op)
  }

  /// Runs a whole sequence from a fresh state: the observations of each op.
  package static func run(_ ops: [Op], in world: World) -> [[Observation]] {
    var m = Machine(world: world)
    return ops.map { m.apply($0) }
  }

  /// Checks the invariants of both halves; `nil` when they hold.
  package func invariantViolation() -> String? {
    memoryFailure.invariantViolation() ?? dmaBuf.invariantViolation()
  }
}
