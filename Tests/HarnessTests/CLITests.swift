import Foundation
import Testing

/// The `harness` executable: exit statuses, determinism, errors naming file and line.
@Suite struct CLITests {
  @Test func fuzzIsDeterministic() throws {
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("harness-cli-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    let args = ["fuzz", "--seed", "3", "--count", "20", "--world", "all", "--target", "model", "--reports", tmp + "/r", "--save-sequences", tmp + "/s"]
    let a = try runHarness(args)
    let first = try String(contentsOfFile: tmp + "/r/fuzz-all-3-20-l30-model/summary.json", encoding: .utf8)
    let seq = try String(contentsOfFile: tmp + "/s/mf-seed-7.seq", encoding: .utf8)
    let b = try runHarness(args)
    #expect(a.status == 0)
    #expect(a.out == b.out)
    #expect(try String(contentsOfFile: tmp + "/r/fuzz-all-3-20-l30-model/summary.json", encoding: .utf8) == first)
    #expect(try String(contentsOfFile: tmp + "/s/mf-seed-7.seq", encoding: .utf8) == seq)
    #expect(seq.hasPrefix("harness-sequence 1\nworld mf\nseed 7\n\n"))
  }

  @Test(arguments: [
    (["fuzz"], "--seed"),
    (["fuzz", "--seed", "x"], "--seed"),
    (["fuzz", "--seed", "1", "--world", "moon", "--target", "model"], "unknown --world moon"),
    (["fuzz", "--seed", "1", "--count", "0"], "--count"),
    (["fuzz", "--seed", "1", "--target", "cloud"], "--target"),
    (["fuzz", "--seed", "1", "--budget", "5x"], "--budget"),
    (["fuzz", "--seed", "1", "--budget", "0s"], "--budget"),
    // Overflowed Int64 and trapped (SIGILL) before the range check.
    (["fuzz", "--seed", "1", "--budget", "2562047788015216h", "--target", "model"], "--budget"),
    (["fuzz", "--seed", "1", "--budget", "8785h", "--target", "model"], "1s to 8784h"),
    // A newline would write keys of its own into finding.txt.
    (["record", Paths.regressionFiles[0], "--name", "x", "--status", "kernel-bug", "--deviation", "unregister-by-overlap",
      "--summary", "ok\nsignature: injected"], "--summary: one line"),
    (["minimize", Paths.regressionFiles[0], "--signature", "result:0:-EINVAL/C1.1/space-register"],
     "does not show the signature result:0:-EINVAL/C1.1/space-register"),
    (["replay", "Corpora"], "Corpora: is a directory"),
    // The seeds are held in memory: a count near Int.max crashed.
    (["fuzz", "--seed", "1", "--count", "9223372036854775807", "--target", "model"], "--count must be between 1 and 100000000"),
    (["bench", "model", "--repeats", "0"], "--repeats 1 to 100"),
    (["vm", "build", "--kernel-config", "/dev/zero"], "--kernel-config /dev/zero: is a device"),
    (["vm", "build", "--kernel-config", "Corpora"], "--kernel-config Corpora: is a directory"),
    (["vm", "build", "--series", "/dev/zero"], "--series /dev/zero: is a device"),
    (["bench", "guest", "--campaign", "10", "--seed", "18446744073709551615"], "runs past the largest seed"),
    (["replay", "/nonexistent.seq"], "/nonexistent.seq: no such file"),
    (["frobnicate"], "frobnicate"),
    (["fuzz", "--seed", "1", "--compare-kernel", "debian", "--target", "model"], "--compare-kernel runs kernels"),
    (["fuzz", "--seed", "1", "--compare-kernel", "/nonexistent"], "--compare-kernel /nonexistent: no such directory"),
    (["ledger", "check", "--expect-fixed", "9999"], "--expect-fixed 9999: no ledger entry has that id"),
    (["ledger", "check", "--only", "0006,x"], "--only x: no ledger entry has that id"),
    (["fuzz", "--seed", "1", "--shard", "3/2"], "--shard 3/2: expected I/N with 0 <= I < N"),
    (["fuzz", "--seed", "1", "--jobs", "0"], "--jobs must be between 1 and 256"),
    (["merge", "/nonexistent"], "/nonexistent/campaign.json: no such file"),
    (["bench", "guest", "--jobs", "1,x"], "--jobs 1,x: expected numbers from 1 to 256"),
    (["bench", "guest", "--world", "mf", "--campaign", "1", "--baseline", "/nonexistent"], "--baseline /nonexistent: no VM/build.sh there"),
    (["bench", "guest", "--world", "mf", "--baseline", "."], "--baseline compares campaign rates: give --campaign N"),
    (["bench", "guest", "--world", "mf", "--campaign", "1", "--pairs", "0"], "--pairs must be 1 to 100"),
    (["bench", "guest", "--world", "all", "--campaign", "1", "--baseline", "."], "--baseline compares one world's campaign: give --world"),
  ])
  func usageErrorsExitTwo(args: [String], message: String) throws {
    let r = try runHarness(args)
    #expect(r.status == 2, "\(args): status \(r.status), \(r.err)")
    #expect(r.err.contains(message), "\(args): \(r.err)")
  }

  /// --bisect: an error before any verdict is git bisect run's skip (125); a command line that
  /// does not parse stops the bisection (128), where a usage status (2) would count as bad.
  @Test func bisectStatusesWithoutAKernel() throws {
    let skip = try runHarness(["ledger", "check", "--bisect", "--expect-fixed", "9999"])
    #expect(skip.status == 125, "\(skip.err)")
    #expect(skip.err.contains("--expect-fixed 9999") && skip.err.contains("--bisect: skip"))
    let abort = try runHarness(["replay", "--bisect", "--frobnicate", "x.seq"])
    #expect(abort.status == 128, "\(abort.err)")
    let missing = try runHarness(["replay", "--bisect", "/nonexistent.seq"])
    #expect(missing.status == 125, "\(missing.err)")
  }

  /// --budget stops a campaign that could not finish in time, and the report says so.
  @Test func budgetStopsTheCampaign() throws {
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("harness-budget-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    let r = try runHarness(["fuzz", "--seed", "1", "--count", "100000000", "--target", "model", "--budget", "1s", "--reports", tmp])
    #expect(r.status == 0, "\(r.err)")
    #expect(r.out.contains("mf: --budget ran out after "), "\(r.out)")
    let summary = try String(contentsOfFile: tmp + "/fuzz-mf-1-100000000-l30-model/summary.txt", encoding: .utf8)
    #expect(summary.contains("of 100000000 sequences"))
  }

  @Test func malformedFileNamesLineAndColumn() throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID()).seq").path
    try "harness-sequence 1\nworld mf\n\nspawn p1\nmmap p1 addr=0x1000 pages=two region=2 pgoff=0\n"
      .write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let r = try runHarness(["replay", path])
    #expect(r.status == 2)
    #expect(r.err.contains("\(path):5:27: error: expected a non-negative number"), "\(r.err)")
    #expect(r.out.isEmpty, "no partial output on bad input")
  }

  @Test func unknownWorldInFile() throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("w-\(UUID()).seq").path
    try "harness-sequence 1\nworld venus\n\nspawn p1\n".write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let r = try runHarness(["replay", path])
    #expect(r.status == 2)
    #expect(r.err.contains("\(path):2:7: error: unknown world `venus`"))
  }

  /// A recorded expectation the model disagrees with: exit 1, and minimize keeps the signature.
  @Test func divergenceExitsOneAndMinimizes() throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("d-\(UUID()).seq").path
    try """
      harness-sequence 1
      world mf

      spawn p1
        = $p1
      sysctl early-kill=1
        = 0
      spawn p2
        = $p2
      space-create s1 first=0xf8000 last=0xfbfff callback=none
        = 0
      space-register s1
        = 0

      """.write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let r = try runHarness(["replay", "--quiet", path])
    #expect(r.status == 1)
    #expect(r.err.contains("signature: result:0:-EINVAL/C1.1/space-register"), "\(r.err)")
    let m = try runHarness(["minimize", path])
    #expect(m.status == 0, "\(m.err)")
    #expect(m.out == """
      harness-sequence 1
      world mf

      space-create s1 first=0xf8000 last=0xfbfff callback=none
        = 0
      space-register s1
        = 0

      """)
  }

  /// `record` needs the deviation that predicts what the kernel does, by a name the model has;
  /// a model-bug-fixed entry takes none. (Whether it explains the run: GuestRecordTests.)
  @Test func recordNeedsAKnownDeviation() throws {
    let seq = Paths.root + "/Corpora/findings/0004-queue-soft-offline-flag/sequence.seq"
    let base = ["record", seq, "--name", "x", "--summary", "s", "--findings", "/nonexistent"]
    let none = try runHarness(base + ["--status", "kernel-bug"])
    #expect(none.status == 2 && none.err.contains("--deviation NAME is needed for a kernel-bug entry"), "\(none.err)")
    let unknown = try runHarness(base + ["--status", "doc-mismatch", "--deviation", "nope"])
    #expect(unknown.status == 2 && unknown.err.contains("--deviation nope: no such deviation; known: kill-outside-vma"), "\(unknown.err)")
    let fixed = try runHarness(base + ["--status", "model-bug-fixed", "--deviation", "queue-soft-offline"])
    #expect(fixed.status == 2 && fixed.err.contains("a model-bug-fixed entry has no --deviation"), "\(fixed.err)")
  }

  @Test func helpExplainsWithExamples() throws {
    for cmd in [["--help"], ["fuzz", "--help"], ["replay", "--help"], ["minimize", "--help"], ["bench", "model", "--help"]] {
      let r = try runHarness(cmd)
      #expect(r.status == 0, "\(cmd)")
      #expect(r.out.contains("xample"), "\(cmd) has no example")
    }
  }
}
