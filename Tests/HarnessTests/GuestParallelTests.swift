import Foundation
import Testing

@testable import Harness

/// Campaigns on several guests at once and in shards write the report one guest writes: the
/// same files byte for byte (but the console logs, which carry the kernel's timestamps) and the
/// same verdict lines, in seed order.
@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(15)))
struct GuestParallelTests {
  /// A campaign of `count` seeds of `world` in the guest, with `extra` options; its report
  /// directory's files and its output.
  static func campaign(_ world: String, count: Int, _ extra: [String], reports: String) throws
    -> (status: Int32, files: [String: String], out: String, err: String)
  {
    let r = try runHarness(["fuzz", "--seed", "1", "--count", "\(count)", "--world", world, "--reports", reports] + extra)
    return (r.status, reportFiles("\(reports)/fuzz-\(world)-1-\(count)-l30-both"), r.out, r.err)
  }

  @Test(arguments: ["mf", "p2p-hostbridge-zen"])
  func twoGuestsReportAsOne(world: String) async throws {
    _ = try await GuestFixture.artifacts()
    let tmp = scratchDirectory("jobs")
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    let one = try Self.campaign(world, count: 10, ["--jobs", "1"], reports: tmp + "/1")
    let two = try Self.campaign(world, count: 10, ["--jobs", "2"], reports: tmp + "/2")
    #expect(one.status == two.status, "\(one.err)\n\(two.err)")
    #expect(one.files.keys.contains("summary.txt") && one.files.keys.contains("campaign.json"), "\(one.err)")
    #expect(differingFiles(one.files, two.files).isEmpty)
    #expect(verdictLines(one.out) == verdictLines(two.out))
    #expect(two.out.contains("2 boots"), "both guests ran: \(two.out)")
  }

  /// Three shards, one guest each, merged: the report of one run over all the seeds.
  @Test func guestShardsMergeIntoOneRun() async throws {
    _ = try await GuestFixture.artifacts()
    let tmp = scratchDirectory("guest-merge")
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    let one = try Self.campaign("mf", count: 9, ["--jobs", "1"], reports: tmp + "/one")
    for i in 0..<3 {
      let r = try runHarness(
        ["fuzz", "--seed", "1", "--count", "9", "--world", "mf", "--jobs", "1", "--reports", tmp + "/shards"],
        environment: ["JOB_COMPLETION_INDEX": "\(i)", "HARNESS_SHARDS": "3"])
      #expect(r.status == one.status, "\(r.err)")
    }
    let dirs = (0..<3).map { "\(tmp)/shards/fuzz-mf-1-9-l30-both-shard-\($0)-of-3" }
    let merged = try runHarness(["merge", "--reports", tmp + "/merged"] + dirs)
    #expect(merged.status == one.status, "\(merged.err)")
    #expect(differingFiles(reportFiles(tmp + "/merged/fuzz-mf-1-9-l30-both"), one.files).isEmpty)
    #expect(verdictLines(merged.out) == verdictLines(one.out))
  }

  /// One of two guests is killed (SIGKILL to its QEMU) in the middle of a campaign: it is
  /// replaced, the sequence it held runs again, and the report is the one an undisturbed
  /// campaign writes.
  @Test func killedGuestIsReplaced() async throws {
    let guest = try await GuestFixture.artifacts()
    let tmp = scratchDirectory("jobs-kill")
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    // Long enough that a guest still runs half a second after it booted, on a quiet host too.
    let count = 60
    let one = try Self.campaign("mf", count: count, ["--jobs", "1"], reports: tmp + "/1")

    let p = Process()
    p.executableURL = URL(fileURLWithPath: Paths.harness)
    p.arguments = ["fuzz", "--seed", "1", "--count", "\(count)", "--world", "mf", "--jobs", "2", "--reports", tmp + "/2"]
    p.currentDirectoryURL = URL(fileURLWithPath: Paths.root)
    // The built guest as it is: no wait for a build lock another suite's kernel build holds.
    p.environment = ProcessInfo.processInfo.environment.merging(["HARNESS_GUEST": guest.directory]) { $1 }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    // Kill a guest that has worked for half a second: the second one when both run, else the
    // one there is (a campaign of restored guests takes seconds, and on a loaded host the second
    // guest may come up only when the first is done; it still boots, so 3 boots either way).
    var killed: Int32 = 0
    var firstSeen: [Int32: Date] = [:]
    let deadline = Date().addingTimeInterval(120)
    while killed == 0, p.isRunning, Date() < deadline {
      let qemus = Self.children(of: p.processIdentifier).filter { Self.command($0).hasPrefix("qemu-system") }
      for q in qemus where firstSeen[q] == nil { firstSeen[q] = Date() }
      if let victim = qemus.last(where: { Date().timeIntervalSince(firstSeen[$0]!) >= 0.5 }),
        kill(victim, SIGKILL) == 0
      {
        killed = victim
      } else {
        hold(.milliseconds(50))
      }
    }
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    #expect(killed != 0, "no guest to kill: \(text)")
    #expect(p.terminationStatus == one.status, "\(text)")
    #expect(differingFiles(reportFiles(tmp + "/2/fuzz-mf-1-\(count)-l30-both"), one.files).isEmpty)
    #expect(verdictLines(text) == verdictLines(one.out))
    #expect(text.contains("3 boots"), "the killed guest was replaced: \(text)")
  }

  /// `replay` and `ledger check` with two guests print and write what one guest does, in the
  /// files' and the entries' order.
  @Test func replayAndLedgerCheckWithTwoGuests() async throws {
    _ = try await GuestFixture.artifacts()
    let tmp = scratchDirectory("jobs-replay")
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    let files = [
      "Corpora/regression/mf-ao-default-kills.seq", "Corpora/regression/dmabuf-close-revokes-forever.seq",
      "Corpora/regression/mf-ao-ignored-discarded.seq",
    ]
    let one = try runHarness(["replay", "--target", "qemu", "--jobs", "1"] + files)
    let two = try runHarness(["replay", "--target", "qemu", "--jobs", "2"] + files)
    #expect(one.status == 0, "\(one.err)")
    // Standard error but the guest build's progress (`build: done in 1.9 s`).
    func verdicts(_ err: String) -> [Substring] { err.split(separator: "\n").filter { !$0.hasPrefix("build: ") } }
    #expect(two.status == one.status && two.out == one.out, "\(two.out)\n\(two.err)")
    #expect(verdicts(two.err) == verdicts(one.err))

    let entries = ["--only", "0001,0003,0007,0012"]
    let a = try runHarness(["ledger", "check", "--jobs", "1", "--reports", tmp + "/1"] + entries)
    let b = try runHarness(["ledger", "check", "--jobs", "2", "--reports", tmp + "/2"] + entries)
    #expect(a.status == 0, "\(a.out)\(a.err)")
    // The same lines but the last (`report: DIR/summary.txt`, another directory here).
    #expect(b.status == a.status && b.out.split(separator: "\n").dropLast() == a.out.split(separator: "\n").dropLast(), "\(b.out)")
    #expect(differingFiles(reportFiles(tmp + "/1/ledger-check"), reportFiles(tmp + "/2/ledger-check")).isEmpty)
  }

  /// The pids whose parent is `pid`.
  static func children(of pid: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { child in
      guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
        let paren = stat.lastIndex(of: ")")
      else { return false }
      let fields = stat[stat.index(after: paren)...].split(separator: " ")
      return fields.count > 1 && Int32(fields[1]) == pid
    }.sorted()
  }

  /// A process's command name (`/proc/PID/comm`).
  static func command(_ pid: Int32) -> String {
    ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
  }
}
