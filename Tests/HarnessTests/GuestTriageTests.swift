import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// Triage by explanation on Debian's kernel in the guest: a known finding followed by an
/// unrelated divergence is new, and `record` keeps only a deviation that explains its run.
@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(20)))
struct GuestTriageTests {
  static let finding0001 = Paths.root + "/Corpora/findings/0001-nvgrace-pgoff-outside-vma-sigkill"

  static func scratch(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("harness-\(name)-\(UUID())").path
  }

  /// 0001's sequence (the kernel SIGKILLs p1: known), then a process whose policy query carries
  /// a deliberately wrong expectation (1; the contract and the kernel say 2). Replayed on the
  /// kernel: the verdict is that step, new, behind 0001's deviation; 0001's file alone is known.
  @Test func aDivergenceAfterAKnownFindingIsNew() async throws {
    _ = try await GuestFixture.artifacts()
    let dir = Self.scratch("behind")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let known = try String(contentsOfFile: Self.finding0001 + "/sequence.seq", encoding: .utf8)
    let file = dir + "/behind.seq"
    try (known + "spawn p2\n  = $p2\nprctl p2.t0 mce-kill-get\n  = 1\n").write(toFile: file, atomically: true, encoding: .utf8)
    let r = try runHarness(["replay", "--quiet", "--target", "qemu", file])
    #expect(r.status == 1, "\(r.out)\n\(r.err)")
    #expect(r.err.contains("\(file): new (behind known deviations: kill-outside-vma)"), "\(r.err)")
    #expect(r.err.contains("divergence at step 9: prctl p2.t0 mce-kill-get"), "\(r.err)")
    #expect(r.err.contains("signature: result:1:2/C3.7/prctl"), "\(r.err)")
    let alone = try runHarness(["replay", "--quiet", "--target", "qemu", Self.finding0001 + "/sequence.seq"])
    #expect(alone.status == 1)
    #expect(alone.err.contains(": known: 0001-nvgrace-pgoff-outside-vma-sigkill (deviations: kill-outside-vma)"), "\(alone.err)")
  }

  /// `record` runs the sequence in the guest and refuses a deviation that does not predict what
  /// the kernel did (exit 2, naming the step); the right one is written into finding.txt.
  @Test func recordKeepsOnlyADeviationThatExplainsItsRun() async throws {
    _ = try await GuestFixture.artifacts()
    let findings = Self.scratch("record")
    defer { try? FileManager.default.removeItem(atPath: findings) }
    let seq = Paths.root + "/Corpora/findings/0004-queue-soft-offline-flag/sequence.seq"
    let base = ["record", seq, "--name", "soft-offline", "--status", "doc-mismatch", "--summary", "s", "--findings", findings]
    let wrong = try runHarness(base + ["--deviation", "prctl-invalid-sets-policy"])
    #expect(wrong.status == 2, "\(wrong.out)\n\(wrong.err)")
    #expect(wrong.err.contains("--deviation prctl-invalid-sets-policy does not explain the run on qemu: step 3 (inject-queue pfn=0xf8001 flags=0x8) is not predicted"), "\(wrong.err)")
    #expect(!FileManager.default.fileExists(atPath: findings + "/0001-soft-offline"))
    let right = try runHarness(base + ["--deviation", "queue-soft-offline"])
    #expect(right.status == 0, "\(right.out)\n\(right.err)")
    let text = try String(contentsOfFile: findings + "/0001-soft-offline/finding.txt", encoding: .utf8)
    #expect(text.contains("\ndeviation: queue-soft-offline\n"), "\(text)")
    let ledger = try Ledger.load(findings)
    #expect(ledger.entries.map(\.deviations) == [[.queueSoftOffline]])
  }

  /// From a campaign to a finding without hand work: with an empty ledger, the new verdicts of
  /// seeds 1–12 of `mf` are grouped by the model's deviation that explains them, each group's
  /// first sequence is minimized in the guest and given a reproducer, `record` turns a group
  /// folder into a ledger entry (its deviation read from group.txt), and with that ledger the
  /// group's seeds are known.
  @Test func anEmptyLedgerCampaignEndsInMinimizedGroupsThatRecord() async throws {
    _ = try await GuestFixture.artifacts()
    let root = Self.scratch("groups")
    defer { try? FileManager.default.removeItem(atPath: root) }
    let ledger = root + "/ledger"
    try FileManager.default.createDirectory(atPath: ledger, withIntermediateDirectories: true)
    let args = ["fuzz", "--seed", "1", "--count", "12", "--world", "mf", "--jobs", "1", "--reports", root + "/reports", "--findings", ledger]
    let r = try runHarness(args + ["--minimize-budget", "80"])
    #expect(r.status == 1, "\(r.out)\n\(r.err)")
    let run = root + "/reports/fuzz-mf-1-12-l30-both"
    let summary = try String(contentsOfFile: run + "/summary.txt", encoding: .utf8)
    #expect(summary.contains("new groups: "), "\(summary)")
    #expect(summary.contains("  group-1: explained by deviation "), "\(summary)")
    let group = run + "/group-1"
    for f in ["sequence.seq", "observed.seq", "diff.txt", "group.txt", "repro.c"] {
      #expect(FileManager.default.fileExists(atPath: group + "/" + f), "\(f)")
    }
    let small = try Corpus.load(group + "/sequence.seq")
    #expect(small.steps.count < 30, "\(small.steps.count) ops")
    let text = try String(contentsOfFile: group + "/group.txt", encoding: .utf8)
    let deviation = try #require(
      text.split(separator: "\n").first { $0.hasPrefix("deviation: ") }?.dropFirst("deviation: ".count), "\(text)")
    let rec = try runHarness([
      "record", group, "--name", "first-group", "--status", "kernel-bug", "--summary", "s", "--findings", ledger,
    ])
    #expect(rec.status == 0, "\(rec.out)\n\(rec.err)")
    let entry = try String(contentsOfFile: ledger + "/0001-first-group/finding.txt", encoding: .utf8)
    #expect(entry.contains("\ndeviation: \(deviation)\n"), "\(entry)")
    // With the new entry, the group's first sequence (explained by that deviation alone) is known.
    let again = try runHarness(args + ["--minimize-budget", "0"])
    let first = try #require(text.split(separator: "\n").first { $0.hasPrefix("representative: ") }?.dropFirst("representative: ".count).split(separator: ",").first)
    let line = again.out.split(separator: "\n").first { $0.hasPrefix("\(first): ") }
    // The deviation alone; a note may follow it (`; state undefined from step N, …`).
    let known = "(known: 0001-first-group; deviations: \(deviation)"
    #expect(line.map { $0.contains(known + ")") || $0.contains(known + "; ") } == true, "\(first): \(again.out)")
  }
}
