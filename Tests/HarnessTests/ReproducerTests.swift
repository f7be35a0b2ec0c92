import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// Reproducers compile as static C programs (every ledger entry's and every memory-failure
/// regression sequence's, multi-process and multi-thread ones included), refuse what they
/// cannot express, and — in the guest — report the kernel's behaviour against the contract.
@Suite struct ReproducerTests {
  /// The ledger's memory-failure entries (the reproducer does not do dma-buf ops yet).
  static var findings: [String] {
    let dir = Paths.root + "/Corpora/findings"
    return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map { "\(dir)/\($0)/sequence.seq" }
      .filter { (try? String(contentsOfFile: $0, encoding: .utf8))?.contains("\nworld mf\n") == true }
  }
  static var regression: [String] {
    Paths.regressionFiles.filter { ($0 as NSString).lastPathComponent.hasPrefix("mf-") }.map { Paths.root + "/" + $0 }
  }

  static func generate(_ file: String) throws -> String {
    let s = try Corpus.load(file)
    let header = try String(contentsOfFile: Paths.root + "/VM/shim/harness_shim.h", encoding: .utf8)
    return try Reproducer.generate(s, predicted: Machine.run(s.ops, in: .mf), shimHeader: header, source: file)
  }

  /// Compiles `c` with `gcc -static -Wall -Werror`; the binary's path.
  static func compile(_ c: String, name: String = "repro") throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("repro-\(UUID())").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try c.write(toFile: dir + "/repro.c", atomically: true, encoding: .utf8)
    let cc = Process()
    cc.executableURL = URL(fileURLWithPath: "/usr/bin/gcc")
    cc.arguments = ["-static", "-O2", "-Wall", "-Werror", "-pthread", "-o", dir + "/" + name, dir + "/repro.c"]
    try cc.run()
    cc.waitUntilExit()
    #expect(cc.terminationStatus == 0, "repro.c does not compile")
    return dir + "/" + name
  }

  @Test(arguments: findings + regression)
  func compilesStatically(file: String) throws {
    let c = try Self.generate(file)
    #expect(c.contains("KTAP version 1"))
    let binary = try Self.compile(c)
    try? FileManager.default.removeItem(atPath: (binary as NSString).deletingLastPathComponent)
  }

  /// Every ledger entry's committed repro.c is what `harness repro` writes from its sequence
  /// today: a change to the reproducer's runtime (the pipes that replaced sockets when the guest
  /// lost CONFIG_NET) must reach the reproducers people run from the ledger.
  @Test(arguments: findings)
  func committedReproducerIsCurrent(file: String) throws {
    let dir = (file as NSString).deletingLastPathComponent
    guard let committed = try? String(contentsOfFile: dir + "/repro.c", encoding: .utf8) else { return }
    let relative = String(file.dropFirst(Paths.root.count + 1))
    let s = try Corpus.load(file)
    let header = try String(contentsOfFile: Paths.root + "/VM/shim/harness_shim.h", encoding: .utf8)
    let current = try Reproducer.generate(s, predicted: Machine.run(s.ops, in: .mf), shimHeader: header, source: relative)
    #expect(committed == current, "\(dir)/repro.c is stale: harness repro \(relative) --output \(dir)/repro.c")
  }

  @Test func refusesDmaBufOps() throws {
    let s = try SequenceFormat.parse("harness-sequence 1\nworld p2p-switch\n\nvfio-open x0\n")
    #expect(throws: Reproducer.Unsupported.self) {
      _ = try Reproducer.generate(s, predicted: Machine.run(s.ops, in: .p2pSwitch), shimHeader: "", source: "x")
    }
  }
}

/// Reproducers run in the guest (as `harness vm shell --add` puts them there): all `ok` for a
/// sequence the kernel follows, `not ok` on the step of a recorded finding.
@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(10)))
struct ReproducerGuestTests {
  @Test(arguments: [
    // Three processes, threads, forks from t1 and t0: every step as the contract says.
    ("Corpora/regression/mf-prctl-inherited-threads-fork.seq", nil as Int?),
    // Two processes, early kill and AR, a fork, MADV_DONTFORK.
    ("Corpora/regression/mf-madvise-dontfork.seq", nil),
    // Finding 0001: the nvgrace arithmetic kills the process at step 8.
    ("Corpora/findings/0001-nvgrace-pgoff-outside-vma-sigkill/sequence.seq", 0),
  ])
  func reportsInKTAP(file: String, notOK: Int?) async throws {
    let binary = try ReproducerTests.compile(try ReproducerTests.generate(Paths.root + "/" + file))
    let out = try await GuestShell.run(["/repro"], adding: [binary])
    // The console ends lines with \r\n (one Character in Swift): split on scalars.
    let lines = out.unicodeScalars.split { $0 == "\n" }.map { String(String.UnicodeScalarView($0)).trimmingCharacters(in: .whitespacesAndNewlines) }
    let s = try Corpus.load(Paths.root + "/" + file)
    #expect(lines.contains("1..\(s.ops.count)"), "\(out)")
    let failing = lines.filter { $0.hasPrefix("not ok ") }
    let passing = lines.filter { $0.hasPrefix("ok ") }
    if notOK == nil {
      #expect(failing.isEmpty && passing.count == s.ops.count, "\(out)")
    } else {
      #expect(!failing.isEmpty, "the finding no longer reproduces:\n\(out)")
    }
  }
}

/// Boots the `mf` guest in shell mode with `files` in its /, runs `commands` on its console,
/// and returns what the console printed.
enum GuestShell {
  static func run(_ commands: [String], adding files: [String]) async throws -> String {
    var a = try await GuestFixture.artifacts()
    a.initramfsOverride = try await VM.Shell.initramfs(a, adding: files)
    let args = try GuestWorld.named("mf").qemuArguments(artifacts: a, run: RunDirectory(path: "/nonexistent"), shell: true)
      .map { $0 == "mon:stdio" ? "stdio" : $0 }
    let qemu = Process()
    qemu.executableURL = URL(fileURLWithPath: try HostTools.qemu())
    qemu.arguments = args
    let input = Pipe()
    let output = Pipe()
    qemu.standardInput = input
    qemu.standardOutput = output
    qemu.standardError = output
    try qemu.run()
    defer { if qemu.isRunning { qemu.terminate() } }
    let marker = "harness-done-\(UUID().uuidString.prefix(8))"
    // The shell reads its input once it runs; busybox sh buffers nothing it has not read.
    // `reboot -f`: QEMU runs with -no-reboot, so a reset ends it (the mf world boots without
    // ACPI, where `poweroff -f` only halts).
    let script = commands.joined(separator: "\n") + "\necho \(marker)\nreboot -f\n"
    var text = ""
    let deadline = Date().addingTimeInterval(120)
    // A guest that prints nothing more must not block the read below forever.
    DispatchQueue.global().asyncAfter(deadline: .now() + 125) { if qemu.isRunning { qemu.terminate() } }
    var sent = false
    while Date() < deadline {
      let chunk = output.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      text += String(decoding: chunk, as: UTF8.self)
      if !sent && text.contains("harness: shell") {
        input.fileHandleForWriting.write(Data(script.utf8))
        sent = true
      }
      if text.components(separatedBy: marker).count > 2 { break }
    }
    qemu.terminate()
    qemu.waitUntilExit()
    return text
  }
}
