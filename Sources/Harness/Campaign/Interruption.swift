import Glibc

/// SIGINT, SIGTERM or SIGHUP during a campaign: no sequence starts after it, the guests are torn
/// down, and the report is written for the sequences that finished (marked as interrupted)
/// before the harness exits with 128 + the signal.
///
/// Outside a campaign (or at a second signal) the signal ends the harness at once, its QEMU
/// processes killed first (``ChildRegistry``).
enum Interruption {
  /// The signal that interrupted the campaign; 0 while none did. Written by the signal handler
  /// only (a plain store of a word), read by the campaign.
  nonisolated(unsafe) static var signal: Int32 = 0
  /// Whether a campaign is running that can stop gracefully.
  nonisolated(unsafe) static var isGraceful = false

  static var isInterrupted: Bool { signal != 0 }

  /// The signal's name, for the report.
  static var name: String {
    switch signal {
    case SIGINT: "SIGINT"
    case SIGTERM: "SIGTERM"
    case SIGHUP: "SIGHUP"
    default: "signal \(signal)"
    }
  }

  /// Runs `body` with graceful interruption on.
  static func graceful<R>(_ body: () async throws -> R) async rethrows -> R {
    ChildRegistry.installHandler()
    isGraceful = true
    defer { isGraceful = false }
    return try await body()
  }
}
