import Foundation
import Glibc

/// The guest's serial console, as QEMU writes it to a file: read incrementally and scanned for
/// kernel failures (DESIGN.md, "Crash and hang detection").
final class ConsoleLog {
  let path: String
  private var offset: UInt64 = 0
  /// Everything read so far.
  private(set) var text = ""

  /// Console patterns that make a guest failure, with the failure kind they report.
  static let patterns: [(needle: String, kind: String)] = [
    ("Kernel panic", "panic"), ("Oops", "oops"), ("BUG:", "bug"), ("WARNING:", "warn"),
    ("KASAN", "kasan"), ("hung task", "hang"), ("soft lockup", "lockup"),
    ("rcu_sched self-detected stall", "rcu-stall"), ("RCU stall", "rcu-stall"),
    ("rcu: INFO:", "rcu-stall"),
  ]

  /// Failure kinds after which the kernel may never answer: the op in flight is ended within
  /// ``GuestSession/crashGrace`` instead of its deadline.
  static let crashKinds: Set<String> = ["panic", "oops", "bug"]

  init(path: String) { self.path = path }

  /// Reads what was appended since the last call.
  func readNew() -> String {
    guard let h = FileHandle(forReadingAtPath: path) else { return "" }
    defer { try? h.close() }
    try? h.seek(toOffset: offset)
    let data = (try? h.readToEnd()) ?? Data()
    offset += UInt64(data.count)
    let s = String(decoding: data, as: UTF8.self)
    text += s
    return s
  }

  /// The first failure pattern in `chunk`: its kind and the line it is on.
  static func failure<S: StringProtocol>(in chunk: S) -> (kind: String, line: String)? {
    for line in chunk.split(whereSeparator: \.isNewline) {
      for p in patterns where line.contains(p.needle) {
        return (p.kind, String(line).trimmingCharacters(in: .whitespacesAndNewlines))
      }
    }
    return nil
  }

  /// The last `lines` lines of the console.
  func tail(_ lines: Int = 40) -> String {
    _ = readNew()
    return text.split(whereSeparator: \.isNewline).suffix(lines).joined(separator: "\n")
  }
}
