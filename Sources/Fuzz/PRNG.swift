/// The harness's pseudo-random generator: xoshiro256** seeded through SplitMix64.
///
/// The algorithm is fixed forever so that a seed means the same sequence in every version:
/// - Seeding: the four 64-bit state words are four consecutive outputs of SplitMix64 started at
///   `seed` (`z = (x += 0x9E3779B97F4A7C15); z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
///   z = (z ^ (z >> 27)) * 0x94D049BB133111EB; z ^ (z >> 31)`). This never yields the all-zero
///   state, which would generate zeros forever.
/// - Next: xoshiro256** (Blackman and Vigna, 2018): `result = rotl(s1 * 5, 7) * 9`, then the
///   standard xoshiro256 state update.
/// - Bounded integers (`below(n)`): Lemire's multiply-shift with rejection, so every value in
///   `0..<n` is equally likely and the number of draws per call is what the algorithm says.
///
/// Do not use Swift's `RandomNumberGenerator` helpers (`Int.random(in:using:)`): their
/// algorithms are not guaranteed stable across Swift versions.
package struct PRNG: Sendable {
  private var s: (UInt64, UInt64, UInt64, UInt64)

  package init(seed: UInt64) {
    var x = seed
    func splitmix() -> UInt64 {
      x &+= 0x9E37_79B9_7F4A_7C15
      var z = x
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    s = (splitmix(), splitmix(), splitmix(), splitmix())
  }

  private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

  /// The next 64 random bits.
  package mutating func next() -> UInt64 {
    let result = Self.rotl(s.1 &* 5, 7) &* 9
    let t = s.1 << 17
    s.2 ^= s.0
    s.3 ^= s.1
    s.1 ^= s.2
    s.0 ^= s.3
    s.2 ^= t
    s.3 = Self.rotl(s.3, 45)
    return result
  }

  /// A uniform integer in `0..<n` (`n > 0`), Lemire's method with rejection.
  package mutating func below(_ n: UInt64) -> UInt64 {
    precondition(n > 0, "below(0)")
    var m = next().multipliedFullWidth(by: n)
    if m.low < n {
      let threshold = (0 &- n) % n
      while m.low < threshold { m = next().multipliedFullWidth(by: n) }
    }
    return m.high
  }

  /// A uniform `Int` in `0..<n`.
  package mutating func below(_ n: Int) -> Int { Int(below(UInt64(n))) }

  /// A uniform integer in the closed range.
  package mutating func inRange(_ r: ClosedRange<UInt64>) -> UInt64 {
    let span = r.upperBound - r.lowerBound
    return span == .max ? next() : r.lowerBound + below(span + 1)
  }

  /// `true` with probability `percent` / 100.
  package mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

  /// A uniformly chosen element (the collection must not be empty).
  package mutating func pick<C: Collection>(_ c: C) -> C.Element {
    c[c.index(c.startIndex, offsetBy: below(c.count))]
  }

  /// An offset chosen with probability proportional to its weight (weights ≥ 0, sum > 0).
  /// Any collection: `weighted(menu.lazy.map(\.weight))` draws without building an array.
  package mutating func weighted<C: Collection<Int>>(_ weights: C) -> Int {
    let total = weights.reduce(0, +)
    var r = below(total)
    for (i, w) in weights.enumerated() {
      if r < w { return i }
      r -= w
    }
    return weights.count - 1
  }
}
