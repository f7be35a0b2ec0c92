import Reference

/// Reduces a sequence while a predicate keeps holding (the same verdict signature).
///
/// Two phases, repeated until neither makes progress:
/// 1. remove ops: chunks of halving size (ddmin-style), then single ops, from the end first;
/// 2. simplify arguments of each op (smaller counts, zero flags, fewer ranges, defaults for
///    optional fields), keeping every candidate well-formed (it parses and prints the same).
/// Expectations attached to kept steps stay with them (a recorded divergence keeps its
/// evidence). The predicate is called only on candidates; the result always satisfies it.
package struct Shrinker {
  /// How many times the predicate was evaluated.
  package private(set) var evaluations = 0
  /// Stop after this many evaluations.
  package var budget: Int
  /// Stop when this says so (a wall-time bound the caller keeps); checked before each
  /// evaluation.
  package var shouldStop: @Sendable () -> Bool = { false }
  /// Whether the last shrink ended because ``budget`` or ``shouldStop`` cut it short rather
  /// than because nothing smaller held.
  package private(set) var wasCut = false

  package init(budget: Int = 20_000) { self.budget = budget }

  package mutating func shrink(
    _ input: OpSequence, preserving holds: (OpSequence) -> Bool
  ) -> OpSequence {
    var best = input
    var progress = true
    wasCut = false
    while progress, !wasCut {
      progress = false
      if removeOps(&best, holds) { progress = true }
      if simplifyArguments(&best, holds) { progress = true }
    }
    return best
  }

  private mutating func test(_ s: OpSequence, _ holds: (OpSequence) -> Bool) -> Bool {
    guard evaluations < budget, !shouldStop() else {
      wasCut = true
      return false
    }
    evaluations += 1
    return holds(s)
  }

  private mutating func removeOps(_ best: inout OpSequence, _ holds: (OpSequence) -> Bool) -> Bool {
    var changed = false
    var chunk = max(1, best.steps.count / 2)
    while chunk >= 1 {
      var start = best.steps.count - chunk
      while start >= 0 {
        var candidate = best
        candidate.steps.removeSubrange(start..<min(start + chunk, candidate.steps.count))
        if test(candidate, holds) {
          best = candidate
          changed = true
        }
        start -= chunk
      }
      if chunk == 1 { break }
      chunk /= 2
    }
    return changed
  }

  private mutating func simplifyArguments(_ best: inout OpSequence, _ holds: (OpSequence) -> Bool)
    -> Bool
  {
    var changed = false
    for i in best.steps.indices {
      for simpler in Self.simplifications(of: best.steps[i].op) {
        var candidate = best
        candidate.steps[i].op = simpler
        if test(candidate, holds) {
          best = candidate
          changed = true
          break
        }
      }
    }
    return changed
  }

  /// Simpler variants of an op, simplest first.
  package static func simplifications(of op: Op) -> [Op] {
    var out: [Op] = []
    switch op {
    case .mmap(let p, let addr, let pages, let region, let pgoff):
      if pages > 1 { out.append(.mmap(p, addr: addr, pages: 1, region: region, pgoff: pgoff)) }
      if pgoff > 0 { out.append(.mmap(p, addr: addr, pages: pages, region: region, pgoff: 0)) }
    case .munmap(let p, let addr, let pages) where pages > 1:
      out.append(.munmap(p, addr: addr, pages: 1))
    case .injectShim(let t, let pfn, let flags) where flags != 0:
      out.append(.injectShim(t, pfn: pfn, flags: 0))
    case .injectQueue(let pfn, let flags) where flags != 0:
      out.append(.injectQueue(pfn: pfn, flags: 0))
    case .injectShim(let t, let pfn, _):
      out.append(.injectSysfs(t, pfn: pfn))
    case .exit(let p, let code) where code != 0:
      out.append(.exit(p, code: 0))
    case .importerMode(let a, .never):
      // The same wait for the revoking op, a second less per revocation in the guest.
      out.append(.importerMode(a, .delayed))
    case .export(let b, let d, let r):
      var fewer = r
      if r.ranges.count > 1 {
        fewer.ranges = [r.ranges[0]]
        out.append(.export(b, d, fewer))
      }
      for field in 0..<5 {
        var x = r
        switch field {
        case 0: x.feature = nil
        case 1: x.argsz = nil
        case 2: x.nrRanges = nil
        case 3: x.flags = 0
        default: x.openFlags = nil
        }
        if x != r { out.append(.export(b, d, x)) }
      }
    default: break
    }
    return out
  }
}
