import Foundation

/// Durations as the terminal shows them (never in a deterministic report).
enum Timing {
  static func median(_ d: [Duration]) -> Duration { d.sorted()[d.count / 2] }
  static func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
  }
  static func ms(_ d: Duration) -> String { String(format: "%.2f ms", seconds(d) * 1000) }
  static func share(_ part: Duration, of whole: Duration) -> String {
    String(format: "%.0f%%", seconds(part) / max(seconds(whole), 1e-9) * 100)
  }
}
