import Reference

/// A rare outcome a campaign must reach often enough (balance): what a sequence's observations
/// show happened, whoever observed them (the model or a guest).
///
/// The generator is tuned so that each outcome's share of the sequences of the worlds it
/// applies to stays at or above ``targetPercent`` (checked by `OutcomeTests`, reported in
/// every campaign's summary).
package enum Outcome: String, CaseIterable, Sendable, Codable, Comparable {
  /// An AO or AR `SIGBUS` delivered to a thread (C3.2, C3.3).
  case signalled = "signal"
  /// A process ended by a signal (C3.3: the default action of `SIGBUS`).
  case killed = "killed"
  /// A dma-buf attachment's table mapped, then revoked while still mapped (C7.5).
  case mappedThenRevoked = "map-revoked"

  /// The share of a world's sequences that must reach the outcome, in percent.
  package var targetPercent: Int {
    switch self {
    case .signalled: 25
    case .killed: 10
    case .mappedThenRevoked: 25
    }
  }

  /// What the outcome means, for summaries.
  package var summary: String {
    switch self {
    case .signalled: "deliver an AO or AR signal"
    case .killed: "kill a process through a signal"
    case .mappedThenRevoked: "map a table and then see it revoked"
    }
  }

  /// Whether the world can reach the outcome at all (its share is measured there): device
  /// memory for the signals; for a revoked mapping, an exporter and an importer whose P2P map
  /// type allows mapping (C6.1: in `p2p-hostbridge-intel` every map is `-EINVAL`).
  package func applies(to world: World) -> Bool {
    switch self {
    case .signalled, .killed: world.deviceMemory != nil
    case .mappedThenRevoked:
      world.exporters.contains { x in
        world.importers.contains { DmaBufModel.mapType(exporter: x, importer: $0, in: world) != .notSupported }
      }
    }
  }

  package static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

  /// The outcomes a run of `ops` reached, given what each op observed (or was predicted to;
  /// an optional observation does not count).
  package static func reached(_ ops: [Op], _ observed: [[Observation]]) -> Set<Outcome> {
    var out: Set<Outcome> = []
    var mapped: Set<AttachmentName> = []
    for (op, obs) in zip(ops, observed) {
      switch op {
      case .unmap(let a), .detach(let a):
        if obs.first == .result(.zero) { mapped.remove(a) }
      default: break
      }
      for o in obs {
        switch o {
        case .signal: out.insert(.signalled)
        case .processEnd(_, .killed): out.insert(.killed)
        case .sgTable(let a, _): mapped.insert(a)
        case .notify(let a):
          if mapped.remove(a) != nil { out.insert(.mappedThenRevoked) }
        default: break
        }
      }
    }
    return out
  }
}

/// Per outcome, how many sequences reached it, out of how many that could (``Outcome/applies(to:)``).
package struct OutcomeCounts: Sendable, Equatable, Codable {
  /// Sequences that reached each outcome, by ``Outcome`` raw value.
  package var reached: [String: Int] = [:]
  /// Sequences of worlds where each outcome applies, by raw value.
  package var of: [String: Int] = [:]
  /// Each outcome's share in per mille (reached × 1000 / of, rounded down), by raw value.
  package var permille: [String: Int] = [:]
  /// Each measured outcome's target share in percent (``Outcome/targetPercent``), by raw value.
  package var targetPercent: [String: Int] = [:]

  package init() {}

  package mutating func add(_ reached: Set<Outcome>, world: World) {
    for o in Outcome.allCases where o.applies(to: world) {
      of[o.rawValue, default: 0] += 1
      if reached.contains(o) { self.reached[o.rawValue, default: 0] += 1 }
    }
    updateShares()
  }

  package mutating func merge(_ other: OutcomeCounts) {
    reached.merge(other.reached, uniquingKeysWith: +)
    of.merge(other.of, uniquingKeysWith: +)
    updateShares()
  }

  private mutating func updateShares() {
    for (k, n) in of where n > 0 {
      permille[k] = (reached[k] ?? 0) * 1000 / n
      targetPercent[k] = Outcome(rawValue: k)?.targetPercent
    }
  }

  /// The share of `o` in percent (0 when no sequence could reach it).
  package func percent(_ o: Outcome) -> Double {
    let n = of[o.rawValue] ?? 0
    return n == 0 ? 0 : Double(reached[o.rawValue] ?? 0) * 100 / Double(n)
  }

  /// `outcomes: signal 412/1000 (41.2 %, target 25 %), …`; `nil` when no outcome applied.
  package var line: String? {
    let parts = Outcome.allCases.compactMap { o -> String? in
      guard let n = of[o.rawValue], n > 0 else { return nil }
      let r = reached[o.rawValue] ?? 0
      let permille = r * 1000 / n
      let below = r * 100 < o.targetPercent * n ? ", BELOW" : ""
      return "\(o.rawValue) \(r)/\(n) (\(permille / 10).\(permille % 10) %, target \(o.targetPercent) %\(below))"
    }
    return parts.isEmpty ? nil : "outcomes: " + parts.joined(separator: ", ")
  }
}
