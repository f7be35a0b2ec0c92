import Reference

/// Derives new sequences from kept ones (guided generation, `harness fuzz --guided`).
///
/// A kept sequence reached something no sequence before it reached (a model rule, or a rule
/// taken more often); the mutator keeps part of it and lets the ``Generator`` continue from
/// the state that part leaves, so new ops are drawn from the model's state there (processes,
/// mappings, spaces, bufs) as a seed's are. The ops kept are replayed through the generator's
/// model, and fresh names start past every name the parents use, so a derived sequence never
/// reuses a name for something else (ops of a spliced parent may still name objects that do
/// not exist: the harness rules answer those, `-ESRCH`, `-ENOENT`).
///
/// Pure: the same parents, world, seed and length give the same sequence.
package enum Mutator {
  /// How a sequence was derived (the comment on its first op says which and from what).
  package enum Kind: String, CaseIterable, Sendable {
    /// A prefix of the parent, then new ops up to the length.
    case tail
    /// New ops (one to four) inserted at a point of the parent.
    case insert
    /// One op of the parent replaced by a new one.
    case replace
    /// One to three consecutive ops of the parent left out.
    case delete
    /// A prefix of the parent followed by the ops of another kept sequence from some point on.
    case splice
    /// One to four ops of the parent with fields drawn from another input class (a boundary or
    /// an invalid value, ``InputClasses``), the others as they were.
    case fields
  }

  /// A kept sequence: the name it is known by (its file's name without `.seq`), how often it
  /// is picked relative to the others (its weight), and how many of its first ops reach what
  /// made it kept (a tail is cut after those, so the new ops start from that state).
  package struct Parent: Sendable {
    package var name: String
    package var sequence: OpSequence
    package var weight: Int
    package var depth: Int
    package init(name: String, sequence: OpSequence, weight: Int = 1, depth: Int? = nil) {
      self.name = name
      self.sequence = sequence
      self.weight = weight
      self.depth = min(sequence.steps.count, max(0, depth ?? sequence.steps.count))
    }
  }

  /// A sequence of at most `length` ops derived from `parents` (not empty) for `world`.
  package static func derive(from parents: [Parent], world: World, seed: UInt64, length: Int) -> OpSequence {
    precondition(!parents.isEmpty, "derive needs a kept sequence")
    var rng = PRNG(seed: seed)
    let weights = parents.map { max(1, $0.weight) }
    let a = parents[rng.weighted(weights)]
    let b = parents[rng.weighted(weights)]
    let kind = Kind.allCases[rng.weighted([45, 20, 5, 5, 10, 15])]
    var g = Generator(world: world, seed: rng.next())
    let ops = a.sequence.ops
    g.reserveNames(in: ops + (kind == .splice ? b.sequence.ops : []))
    var origin = "\(kind.rawValue) of \(a.name)"
    func replay(_ slice: ArraySlice<Op>) {
      for op in slice where g.sequence.count < length { g.replay(op) }
    }
    func generate(_ n: Int) {
      for _ in 0..<n where g.sequence.count < length { g.step() }
    }
    let k = Int(rng.below(UInt64(ops.count + 1)))
    switch kind {
    case .tail:
      // Cut at or soon after the parent's depth: most of the new ops start from its state.
      let cut = min(ops.count, a.depth + Int(rng.below(UInt64((ops.count - a.depth) / 3 + 1))))
      replay(ops[..<cut])
      origin += " from op \(cut + 1)"
    case .insert:
      replay(ops[..<k])
      generate(1 + Int(rng.below(4)))
      replay(ops[k...])
      origin += " at op \(k + 1)"
    case .replace:
      let at = min(k, max(0, ops.count - 1))
      replay(ops[..<at])
      generate(1)
      replay(ops.dropFirst(at + 1))
      origin += ", op \(at + 1)"
    case .delete:
      let n = 1 + Int(rng.below(3))
      replay(ops[..<k])
      replay(ops.dropFirst(k + n))
      origin += ", ops \(k + 1)…\(k + n)"
    case .fields:
      var picked: Set<Int> = []
      for _ in 0..<(2 + Int(rng.below(7))) where !ops.isEmpty { picked.insert(Int(rng.below(UInt64(ops.count)))) }
      for (i, op) in ops.enumerated() where g.sequence.count < length {
        if picked.contains(i) { g.replayReclassed(op) } else { g.replay(op) }
      }
      origin += ", ops \(picked.sorted().map { String($0 + 1) }.joined(separator: ", "))"
    case .splice:
      let other = b.sequence.ops
      let j = Int(rng.below(UInt64(max(1, other.count))))
      replay(ops[..<k])
      replay(other.dropFirst(j))
      origin += " up to op \(k), then \(b.name) from op \(j + 1)"
    }
    // Whatever the cut left, the sequence runs to its length (as a seed's does).
    generate(length - g.sequence.count)
    var s = OpSequence(world: world.name, ops: g.sequence)
    if !s.steps.isEmpty { s.steps[0].comments = ["# guided: " + origin] }
    return s
  }
}
