import ArgumentParser

/// A wall-time budget: `90s`, `10m`, `1h30m`, `2h` (whole numbers, units h, m, s).
struct Budget: ExpressibleByArgument, Sendable {
  let duration: Duration

  init?(argument: String) {
    var total: Int64 = 0
    var number = ""
    for c in argument {
      if c.isASCII && c.isNumber {
        number.append(c)
        continue
      }
      guard let n = Int64(number), let unit: Int64 = ["h": 3600, "m": 60, "s": 1][c] else { return nil }
      total += n * unit
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
