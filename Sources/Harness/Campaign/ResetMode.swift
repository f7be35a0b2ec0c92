import ArgumentParser

/// How the guest is brought back to its boot state between sequences.
enum ResetMode: String, CaseIterable, ExpressibleByArgument, Sendable {
  /// The agent tears down what the sequence made and checks the guest is as it booted
  /// (`reset`, VM/agent/PROTOCOL.md), after a match or a known finding that showed nothing worse
  /// than a WARN; a snapshot restore instead after anything else, or when the check finds
  /// something left over. A divergence the ledger does not know, met on a guest that had
  /// already run other sequences, is run again on a restored guest before it is reported.
  case clean
  /// A snapshot restore (`loadvm`) before every sequence.
  case snapshot
}
