import ArgumentParser

/// A wall-time budget: `90s`, `10m`, `1h30m`, `2h` (whole numbers, units h, m, s).
struct Budget: ExpressibleByArgument, Sendable {
  let duration: Duration
  /// The longest budget: a year (8784h), far below where the seconds would overflow.
  static let maxSeconds: Int64 = 8784 * 3600

  init?(argument: String) {
    var total: Int64 = 0
    var number = ""
    for c in argument {
      if c.isASCII && c.isNumber {
        number.append(c)
        continue
      }
      guard let n = Int64(number), let unit: Int64 = ["h": 3600, "m": 60, "s": 1][c] else { return nil }
      let (part, o1) = n.multipliedReportingOverflow(by: unit)
      let (sum, o2) = total.addingReportingOverflow(part)
      guard !o1, !o2, sum <= Self.maxSeconds else { return nil }
      total = sum
      number = ""
    }
    guard number.isEmpty, total > 0 else { return nil }
    duration = .seconds(total)
  }

  /// The summary's line for a world whose share of the budget ran out after `done` sequences.
  static func stopLine(_ world: String, done: Int, of count: Int) -> String {
    "\(world): --budget ran out after \(done) of \(count) sequences"
  }

  static var defaultCompletionKind: CompletionKind { .default }
}
