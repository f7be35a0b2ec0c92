import ArgumentParser

/// Exit statuses (DESIGN.md, "Reports and exit codes").
package enum ExitStatus: Int32, Sendable {
  /// No new divergence.
  case ok = 0
  /// A new divergence or a guest failure.
  case divergence = 1
  /// Usage or input error, with the file and line or the flag.
  case usage = 2
  /// Environment missing, with the command that fixes it.
  case environment = 3
  /// `repro --run`: the reproducer skipped (kselftest's status: the shim or the series is
  /// missing, or a machine check it needs never came).
  case skip = 4
  /// Harness internal error.
  case `internal` = 70
  /// A campaign interrupted by SIGHUP, SIGINT or SIGTERM (128 + the signal), its report
  /// written for the sequences that finished.
  case hangup = 129
  case interrupted = 130
  case terminated = 143
  /// `--bisect`: not a verdict on this kernel (`git bisect run`'s *skip*: build or boot
  /// failure, missing environment, internal error).
  case bisectSkip = 125
  /// `--bisect` with a command line that does not parse: `git bisect run` stops.
  case bisectAbort = 128
}

/// An error the harness reports to the user: what went wrong, where, how to fix it.
package struct HarnessError: Error, CustomStringConvertible, Sendable {
  package var status: ExitStatus
  package var message: String
  package init(_ status: ExitStatus, _ message: String) {
    self.status = status
    self.message = message
  }
  package var description: String { message }

  package static func usage(_ m: String) -> HarnessError { HarnessError(.usage, m) }
  package static func environment(_ m: String) -> HarnessError { HarnessError(.environment, m) }
}

/// Thrown by a command that finished its work and wants a particular exit status
/// (for example 1 after reporting new divergences).
package struct Finished: Error, Sendable {
  package var status: ExitStatus
  package init(_ status: ExitStatus) { self.status = status }
}
