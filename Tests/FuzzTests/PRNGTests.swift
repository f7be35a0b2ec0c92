import Testing

@testable import Fuzz

/// The PRNG's outputs are part of the format: a seed must mean the same sequence forever.
/// Expected values come from an independent Python implementation of the documented algorithm.
@Suite struct PRNGTests {
  static let known: [(UInt64, [UInt64])] = [
    (0, [0x99ec_5f36_cb75_f2b4, 0xbf6e_1f78_4956_452a, 0x1a5f_849d_4933_e6e0, 0x6aa5_94f1_262d_2d2c]),
    (1, [0xb3f2_af6d_0fc7_10c5, 0x853b_5596_4736_4cea, 0x92f8_9756_082a_4514, 0x642e_1c7b_c266_a3a7]),
    (0xdead_beef, [0xc555_5444_a74d_7e83, 0x65c3_0d37_b4b1_6e38, 0x54f7_7320_0a4e_fa23, 0x429a_ed75_fb95_8af7]),
  ]

  @Test(arguments: known)
  func knownOutputs(seed: UInt64, expected: [UInt64]) {
    var g = PRNG(seed: seed)
    #expect((0..<4).map { _ in g.next() } == expected)
  }

  @Test func boundedDrawsAreLemire() {
    var g = PRNG(seed: 42)
    #expect((0..<12).map { _ in g.below(UInt64(10)) } == [0, 3, 6, 9, 9, 7, 7, 8, 7, 5, 6, 2])
    var h = PRNG(seed: 42)
    #expect((0..<6).map { _ in h.below(UInt64(3)) } == [0, 1, 2, 2, 2, 2])
  }

  @Test func boundsAndWeights() {
    var g = PRNG(seed: 9)
    for _ in 0..<10_000 {
      #expect(g.below(UInt64(7)) < 7)
      let r = g.inRange(10...12)
      #expect((10...12).contains(r))
    }
    var counts = [0, 0, 0]
    for _ in 0..<30_000 { counts[g.weighted([0, 1, 2])] += 1 }
    #expect(counts[0] == 0)
    #expect(counts[2] > counts[1] * 3 / 2)
  }
}
