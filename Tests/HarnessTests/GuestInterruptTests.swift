import Foundation
import Testing

@testable import Harness

/// A campaign interrupted by SIGINT or SIGTERM keeps what it did: no sequence starts after the
/// signal, QEMU is gone, the report covers the sequences that finished (marked as interrupted),
/// standard output is flushed to its file, and the exit status is 128 + the signal.
@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(10)))
struct GuestInterruptTests {
  @Test(arguments: [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")])
  func anInterruptedCampaignWritesItsReport(signal: Int32, name: String) async throws {
    let guest = try await GuestFixture.artifacts()
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("harness-interrupt-\(UUID())").path
    let runDir = root + "/run"
    try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    let p = try startHarness(
      ["fuzz", "--seed", "1", "--count", "100000", "--world", "mf", "--verbose", "--jobs", "1", "--reports", root + "/reports"],
      runDir: runDir, guest: guest, out: root + "/out", err: root + "/err")
    // Until the guest is up, then some sequences.
    let start = ContinuousClock.now
    while qemuPID(childOf: p.processIdentifier) == 0, p.isRunning, ContinuousClock.now - start < .seconds(120) {
      hold(.milliseconds(200))
    }
    hold(.seconds(8))
    kill(p.processIdentifier, signal)
    let signalled = ContinuousClock.now
    while p.isRunning, ContinuousClock.now - signalled < .seconds(30) { hold(.milliseconds(100)) }
    #expect(!p.isRunning, "still running 30 s after \(name)")
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
    #expect(p.terminationStatus == 128 + signal)
    let out = try String(contentsOfFile: root + "/out", encoding: .utf8)
    let ran = out.split(separator: "\n").filter { $0.hasPrefix("seed-") }.count
    #expect(ran > 0, "no verdict line reached the file:\n\(out)")
    #expect(out.contains("interrupted by \(name) after \(ran) sequences"), "\(out)")
    let dir = root + "/reports/fuzz-mf-1-100000-l30-both"
    let summary = try String(contentsOfFile: dir + "/summary.txt", encoding: .utf8)
    #expect(summary.contains("sequences: \(ran), "), "\(summary)")
    #expect(summary.contains("interrupted by \(name) after \(ran) sequences"))
    let ktap = try String(contentsOfFile: dir + "/ktap.txt", encoding: .utf8)
    #expect(ktap.contains("\n1..\(ran)\n"))
    // No QEMU and no run directory left behind.
    let left = try FileManager.default.contentsOfDirectory(atPath: runDir)
    #expect(left.isEmpty, "left in the run directory: \(left)")
    let pgrep = try runTool(["/usr/bin/pgrep", "-f", runDir])
    #expect(pgrep.out.isEmpty, "QEMU still running: \(pgrep.out)")
  }
}
