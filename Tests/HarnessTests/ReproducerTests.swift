import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// Reproducers: the runtime under VM/repro compiles on its own, every ledger entry's and every
/// regression sequence's reproducer compiles in both forms, the committed ones are current,
/// short ones stay short, and, in the guest, a reproducer passes where the kernel follows the
/// contract and fails (exit 1) on its finding.
@Suite struct ReproducerTests {
  static var findings: [String] {
    let dir = Paths.root + "/Corpora/findings"
    return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map { "\(dir)/\($0)/sequence.seq" }
  }
  static var regression: [String] { Paths.regressionFiles.map { Paths.root + "/" + $0 } }
  static var runtimeFiles: [String] { Reproducer.Runtime.fileOrder }

  static func program(_ file: String, form: Reproducer.Form = .short) throws -> Reproducer.Program {
    let relative = file.hasPrefix(Paths.root + "/") ? String(file.dropFirst(Paths.root.count + 1)) : file
    return try Repro.program(for: file, displayName: relative, form: form)
  }

  static func gcc(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let cc = Process()
    cc.executableURL = URL(fileURLWithPath: "/usr/bin/gcc")
    cc.arguments = arguments
    let out = Pipe()
    cc.standardOutput = out
    cc.standardError = out
    try cc.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    cc.waitUntilExit()
    return (cc.terminationStatus, text)
  }

  /// Compiles a program (`-Wall -Wextra -Werror`, its runtime files for the short form); the
  /// binary's path.
  static func compile(_ p: Reproducer.Program) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("repro-\(UUID())").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try p.source.write(toFile: dir + "/repro.c", atomically: true, encoding: .utf8)
    let includes = ["-I", Paths.root + "/VM/repro", "-I", Paths.root + "/VM/shim"]
    let r = try gcc(
      ["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread"] + includes
        + ["-o", dir + "/repro", dir + "/repro.c"] + p.runtimeFiles.map { Paths.root + "/" + $0 })
    #expect(r.status == 0, "repro.c does not compile:\n\(r.output)")
    return dir + "/repro"
  }

  /// Each runtime file compiles on its own, warning-free, as the kernel's style asks.
  @Test(arguments: runtimeFiles)
  func runtimeFileCompilesAlone(file: String) throws {
    let r = try Self.gcc(
      ["-Wall", "-Wextra", "-Werror", "-O2", "-c", "-o", "/dev/null", Paths.root + "/VM/repro/" + file])
    #expect(r.status == 0, "VM/repro/\(file):\n\(r.output)")
  }

  @Test(arguments: findings + regression)
  func compilesInBothForms(file: String) throws {
    for form in [Reproducer.Form.short, .standalone] {
      let p = try Self.program(file, form: form)
      #expect(p.source.contains("int main(void)"))
      let binary = try Self.compile(p)
      try? FileManager.default.removeItem(atPath: (binary as NSString).deletingLastPathComponent)
    }
  }

  /// The standalone form carries only what it reaches: a sequence without injects has no
  /// tracefs reader, one without dma-buf ops no VFIO code, one with one process no channels.
  @Test func standaloneCarriesOnlyWhatItNeeds() throws {
    let prctl = try Self.program(Paths.root + "/Corpora/regression/mf-prctl-set-get.seq", form: .standalone).source
    #expect(!prctl.contains("vfio_open"))
    #expect(!prctl.contains("VFIO_DEVICE_FEATURE"))
    #expect(!prctl.contains("trace_pipe"))
    #expect(!prctl.contains("fork_twice"))
    let forks = try Self.program(Paths.root + "/Corpora/regression/mf-fork-copies-mappings.seq", form: .standalone).source
    #expect(forks.contains("fork_twice"))
    #expect(!forks.contains("VFIO_DEVICE_FEATURE"))
    let export = try Self.program(Paths.root + "/Corpora/findings/0011-export-argsz-short-of-range-array/sequence.seq", form: .standalone).source
    #expect(export.contains("VFIO_DEVICE_FEATURE"))
    #expect(!export.contains("fork_twice"))
  }

  /// A single-process sequence of at most 8 ops gives a short reproducer of at most 150 lines.
  @Test(arguments: findings + regression)
  func shortFormIsShort(file: String) throws {
    let s = try Corpus.load(file)
    let processes = Set(s.ops.compactMap { op -> String? in if case .spawn(let p) = op { "\(p)" } else { nil } })
    guard s.ops.count <= 8, processes.count <= 1 else { return }
    let lines = try Self.program(file).source.split(separator: "\n", omittingEmptySubsequences: false).count
    #expect(lines <= 150, "\(file): \(lines) lines")
  }

  /// Every ledger entry has its reproducer, and it is what `harness repro` writes today.
  @Test(arguments: findings)
  func committedReproducerIsCurrent(file: String) throws {
    let dir = (file as NSString).deletingLastPathComponent
    let relative = String(dir.dropFirst(Paths.root.count + 1))
    let committed = try? String(contentsOfFile: dir + "/repro.c", encoding: .utf8)
    let current = try Self.program(file).source
    #expect(committed == current, "\(relative)/repro.c is missing or stale: harness repro \(relative)/sequence.seq --output \(relative)/repro.c")
  }
}

/// Definitions of the runtime files: what the reproducer generator cuts and follows.
@Suite struct CSourceTests {
  static let sample = """
    // SPDX-License-Identifier: GPL-2.0-only
    /*
     * sample.c - a header comment, not a definition
     */
    #include "repro.h"
    #include <stdio.h>

    #define LIMIT\t4\t/* a limit */

    struct pair {
    \tint a;
    \tint used_by_nobody;
    };

    /* The sum. */
    static int sum(const struct pair *p)
    {
    \tint s = p->a;

    \treturn s + LIMIT;
    }

    #ifndef MISSING
    #define MISSING 1
    #endif

    int unused(void)
    {
    \treturn MISSING;
    }

    int entry(void)
    {
    \tstruct pair p = { .a = 1 };

    \treturn sum(&p);
    }
    """

  @Test func cutsDefinitions() {
    let c = CSource(path: "sample.c", text: Self.sample)
    #expect(c.definitions.map(\.names) == [["LIMIT"], ["pair"], ["sum"], ["MISSING"], ["unused"], ["entry"]])
    #expect(c.systemIncludes == ["#include <stdio.h>"])
    #expect(c.definitions[2].text.hasPrefix("/* The sum. */"))
    // Member names are not references: `a` after `->`, the member `used_by_nobody`.
    #expect(!c.definitions[2].uses.contains("a"))
    #expect(c.definitions[2].uses.isSuperset(of: ["pair", "LIMIT"]))
  }

  @Test func closureFollowsReferencesOnly() {
    let c = CSource(path: "sample.c", text: Self.sample)
    let reached = CSource.closure(of: ["entry"], in: [c])[0].map(\.names)
    #expect(reached == [["LIMIT"], ["pair"], ["sum"], ["entry"]])
  }
}

/// Reproducers run in the guest (`harness repro --run`'s path): every ledger entry's decides
/// its finding on the kernel it was recorded on (exit 1, `not ok`; a model-bug-fixed entry's
/// passes: the model was wrong, not the kernel), and sequences the kernel follows pass.
@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(20)))
struct ReproducerGuestTests {
  static let passing = [
    // Three processes, threads, forks from t1 and t0: channels, the subreaper.
    "Corpora/regression/mf-prctl-inherited-threads-fork.seq",
    // Two processes, early kill and AR, a fork, MADV_DONTFORK.
    "Corpora/regression/mf-madvise-dontfork.seq",
    // A forced AR kills the injecting process: the exit line, the result from the kretprobe.
    "Corpora/regression/mf-ar-forced-blocked-dies.seq",
    // Every trigger on an unregistered PFN, a machine check among them: the host injects it on
    // the reproducer's request. (A recovered one WARNs on 7.3.4: finding 0003.)
    "Corpora/regression/mf-ignored-every-trigger.seq",
    // dma-buf: revocation notifies every attachment once.
    "Corpora/regression/dmabuf-revoke-notifies-every-attachment-once.seq",
    // dma-buf: IOVA tables with symbolic bases, a new one after memory is restored.
    "Corpora/regression/dmabuf-zen-memory-restore-new-iova.seq",
    // An action-required machine check (C5.4) in three threads, the host injecting while each
    // spins at CPL 3 on the reproducer's request: a plain SIGBUS to a handler, two deaths.
    "Corpora/regression/mf-mce-ar-not-recovered-plain-sigbus.seq",
  ]

  static func run(_ file: String) async throws -> ReproducerRun.Outcome {
    let path = Paths.root + "/" + file
    let s = try Corpus.load(path)
    let binary = try ReproducerTests.compile(try ReproducerTests.program(path))
    defer { try? FileManager.default.removeItem(atPath: (binary as NSString).deletingLastPathComponent) }
    return try await ReproducerRun.run(
      binary: binary, world: try GuestWorld.named(s.world), artifacts: try await GuestFixture.artifacts())
  }

  @Test(arguments: passing)
  func passesWhereTheKernelFollowsTheContract(file: String) async throws {
    let o = try await Self.run(file)
    let s = try Corpus.load(Paths.root + "/" + file)
    #expect(o.status == 0, "\(o.ktap.joined(separator: "\n"))")
    #expect(o.ktap.filter { $0.hasPrefix("ok ") }.count == s.ops.count, "\(o.ktap.joined(separator: "\n"))")
  }

  @Test(arguments: ReproducerTests.findings.map { String($0.dropFirst(Paths.root.count + 1)) })
  func decidesItsFinding(file: String) async throws {
    let o = try await Self.run(file)
    let entry = try Ledger.parse(path: Paths.root + "/" + (file as NSString).deletingLastPathComponent + "/finding.txt", id: "")
    if entry.status == "model-bug-fixed" {
      #expect(o.status == 0, "\(o.ktap.joined(separator: "\n"))")
    } else {
      #expect(o.status == 1, "the finding no longer reproduces:\n\(o.ktap.joined(separator: "\n"))\n\(o.console.suffix(3000))")
      #expect(o.ktap.contains { $0.hasPrefix("not ok ") })
    }
  }
}

extension ReproducerTests {
  /// The console of a guest shell that ran finding 0005's reproducer in CI (2026-12-04): the
  /// tty echoed the typed script before the shell started, with its `$?` lost, so a marker with
  /// no number came first. The status is the reproducer's, 1, and its KTAP lines are all there.
  @Test func exitMarkerWithoutANumberIsTheTypedScript() {
    let console = """
      harness: shell (exit to power off)
      dmesg -n 1; echo; /repro; echo harness-repro-exit=
      / # dmesg -n 1; echo; /repro; echo harness-repro-exit=$?

      KTAP version 1
      1..2
      ok 1 space-create s2 first=0xfbc5d last=0xfb936 callback=nvgrace
      [    3.1] harness_shim: a kernel line
      not ok 2 space-register s2
      # Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0
      harness-repro-exit=1
      / # echo harness-shell-done-A2560A63
      """
    let (status, ktap) = ReproducerRun.parse(console: console)
    #expect(status == 1)
    #expect(ktap.first == "KTAP version 1")
    #expect(ktap.contains("not ok 2 space-register s2"))
    #expect(!ktap.contains { $0.hasPrefix("[") })
    #expect(ReproducerRun.parse(console: "dmesg -n 1; echo; /repro; echo harness-repro-exit=\n").status == nil)
  }
}
