import Reference
import Testing

@testable import Fuzz

/// Balance: the generator reaches the rare outcomes (``Outcome``) often enough, measured on the
/// model over the campaign's default sequence length.
@Suite struct OutcomeTests {
  /// In every world where an outcome can happen, at least its target share of 400 sequences
  /// (seeds 1…400, 30 ops: `harness fuzz --target model`'s default length) reaches it. A world
  /// with both halves (`mf-p2p-switch`) draws each op from one half at even odds, so its
  /// sequences are measured at 30 ops per half: 60 (at 30 ops it reaches each outcome about a
  /// third as often: docs/measurements.md).
  @Test(arguments: World.builtin.map(\.name))
  func sharesMeetTargets(world: String) {
    let w = World.named(world)!
    let halves = (w.deviceMemory == nil ? 0 : 1) + (w.exporters.isEmpty ? 0 : 1)
    var counts = OutcomeCounts()
    for seed in UInt64(1)...400 {
      let s = Generator.generate(world: w, seed: seed, length: 30 * halves)
      counts.add(Outcome.reached(s.ops, Machine.run(s.ops, in: w)), world: w)
    }
    for o in Outcome.allCases where o.applies(to: w) {
      #expect(counts.percent(o) >= Double(o.targetPercent), "\(world): \(counts.line ?? "")")
    }
  }

  /// Which worlds each outcome is measured in: the signals where there is device memory, a
  /// revoked mapping where P2P mapping can succeed (not behind the Intel host bridge, C6.1).
  @Test func appliesWhereReachable() {
    let applying = Dictionary(
      uniqueKeysWithValues: Outcome.allCases.map { o in (o, World.builtin.filter(o.applies).map(\.name)) })
    #expect(applying[.signalled] == ["mf", "mf-p2p-switch"])
    #expect(applying[.killed] == ["mf", "mf-p2p-switch"])
    #expect(
      applying[.mappedThenRevoked] == [
        "p2p-switch", "p2p-hostbridge-zen", "p2p-hostbridge-zen-pt", "p2p-switch-2x",
        "p2p-hostbridge-zen-dma32", "mf-p2p-switch", "p2p-multifunction-zen", "p2p-multifunction-switch",
      ])
  }

  /// A notification counts only for an attachment still mapped: unmapped first, it does not.
  @Test func revokedOnlyWhileMapped() throws {
    let text = """
      harness-sequence 1
      world p2p-switch

      vfio-open x0
      export b1 x0 region=2 ranges=0x0+0x1000
      attach a1 b1 importer=i0
      map a1
      unmap a1
      vfio-memory x0 off

      """
    let s = try SequenceFormat.parse(text)
    let w = World.named("p2p-switch")!
    let observed = Machine.run(s.ops, in: w)
    #expect(observed.joined().contains { if case .notify = $0 { true } else { false } })
    #expect(Outcome.reached(s.ops, observed).isEmpty)
    var mapped = s
    mapped.steps.remove(at: 4)
    #expect(Outcome.reached(mapped.ops, Machine.run(mapped.ops, in: w)) == [.mappedThenRevoked])
  }
}
