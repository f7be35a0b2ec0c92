import Foundation
import Subprocess

/// A reproducer built with the host's gcc and run in a guest: what `harness repro --run` and the
/// guest suites do.
enum ReproducerRun {
  struct Outcome: Sendable {
    /// The reproducer's exit status (kselftest's: 0 pass, 1 fail, 4 skip), or `nil` when the
    /// guest did not finish it (the kernel crashed or hung the whole guest).
    var status: Int32?
    /// Its KTAP output, as the console showed it.
    var ktap: [String]
    var console: String
  }

  /// Compiles `program` with `gcc -static` into `directory` (its runtime files from the
  /// project's `vm` directory); the binary's path.
  static func compile(_ program: Reproducer.Program, vm: String, in directory: String) async throws -> String {
    try Corpus.writeAtomically(program.source, to: directory + "/repro.c")
    let top = (vm as NSString).deletingLastPathComponent
    let runtime = program.runtimeFiles.map { top + "/" + $0 }
    let include = program.runtimeFiles.isEmpty ? [] : ["-I", vm + "/repro", "-I", vm + "/shim"]
    let r = try await Subprocess.run(
      .path("/usr/bin/gcc"),
      arguments: Arguments(["-static", "-O2", "-Wall", "-pthread"] + include + ["-o", directory + "/repro", directory + "/repro.c"] + runtime),
      output: .discarded, error: .string(limit: 1 << 16))
    guard case .exited(0) = r.terminationStatus else {
      throw HarnessError(.internal, "the reproducer does not compile (gcc -static): \(r.standardError)")
    }
    return directory + "/repro"
  }

  /// Runs the compiled reproducer in `world`'s guest.
  static func run(
    binary: String, world: GuestWorld, artifacts: GuestArtifacts, echo: Bool = false
  ) async throws -> Outcome {
    // The shell prints its prompt after the echo of the typed line: the first `echo` ends the
    // prompt's line, so that the reproducer's first line starts a line of its own.
    // The kernel's console messages would interleave with the reproducer's lines on the one
    // serial port: `dmesg -n 1` keeps them off it (the reproducer prints the kernel's failure
    // reports itself, from /dev/kmsg).
    let script = "dmesg -n 1; echo; /repro; echo harness-repro-exit=$?"
    var inside = false
    let run = try await GuestShell.run(
      world: world, artifacts: artifacts, files: [binary], script: script, timeout: .seconds(180)
    ) { line in
      if line.contains("harness-repro-exit=") { inside = false }
      if let k = line.range(of: "KTAP version") {
        inside = true
        if echo { print(line[k.lowerBound...]) }
        return
      }
      // The kernel's own console lines ("[    3.3] ...") are not the reproducer's output.
      if echo && inside && !line.hasPrefix("[") { print(line) }
    }
    let (status, ktap) = parse(console: run.console)
    return Outcome(status: status, ktap: ktap, console: run.console)
  }

  /// The reproducer's exit status and KTAP lines in a guest shell's console: from its
  /// `KTAP version` line up to the `harness-repro-exit=N` the script prints after it. The typed
  /// script itself may show before that (the tty's echo of the line, typed while the guest was
  /// still booting, can come out with its `$?` lost): only a marker with a number counts.
  static func parse(console: String) -> (status: Int32?, ktap: [String]) {
    var ktap: [String] = []
    var started = false
    for line in console.split(separator: "\n", omittingEmptySubsequences: false) {
      if let k = line.range(of: "KTAP version") {
        started = true
        ktap.append(String(line[k.lowerBound...]))
        continue
      }
      if let r = line.range(of: "harness-repro-exit="), let n = Int32(line[r.upperBound...].prefix { $0.isNumber }) {
        return (n, ktap)
      }
      if started && !line.hasPrefix("[") { ktap.append(String(line)) }
    }
    return (nil, ktap)
  }
}
