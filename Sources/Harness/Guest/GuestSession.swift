import Foundation
import Fuzz
import Glibc
import Reference
import Subprocess
import SystemPackage

/// A running guest: QEMU with the shim and the agent, reached through the control port.
///
/// Valid only inside ``GuestSession/with(_:artifacts:_:)``, which tears QEMU down on every exit
/// path (errors, cancellation, Ctrl-C through ``ChildRegistry``).
final class GuestSession {
  let guestWorld: GuestWorld
  /// The world the guest reported at boot (the model is built from it).
  private(set) var world: World
  /// The agent's `fact` lines, as reported.
  private(set) var facts: [String] = []
  /// The libbpf observer's lines of the last op (`bpf …`, without the prefix; PROTOCOL.md,
  /// "Observer lines"), empty when the guest has no observer.
  private(set) var observerLines: [String] = []
  /// Whether the agent loaded its libbpf observer (`fact observer attached=…`): only then are
  /// the kernel's decisions compared (``ObserverCheck``).
  var hasObserver: Bool { facts.contains { $0.hasPrefix("fact observer attached=") } }
  let run: RunDirectory
  let console: ConsoleLog
  private let control: LineChannel
  private let monitor: LineChannel
  /// Set once the guest can no longer answer (panic, hang, QEMU gone): every later op reports it.
  private(set) var fatal: Observation?
  /// QEMU's process id.
  private(set) var qemuPID: Int32 = 0
  /// QEMU's resident set size in KiB (from /proc), 0 if unknown.
  var qemuRSSKiB: Int {
    guard let status = try? String(contentsOfFile: "/proc/\(qemuPID)/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
      return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
    return 0
  }
  /// How long one op may take before it is a hang.
  var opTimeout: Duration = .seconds(15)
  /// How long an op may go on without an answer once the console shows a kernel crash (BUG,
  /// oops, panic): the rest of the report is printed by then, and an agent that can still
  /// answer has answered. A crashed kernel is not waited on for ``opTimeout``.
  var crashGrace: Duration = .seconds(1)
  /// How long the agent's teardown between sequences (``cleanReset()``) may take.
  var resetTimeout: Duration = .seconds(2)
  /// How long to let the console catch up after an asynchronous memory failure when the
  /// console marker cannot be used (``syncConsole()``).
  var settleMicroseconds: UInt32 = 30_000
  /// The seed of the campaign's sequence being run and the number of its next op (from 1), for
  /// ``FaultInjection``'s `KIND@SEED:K`; set by the campaign, advanced by ``apply(_:)``.
  var sequenceOp: (seed: UInt64, op: Int)?
  /// When set, every ``apply(_:)`` adds its wall time under the op's keyword (`bench guest`).
  var profile: OpProfile?
  /// A coverage-flavour guest's counts go here: after the boot, before every snapshot restore
  /// and at the end (``CoverageCollector``).
  private(set) var coverage: CoverageCollector?
  private var lastCoverage = ContinuousClock.now

  private init(world: GuestWorld, run: RunDirectory, control: LineChannel, monitor: LineChannel) {
    self.guestWorld = world
    self.world = world.model
    self.run = run
    self.console = ConsoleLog(path: run.consolePath)
    self.control = control
    self.monitor = monitor
  }

  /// Boots `world` from `artifacts`, runs `body` with the session, tears everything down.
  static func with<R: Sendable>(
    _ world: GuestWorld, artifacts: GuestArtifacts, bootTimeout: Duration = .seconds(60),
    _ body: (GuestSession) async throws -> R
  ) async throws -> R {
    try FaultInjection.check()
    let run = try RunDirectory.create()
    defer { run.remove() }
    let qemu = try HostTools.qemu()
    try await HostTools.createSnapshotDrive(at: run.snapshotPath)
    let aio = await HostTools.snapshotAIO(probing: run.snapshotPath)
    var options = PlatformOptions()
    options.createSession = true  // QEMU gets its own process group: Ctrl-C goes to us only.
    options.teardownSequence = [.send(signal: .terminate, allowedDurationToNextStep: .milliseconds(500))]
    // Created by RunDirectory.create: opened, never created or followed, here.
    let errFD = try FileDescriptor.open(FilePath(run.qemuErrorPath), .writeOnly, options: [.noFollow, .closeOnExec])
    let config = Configuration(
      executable: .path(FilePath(qemu)),
      arguments: Arguments(world.qemuArguments(artifacts: artifacts, run: run, snapshotAIO: aio)),
      platformOptions: options)
    let result = try await Subprocess.run(
      config, input: .none, output: .discarded, error: .fileDescriptor(errFD, closeAfterSpawningProcess: true)
    ) { execution -> Result<R, any Error> in
      let pid = execution.processIdentifier.value
      ChildRegistry.add(
        pid: pid,
        files: [run.controlPath, run.monitorPath, run.consolePath, run.qemuErrorPath, run.snapshotPath, run.path])
      defer { ChildRegistry.remove(pid: pid) }
      do {
        let killWhileBooting = FaultInjection.next(.boot) == .killQEMUBooting
        let session = try connect(world, run: run, until: .now + bootTimeout, qemuPID: pid, killWhileBooting: killWhileBooting)
        session.qemuPID = pid
        session.coverage = artifacts.coverage
        session.collectCoverage()
        let r = try await body(session)
        if session.fatal == nil { session.collectCoverage() }
        session.shutDown()
        kill(-pid, SIGKILL)
        return .success(r)
      } catch {
        kill(-pid, SIGKILL)
        return .failure(error)
      }
    }
    return try result.closureResult.get()
  }

  private static func connect(
    _ world: GuestWorld, run: RunDirectory, until deadline: ContinuousClock.Instant, qemuPID: Int32,
    killWhileBooting: Bool = false
  ) throws(HarnessError) -> GuestSession {
    func bootFailure(_ what: String) -> HarnessError {
      let err = (try? String(contentsOfFile: run.qemuErrorPath, encoding: .utf8)) ?? ""
      let console = ConsoleLog(path: run.consolePath).tail(30)
      return HarnessError(
        .environment,
        "the guest did not come up: \(what)\n--- QEMU stderr ---\n\(err)--- console (last lines) ---\n\(console)")
    }
    let control: LineChannel
    let monitor: LineChannel
    // A QEMU that exits early (a panic at boot with panic=-1, a bad option) ends the wait at once.
    let running = { processRunning(qemuPID) }
    do {
      control = try LineChannel(connectingTo: run.controlPath, until: deadline, serverAlive: running)
      monitor = try LineChannel(connectingTo: run.monitorPath, until: deadline, serverAlive: running)
    } catch .closed {
      throw bootFailure("QEMU exited before the harness could connect to it (see its stderr and the console)")
    } catch {
      throw bootFailure("QEMU did not open its sockets (\(error))")
    }
    // QEMU made its sockets with the umask's mode; the directory keeps others out, and so do
    // the sockets themselves from now on.
    PrivateFiles.restrict(run.controlPath)
    PrivateFiles.restrict(run.monitorPath)
    if killWhileBooting {
      // Once the kernel has booted and /init runs (its first console line), before the hello.
      let console = ConsoleLog(path: run.consolePath)
      let start = ContinuousClock.now
      while !console.text.contains("harness: init"), ContinuousClock.now - start < .seconds(20), running() {
        _ = console.readNew()
        usleep(10_000)
      }
      kill(qemuPID, SIGKILL)
      FaultInjection.announce(.killQEMUBooting, "QEMU (pid \(qemuPID)) killed while its guest boots")
    }
    let s = GuestSession(world: world, run: run, control: control, monitor: monitor)
    // The HMP greeting.
    _ = monitor.readText(until: .now + .seconds(2)) { $0.contains("(qemu)") }
    // The agent's hello block: `hello harness-agent 1`, fact lines, `.`.
    var sawHello = false
    while true {
      let line: String
      do { line = try control.readLine(until: deadline) } catch {
        // QEMU closes the channel only when it exits.
        if error == .closed || !running() {
          throw bootFailure("QEMU exited before the agent said hello (see its stderr and the console)")
        }
        throw bootFailure("no hello from the agent (\(error))")
      }
      if line.hasPrefix("hello harness-agent ") {
        guard line == "hello harness-agent 1" else {
          throw HarnessError(.environment, "the guest's agent speaks `\(line)`, the harness speaks protocol 1: rebuild the guest (harness vm build)")
        }
        sawHello = true
        s.facts = []
      } else if sawHello, line == "." {
        break
      } else if sawHello {
        s.facts.append(line)
      }
    }
    s.world = WorldReport.apply(s.facts, to: world.model)
    return s
  }

  /// Whether process `pid` exists and has not exited (a zombie has).
  static func processRunning(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let paren = stat.lastIndex(of: ")")
    else { return false }
    // `PID (comm) S …`: the state follows the command name, which may itself hold parentheses.
    let state = stat[stat.index(after: paren)...].dropFirst().first
    return state != "Z" && state != "X"
  }

  /// Runs one op in the guest and returns its observations (the agent's lines, parsed), plus
  /// any kernel failure the console showed meanwhile.
  func apply(_ op: Op) -> [Observation] {
    if let fatal { return [fatal] }
    defer { sequenceOp?.op += 1 }
    // The fault tests' disturbance of this op, if HARNESS_FAULT plans one (FaultInjection).
    var line: String?
    if let fault = FaultInjection.next(.op, seedOp: sequenceOp.map { ($0.seed, $0.op) }) {
      let text = SequenceFormat.print(op)
      switch fault {
      case .corruptOp: line = FaultInjection.garbled(text)
      case .corruptReply: line = "echo " + FaultInjection.garbled("= " + text)
      default: line = "die"
      }
      FaultInjection.announce(fault, "sent `\(line!.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined())` in place of `\(text)`")
    }
    guard let profile else { return applyUntimed(op, line: line) }
    let start = ContinuousClock.now
    defer { profile.add(op.keyword, ContinuousClock.now - start) }
    return applyUntimed(op, line: line)
  }

  /// Runs `op` as ``apply(_:)`` does but sends `line` in its place: with the agent's `echo`,
  /// any reply line at all (the fault tests).
  func apply(_ op: Op, sendingInstead line: String) -> [Observation] {
    if let fatal { return [fatal] }
    return applyUntimed(op, line: line)
  }

  private func applyUntimed(_ op: Op, line sent: String? = nil) -> [Observation] {
    if case .injectMCE(let pfn) = op, world.isInjectableByMachineCheck(pfn) {
      // The host injects; the agent then waits for the event (VM/agent/PROTOCOL.md).
      // Action optional, uncorrected memory error at pfn << 12 (GUEST.md).
      _ = hmp("mce 0 9 0xbd000000000000c0 5 \(SequenceFormat.hex(pfn << 12)) 0x8c")
    }
    var out: [Observation] = []
    observerLines = []
    let line = sent ?? SequenceFormat.print(op)
    let deadline = ContinuousClock.now + opTimeout
    let opStart = (ContinuousClock.now, qemuCPUTime)
    var stuck = false
    // The console as read while waiting for the answer: a BUG, an oops or a panic there ends
    // the wait after crashGrace (the agent, or the thread running the op, may be dead).
    var seen = ""
    var crashed: ContinuousClock.Instant?
    var protocolFault: String?
    var missedActionRequired = false
    do {
      try control.send(line)
      var errors: [String] = []
      while true {
        let reply: String
        do {
          reply = try control.readLine(until: min(crashed ?? deadline, deadline, .now + .milliseconds(50)))
        } catch .timeout where ContinuousClock.now < min(crashed ?? deadline, deadline) {
          let scannedUpTo = seen.lastIndex(of: "\n").map { seen.distance(from: seen.startIndex, to: $0) } ?? 0
          seen += console.readNew()
          if crashed == nil, let f = ConsoleLog.failure(in: seen.dropFirst(scannedUpTo)), ConsoleLog.crashKinds.contains(f.kind) {
            crashed = .now + crashGrace
          }
          continue
        }
        if reply == "." { break }
        if reply.hasPrefix("stuck ") {
          // The agent's watcher saw a thread of the guest spend a second in the kernel without
          // returning (VM/agent/watch.c): the op will not end. Its kernel stack is on the console.
          stuck = true
          fatal = .guestFailure(
            kind: "hang", detail: "no answer to `\(line)`: a guest thread kept running in the kernel (its stack is on the console)")
          break
        }
        if reply.hasPrefix("error ") {
          errors.append(String(reply.dropFirst(6)))
          // The harness sends well-formed lines only: one the agent calls malformed was
          // garbled on the way (VM/agent/PROTOCOL.md, `error` lines).
          if reply.hasPrefix("error malformed") { protocolFault = protocolFault ?? "the agent got a garbled line (\(reply.prefix(120)))" }
          continue
        }
        if reply.hasPrefix("mce-ar ") {
          // inject-mce-ar: the thread spins in user mode; inject while the CPU runs its loop.
          var answer = "missed \(ActionRequiredMCE.attempts)"
          if case .injectMCEAR(_, let pfn) = op, let loop = ActionRequiredMCE.loop(fromRequest: reply[...]) {
            if let n = ActionRequiredMCE.inject(addr: pfn << 12, loop: loop, hmp: hmp, missed: { actionRequiredMisses[$0, default: 0] += 1 }) {
              answer = "injected \(n)"
              actionRequiredAttempts.append(n)
            } else {
              missedActionRequired = true
            }
          }
          try control.send(answer)
          continue
        }
        if reply.hasPrefix("bpf ") {
          observerLines.append(String(reply.dropFirst(4)))
          continue
        }
        do {
          out.append(try SequenceFormat.parseObservation(reply[...], file: "agent", line: 0))
        } catch {
          errors.append("unparsable reply \(SequenceFormat.quoted(reply)): \(error.message)")
          // The agent writes well-formed lines only: this one was garbled on the way.
          protocolFault = protocolFault ?? "a garbled line came from the agent (\(SequenceFormat.quoted(reply)))"
        }
      }
      if !errors.isEmpty {
        out.append(.guestFailure(kind: "agent", detail: errors.joined(separator: "; ")))
      }
      if missedActionRequired {
        // Never injected blind (a machine check in kernel mode panics): the host's miss.
        fatal = .guestFailure(kind: "agent", detail: "`\(line)`: the thread was never seen in its loop at CPL 3")
        hostFault = "inject-mce-ar: \(ActionRequiredMCE.attempts) stops of the guest never found the thread in its loop at CPL 3"
      }
      if let protocolFault {
        // What the op did is unknown, and so is the state of the guest: the rest of the
        // sequence is no evidence either. A fault of the channel, not of the kernel.
        fatal = .guestFailure(kind: "agent", detail: "protocol fault during `\(line)`: \(protocolFault)")
        hostFault = "\(Self.protocolFaultPrefix) on the control channel: \(protocolFault)"
      }
    } catch .timeout where crashed != nil {
      // Replaced below by the crash the console shows.
      fatal = .guestFailure(kind: "hang", detail: "no answer to `\(line)` after a kernel crash on the console")
    } catch .timeout {
      fatal = .guestFailure(kind: "hang", detail: "no answer to `\(line)` within \(opTimeout)")
      if let stall = hostStall(since: opStart) { hostFault = stall }
    } catch {
      fatal = .guestFailure(kind: "exit", detail: "the guest went away during `\(line)` (\(error))")
    }
    // Kernel failures on the console outrank a hang or an exit they explain. After an
    // asynchronous memory failure the kernel may still be printing when the agent has seen the
    // event record (an MCE's notifier chain goes on after memory_failure() returns, and so may a
    // worker): read the console up to the agent's marker (syncConsole). The synchronous
    // triggers (sysfs, the shim in a process) have printed everything before the writer's call
    // returned: a WARN or an oops prints synchronously on the serial console, in the writer's
    // context.
    var chunk: String
    switch op {
    case _ where stuck:
      chunk = seen.contains("harness: stuck end") ? seen + console.readNew() : seen + readConsole(upTo: "harness: stuck end", within: .seconds(1)).text
    case _ where fatal != nil:
      usleep(300_000)
      chunk = seen + console.readNew()
    case _ where op.kind.spec.isAsynchronous: chunk = seen + syncConsole()
    default: chunk = seen + console.readNew()
    }
    if let f = ConsoleLog.failure(in: chunk) {
      let o = Observation.guestFailure(kind: f.kind, detail: f.line)
      if ConsoleLog.crashKinds.contains(f.kind) { kernelCrashed = true }
      // A protocol fault stays the op's end: what the console shows is kept in the op's
      // observations, and the sequence is run again.
      if protocolFault != nil {
        out.append(o)
      } else if fatal != nil || f.kind == "panic" {
        fatal = o
      } else {
        out.append(o)
      }
    }
    if let fatal { out.append(fatal) }
    return out
  }

  /// Reads the console up to a marker the agent writes to the kernel log (`mark`, after the
  /// agent saw the asynchronous path's work function return: VM/agent/PROTOCOL.md), so that
  /// everything the kernel printed for the op is in the returned text, and nothing of a later
  /// op. Without an answer to `mark`, or when the marker does not show within a second, it
  /// falls back to letting the console settle for ``settleMicroseconds``.
  private func syncConsole() -> String {
    markCounter += 1
    let token = "m\(markCounter)"
    do {
      try control.send("mark \(token)")
      var written = true
      while true {
        let line = try control.readLine(until: .now + .seconds(2))
        if line == "." { break }
        written = false  // `error cannot write /dev/kmsg…`: no marker will come
      }
      if !written {
        usleep(settleMicroseconds)
        return console.readNew()
      }
    } catch {
      usleep(settleMicroseconds)
      return console.readNew()
    }
    let read = readConsole(upTo: "harness: mark \(token)", within: .seconds(1))
    if read.found { return read.text }
    usleep(settleMicroseconds)
    return read.text + console.readNew()
  }

  /// Reads the console until a line ending in `needle` has come or `limit` has passed; returns
  /// what it read and whether the line came.
  private func readConsole(upTo needle: String, within limit: Duration) -> (text: String, found: Bool) {
    var text = ""
    let deadline = ContinuousClock.now + limit
    while true {
      text += console.readNew()
      // The serial console ends lines with CRLF; the terminator keeps m1 apart from m10.
      if text.contains(needle + "\r") || text.contains(needle + "\n") { return (text, true) }
      if ContinuousClock.now >= deadline { return (text, false) }
      usleep(200)
    }
  }

  private var markCounter = 0

  /// Asks the agent to tear down what the last sequence made (`reset`, VM/agent/PROTOCOL.md)
  /// and to check that the guest is back in its boot state. Returns what was not: the agent's
  /// `dirty` lines, a kernel failure the console showed meanwhile, or no answer. Empty: the
  /// next sequence may run without a snapshot restore.
  func cleanReset() -> [String] {
    guard fatal == nil else { return ["the guest failed"] }
    var dirty: [String] = []
    var console = ""
    // A teardown takes milliseconds; one that does not answer in seconds found the kernel
    // stuck (a corrupted PFN-space tree hangs the probe registration: finding 0005). One that
    // oopses (the probe walking a freed node: finding 0002) is given up at once.
    let limit = min(opTimeout, resetTimeout)
    let deadline = ContinuousClock.now + limit
    do {
      try control.send("reset")
      while true {
        let line: String
        do {
          line = try control.readLine(until: min(deadline, .now + .milliseconds(50)))
        } catch .timeout where ContinuousClock.now < deadline {
          console += self.console.readNew()
          if let f = ConsoleLog.failure(in: console) {
            fatal = .guestFailure(kind: f.kind, detail: f.line)
            if ConsoleLog.crashKinds.contains(f.kind) { kernelCrashed = true }
            break
          }
          continue
        }
        if line == "." { break }
        if line.hasPrefix("stuck ") {  // the teardown spins in the kernel (VM/agent/watch.c)
          dirty.append("a guest thread kept running in the kernel (its stack is on the console)")
          fatal = .guestFailure(kind: "hang", detail: "no answer to `reset`: a guest thread kept running in the kernel")
          break
        }
        dirty.append(line.hasPrefix("dirty ") ? String(line.dropFirst(6)) : line)
      }
    } catch {
      dirty.append("no answer to reset (\(error))")
      fatal = .guestFailure(kind: "hang", detail: "no answer to `reset` within \(limit)")
    }
    console += self.console.readNew()
    if let f = ConsoleLog.failure(in: console) {
      dirty.append("console: \(f.line)")
      if ConsoleLog.crashKinds.contains(f.kind) { kernelCrashed = true }
    }
    // Clean resets keep a guest for many sequences: counts are taken now and then, so that a
    // guest that dies later loses at most this much of them.
    if dirty.isEmpty, ContinuousClock.now - lastCoverage > Self.coverageInterval { collectCoverage() }
    return dirty
  }

  /// Sends `command` to the agent and returns its answer's lines before the `.`.
  func exchange(_ command: String, timeout: Duration) throws(ChannelError) -> [String] {
    try control.send(command)
    var lines: [String] = []
    let deadline = ContinuousClock.now + timeout
    while true {
      let line = try control.readLine(until: deadline)
      if line == "." { return lines }
      lines.append(line)
    }
  }

  /// Hands the guest's coverage counts to the collector (which zeroes them in the guest), if
  /// this is a coverage guest that can still answer; returns the counts taken (since the last
  /// collection).
  @discardableResult
  func collectCoverage() -> [String: GCDA]? {
    guard let coverage, fatal == nil else { return nil }
    defer { lastCoverage = .now }
    return coverage.collect(from: self)
  }

  /// Takes the snapshot the guest is reset to (right after boot, agent ready).
  func takeSnapshot() -> Bool {
    // Counts so far are taken first: the snapshot holds zero counters, so a restore never
    // brings back counts that were already added.
    collectCoverage()
    // The device memory is shared (memfd): leave it out of the snapshot (GUEST.md).
    hmp("migrate_set_capability x-ignore-shared on")
    let out = hmp("savevm \(Self.snapshotName)")
    hasSnapshot = !out.lowercased().contains("error")
    return hasSnapshot
  }

  /// Resets the guest to the snapshot; `false` if there is none or the agent does not answer
  /// afterwards (the caller then reboots).
  func restoreSnapshot() -> Bool {
    guard hasSnapshot, fatal == nil || qemuAlive else { return false }
    // The restore would put back the snapshot's (zero) counters: take the counts first.
    collectCoverage()
    let start = ContinuousClock.now
    let out = hmp("loadvm \(Self.snapshotName)")
    lastLoadvm = ContinuousClock.now - start
    guard !out.lowercased().contains("error") else { return false }
    control.discardBuffered()
    _ = console.readNew()
    fatal = nil
    hostFault = nil
    kernelCrashed = false
    freshConsole = console.text.utf8.count
    // The restored agent waits for a line: a ping proves it is there.
    do {
      try control.send("ping")
      guard try control.readLine(until: .now + .seconds(5)) == "." else { return false }
    } catch {
      return false
    }
    if FaultInjection.next(.restore) == .killQEMUAfterRestore {
      kill(qemuPID, SIGKILL)
      FaultInjection.announce(.killQEMUAfterRestore, "QEMU (pid \(qemuPID)) killed right after a snapshot restore")
    }
    return true
  }

  private static let snapshotName = "ready"
  /// How often a guest reset by the agent hands over its coverage counts.
  static let coverageInterval: Duration = .seconds(30)
  /// How long the last `loadvm` took (without the agent ping that follows it).
  private(set) var lastLoadvm: Duration = .zero
  private var hasSnapshot = false
  /// Whether the host lost this guest: it failed and the evidence is not the kernel's. Either
  /// ``hostFault`` says why (an op deadline that passed while the host did not run the guest,
  /// a protocol fault on the control channel), or QEMU is gone while the console shows no
  /// kernel crash (BUG, oops, panic) since the guest was fresh and no death of the agent the
  /// kernel caused (``agentDeath(in:)``): QEMU killed from outside or out of memory, the agent
  /// killed or crashed (`/init` then powers off). What its last op saw is no verdict on the
  /// kernel. A kernel crash on the console outranks every host-side explanation but a stall.
  var isLost: Bool {
    guard fatal != nil else { return false }
    // A stall outranks the crash too: the deadline that made the op fail was the host's. A
    // garbled line does not: the crash is the kernel's evidence, and the op's verdict.
    if let hostFault { return !kernelCrashed || !hostFault.hasPrefix(Self.protocolFaultPrefix) }
    guard !kernelCrashed, !Self.processRunning(qemuPID) else { return false }
    let since = String(decoding: console.text.utf8.dropFirst(freshConsole), as: UTF8.self)
    if since.contains("Kernel panic") { return false }
    return !(Self.agentDeath(in: since)?.byKernel ?? false)
  }

  /// Why the guest was lost (``isLost``), for the host fault's report.
  var lossReason: String {
    if let hostFault { return hostFault }
    let since = String(decoding: console.text.utf8.dropFirst(freshConsole), as: UTF8.self)
    if let death = Self.agentDeath(in: since) {
      return "the agent died (\(death.line)) with no kernel failure on the console; /init powered the guest off"
    }
    return "QEMU went away (killed from outside, not by a kernel panic)"
  }

  /// The death of the agent `/init` reported on the console (VM/pid1: `harness: agent killed by
  /// signal N`, `harness: agent exited with status N`), and whether the kernel caused it: a
  /// SIGBUS is the kernel's memory-failure handling (or a bus error) hitting the agent, evidence
  /// from the kernel; any other signal or an exit is the agent's own failure or a kill from
  /// outside.
  static func agentDeath<S: StringProtocol>(in console: S) -> (line: String, byKernel: Bool)? {
    for line in console.split(whereSeparator: \.isNewline) {
      guard let r = line.range(of: "harness: agent ") else { continue }
      let what = line[r.lowerBound...].trimmingCharacters(in: .whitespaces)
      if what.hasPrefix("harness: agent killed by signal ") {
        return (what, what.hasSuffix("signal \(SIGBUS)"))
      }
      if what.hasPrefix("harness: agent exited with status ") { return (what, false) }
    }
    return nil
  }

  /// Why the host, not the kernel, failed the last op: an op deadline that passed while QEMU
  /// was stopped or hardly ran, or a line the control channel garbled.
  private(set) var hostFault: String?
  /// For each `inject-mce-ar` this guest ran, the stop of the guest that found the thread in
  /// its loop and injected (``ActionRequiredMCE``), from 1.
  private(set) var actionRequiredAttempts: [Int] = []
  /// Where the stops that did not inject found the CPU, counted.
  private(set) var actionRequiredMisses: [ActionRequiredMCE.Place: Int] = [:]
  private static let protocolFaultPrefix = "protocol fault"
  /// The console showed a kernel crash (BUG, oops, panic) since the guest was fresh.
  private var kernelCrashed = false
  /// Where the console stood (bytes of ``ConsoleLog/text``) when the guest was last fresh.
  private var freshConsole = 0

  /// QEMU's CPU time so far (user + system), from /proc; `nil` when it cannot be read.
  var qemuCPUTime: Duration? {
    guard let stat = try? String(contentsOfFile: "/proc/\(qemuPID)/stat", encoding: .utf8),
      let paren = stat.lastIndex(of: ")")
    else { return nil }
    let f = stat[stat.index(after: paren)...].split(separator: " ")
    // Fields after the command: state is 0, utime 11, stime 12 (proc(5): 14 and 15), in ticks.
    guard f.count > 12, let u = Int64(f[11]), let s = Int64(f[12]) else { return nil }
    let hz = Int64(sysconf(Int32(_SC_CLK_TCK)))
    return .milliseconds((u + s) * 1000 / max(hz, 1))
  }

  /// A host stall over an op's wait that began at `since` (wall time, QEMU's CPU time): QEMU is
  /// stopped (SIGSTOP, a debugger) or ran less than a tenth of the wait. A guest whose kernel
  /// loops burns a host core under TCG; one whose threads sleep in the kernel is reported by
  /// the agent's watcher within a second, long before the deadline.
  private func hostStall(since: (ContinuousClock.Instant, Duration?)) -> String? {
    if let stat = try? String(contentsOfFile: "/proc/\(qemuPID)/stat", encoding: .utf8),
      let paren = stat.lastIndex(of: ")"), stat[stat.index(after: paren)...].dropFirst().first == "T"
    {
      return "QEMU was stopped (SIGSTOP or a debugger) when the op's \(opTimeout) deadline passed"
    }
    guard let before = since.1, let after = qemuCPUTime else { return nil }
    let wall = ContinuousClock.now - since.0
    let ran = after - before
    guard ran * 10 < wall else { return nil }
    return "the guest hardly ran while the op waited: QEMU used \(ran) of CPU in \(wall)"
  }
  private var qemuAlive: Bool { qemuPID > 0 && kill(qemuPID, 0) == 0 && !console.text.contains("Kernel panic") }

  /// Sends an HMP command and returns its output (up to the next prompt).
  @discardableResult
  func hmp(_ command: String) -> String {
    do { try monitor.send(command) } catch { return "" }
    let text = monitor.readText(until: .now + .seconds(5)) { $0.hasSuffix("(qemu) ") }
    return text.replacingOccurrences(of: "(qemu) ", with: "")
  }

  private func shutDown() {
    try? monitor.send("quit")
    usleep(100_000)
  }
}

/// Wall time per op keyword over many ``GuestSession/apply(_:)`` calls.
///
/// Shared by the guests of a campaign (`bench guest --jobs`): its updates are serialized.
final class OpProfile: @unchecked Sendable {
  private let lock = NSLock()
  private var table: [String: (count: Int, total: Duration)] = [:]
  var entries: [String: (count: Int, total: Duration)] { lock.withLock { table } }
  /// Host-side work per sequence, recorded beside the ops: the model's run and the diff, and
  /// the triage of a diverging run by explanation.
  static let judging = "(model and diff)"
  static let triage = "(triage by explanation)"

  /// The ops only, by total time, largest first.
  var opsByTotal: [(keyword: String, count: Int, total: Duration)] { byTotal.filter { !$0.keyword.hasPrefix("(") } }

  func add(_ keyword: String, _ time: Duration) {
    lock.withLock {
      let e = table[keyword] ?? (0, .zero)
      table[keyword] = (e.count + 1, e.total + time)
    }
  }

  /// Keywords by total time, largest first.
  var byTotal: [(keyword: String, count: Int, total: Duration)] {
    entries.map { ($0.key, $0.value.count, $0.value.total) }.sorted { ($0.total, $1.keyword) > ($1.total, $0.keyword) }
  }
}

/// The built guest: kernel, initramfs and the vmlinux whose symbols are checked.
struct GuestArtifacts: Sendable {
  let directory: String
  /// Which kernel this is (the guest's `identity` file, with QEMU's version and the harness's
  /// commit).
  var identity: KernelIdentity
  /// An initramfs to boot instead of the built one (`vm shell --add`).
  var initramfsOverride: String? = nil
  /// Where a coverage-flavour guest's counts go (`fuzz --coverage`); every session booted from
  /// these artifacts hands its counts over (``GuestSession/coverage``).
  var coverage: CoverageCollector? = nil
  /// What QEMU boots: the LZ4 bzImage. Not vmlinux through the PVH entry point, 70 ms faster to
  /// boot: QEMU keeps an ELF kernel as ROM blobs and rewrites them at every reset, and a
  /// `loadvm` then spends 11-15 ms invalidating translated blocks of the kernel text one by one
  /// (VM/harness.config).
  var bootKernel: String { directory + "/bzImage" }
  var vmlinux: String { directory + "/vmlinux" }
  var initramfs: String { initramfsOverride ?? directory + "/initramfs.cpio" }
}

extension RunDirectory {
  /// Where run directories go: `HARNESS_RUN_DIR` if set (e.g. /dev/shm to keep the snapshot
  /// drive in memory; no difference measured here), else /tmp. Socket paths under it must stay
  /// under 108 bytes.
  static let base: String = {
    if let dir = ProcessInfo.processInfo.environment["HARNESS_RUN_DIR"], !dir.isEmpty { return dir }
    return "/tmp"
  }()

  /// A fresh private directory under `base` (``PrivateFiles``: `harness-XXXXXX`, mode 0700,
  /// never an existing one), with the console log, QEMU's stderr and the snapshot drive
  /// created in it as new owner-only files (QEMU and qemu-img then write into those).
  static func create(in base: String = Self.base) throws(HarnessError) -> RunDirectory {
    let run = RunDirectory(path: try PrivateFiles.makeDirectory(in: base, prefix: "harness"))
    do {
      for file in [run.consolePath, run.qemuErrorPath, run.snapshotPath] { try PrivateFiles.createFile(file) }
    } catch {
      run.remove()
      throw error
    }
    return run
  }

  func remove() {
    PrivateFiles.remove(path)
  }
}

/// Turns the agent's `fact` lines into the world the model uses.
enum WorldReport {
  static func apply(_ facts: [String], to base: World) -> World {
    var w = base
    var ram: [ClosedRange<UInt64>] = []
    var paths: [String: [String]] = [:]
    var acs: [String: Bool] = [:]
    for f in facts {
      let t = f.split(separator: " ")
      guard t.count >= 2, t[0] == "fact" else { continue }
      var kv: [Substring: Substring] = [:]
      for p in t.dropFirst(2) {
        if let eq = p.firstIndex(of: "=") { kv[p[..<eq]] = p[p.index(after: eq)...] }
      }
      func num(_ k: Substring) -> UInt64? { kv[k].flatMap { SequenceFormat.parseUnsigned($0) } }
      switch t[1] {
      case "cpu":
        if let v = kv["vendor"], let fam = num("family"), let model = num("model") {
          w.cpu = CPU(vendor: String(v), family: Int(fam), model: Int(model))
          if let bits = num("physbits"), bits < 64 { w.cpu.physicalAddressBits = Int(bits) }
        }
      case "devmem":
        if let phys = num("phys"), let size = num("size") {
          w.deviceMemory = DeviceMemory(firstPFN: phys >> 12, pages: size >> 12)
        }
      case "ram":
        if let a = num("first"), let b = num("last"), a <= b { ram.append((a >> 12)...(b >> 12)) }
      case "iommu":
        if t.count > 2, let m = IOMMUMode(rawValue: String(t[2])) { w.iommu = m }
      case "exporter":
        // `fact exporter x0 bdf=B bar=N phys=P size=S reset=METHODS` (one line per BAR).
        guard t.count > 2, let i = w.exporters.firstIndex(where: { $0.name.description == t[2] }) else { break }
        if let index = num("bar"), let phys = num("phys"), let size = num("size") {
          let bar = BAR(
            index: UInt32(truncatingIfNeeded: index), phys: phys, size: size,
            isClaimed: w.exporters[i].bar(UInt32(truncatingIfNeeded: index))?.isClaimed ?? true)
          w.exporters[i].bars.removeAll { $0.index == bar.index }
          w.exporters[i].bars.append(bar)
          w.exporters[i].bars.sort { $0.index < $1.index }
        }
        // vfio-pci answers VFIO_DEVICE_RESET with -EINVAL when the device has no reset method.
        if let r = kv["reset"] {
          w.exporters[i].resetWorks = r != "none" && !r.isEmpty
          w.exporters[i].resetMethods = r == "none" ? [] : r.split(separator: ",").map(String.init)
          // VFIO_DEVICE_PCI_HOT_RESET resets the bus or slot: the `bus` method.
          w.exporters[i].hotResetWorks = r.split(separator: ",").contains("bus")
        }
        // `cfgsize=` the config space's size, `pm=` its power-management capability (0: none).
        if let c = num("cfgsize"), c > 0 { w.exporters[i].configSize = c }
        if let pm = num("pm") { w.exporters[i].pmCapability = pm == 0 ? nil : pm }
      case "importer":
        // `fact importer i0 bdf=B dmabits=N`: the DMA mask the shim set.
        guard t.count > 2, let i = w.importers.firstIndex(where: { $0.name.description == t[2] }) else { break }
        if let bits = num("dmabits"), (24...64).contains(bits) { w.importers[i].dmaMaskBits = Int(bits) }
      case "iova-reserved":
        // `fact iova-reserved i0 FIRST-LAST …`: bytes its DMA domain keeps out of the IOVA space.
        guard t.count > 2, let i = w.importers.firstIndex(where: { $0.name.description == t[2] }) else { break }
        w.importers[i].iovaReserved = t.dropFirst(3).compactMap { r in
          let ends = r.split(separator: "-")
          guard ends.count == 2, let a = SequenceFormat.parseUnsigned(ends[0]),
            let b = SequenceFormat.parseUnsigned(ends[1]), a <= b
          else { return nil }
          return a...b
        }
      case "acs":
        // `fact acs BDF ctrl=C`: a port's ACS control; RR, CR or EC set is redirect (C6.6).
        if t.count > 2, let c = num("ctrl") { acs[String(t[2])] = c & 0x2c != 0 }
      case "pcipath":
        // `fact pcipath x0 0000:00:04.0/0000:01:00.0/…`: root bus first, the device last.
        if t.count > 3 { paths[String(t[2])] = t[3].split(separator: "/").map(String.init) }
      default: break
      }
    }
    if !ram.isEmpty { w.ram = ram }
    applyTopology(paths, to: &w)
    for k in w.pci.indices { if let r = acs[w.pci[k].name] { w.pci[k].acsRedirect = r } }
    return w
  }

  /// Rebuilds the PCI topology from the reported paths of every exporter and importer (the
  /// model's map type depends on it, C6.6); without a path for each, the built-in one stays.
  private static func applyTopology(_ paths: [String: [String]], to w: inout World) {
    let names = w.exporters.map(\.name.description) + w.importers.map(\.name.description)
    guard !names.isEmpty, names.allSatisfy({ !(paths[$0] ?? []).isEmpty }) else { return }
    var nodes: [PCINode] = []
    for name in names {
      let path = paths[name]!
      for (k, bdf) in path.enumerated() where !nodes.contains(where: { $0.name == bdf }) {
        nodes.append(PCINode(name: bdf, parent: k > 0 ? path[k - 1] : nil, isBridge: k < path.count - 1))
      }
    }
    w.pci = nodes
    for i in w.exporters.indices { w.exporters[i].node = paths[w.exporters[i].name.description]!.last! }
    for i in w.importers.indices { w.importers[i].node = paths[w.importers[i].name.description]!.last! }
  }
}
