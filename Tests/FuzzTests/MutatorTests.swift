import Reference
import Testing

@testable import Fuzz

/// Deriving sequences from kept ones (guided generation).
@Suite struct MutatorTests {
  static func parents(_ world: World) -> [Mutator.Parent] {
    (1...4).map { Mutator.Parent(name: "seed-\($0)", sequence: Generator.generate(world: world, seed: UInt64($0), length: 30)) }
  }

  /// Every kind is used; a derived sequence has the length asked for, is the same for the same
  /// seed, round-trips through its text form, and keeps the model's invariants.
  @Test(arguments: ["mf", "p2p-switch"])
  func derivesValidSequences(world name: String) throws {
    let world = World.named(name)!
    let parents = Self.parents(world)
    var kinds: Set<String> = []
    for seed in UInt64(0)..<300 {
      let s = Mutator.derive(from: parents, world: world, seed: seed, length: 30)
      #expect(s.steps.count == 30)
      #expect(s == Mutator.derive(from: parents, world: world, seed: seed, length: 30))
      #expect(try SequenceFormat.parse(SequenceFormat.print(s)) == s)
      let comment = s.steps[0].comments.first ?? ""
      #expect(comment.hasPrefix("# guided: "))
      kinds.insert(String(comment.dropFirst("# guided: ".count).prefix { $0 != " " && $0 != "," }))
      var m = Machine(world: world)
      for op in s.ops {
        _ = m.apply(op)
        if let v = m.invariantViolation() {
          Issue.record("seed \(seed): \(v) after \(SequenceFormat.print(op))")
          return
        }
      }
    }
    #expect(kinds == Set(Mutator.Kind.allCases.map(\.rawValue)))
  }

  /// New ops never create a name a parent created: after ``Generator/reserveNames(in:)`` the
  /// generator's fresh names start past every name the given ops create.
  @Test(arguments: ["mf", "p2p-switch"])
  func freshNamesStartPastTheParents(world name: String) {
    let world = World.named(name)!
    let parent = Generator.generate(world: world, seed: 5, length: 200).ops
    func created(_ ops: [Op]) -> [String] {
      ops.compactMap { op in
        switch op {
        case .spawn(let p), .fork(_, child: let p): p.raw
        case .spaceCreate(let s, _, _, _): s.raw
        case .export(let b, _, _): b.raw
        case .attach(let a, _, _, _): a.raw
        case .threadCreate(let t): t.description
        default: nil
        }
      }
    }
    let old = Set(created(parent))
    #expect(!old.isEmpty)
    var g = Generator(world: world, seed: 9)
    g.reserveNames(in: parent)
    for _ in 0..<300 { g.step() }
    #expect(Set(created(g.sequence)).isDisjoint(with: old))
  }
}
