import Reference

/// A sequence of ops for one world, with optional expected observations per op: the unit the
/// generator produces, the corpus stores, the shrinker reduces and the differ judges.
///
/// Its text form is documented in Corpora/README.md; ``SequenceFormat`` reads and writes it.
package struct OpSequence: Hashable, Sendable {
  /// The current format version (the file's first line, `harness-sequence 1`).
  package static let formatVersion = 1

  package var world: String
  package var seed: UInt64?
  package var steps: [Step]
  /// Comment lines after the last op.
  package var trailingComments: [String]

  package init(world: String, seed: UInt64? = nil, steps: [Step] = [], trailingComments: [String] = []) {
    self.world = world
    self.seed = seed
    self.steps = steps
    self.trailingComments = trailingComments
  }

  package init(world: String, seed: UInt64? = nil, ops: [Op]) {
    self.init(world: world, seed: seed, steps: ops.map { Step(op: $0) })
  }

  package var ops: [Op] { steps.map(\.op) }

  /// One op with the comment lines above it and its expected observations, if recorded.
  package struct Step: Hashable, Sendable {
    package var comments: [String]
    package var op: Op
    package var expected: [Observation]?
    package init(comments: [String] = [], op: Op, expected: [Observation]? = nil) {
      self.comments = comments
      self.op = op
      self.expected = expected
    }
  }

  /// The same ops with `observations` recorded as their expectations.
  package func withExpectations(_ observations: [[Observation]]) -> OpSequence {
    var s = self
    for i in s.steps.indices where i < observations.count { s.steps[i].expected = observations[i] }
    return s
  }

  /// The same ops without comments or expectations.
  package var bare: OpSequence { OpSequence(world: world, seed: seed, ops: ops) }
}
