import Foundation
import Reference
import Synchronization
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
      hold(.milliseconds(200))
    }
    try #require(
      qemu > 0,
      "no QEMU seen; harness running: \(p.isRunning), output: \((try? String(contentsOfFile: root + "/out", encoding: .utf8)) ?? "")")
    hold(.seconds(3))
    kill(qemu, SIGSTOP)
    hold(.seconds(20))
    kill(qemu, SIGCONT)
    p.waitUntilExit()
    let out = try String(contentsOfFile: root + "/out", encoding: .utf8)
    #expect(p.terminationStatus == calm.status, "\(out)")
    #expect(Self.verdictLines(out) == Self.verdictLines(calm.out), "\(out)")
    #expect(!out.contains("guest-failure:hang"), "\(out)")
  }

  /// QEMU SIGKILLed four times at seeded random moments of a campaign once its guest has booted
  /// (during sequences, resets, restores): every seed still gets the verdict an
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
      // Each kill waits for a guest that has booted (its /init wrote to the console): on a
      // loaded host a boot may outlast the whole random delay, and guests killed in three boots
      // in a row are a host that cannot boot (exit 3). Kills during a boot are the next test's.
      let pid = qemuPID(childOf: p.processIdentifier)
      guard pid > 0, Self.hasBooted(qemu: pid) else {
        hold(.milliseconds(100))
        continue
      }
      // A second at least: /init starts the agent, whose hello the harness then reads.
      hold(.milliseconds(1000 + Int(x % 3000)))
      if qemuPID(childOf: p.processIdentifier) == pid {
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

  /// Whether QEMU `pid`'s guest has booted: its console log (named on QEMU's command line)
  /// shows /init's first line.
  static func hasBooted(qemu pid: Int32) -> Bool {
    guard let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
    let args = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    guard let serial = args.first(where: { $0.hasPrefix("file:") && $0.hasSuffix("/console.log") }),
      let text = try? String(contentsOfFile: String(serial.dropFirst(5)), encoding: .utf8)
    else { return false }
    return text.contains("harness: init")
  }

  /// An undisturbed campaign's status and output, run once per argument list (the suite's
  /// tests compare several disturbed runs with the same undisturbed one).
  private static let calmRuns = Mutex<[[String]: (status: Int32, out: String)]>([:])

  static func calm(_ args: [String], guest: GuestArtifacts, root: String) throws -> (status: Int32, out: String) {
    if let done = calmRuns.withLock({ $0[args] }) { return done }
    let r = try runHarness(args + ["--reports", root + "/calm"], environment: ["HARNESS_GUEST": guest.directory])
    // Whatever the undisturbed run finds (new verdicts too), the disturbed one must find as well.
    #expect(r.status <= 1, "\(r.out)\n\(r.err)")
    calmRuns.withLock { $0[args] = (r.status, r.out) }
    return (r.status, r.out)
  }

  /// Runs `args` with `HARNESS_FAULT=faults` and checks it against the undisturbed run: the same
  /// exit status, every seed the same verdict line or a host fault, no new kernel verdict, each
  /// planned fault announced. Returns the disturbed run's standard output.
  @discardableResult
  static func disturbed(_ args: [String], faults: String, announced: Int) async throws -> String {
    let guest = try await GuestFixture.artifacts()
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("harness-faults-\(UUID())").path
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    let calm = try calm(args, guest: guest, root: root)
    let run = try runHarness(
      args + ["--reports", root + "/disturbed"], environment: ["HARNESS_GUEST": guest.directory, "HARNESS_FAULT": faults])
    let injected = run.err.split(separator: "\n").filter { $0.hasPrefix("harness: HARNESS_FAULT ") }
    #expect(injected.count == announced, "\(run.err)")
    #expect(run.status == calm.status, "\(run.out)\n\(run.err)")
    let calmLines = verdictLines(calm.out)
    let lines = verdictLines(run.out)
    #expect(lines.count == calmLines.count, "\(run.out)")
    for (a, b) in zip(lines, calmLines) where a != b {
      #expect(a.contains("host fault"), "\(a) against an undisturbed run's \(b)")
    }
    // The count of new verdicts alone: a seed that is a host fault in the disturbed run is no
    // known verdict there, so the known counts may differ.
    func newVerdicts(_ out: String) -> String? {
      guard let line = out.split(separator: "\n").first(where: { $0.hasPrefix("sequences ") }),
        let r = line.range(of: "new verdicts ")
      else { return nil }
      return String(line[r.upperBound...].prefix { $0 != "," })
    }
    #expect(newVerdicts(run.out) != nil && newVerdicts(run.out) == newVerdicts(calm.out), "\(run.out)")
    return run.out
  }

  /// QEMU SIGKILLed right after a snapshot restore (the first op after it meets a dead guest),
  /// then the guest that replaces it killed while it boots, and the next one too: the
  /// campaign goes on, the seed that lost its guest runs again, every verdict is the
  /// undisturbed run's.
  @Test func qemuKilledAfterARestoreAndWhileItsReplacementBoots() async throws {
    let args = ["fuzz", "--seed", "1", "--count", "40", "--world", "mf", "--verbose", "--jobs", "1", "--minimize-budget", "0", "--reset", "snapshot"]
    let out = try await Self.disturbed(args, faults: "kill-qemu-after-restore@3,kill-qemu-booting@2,kill-qemu-booting@3", announced: 3)
    // The first guest, the two killed while booting, the one that ran on (a loaded host may
    // need more boots, never fewer).
    let boots = out.split(separator: "\n").first { $0.hasPrefix("mf: ") && $0.contains(" boots, ") }
      .flatMap { Int($0.dropFirst(4).prefix { $0.isNumber }) }
    #expect((boots ?? 0) >= 4, "\(out)")
    #expect(out.contains(", 1 guests lost and replaced"), "\(out)")
  }

  /// The control channel garbles a line each way: an op line the agent gets cut short with
  /// control bytes (it answers `error malformed…`), an answer the harness cannot parse. Each
  /// is a protocol fault of the host: the guest is replaced and the sequence runs again.
  @Test func garbledLinesOnTheControlChannelAreHostFaults() async throws {
    let args = ["fuzz", "--seed", "1", "--count", "40", "--world", "mf", "--verbose", "--jobs", "1", "--minimize-budget", "0"]
    let out = try await Self.disturbed(args, faults: "corrupt-op@50,corrupt-reply@400", announced: 2)
    #expect(out.contains(", 2 guests lost and replaced"), "\(out)")
  }

  /// The agent killed in the guest (`die`: /init reports it and powers off) while the kernel
  /// printed nothing: a lost guest, not a kernel verdict. Killed at every run of seed 4's
  /// tenth op, seed 4 is reported as a host fault that names the death after three runs; the
  /// kill at the 700th op costs one run of its seed.
  @Test func aKilledAgentIsAHostFault() async throws {
    let args = ["fuzz", "--seed", "1", "--count", "40", "--world", "mf", "--verbose", "--jobs", "1", "--minimize-budget", "0"]
    let out = try await Self.disturbed(args, faults: "kill-agent@4:10,kill-agent@700", announced: 4)
    #expect(out.contains(", 4 guests lost and replaced"), "\(out)")
    let faults = out.split(separator: "\n").filter { $0.contains("host fault") }
    #expect(faults.count == 1 && faults[0].hasPrefix("seed-4: ") && faults[0].contains("agent killed by signal 9"), "\(out)")
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

  /// At the op: a garbled op line (the agent answers `error malformed…`) and a garbled answer
  /// are protocol faults (the guest is lost); the agent's death with nothing from the kernel
  /// is a lost guest whose reason names it.
  @Test func garbledLinesAndADeadAgentLoseTheGuest() async throws {
    let a = try await GuestFixture.artifacts()
    let p = ProcessName("p1")!
    for line in [FaultInjection.garbled("spawn p1"), "echo " + FaultInjection.garbled("= 812")] {
      try await GuestSession.with(try GuestWorld.named("mf"), artifacts: a) { g in
        let observed = g.apply(.spawn(p), sendingInstead: line)
        #expect(observed.contains { if case .guestFailure("agent", _) = $0 { true } else { false } }, "\(observed)")
        #expect(g.isLost, "\(line): \(observed)")
        #expect(g.hostFault?.hasPrefix("protocol fault") == true, "\(String(describing: g.hostFault))")
      }
    }
    try await GuestSession.with(try GuestWorld.named("mf"), artifacts: a) { g in
      let observed = g.apply(.spawn(p), sendingInstead: "die")
      #expect(observed.contains { if case .guestFailure("exit", _) = $0 { true } else { false } }, "\(observed)")
      #expect(g.isLost, "\(observed)\n\(g.console.tail(10))")
      #expect(g.lossReason.contains("agent killed by signal 9"), "\(g.lossReason)")
    }
  }

  /// A kernel crash on the console keeps its verdict when QEMU goes away after it (the crash
  /// written to the console as the kernel would, with QEMU paused, then QEMU killed): the
  /// evidence is the kernel's, the guest is not "lost".
  @Test func aKernelCrashBeforeQEMUDiesIsNoHostFault() async throws {
    let a = try await GuestFixture.artifacts()
    try await GuestSession.with(try GuestWorld.named("mf"), artifacts: a) { g in
      g.opTimeout = .seconds(6)
      _ = g.hmp("stop")
      let console = g.run.consolePath
      let written = DispatchSemaphore(value: 0)
      Thread.detachNewThread {
        usleep(300_000)
        let h = FileHandle(forWritingAtPath: console)
        _ = try? h?.seekToEnd()
        h?.write(Data("[   12.345678] BUG: kernel NULL pointer dereference, address: 0000000000000008\r\n[   12.345679] Oops: 0002 [#1] SMP NOPTI\r\n".utf8))
        try? h?.close()
        written.signal()
      }
      let observed = g.apply(.spawn(ProcessName("p1")!), sendingInstead: "# unanswered")
      written.wait()
      kill(g.qemuPID, SIGKILL)
      let start = ContinuousClock.now
      while GuestSession.processRunning(g.qemuPID), ContinuousClock.now - start < .seconds(10) { usleep(10_000) }
      #expect(!GuestSession.processRunning(g.qemuPID))
      #expect(observed.contains { if case .guestFailure("bug", _) = $0 { true } else { false } }, "\(observed)")
      #expect(!g.isLost, "a kernel crash on the console is the kernel's evidence, whatever happens to QEMU after it")
    }
  }
}

/// `HARNESS_FAULT`'s syntax and the console's account of the agent's death (no guest needed).
struct FaultInjectionTests {
  @Test func parsesKindsAndRefusesTheRest() throws {
    let plan = try FaultInjection.parse("kill-agent@3,corrupt-op@1,corrupt-reply@7:2")
    #expect(plan.map(\.kind) == [.killAgent, .corruptOp, .corruptReply])
    #expect(plan.map(\.at) == [.event(3), .event(1), .seedOp(seed: 7, op: 2)])
    for bad in [
      "kill-agent", "kill-agent@0", "kill-agent@x", "explode@1", "kill-agent@99999999999999999999", "kill-qemu-booting@1:2",
      "kill-agent@1:0", "kill-agent@:3",
    ] {
      #expect {
        try FaultInjection.parse(bad)
      } throws: { e in
        (e as? HarnessError).map { $0.status == .usage && $0.message.contains("KIND@N") } ?? false
      }
    }
  }

  @Test func anAgentKilledBySIGBUSIsTheKernelsDoing() {
    let sigbus = GuestSession.agentDeath(in: "[  3.1] x\r\nharness: agent killed by signal 7\r\n")
    #expect(sigbus?.byKernel == true)
    let sigkill = GuestSession.agentDeath(in: "harness: agent killed by signal 9\r\n")
    #expect(sigkill?.byKernel == false && sigkill?.line == "harness: agent killed by signal 9")
    #expect(GuestSession.agentDeath(in: "harness: agent exited with status 1\n")?.byKernel == false)
    #expect(GuestSession.agentDeath(in: "harness: init 7.3.4 up 1.2 s\n") == nil)
  }
}
