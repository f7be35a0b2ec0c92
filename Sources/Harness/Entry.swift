import ArgumentParser
import Foundation

/// Runs the command tree and maps every error to DESIGN.md's exit statuses: 2 for usage and
/// input errors (argument parser validation included), 3 for a missing environment, 70 for
/// anything unexpected.
@main
enum Entry {
  static func main() async {
    let status: Int32
    do {
      var command = try HarnessCommand.parseAsRoot()
      if var asyncCommand = command as? AsyncParsableCommand {
        try await asyncCommand.run()
      } else {
        try command.run()
      }
      status = 0
    } catch let f as Finished {
      status = f.status.rawValue
    } catch let e as HarnessError {
      FileHandle.standardError.write(Data(("harness: " + e.message + "\n").utf8))
      status = e.status.rawValue
    } catch {
      let code = HarnessCommand.exitCode(for: error)
      let message = HarnessCommand.fullMessage(for: error)
      if code == .success {
        if !message.isEmpty { print(message) }
        status = 0
      } else {
        if !message.isEmpty {
          FileHandle.standardError.write(Data((message + "\n").utf8))
        }
        // Argument parser usage errors (64) become the harness's usage status; under --bisect
        // a status `git bisect run` stops on (a usage error would count as a bad commit).
        if CommandLine.arguments.contains("--bisect") {
          status = ExitStatus.bisectAbort.rawValue
        } else {
          status = code == .validationFailure ? ExitStatus.usage.rawValue : ExitStatus.internal.rawValue
        }
      }
    }
    exit(status)
  }
}
