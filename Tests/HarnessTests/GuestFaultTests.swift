import Foundation
import Reference
import Testing

@testable import Harness

/// Faults of the host are never verdicts on the kernel: a campaign whose QEMU is stopped for
/// longer than the op deadline (SIGSTOP for 20 s) reports every seed as an undisturbed run
/// does (when the stop meets an op, the stalled sequence runs again on a new guest).
@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(10)))
struct GuestFaultTests {
  /// The verdict lines, without the report directory they name (each run has its own).
  static func verdictLines(_ out: String) -> [String] {
    out.split(separator: "\n").filter { $0.hasPrefix("seed-") }.map { line in
      line.range(of: " (/").map { String(line[..<$0.lowerBound]) } ?? String(line)
    }
  }

  @Test func aStoppedQEMUIsAHostFaultNotAHang() async throws {
    let guest = try await GuestFixture.artifacts()
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("harness-stall-\(UUID())").path
    let runDir = root + "/run"
    try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    let args = ["fuzz", "--seed", "1", "--count", "60", "--world", "mf", "--verbose", "--jobs", "1", "--minimize-budget", "0"]
    let calm = try runHarness(args + ["--reports", root + "/calm"], environment: ["HARNESS_GUEST": guest.directory])
    // Whatever the undisturbed run finds (new verdicts too), the disturbed one must find as well.
    #expect(calm.status <= 1, "\(calm.out)\n\(calm.err)")

    let p = try startHarness(args + ["--reports", root + "/stalled"], runDir: runDir, guest: guest, out: root + "/out")
    // QEMU of this campaign: the one whose command line names the run directory.
    var qemu: Int32 = 0
    let start = ContinuousClock.now
    while qemu == 0, p.isRunning, ContinuousClock.now - start < .seconds(120) {
      qemu = qemuPID(childOf: p.processIdentifier)
      try await Task.sleep(for: .milliseconds(200))
    }
    try #require(
      qemu > 0,
      "no QEMU seen; harness running: \(p.isRunning), output: \((try? String(contentsOfFile: root + "/out", encoding: .utf8)) ?? "")")
    try await Task.sleep(for: .seconds(3))
    kill(qemu, SIGSTOP)
    try await Task.sleep(for: .seconds(20))
    kill(qemu, SIGCONT)
    p.waitUntilExit()
    let out = try String(contentsOfFile: root + "/out", encoding: .utf8)
    #expect(p.terminationStatus == calm.status, "\(out)")
    #expect(Self.verdictLines(out) == Self.verdictLines(calm.out), "\(out)")
    #expect(!out.contains("guest-failure:hang"), "\(out)")
  }

  /// QEMU SIGKILLed four times at seeded random moments of a campaign (during sequences,
  /// resets, restores or the replacement's boot): every seed still gets the verdict an
  /// undisturbed run gives it, or a recorded host fault; never a new kernel verdict.
  @Test func qemuKilledAtRandomMomentsChangesNoVerdict() async throws {
    let guest = try await GuestFixture.artifacts()
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("harness-kills-\(UUID())").path
    let runDir = root + "/run"
    try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    let args = ["fuzz", "--seed", "300", "--count", "60", "--world", "mf", "--verbose", "--jobs", "1", "--minimize-budget", "0"]
    let calm = try runHarness(args + ["--reports", root + "/calm"], environment: ["HARNESS_GUEST": guest.directory])
    // Whatever the undisturbed run finds (new verdicts too), the disturbed one must find as well.
    #expect(calm.status <= 1, "\(calm.out)\n\(calm.err)")

    let p = try startHarness(args + ["--reports", root + "/killed"], runDir: runDir, guest: guest, out: root + "/out")
    // Seeded: the same moments every run (xorshift over a fixed seed).
    var x: UInt64 = 0x9e37_79b9_7f4a_7c15
    var kills = 0
    while kills < 4, p.isRunning {
      x ^= x << 13
      x ^= x >> 7
      x ^= x << 17
      try await Task.sleep(for: .milliseconds(500 + Int(x % 3500)))
      let pid = qemuPID(childOf: p.processIdentifier)
      if pid > 0 {
        kill(pid, SIGKILL)
        kills += 1
      }
    }
    p.waitUntilExit()
    let out = try String(contentsOfFile: root + "/out", encoding: .utf8)
    #expect(p.terminationStatus == calm.status, "\(out)")
    let calmLines = Self.verdictLines(calm.out)
    let lines = Self.verdictLines(out)
    #expect(lines.count == calmLines.count, "\(out)")
    for (a, b) in zip(lines, calmLines) where a != b {
      #expect(a.contains("host fault"), "\(a) against an undisturbed run's \(b)")
    }
    #expect(kills > 0)
  }

  /// The detection itself, at the op: QEMU stopped while an op waits past its deadline is a
  /// host stall (the guest is lost, not hung), and so is a guest that hardly ran.
  @Test func anOpDeadlineWhileQEMUIsStoppedIsAHostStall() async throws {
    let a = try await GuestFixture.artifacts()
    try await GuestSession.with(try GuestWorld.named("mf"), artifacts: a) { g in
      g.opTimeout = .seconds(2)
      let p = ProcessName("p1")!
      _ = g.apply(.spawn(p))
      #expect(!g.isLost)
      kill(g.qemuPID, SIGSTOP)
      let observed = g.apply(.mceKillGet(ThreadRef(p, 0)))
      kill(g.qemuPID, SIGCONT)
      #expect(observed.contains { if case .guestFailure("hang", _) = $0 { true } else { false } }, "\(observed)")
      #expect(g.isLost, "a stopped QEMU's missed deadline is the host's, not a kernel hang")
      #expect(g.hostFault?.contains("QEMU was stopped") == true, "\(String(describing: g.hostFault))")
    }
  }
}
