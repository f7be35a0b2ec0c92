import Foundation
import Glibc

/// A guest booted in shell mode (the shim loaded, no agent) that runs a shell script on its
/// console and is gone when the script ends: how reproducers run in a guest.
///
/// The console is QEMU's standard output; the monitor is a Unix socket, so that a program in
/// the guest that needs a machine check can ask for one: a console line containing
/// `(qemu) mce …` makes the host send that command to the monitor.
enum GuestShell {
  struct Run: Sendable {
    /// What the console printed (boot messages included), without carriage returns.
    var console: String
    /// Whether the script's end marker came before the deadline.
    var finished: Bool
  }

  /// Boots `world` with `files` in the guest's `/`, runs `script` (shell lines) once the shell
  /// is up, and returns the console when the script has ended or `timeout` has passed.
  /// `onLine` sees each console line as it comes.
  static func run(
    world: GuestWorld, artifacts: GuestArtifacts, files: [String], script: String,
    timeout: Duration = .seconds(120), onLine: (String) -> Void = { _ in }
  ) async throws -> Run {
    var a = artifacts
    let dir = try PrivateFiles.makeDirectory(in: RunDirectory.base, prefix: "harness-shell")
    defer { PrivateFiles.remove(dir) }
    a.initramfsOverride = try await VM.Shell.initramfs(a, adding: files, in: dir)
    let monitorPath = dir + "/mon.sock"
    let args =
      world.qemuArguments(artifacts: a, run: RunDirectory(path: dir), shell: true)
      .map { $0 == "mon:stdio" ? "stdio" : $0 } + ["-monitor", "unix:\(monitorPath),server=on,wait=off"]
    let qemu = Process()
    qemu.executableURL = URL(fileURLWithPath: try HostTools.qemu())
    qemu.arguments = args
    let input = Pipe()
    let output = Pipe()
    qemu.standardInput = input
    qemu.standardOutput = output
    qemu.standardError = output
    try qemu.run()
    defer {
      if qemu.isRunning { qemu.terminate() }
      qemu.waitUntilExit()
    }
    let marker = "harness-shell-done-\(UUID().uuidString.prefix(8))"
    // `reboot -f`: QEMU runs with -no-reboot, so a reset ends it.
    let full = script + "\necho \(marker)\nreboot -f\n"
    let deadline = ContinuousClock.now + timeout
    // A guest that prints nothing more must not block the read below for ever.
    let pid = qemu.processIdentifier
    let watchdog = Task.detached {
      try? await Task.sleep(until: deadline + .seconds(2))
      kill(pid, SIGTERM)
    }
    defer { watchdog.cancel() }
    var monitor: LineChannel?
    var text = ""
    var pending = ""
    var sent = false
    var finished = false
    while ContinuousClock.now < deadline {
      let chunk = output.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      // Carriage returns dropped: "\r\n" is one Character in Swift, and a chunk that ends
      // between the two would glue its last line to the next one's first.
      let s = String(String.UnicodeScalarView(String(decoding: chunk, as: UTF8.self).unicodeScalars.filter { $0 != "\r" }))
      text += s
      pending += s
      while let nl = pending.firstIndex(of: "\n") {
        let line = String(pending[..<nl])
        pending = String(pending[pending.index(after: nl)...])
        onLine(line)
        if ProcessInfo.processInfo.environment["HARNESS_SHELL_TRACE"] != nil { FileHandle.standardError.write(Data(("console: " + line + "\n").utf8)) }
        if sent, let r = line.range(of: "(qemu) mce-ar ") {
          // inject-mce-ar: `mce-ar BEGIN END ADDR`; inject while the CPU runs that loop.
          let words = line[r.upperBound...].split(separator: " ")
          if monitor == nil { monitor = try? LineChannel(connectingTo: monitorPath, until: .now + .seconds(5)) }
          if let m = monitor, words.count == 3, let loop = ActionRequiredMCE.loop(fromRequest: "mce-ar \(words[0]) \(words[1])"),
            words[2].hasPrefix("0x"), let addr = UInt64(words[2].dropFirst(2), radix: 16)
          {
            // Whatever the monitor said before (its banner, earlier commands) goes first.
            _ = m.readText(until: .now + .milliseconds(200)) { _ in false }
            let hmp: (String) -> String = { command in
              try? m.send(command)
              return m.readText(until: .now + .seconds(5)) { $0.hasSuffix("(qemu) ") }
            }
            let n = ActionRequiredMCE.inject(addr: addr, loop: loop, hmp: hmp)
            onLine("harness: inject-mce-ar " + (n.map { "injected at stop \($0)" } ?? "missed"))
          }
        } else if sent, let r = line.range(of: "(qemu) mce ") {
          if monitor == nil { monitor = try? LineChannel(connectingTo: monitorPath, until: .now + .seconds(5)) }
          try? monitor?.send("mce " + line[r.upperBound...])
        }
        if line.hasPrefix(marker) {
          finished = true
          break
        }
      }
      if finished { break }
      if !sent && text.contains("harness: shell") {
        input.fileHandleForWriting.write(Data(full.utf8))
        sent = true
      }
    }
    return Run(console: text, finished: finished)
  }
}
