import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// Shared guest build for the guest suites (built once per test run, cached across runs).
enum GuestFixture {
  /// QEMU is installed, or CI demands the guest suites (`HARNESS_REQUIRE_GUEST=1`): then a
  /// missing QEMU fails the suites instead of skipping them.
  static let enabled: Bool =
    HostTools.find("qemu-system-x86_64") != nil
    || ProcessInfo.processInfo.environment["HARNESS_REQUIRE_GUEST"] == "1"

  private static let build = Task { try await GuestBuild.build() }

  static func artifacts() async throws -> GuestArtifacts { try await build.value }

  /// Runs `ops` in a fresh `mf` guest; returns the observations and the reported world.
  static func run(_ ops: [Op], world: String = "mf") async throws -> (observed: [[Observation]], world: World, facts: [String]) {
    let a = try await artifacts()
    return try await GuestSession.with(try GuestWorld.named(world), artifacts: a) { g in
      (ops.map { g.apply($0) }, g.world, g.facts)
    }
  }

  static let ledger = try! Ledger.load(Paths.root + "/Corpora/findings")

  /// The first *new* divergence of the guest's observations from the model's predictions (one
  /// the findings ledger's deviations explain is not new: `swift test` fails only on new ones).
  static func divergence(_ ops: [Op], observed: [[Observation]], world: World) -> String? {
    let predicted = Machine.run(ops, in: world)
    guard let d = Differ.firstDivergence(ops: ops, expected: predicted, observed: observed) else { return nil }
    if ledger.explain(ops: ops, observed: observed, world: world).isExplained { return nil }
    let s = OpSequence(world: world.name, ops: ops)
    return ReportWriter.describe(SequenceResult(sequence: s, observed: observed, verdict: .divergence(d)))
  }
}

@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(30)))
struct GuestTests {
  static let p1 = ProcessName("p1")!
  static let p2 = ProcessName("p2")!
  static let s1 = SpaceName("s1")!
  static let base: UInt64 = 0x1000_0000_0000

  @Test func bootsAndReportsItsWorld() async throws {
    let (_, world, facts) = try await GuestFixture.run([])
    #expect(facts.contains { $0.hasPrefix("fact kernel release=7.") }, "\(facts)")
    #expect(world.cpu.vendor == "GenuineIntel")
    let mem = try #require(world.deviceMemory, "no device memory reported: \(facts)")
    #expect(mem.pages == 0x4000)  // 64 MiB
    // C2.2: the device memory lies in a 128 MiB section without RAM.
    #expect(world.isInjectable(mem.firstPFN) && world.isInjectable(mem.firstPFN + mem.pages - 1))
    #expect(!world.isInjectable(0x100))
  }

  /// Register, map in two processes, trigger through `path`: the current process (if any) gets
  /// AR, the early-kill one AO, and the event says recovered — as the model predicts.
  @Test(arguments: ["sysfs", "shim", "queue", "mce", "mce-ar"])
  func triggerPathDeliversSignals(path: String) async throws {
    let (p1, p2, s1) = (Self.p1, Self.p2, Self.s1)
    let t1 = ThreadRef(p1, 0)
    let pfnOffset: UInt64 = 3
    var ops: [Op] = [
      .spawn(p1), .sigbus(p1, .handler), .mmap(p1, addr: Self.base, pages: 8, region: 2, pgoff: 0),
      .spawn(p2), .sigbus(p2, .handler), .mceKill(ThreadRef(p2, 0), arg2: 1, arg3: 1),
      .mmap(p2, addr: Self.base + 0x10_0000, pages: 8, region: 2, pgoff: 0),
    ]
    // The PFN is known only once the guest reports its device memory; the built-in world says
    // where QEMU puts it, and the test checks that the report agrees.
    let pfn = World.mf.deviceMemory!.firstPFN + pfnOffset
    ops += [.spaceCreate(s1, first: pfn - pfnOffset, last: pfn - pfnOffset + 0x3fff, callback: .nvgrace), .spaceRegister(s1)]
    switch path {
    case "sysfs": ops.append(.injectSysfs(t1, pfn: pfn))
    case "shim": ops.append(.injectShim(t1, pfn: pfn, flags: MFFlags.softwareSimulated))
    case "queue": ops.append(.injectQueue(pfn: pfn, flags: 0))
    case "mce-ar": ops.append(.injectMCEAR(t1, pfn: pfn))
    default: ops.append(.injectMCE(pfn: pfn))
    }
    let (observed, world, _) = try await GuestFixture.run(ops)
    #expect(world.deviceMemory == World.mf.deviceMemory)
    let last = try #require(observed.last)
    // Whatever the contract says, the trigger reached memory_failure() and a process heard it.
    #expect(last.contains(.memoryFailure(pfn: pfn, type: mfMessagePFNMap, result: .recovered)), "\(last)")
    #expect(last.contains { if case .signal(_, Signal.bus, _, _, 12) = $0 { true } else { false } }, "\(last)")
    if let d = GuestFixture.divergence(ops, observed: observed, world: world) {
      Issue.record("kernel diverges from the contract on the \(path) path:\n\(d)")
    }
  }

  /// An unregistered PFN: -EBUSY and an "ignored" event (C2.3), in the guest.
  @Test func unregisteredPFNIsIgnored() async throws {
    let pfn = World.mf.deviceMemory!.firstPFN + 7
    let ops: [Op] = [.spawn(Self.p1), .injectShim(ThreadRef(Self.p1, 0), pfn: pfn, flags: 0x20)]
    let (observed, world, _) = try await GuestFixture.run(ops)
    #expect(observed.last == [.result(.error(.busy)), .memoryFailure(pfn: pfn, type: 20, result: .ignored)])
    #expect(GuestFixture.divergence(ops, observed: observed, world: world) == nil)
  }

  /// A fatal machine check panics the guest: a guest-failure verdict with the console line.
  @Test func panicIsRecordedAsGuestFailure() async throws {
    let a = try await GuestFixture.artifacts()
    let (before, after, console) = try await GuestSession.with(try GuestWorld.named("mf"), artifacts: a) { g in
      let before = g.apply(.spawn(Self.p1))
      // Uncorrected, processor context corrupt, no restart IP: the kernel must panic.
      g.hmp("mce 0 9 0xb200000000000000 0x4 0 0")
      let after = g.apply(.spawn(Self.p2))
      return (before, after, g.console.text)
    }
    #expect(before.first.map { if case .result(.number) = $0 { true } else { false } } == true, "\(before)")
    let failure = try #require(after.last)
    guard case .guestFailure(let kind, let detail) = failure else {
      Issue.record("no guest failure after a fatal machine check: \(after)")
      return
    }
    #expect(kind == "panic", "\(failure)")
    #expect(detail.contains("Kernel panic"), "\(detail)")
    #expect(console.contains("Kernel panic"))
  }

  /// QEMU killed under a session: the next op is a guest failure `exit`, and the snapshot cannot
  /// be restored (a campaign then reboots).
  @Test func qemuKilledIsRecordedAsGuestFailure() async throws {
    let a = try await GuestFixture.artifacts()
    let (after, restored) = try await GuestSession.with(try GuestWorld.named("mf"), artifacts: a) { g in
      #expect(g.takeSnapshot())
      _ = g.apply(.spawn(Self.p1))
      kill(g.qemuPID, SIGKILL)
      let after = g.apply(.spawn(Self.p2))
      return (after, g.restoreSnapshot())
    }
    #expect(after.contains { if case .guestFailure("exit", _) = $0 { true } else { false } }, "\(after)")
    #expect(!restored)
  }

  /// A kernel crash on the console ends an op the agent does not answer within about a second
  /// (GuestSession.crashGrace), not at the op deadline: the op here is a comment line, which
  /// the agent never answers, and the crash report is appended to the console log as the
  /// serial port would write it. Without the report the same op runs into the deadline.
  @Test func consoleCrashEndsTheOpAtOnce() async throws {
    let a = try await GuestFixture.artifacts()
    let (crashed, crashTime, silent, silentTime, restored) = try await GuestSession.with(
      try GuestWorld.named("mf"), artifacts: a
    ) { g in
      #expect(g.takeSnapshot())
      g.opTimeout = .seconds(6)
      let clock = ContinuousClock()
      let console = g.run.consolePath
      // QEMU writes the console at its own offset: paused (HMP `stop`), it cannot overwrite the
      // report appended here before the harness has read it. The paused guest leaves the op
      // unanswered, as a crashed one would.
      _ = g.hmp("stop")
      // On a thread of its own: the op below blocks a thread of the cooperative pool, and other
      // suites' guests may block the rest, so a task could start only after the deadline.
      let written = DispatchSemaphore(value: 0)
      Thread.detachNewThread {
        usleep(300_000)
        let h = FileHandle(forWritingAtPath: console)
        _ = try? h?.seekToEnd()
        h?.write(Data("[   12.345678] BUG: kernel NULL pointer dereference, address: 0000000000000008\r\n[   12.345679] Oops: 0002 [#1] SMP NOPTI\r\n".utf8))
        try? h?.close()
        written.signal()
      }
      var crashed: [Observation] = []
      let crashTime = clock.measure { crashed = g.apply(.spawn(Self.p1), sendingInstead: "# unanswered") }
      written.wait()
      _ = g.hmp("cont")
      let restored = g.restoreSnapshot()
      var silent: [Observation] = []
      let silentTime = clock.measure { silent = g.apply(.spawn(Self.p1), sendingInstead: "# unanswered") }
      return (crashed, crashTime, silent, silentTime, restored)
    }
    let failure = crashed.last.flatMap { if case .guestFailure(let kind, let detail) = $0 { (kind, detail) } else { nil } }
    #expect(failure?.0 == "bug" && failure?.1.contains("NULL pointer dereference") == true, "\(crashed)")
    #expect(crashTime < .milliseconds(2500), "the op ended \(crashTime) after it was sent")
    #expect(restored)
    #expect(silent.contains { if case .guestFailure("hang", _) = $0 { true } else { false } }, "\(silent)")
    #expect(silentTime >= .seconds(6))
  }

  /// The shim loads only in the harness's own machine: a q35 guest with a hypervisor but no
  /// ivshmem device (any cloud VM) gets no /dev/harness_shim and the refusal on its console;
  /// the mf world's machine, the same but for its ivshmem device, loads it.
  @Test func shimRefusesAMachineWithoutIvshmem() async throws {
    let a = try await GuestFixture.artifacts()
    let mf = try GuestWorld.named("mf")
    let bare = GuestWorld(name: "bare", model: mf.model, cpu: mf.cpu, deviceMemoryBytes: nil, kernelArguments: mf.kernelArguments)
    // The console echoes the typed line: the answer is put together so that the line itself
    // contains neither `shim-state-loaded` nor `shim-state-absent`.
    let script = "echo shim-state-$([ -e /dev/harness_shim ] && echo loaded || echo absent)"
    let refused = try await GuestShell.run(world: bare, artifacts: a, files: [], script: script, timeout: .seconds(90))
    #expect(refused.finished, "\(refused.console.suffix(2000))")
    #expect(refused.console.contains("shim-state-absent"), "\(refused.console.suffix(2000))")
    #expect(refused.console.contains("refusing to load"), "\(refused.console.suffix(2000))")
    let loaded = try await GuestShell.run(world: mf, artifacts: a, files: [], script: script, timeout: .seconds(90))
    #expect(loaded.console.contains("shim-state-loaded"), "\(loaded.console.suffix(2000))")
  }

  /// A corrupted line on the control channel (here the agent's `echo` puts one there as the
  /// answer to an op) is an `agent` guest failure quoting the line, in the op's observations and
  /// the verdict, and a protocol fault: the guest is lost (the campaign runs the sequence again
  /// on another), the next op gets the same failure.
  @Test func corruptedReplyIsAnAgentFailure() async throws {
    let a = try await GuestFixture.artifacts()
    let (corrupted, next, lost) = try await GuestSession.with(try GuestWorld.named("mf"), artifacts: a) { g in
      (g.apply(.spawn(Self.p1), sendingInstead: "echo = ~~ \u{1}not a reply"), g.apply(.spawn(Self.p2)), g.isLost)
    }
    let failure = corrupted.first { if case .guestFailure("agent", _) = $0 { true } else { false } }
    guard case .guestFailure(_, let detail) = failure else {
      Issue.record("no agent failure for a corrupted line: \(corrupted)")
      return
    }
    #expect(detail.contains("unparsable reply `= ~~ \u{1}not a reply`"), "\(detail)")
    let d = try #require(Differ.firstDivergence(
      ops: [.spawn(Self.p1)], expected: [[.result(.symbol(Symbol("p1")))]], observed: [corrupted]))
    #expect(d.signature.kind == "guest-failure:agent", "\(d.signature)")
    #expect(lost)
    #expect(next.count == 1 && next.first.map { if case .guestFailure("agent", let d) = $0 { d.contains("protocol fault") } else { false } } == true, "\(next)")
  }

  /// `harness vm shell` becomes QEMU (exec); SIGTERM, or SIGHUP from a closed terminal, must
  /// end it. It used to exec from a concurrency worker thread whose signal mask blocked both, so
  /// QEMU kept running after the terminal was gone.
  @Test func shellEndsOnSIGTERM() async throws {
    _ = try await GuestFixture.artifacts()
    let p = Process()
    p.executableURL = URL(fileURLWithPath: Paths.harness)
    p.arguments = ["vm", "shell"]
    p.currentDirectoryURL = URL(fileURLWithPath: Paths.root)
    p.standardInput = FileHandle.nullDevice
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
    let exe = "/proc/\(p.processIdentifier)/exe"
    let start = ContinuousClock.now
    while ContinuousClock.now - start < .seconds(60),
      (try? FileManager.default.destinationOfSymbolicLink(atPath: exe))?.contains("qemu-system") != true
    {
      hold(.milliseconds(20))
    }
    try #require(p.isRunning, "vm shell ended before QEMU ran (status \(p.terminationStatus))")
    hold(.milliseconds(300))
    kill(p.processIdentifier, SIGTERM)
    let sent = ContinuousClock.now
    while p.isRunning, ContinuousClock.now - sent < .seconds(10) { hold(.milliseconds(20)) }
    #expect(!p.isRunning, "QEMU of vm shell still runs 10 s after SIGTERM")
  }

  /// A guest that stops answering (its CPU stopped from the monitor) is a hang verdict, bounded
  /// by the op deadline.
  @Test func unansweredOpIsAHang() async throws {
    let a = try await GuestFixture.artifacts()
    let (after, elapsed) = try await GuestSession.with(try GuestWorld.named("mf"), artifacts: a) { g in
      g.opTimeout = .seconds(2)
      g.hmp("stop")
      let start = ContinuousClock.now
      let after = g.apply(.spawn(Self.p1))
      return (after, ContinuousClock.now - start)
    }
    #expect(after.contains { if case .guestFailure("hang", _) = $0 { true } else { false } }, "\(after)")
    #expect(elapsed < .seconds(10))
  }

  /// A kernel that loops in an op without sleeping (finding 0005: a freed range left in the
  /// PFN-space tree, registering twice spins in the tree walk) is a hang found by the agent's
  /// watcher, long before the op deadline, with the looping thread's kernel stack on the console.
  @Test func threadSpinningInTheKernelIsAHangWithItsStack() async throws {
    let a = try await GuestFixture.artifacts()
    let s = try Corpus.load(Paths.root + "/Corpora/findings/0005-inverted-range-unregister-uaf-hang/sequence.seq")
    let (observed, console) = try await GuestSession.with(try GuestWorld.named(s.world), artifacts: a) { g in
      g.opTimeout = .seconds(60)  // only the watcher can end the op
      return (s.ops.map { g.apply($0) }, g.console.text)
    }
    let last = try #require(observed.last)
    #expect(
      last.contains { if case .guestFailure("hang", let detail) = $0 { detail.contains("kept running in the kernel") } else { false } },
      "\(last)")
    let stack = console.split(whereSeparator: \.isNewline).filter { $0.contains("harness: stuck") }
    #expect(stack.first?.contains("in the kernel, stack:") == true, "\(stack)")
    #expect(stack.contains { $0.contains("register_pfn_address_space") }, "\(stack)")
    #expect(stack.last?.hasSuffix("harness: stuck end") == true, "\(stack)")
  }

  /// `mf` with more kernel arguments or QEMU devices: guests that fail to come up.
  static func mf(appending arguments: [String] = [], devices: [String] = []) throws -> GuestWorld {
    let w = try GuestWorld.named("mf")
    return GuestWorld(
      name: w.name, model: w.model, cpu: w.cpu, deviceMemoryBytes: w.deviceMemoryBytes,
      kernelArguments: w.kernelArguments + arguments, devices: w.devices + devices)
  }

  /// The boot failure `with` throws for `world`, and how long it took to say so.
  static func bootFailure(_ world: GuestWorld) async throws -> (message: String, elapsed: Duration) {
    let a = try await GuestFixture.artifacts()
    let start = ContinuousClock.now
    do {
      try await GuestSession.with(world, artifacts: a, bootTimeout: .seconds(30)) { _ in }
    } catch let e as HarnessError {
      return (e.message, ContinuousClock.now - start)
    }
    Issue.record("the guest came up")
    return ("", ContinuousClock.now - start)
  }

  /// QEMU that cannot start (here: a device it does not know) is a boot failure quoting QEMU's
  /// own complaint, at once rather than after the boot deadline.
  @Test func qemuThatCannotStartSaysWhy() async throws {
    let (message, elapsed) = try await Self.bootFailure(try Self.mf(devices: ["-device", "harness-no-such-device"]))
    #expect(message.contains("QEMU exited"), "\(message)")
    #expect(message.contains("harness-no-such-device"), "\(message)")
    #expect(elapsed < .seconds(30), "waited for the boot deadline: \(elapsed)")
  }

  /// A kernel that panics while booting (here: the init it was told to run does not exist) is a
  /// boot failure with the panic from the console, at once rather than after the boot deadline.
  @Test func kernelPanicAtBootSaysWhy() async throws {
    let (message, elapsed) = try await Self.bootFailure(
      try Self.mf(appending: ["rdinit=/harness-no-such-init", "init=/harness-no-such-init"]))
    #expect(message.contains("QEMU exited"), "\(message)")
    #expect(message.contains("Kernel panic"), "\(message)")
    #expect(elapsed < .seconds(30), "waited for the boot deadline: \(elapsed)")
  }

  /// A campaign goes on after QEMU died between sequences: the restore fails (or, when the
  /// guest had already started the next sequence, that sequence is lost with it), the guest is
  /// rebooted, and every sequence still gets its verdict, none of them the dead guest.
  @Test func campaignRebootsAfterQEMUDied() async throws {
    let a = try await GuestFixture.artifacts()
    var seen: [UInt64] = []
    let qemu = Locked<[Int32]>([])
    let resets = try await GuestRun.campaign(
      try GuestWorld.named("mf"), artifacts: a, seeds: [1, 2, 3], length: 5, reset: .snapshot,
      onBoot: { g in qemu.update { $0.append(g.qemuPID) } }
    ) { seed, _, result in
      seen.append(seed)
      #expect(result.verdict.signature?.kind.hasPrefix("guest-failure") != true, "\(result.verdict)")
      // This campaign's QEMU only: other suites run guests at the same time.
      if seed == 1, let pid = qemu.value.last { kill(pid, SIGKILL) }
    }
    #expect(seen == [1, 2, 3])
    #expect(resets.boots == 2 && resets.fallbacks + resets.lost == 1, "\(resets)")
  }
}

/// Every regression sequence of a world the guest runs, replayed in a fresh guest: its
/// hand-derived expectations against the kernel. A divergence the findings ledger's deviations
/// explain passes (a recorded kernel finding); a new one fails.
@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(30)))
struct GuestCorpusTests {
  /// Every regression file whose world the guest runs (its `world` header line).
  static var files: [String] {
    Paths.regressionFiles.filter { f in
      guard let text = try? String(contentsOfFile: Paths.root + "/" + f, encoding: .utf8),
        let header = text.split(separator: "\n").first(where: { $0.hasPrefix("world ") })
      else { return false }
      return GuestWorld.all.contains { "world " + $0.name == header }
    }
  }

  @Test(arguments: files)
  func replayInGuest(file: String) async throws {
    let s = try Corpus.load(Paths.root + "/" + file)
    let (observed, world, _) = try await GuestFixture.run(s.ops, world: s.world)
    guard let d = Differ.firstDivergence(ops: s.ops, expected: s.steps.map(\.expected), observed: observed)
    else { return }
    // A recorded finding: the ledger's deviations predict every observation of the file.
    let e = GuestFixture.ledger.explain(ops: s.ops, observed: observed, world: world)
    if e.isExplained {
      #expect(!GuestFixture.ledger.entries(explaining: e).isEmpty)
      return
    }
    let r = SequenceResult(sequence: s, observed: observed, verdict: .divergence(e.unexplained ?? d))
    Issue.record("\(file): new divergence in the guest:\n\(ReportWriter.describe(r))")
  }
}

/// Every kernel finding of the ledger still shows in the guest: its minimized sequence, replayed
/// in a fresh guest of its world, diverges, and the ledger's deviations explain the whole run
/// with the entry's own. This is
/// also what keeps late console lines honest: finding 0003's WARN comes from the MCE notifier
/// work after `memory_failure()` returned, and must be pinned on its `inject-mce`, not lost or
/// put on a later op (the console marker after asynchronous triggers).
@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(10)))
struct GuestFindingsTests {
  static var entries: [String] {
    GuestFixture.ledger.entries.filter { $0.status != "model-bug-fixed" }.map(\.id)
  }

  @Test(arguments: entries)
  func findingReproducesInGuest(id: String) async throws {
    let entry = try #require(GuestFixture.ledger.entries.first { $0.id == id })
    let s = try Corpus.load(Paths.root + "/Corpora/findings/\(id)/sequence.seq")
    let (observed, world, _) = try await GuestFixture.run(s.ops, world: s.world)
    let d = try #require(
      Differ.firstDivergence(ops: s.ops, expected: Machine.run(s.ops, in: world), observed: observed),
      "\(id): the kernel now behaves as the contract says (fixed? then the entry's status changes)")
    let e = GuestFixture.ledger.explain(ops: s.ops, observed: observed, world: world)
    #expect(
      entry.explains(e),
      "\(id): diverges as \(d.signature) at step \(d.step + 1); explained: \(e.isExplained), by \(e.deviations), not by \(entry.deviations)")
  }
}
