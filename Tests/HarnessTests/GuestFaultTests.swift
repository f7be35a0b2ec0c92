import Foundation
import Testing

@testable import Harness

/// Faults of the host are never verdicts on the kernel: a campaign whose QEMU is stopped for
/// longer than the op deadline (SIGSTOP for 20 s) reports every seed as an undisturbed run
/// does, the stalled sequence run again on a new guest.
@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(10)))
struct GuestFaultTests {
  static func verdictLines(_ out: String) -> [String] {
    out.split(separator: "\n").filter { $0.hasPrefix("seed-") }.map(String.init)
  }

  @Test func aStoppedQEMUIsAHostFaultNotAHang() async throws {
    _ = try await GuestFixture.artifacts()
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("harness-stall-\(UUID())").path
    let runDir = root + "/run"
    try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    let args = ["fuzz", "--seed", "1", "--count", "24", "--world", "mf", "--verbose"]
    let calm = try runHarness(args + ["--reports", root + "/calm"])
    #expect(calm.status == 0, "\(calm.out)\n\(calm.err)")

    let p = Process()
    p.executableURL = URL(fileURLWithPath: Paths.harness)
    p.arguments = args + ["--reports", root + "/stalled"]
    p.environment = ProcessInfo.processInfo.environment.merging(["HARNESS_RUN_DIR": runDir]) { $1 }
    p.currentDirectoryURL = URL(fileURLWithPath: Paths.root)
    FileManager.default.createFile(atPath: root + "/out", contents: nil)
    FileManager.default.createFile(atPath: root + "/err", contents: nil)
    p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/out"))
    p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/err"))
    try p.run()
    // QEMU of this campaign: the one whose command line names the run directory.
    var qemu: Int32 = 0
    let start = ContinuousClock.now
    while qemu == 0, p.isRunning, ContinuousClock.now - start < .seconds(120) {
      let found = try runTool(["/usr/bin/pgrep", "-f", "qemu-system.*\(runDir)"])
      qemu = Int32(found.out.split(separator: "\n").first ?? "") ?? 0
      try await Task.sleep(for: .milliseconds(200))
    }
    try #require(qemu > 0, "no QEMU started")
    try await Task.sleep(for: .seconds(3))
    kill(qemu, SIGSTOP)
    try await Task.sleep(for: .seconds(20))
    kill(qemu, SIGCONT)
    p.waitUntilExit()
    let out = try String(contentsOfFile: root + "/out", encoding: .utf8)
    #expect(p.terminationStatus == 0, "\(out)")
    #expect(Self.verdictLines(out) == Self.verdictLines(calm.out), "\(out)")
    #expect(out.contains("1 guests lost and replaced"), "\(out)")
    #expect(!out.contains("guest-failure:hang"), "\(out)")
  }

  /// QEMU SIGKILLed four times at seeded random moments of a campaign (during sequences,
  /// resets, restores or the replacement's boot): every seed still gets the verdict an
  /// undisturbed run gives it, or a recorded host fault; never a new kernel verdict.
  @Test func qemuKilledAtRandomMomentsChangesNoVerdict() async throws {
    _ = try await GuestFixture.artifacts()
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("harness-kills-\(UUID())").path
    let runDir = root + "/run"
    try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    let args = ["fuzz", "--seed", "300", "--count", "60", "--world", "mf", "--verbose"]
    let calm = try runHarness(args + ["--reports", root + "/calm"])
    #expect(calm.status == 0, "\(calm.out)\n\(calm.err)")

    let p = Process()
    p.executableURL = URL(fileURLWithPath: Paths.harness)
    p.arguments = args + ["--reports", root + "/killed"]
    p.environment = ProcessInfo.processInfo.environment.merging(["HARNESS_RUN_DIR": runDir]) { $1 }
    p.currentDirectoryURL = URL(fileURLWithPath: Paths.root)
    FileManager.default.createFile(atPath: root + "/out", contents: nil)
    p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/out"))
    p.standardError = FileHandle.nullDevice
    try p.run()
    // Seeded: the same moments every run (xorshift over a fixed seed).
    var x: UInt64 = 0x9e37_79b9_7f4a_7c15
    var kills = 0
    while kills < 4, p.isRunning {
      x ^= x << 13
      x ^= x >> 7
      x ^= x << 17
      try await Task.sleep(for: .milliseconds(500 + Int(x % 3500)))
      let found = try runTool(["/usr/bin/pgrep", "-f", "qemu-system.*\(runDir)"])
      if let pid = Int32(found.out.split(separator: "\n").first ?? "") {
        kill(pid, SIGKILL)
        kills += 1
      }
    }
    p.waitUntilExit()
    let out = try String(contentsOfFile: root + "/out", encoding: .utf8)
    #expect(p.terminationStatus == 0, "\(out)")
    let calmLines = Self.verdictLines(calm.out)
    let lines = Self.verdictLines(out)
    #expect(lines.count == calmLines.count, "\(out)")
    for (a, b) in zip(lines, calmLines) where a != b {
      #expect(a.contains("host fault"), "\(a) against an undisturbed run's \(b)")
    }
    #expect(kills > 0)
  }
}
