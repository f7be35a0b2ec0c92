import ArgumentParser
import Foundation
import Fuzz
import Reference
import Glibc

/// `harness bench`: measured figures for the README.
struct Bench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Measure throughput (figures reported in the README).",
    discussion: """
      `model`: generation and model throughput over mixed generated sequences (every world), \
      on one core, and peak memory. Build with -c release for meaningful numbers. `guest`: boot, \
      op round trips, snapshot reset and campaign rate. `guided`: --guided against the same \
      budget of plain seeds (rules, and the series' kernel lines in the guest). `build`: the kernel build, cold, \
      unchanged and after a one-file edit, on a scratch copy of a tree.

      Examples:
        swift run -c release harness bench model
        swift run harness bench build --kernel-src ~/src/linux
        swift run -c release harness bench parse --ops 10000,100000,1000000
      """,
    subcommands: [Model.self, Guest.self, Build.self, Parse.self, Guided.self])

  /// Boot time, op round trips, snapshot reset, campaign throughput and QEMU memory per world.
  struct Guest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Guest boot time, op round trips, snapshot reset, campaign rate and QEMU RSS.",
      discussion: """
        For each world: boot to agent ready (median over --boots), snapshot reset (loadvm and \
        an agent ping) and its ratio to a boot, QEMU RSS. The mf world also times a simple op \
        and an op with one live process; the dma-buf worlds time export + attach + map (the \
        table reported) as one round trip. --campaign N runs N fuzz sequences of 30 ops on model \
        and guest, as `harness fuzz` does, and reports sequences per minute, once per --jobs \
        value (guests at once), with QEMU's memory per guest and the rate against the first. \
        With --coverage each campaign then runs again on the coverage flavour of the kernel \
        (gcov on the series' files, counts collected as `fuzz --coverage` does), and its rate is \
        given against the plain kernel's. With --without-observer each campaign runs again, \
        right after it, with the agent's libbpf observer off (kernel argument harness.observer=off), and the \
        observer's cost is given as the two rates' ratio.

        Examples:
          swift run -c release harness bench guest --boots 10 --ops 500
          swift run -c release harness bench guest --world all --boots 5 --campaign 60
          swift run -c release harness bench guest --boots 1 --ops 10 --campaign 200 --jobs 1,2
          swift run -c release harness bench guest --world mf --boots 1 --ops 10 --campaign 200 --jobs 1 --coverage
          swift run -c release harness bench guest --world mf --boots 1 --ops 10 --campaign 100 --jobs 1,1,1 --without-observer
          swift run -c release harness bench guest --world mf --boots 1 --ops 10 --campaign 200 --jobs 1 --baseline /tmp/harness-base --pairs 3

        --baseline DIR runs the same campaign with another checkout's harness (as its own \
        process, from DIR, so with the guest DIR's VM/ builds), pair by pair with this one's, \
        and prints both rates and their ratio. A checkout of main to compare against: \
        git worktree add --detach /tmp/harness-base main && (cd /tmp/harness-base && swift build -c release)
        """)
    @Option(help: "Boots to time per world (the median is reported).") var boots = 10
    @Option(help: "Ops to time in one guest (the median is reported).") var ops = 500
    @Option(help: "Fuzz sequences of 30 ops to run per world for the campaign rate (0: none).")
    var campaign = 0
    @Option(help: "First seed of the campaign (seeds SEED ..< SEED+N).")
    var seed: UInt64 = 1
    @Option(help: "How the campaign resets the guest between sequences: clean or snapshot (as harness fuzz --reset).")
    var reset: ResetMode = .clean
    @Option(
      help: ArgumentHelp(
        "Guests at once for the campaign, one campaign per value (comma-separated; default: the number of cores).",
        valueName: "N,…"))
    var jobs: String = "\(ProcessInfo.processInfo.activeProcessorCount)"

    /// `--jobs` as numbers.
    var jobCounts: [Int] { jobs.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
    @Flag(help: "Also run the campaign on the coverage flavour of the kernel and compare the two rates (needs --campaign).")
    var coverage = false
    @Flag(
      help:
        "Also run each campaign with the agent's libbpf observer off and compare the two rates: what the observer costs (needs --campaign)."
    )
    var withoutObserver = false
    @Option(
      help: ArgumentHelp(
        "Another checkout of the harness, built (e.g. the previous commit): each campaign runs --pairs times on its build and on this one, alternating, and both rates and their ratio are printed.",
        valueName: "DIR"))
    var baseline: String?
    @Option(help: "Campaigns per build with --baseline (pairs, alternating which goes first).")
    var pairs = 2
    @OptionGroup var worldOption: WorldOption
    @OptionGroup(title: "Kernel under test") var kernel: KernelOptions

    func validate() throws {
      guard (1...1000).contains(boots), (1...1_000_000).contains(ops), (0...1_000_000).contains(campaign) else {
        throw ValidationError("--boots must be 1 to 1000, --ops 1 to 1000000, --campaign 0 to 1000000")
      }
      guard seed <= UInt64.max - UInt64(campaign) else {
        throw ValidationError("--seed \(seed) with --campaign \(campaign) runs past the largest seed")
      }
      let counts = jobs.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
      guard !counts.isEmpty, counts.allSatisfy({ $0.map { (1...256).contains($0) } ?? false }) else {
        throw ValidationError("--jobs \(jobs): expected numbers from 1 to 256, comma-separated (e.g. --jobs 1,2)")
      }
      if coverage && campaign == 0 { throw ValidationError("--coverage compares campaign rates: give --campaign N") }
      if withoutObserver && campaign == 0 {
        throw ValidationError("--without-observer compares campaign rates: give --campaign N")
      }
      if baseline != nil && campaign == 0 { throw ValidationError("--baseline compares campaign rates: give --campaign N") }
      guard (1...100).contains(pairs) else { throw ValidationError("--pairs must be 1 to 100 (got \(pairs))") }
      if let baseline { _ = try Baseline(baseline) }
      if baseline != nil && worldOption.world == "all" {
        throw ValidationError("--baseline compares one world's campaign: give --world (e.g. --world mf)")
      }
      if worldOption.world != "all" { _ = try GuestWorld.named(worldOption.world) }
    }

    func run() async throws {
      let artifacts = try await kernel.build()
      let covered = coverage ? try await kernel.build(coverage: true) : nil
      let worlds = worldOption.world == "all" ? GuestWorld.all : [try GuestWorld.named(worldOption.world)]
      for world in worlds { try await measure(world, artifacts, covered: covered) }
    }

    /// The same campaign on the coverage flavour (`--coverage`): its rate against the plain
    /// kernel's, and what collecting the counts cost.
    private func measureCoverage(_ world: GuestWorld, _ artifacts: GuestArtifacts, jobs: Int, plainRate: Double)
      async throws
    {
      var a = artifacts
      let collector = try CampaignCoverage.start(&a, directory: "").collector
      let start = ContinuousClock.now
      let rate = try await measureCampaign(world, a, jobs: jobs, kernel: " on the coverage kernel")
      let t = ContinuousClock.now - start
      let cost = collector.cost
      let label = "\(world.name): campaign --jobs \(jobs) on the coverage kernel"
      print("\(label): \(String(format: "%.1f", rate / max(plainRate, 1e-9) * 100)) % of the plain kernel's rate (\(Int(rate)) against \(Int(plainRate)) sequences/min)")
      print("\(label): counts collected \(collector.collections) times, \(cost.bytes / 1024) KiB, \(Self.ms(cost.time)) in all (\(Self.share(cost.time, of: t * jobs)) of the guests' time)\(collector.failures.isEmpty ? "" : "; failures: " + collector.failures.prefix(3).joined(separator: "; "))")
    }

    /// The same campaign with the agent's libbpf observer off (`--without-observer`): the
    /// observer's cost, as the rate with it against the rate without it.
    private func measureWithoutObserver(_ world: GuestWorld, _ artifacts: GuestArtifacts, jobs: Int, rateWith: Double)
      async throws -> Double
    {
      var off = world
      off.kernelArguments.append("harness.observer=off")
      let rate = try await measureCampaign(off, artifacts, jobs: jobs, kernel: " without the observer")
      let label = "\(world.name): campaign --jobs \(jobs) with the libbpf observer"
      print(
        "\(label): \(String(format: "%.1f", rateWith / max(rate, 1e-9) * 100)) % of the rate without it (\(Int(rateWith)) against \(Int(rate)) sequences/min)"
      )
      return rate
    }

    /// Measures `world`; with `covered`, each campaign runs on it too (``measureCoverage``).
    private func measure(_ world: GuestWorld, _ artifacts: GuestArtifacts, covered: GuestArtifacts?) async throws {
      let clock = ContinuousClock()
      var bootTimes: [Duration] = []
      var rss = 0
      for _ in 0..<boots {
        let start = clock.now
        rss = try await GuestSession.with(world, artifacts: artifacts) { g in
          bootTimes.append(clock.now - start)
          return g.qemuRSSKiB
        }
      }
      let boot = Self.median(bootTimes)
      print("\(world.name): boot to agent ready: median \(Self.ms(boot)) over \(boots) boots (from creating its snapshot drive and starting QEMU to the hello)")
      let (restores, roundTrips) = try await GuestSession.with(world, artifacts: artifacts) { g in
        guard g.takeSnapshot() else { return ([(String, [Duration])](), [(String, [Duration])]()) }
        var times: [Duration] = []
        var loadvms: [Duration] = []
        for _ in 0..<20 {
          _ = g.apply(world.model.deviceMemory != nil ? .spawn(ProcessName("p1")!) : .vfioOpen(DeviceName("x0")!))
          times.append(clock.measure { _ = g.restoreSnapshot() })
          loadvms.append(g.lastLoadvm)
        }
        _ = g.restoreSnapshot()
        let trips = world.model.deviceMemory != nil ? Self.mfRoundTrips(g, ops) : Self.dmaBufRoundTrips(g, ops)
        return ([("snapshot reset (loadvm + agent ping)", times), ("of which loadvm", loadvms)], trips)
      }
      for (what, times) in roundTrips {
        print("\(world.name): \(what): median \(Self.ms(Self.median(times))) over \(times.count)")
      }
      if let (what, times) = restores.first {
        let r = Self.median(times)
        let loadvm = restores.last.map { " (\($0.0): \(Self.ms(Self.median($0.1))))" } ?? ""
        print("\(world.name): \(what): median \(Self.ms(r)) over \(times.count)\(loadvm); \(Int(Self.seconds(boot) / Self.seconds(r))) times faster than a boot")
      }
      print("\(world.name): QEMU RSS after boot: \(rss) KiB")
      if campaign > 0 {
        var rates: [(jobs: Int, perMinute: Double)] = []
        var observerCosts: [(with: Double, without: Double)] = []
        for n in jobCounts {
          if let baseline {
            let mine = try await compareWithBaseline(try Baseline(baseline), world, artifacts, jobs: n, pairs: pairs)
            rates.append((n, Double(mine.count) / mine.reduce(0) { $0 + 1 / max($1, 1e-9) }))
          } else {
            rates.append((n, try await measureCampaign(world, artifacts, jobs: n)))
          }
          // Right after it, so that the host's load hits both alike.
          if withoutObserver {
            let without = try await measureWithoutObserver(world, artifacts, jobs: n, rateWith: rates.last!.perMinute)
            observerCosts.append((rates.last!.perMinute, without))
          }
        }
        if observerCosts.count > 1 {
          let with = observerCosts.reduce(0) { $0 + $1.with }
          let without = observerCosts.reduce(0) { $0 + $1.without }
          print(
            "\(world.name): with the libbpf observer over \(observerCosts.count) pairs: \(String(format: "%.1f", with / max(without, 1e-9) * 100)) % of the rate without it (pairs: \(observerCosts.map { String(format: "%.0f/%.0f", $0.with, $0.without) }.joined(separator: ", ")) sequences/min)"
          )
        }
        if rates.count > 1, let base = rates.first {
          let text = rates.dropFirst().map { String(format: "--jobs %d %.2fx", $0.jobs, $0.perMinute / max(base.perMinute, 1e-9)) }
          print("\(world.name): campaign rate against --jobs \(base.jobs): " + text.joined(separator: ", "))
        }
        if let covered {
          for (n, plain) in rates { try await measureCoverage(world, covered, jobs: n, plainRate: plain) }
        }

      }
    }

    /// Runs the campaign on `jobs` guests at once; prints its rate, resets, memory and where its
    /// time went; returns sequences per minute.
    func measureCampaign(_ world: GuestWorld, _ artifacts: GuestArtifacts, jobs: Int, kernel: String = "")
      async throws -> Double
    {
      let clock = ContinuousClock()
      let ledger = try Ledger.project()
      var ran = 0
      let profile = OpProfile()
      var resets = GuestRun.Resets()
      // QEMU's memory, sampled as results come: the largest per guest and in total.
      var maxGuestRSS = 0
      var maxTotalRSS = 0
      let t = try await clock.measure {
        resets = try await GuestRun.campaign(
          world, artifacts: artifacts, seeds: (0..<UInt64(campaign)).map { seed + $0 }, length: 30,
          reset: reset, ledger: ledger, jobs: jobs, onBoot: { $0.profile = profile }
        ) { _, _, _ in
          ran += 1
          let rss = ChildRegistry.registered.map(Self.rssKiB)
          maxGuestRSS = max(maxGuestRSS, rss.max() ?? 0)
          maxTotalRSS = max(maxTotalRSS, rss.reduce(0, +))
        }
      }
      let label = "\(world.name): campaign --jobs \(jobs)\(kernel)"
      let perMinute = Double(ran) * 60 / Self.seconds(t)
      print("\(label) (--reset \(reset.rawValue)): \(ran) sequences of 30 ops (seeds \(seed)...\(seed + UInt64(campaign) - 1), model and guest, \(resets.boots) boot(s)) in \(Self.ms(t)): \(Int(perMinute)) sequences/min")
      print("\(label): QEMU RSS per guest: max \(maxGuestRSS) KiB, all guests at once: max \(maxTotalRSS) KiB; harness peak RSS \(Self.rssKiB(getpid(), field: "VmHWM:")) KiB; \(ProcessInfo.processInfo.activeProcessorCount) cores")
      print("\(label): resets: " + resets.line(world.name).replacingOccurrences(of: "\(world.name): ", with: "") + "; " + resets.hostLine(world.name).replacingOccurrences(of: "\(world.name): ", with: ""))
      if resets.cleanResets > 0 {
        print("\(label): clean reset by the agent: mean \(Self.ms(resets.cleanTime / resets.cleanResets)) over \(resets.cleanResets)")
      }
      // Where the guests' time went (summed over guests, so shares are of jobs x wall time):
      // resets, then ops by keyword (the five largest).
      let all = t * jobs
      var parts = [
        "snapshot restores \(Self.share(resets.restoreTime, of: all)) (\(resets.restores))",
        "clean resets \(Self.share(resets.cleanTime, of: all)) (\(resets.cleanResets))",
      ]
      for e in profile.opsByTotal.prefix(5) {
        parts.append("\(e.keyword) \(Self.share(e.total, of: all)) (\(e.count), \(Self.ms(e.total / e.count)) each)")
      }
      for key in [OpProfile.judging, OpProfile.triage] {
        let e = profile.entries[key] ?? (0, .zero)
        parts.append("\(key) \(Self.share(e.total, of: all)) (\(e.count) sequences, \(Self.ms(e.total / max(1, e.count))) each)")
      }
      // Whole-sequence triage against the rate without it (its time taken out of the same run):
      // what comparing past known findings costs.
      let triage = profile.entries[OpProfile.triage]?.total ?? .zero
      print(
        "\(label): rate without triage (its time taken out of this run): \(Int(Double(ran) * 60 / Self.seconds(t - triage / jobs))) sequences/min; triage costs \(String(format: "%.1f", Self.seconds(triage) / max(Self.seconds(all), 1e-9) * 100)) % of the guests' time"
      )
      let hostTime = profile.byTotal.reduce(Duration.zero) { $0 + $1.total }
      parts.append("other (boot, agent, waiting) \(Self.share(all - hostTime - resets.restoreTime - resets.cleanTime, of: all))")
      print("\(label): campaign time: " + parts.joined(separator: ", "))
      return perMinute
    }

    /// A process's resident set (or `field`) in KiB from /proc, 0 if unknown.
    static func rssKiB(_ pid: Int32) -> Int { rssKiB(pid, field: "VmRSS:") }
    static func rssKiB(_ pid: Int32, field: String) -> Int {
      guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
      for line in status.split(separator: "\n") where line.hasPrefix(field) {
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
      }
      return 0
    }

    /// A space op on a name that does not exist (no process to synchronise), and an op with
    /// one live process.
    private static func mfRoundTrips(_ g: GuestSession, _ ops: Int) -> [(String, [Duration])] {
      let clock = ContinuousClock()
      let ghost = Op.spaceRegister(SpaceName("s999")!)
      var simple: [Duration] = []
      for _ in 0..<ops { simple.append(clock.measure { _ = g.apply(ghost) }) }
      let p = ProcessName("p1")!
      _ = g.apply(.spawn(p))
      var withProcess: [Duration] = []
      for _ in 0..<ops { withProcess.append(clock.measure { _ = g.apply(.mceKillGet(ThreadRef(p, 0))) }) }
      // A new process each time (it exits, untimed, before the next).
      var spawns: [Duration] = []
      for n in 0..<min(ops, 100) {
        let q = ProcessName("q\(n)")!
        spawns.append(clock.measure { _ = g.apply(.spawn(q)) })
        _ = g.apply(.exit(q, code: 0))
      }
      return [
        ("simple op round trip (space-register of an unknown name)", simple),
        ("op with one process (prctl mce-kill-get)", withProcess),
        ("spawn with one other process", spawns),
      ]
    }

    /// export + attach + map (the whole table reported), each iteration on a fresh dma-buf;
    /// unmap, detach and close untimed. The label says how many maps returned a table (none in
    /// `p2p-hostbridge-intel`, where map is -EINVAL, C6.1), and guest failures go to stderr.
    private static func dmaBufRoundTrips(_ g: GuestSession, _ ops: Int) -> [(String, [Duration])] {
      let clock = ContinuousClock()
      let x = DeviceName("x0")!
      _ = g.apply(.vfioOpen(x))
      var times: [Duration] = []
      var failures: [String] = []
      var tables = 0
      for n in 1...ops {
        let b = BufName(index: n)
        let a = AttachmentName(index: n)
        let request = ExportRequest(region: 2, ranges: [DMARange(offset: 0, length: 0x20_0000)])
        var observed: [[Observation]] = []
        let t = clock.measure {
          observed.append(g.apply(.export(b, x, request)))
          observed.append(g.apply(.attach(a, b, importer: ImporterName("i0")!, isDynamic: true)))
          observed.append(g.apply(.map(a)))
        }
        times.append(t)
        if observed.last?.contains(where: { if case .sgTable = $0 { true } else { false } }) == true { tables += 1 }
        if failures.isEmpty, observed.flatMap({ $0 }).contains(where: { if case .guestFailure = $0 { true } else { false } }) {
          failures.append("iteration \(n): \(observed)")
        }
        _ = g.apply(.unmap(a))
        _ = g.apply(.detach(a))
        _ = g.apply(.bufClose(b))
      }
      for f in failures { FileHandle.standardError.write(Data("bench: \(f)\n".utf8)) }
      return [("export + attach + map round trip (one 2 MiB range; \(tables) of \(ops) maps returned a table)", times)]
    }

    static func median(_ d: [Duration]) -> Duration { Timing.median(d) }
    static func seconds(_ d: Duration) -> Double { Timing.seconds(d) }
    static func ms(_ d: Duration) -> String { Timing.ms(d) }
    static func share(_ part: Duration, of whole: Duration) -> String { Timing.share(part, of: whole) }
  }

  /// Kernel build times on a scratch copy of a tree: cold, no-op, one-file edit.
  struct Build: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Guest build times: cold, unchanged, and after a one-file edit (scratch copy, own cache).",
      discussion: """
        Copies the tree (--kernel-src, else Debian's linux-source-7.3 as extracted in the \
        harness's cache, built first if needed) into a scratch directory and builds it there \
        as `--kernel-src` builds a user's tree, with a cache of its own (the shared cache is \
        not touched): a cold build (snapshot, configure, kernel, shim, agent, initramfs), a \
        second build with nothing changed, and --edits builds each after one edit of --file \
        (a comment appended: make recompiles that file and relinks). After each edit the \
        guest is also booted to the agent's hello, for the time from an edit to a guest ready \
        to fuzz. The scratch directory is removed at the end unless --keep. Uses both cores \
        for the length of a cold kernel build (minutes).

        Example:
          swift run harness bench build --kernel-src ~/src/linux --edits 2
        """)
    @OptionGroup(title: "Kernel under test") var kernel: KernelOptions
    @Option(help: "The file to edit, relative to the tree.") var file = "mm/memory-failure.c"
    @Option(help: "One-file edits to time.") var edits = 2
    @Option(help: "Where the scratch copy and its cache go (default: a new directory in /tmp).")
    var scratch: String?
    @Flag(help: "Keep the scratch directory.") var keep = false

    func validate() throws {
      guard (0...100).contains(edits) else { throw ValidationError("--edits must be 0 to 100 (got \(edits))") }
    }

    func run() async throws {
      let fm = FileManager.default
      var tree = kernel.source
      if tree == nil {
        // Debian's source, extracted by a default build into the shared cache (read only here).
        _ = try await GuestBuild.build()
        let cache = ProcessInfo.processInfo.environment["HARNESS_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
          ?? NSHomeDirectory() + "/.cache/harness"
        tree = cache + "/src/linux-source-7.3"
      }
      guard let tree, fm.fileExists(atPath: tree + "/" + file) else {
        throw HarnessError.usage("--file \(file): not in the tree \(tree ?? "?")")
      }
      let dir = try scratch ?? PrivateFiles.makeDirectory(in: RunDirectory.base, prefix: "harness-bench-build")
      if fm.fileExists(atPath: dir + "/tree") {
        throw HarnessError.usage("--scratch \(dir): already holds a tree/; give an empty or new directory")
      }
      try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
      defer {
        // rm, not FileManager: two kernel trees and an object directory are ~200000 files,
        // which Foundation takes minutes to remove.
        if !keep {
          let rm = Process()
          rm.executableURL = URL(fileURLWithPath: "/bin/rm")
          rm.arguments = ["-rf", "--", dir]
          try? rm.run()
          rm.waitUntilExit()
        }
      }
      FileHandle.standardError.write(Data("bench build: copying \(tree) to \(dir)/tree (not timed)\n".utf8))
      let cp = Process()
      cp.executableURL = URL(fileURLWithPath: "/bin/cp")
      cp.arguments = ["-a", "--reflink=auto", tree, dir + "/tree"]
      try cp.run()
      cp.waitUntilExit()
      guard cp.terminationStatus == 0 else { throw HarnessError.environment("cp -a \(tree) \(dir)/tree failed") }

      let request = GuestBuild.Request(source: dir + "/tree", config: kernel.kernelConfig)
      let env = ["HARNESS_CACHE": dir + "/cache"]
      let clock = ContinuousClock()
      var rows: [(String, String)] = []
      var artifacts: GuestArtifacts?
      let cold = try await clock.measure { artifacts = try await GuestBuild.build(request, environment: env) }
      rows.append(("cold: snapshot, configure, kernel, shim, agent, initramfs", Self.text(cold)))
      let noop = try await clock.measure { artifacts = try await GuestBuild.build(request, environment: env) }
      rows.append(("no-op: nothing changed", Self.text(noop)))
      for n in 1...max(1, edits) where edits > 0 {
        let path = dir + "/tree/" + file
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text += "/* harness bench build: edit \(n) */\n"
        try Corpus.writeAtomically(text, to: path)
        let built = try await clock.measure { artifacts = try await GuestBuild.build(request, environment: env) }
        let world = try GuestWorld.named("mf")
        let boot = try await clock.measure {
          try await GuestSession.with(world, artifacts: artifacts!) { _ in }
        }
        rows.append(("one-file edit \(n) (\(file)): build", Self.text(built)))
        rows.append(("one-file edit \(n): build + boot to agent ready", Self.text(built + boot)))
      }
      let width = rows.map(\.0.count).max() ?? 0
      print("tree: \(tree) (copied to \(dir)/tree), \(ProcessInfo.processInfo.activeProcessorCount) cores")
      print("what".padding(toLength: width, withPad: " ", startingAt: 0) + "  wall")
      for (what, t) in rows { print(what.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + t) }
      fflush(nil)
    }

    static func text(_ d: Duration) -> String {
      let s = Guest.seconds(d)
      return s >= 60 ? String(format: "%d min %04.1f s", Int(s) / 60, s.truncatingRemainder(dividingBy: 60)) : String(format: "%.1f s", s)
    }
  }

  struct Model: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Generator and model throughput.",
      discussion: "Example:\n  swift run -c release harness bench model --sequences 2000 --length 100")
    @Option(help: "Sequences per world.") var sequences = 2000
    @Option(help: "Ops per sequence.") var length = 100
    @Option(help: "Timed repetitions of the model pass (best is reported).") var repeats = 5

    func validate() throws {
      guard (1...1_000_000).contains(sequences), (1...100_000).contains(length), (1...100).contains(repeats) else {
        throw ValidationError("--sequences must be 1 to 1000000, --length 1 to 100000, --repeats 1 to 100")
      }
    }

    func run() async throws {
      let clock = ContinuousClock()
      var generated: [(World, OpSequence)] = []
      // Best of --repeats, like the model pass: a single pass varied by 40 % here (page faults
      // of the first allocation, a busy host).
      var genTime = Duration.seconds(1_000_000)
      for _ in 0..<repeats {
        generated = []
        var batch: [(World, OpSequence)] = []
        batch.reserveCapacity(World.builtin.count * sequences)
        genTime = min(genTime, clock.measure {
          for world in World.builtin {
            for seed in 0..<UInt64(sequences) {
              batch.append((world, Generator.generate(world: world, seed: seed, length: length)))
            }
          }
        })
        generated = batch
      }
      let totalOps = generated.reduce(0) { $0 + $1.1.steps.count }
      var best = Duration.seconds(1_000_000)
      var sink = 0
      for _ in 0..<repeats {
        let t = clock.measure {
          for (world, s) in generated {
            var m = Machine(world: world)
            for op in s.ops { sink &+= m.apply(op).count }
          }
        }
        best = min(best, t)
      }
      print("ops: \(totalOps) in \(generated.count) sequences of \(length) (\(World.builtin.count) worlds)")
      print("generation: \(Self.rate(totalOps, genTime)) ops/s (best of \(repeats): \(genTime))")
      print("model: \(Self.rate(totalOps, best)) ops/s (best of \(repeats): \(best)), observations \(sink / repeats)")
      print("peak RSS: \(Self.peakRSS()) KiB")
    }

    static func rate(_ n: Int, _ d: Duration) -> Int {
      let s = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
      return s > 0 ? Int(Double(n) / s) : 0
    }

    static func peakRSS() -> Int {
      guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
      for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
      }
      return 0
    }
  }

  /// Parse, model and diff time for long sequence files: each of them must grow linearly with
  /// the number of ops (a replay of a hostile file is not quadratic).
  struct Parse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Parse, model and diff time of long sequence files (linear in their length).",
      discussion: """
        For each size, builds sequence files in memory of that many `spawn` lines (every op \
        a new process), of `thread` lines in one process (a new thread each), of plain ops (`mce-kill-get` of one \
        thread), and of one op followed by that many expected observations, then times \
        parsing, the model's run, the diff against the file's expectations and printing the \
        result, as `harness replay` does them. A column that grows ten times when the size does is linear.

        Example:
          swift run -c release harness bench parse --ops 10000,100000,1000000
        """)
    @Option(help: "Sizes to time, comma-separated (lines of each kind).") var ops = "10000,100000"

    func validate() throws {
      guard !sizes.isEmpty else { throw ValidationError("--ops: expected sizes such as 10000,100000 (each 1 to 10000000)") }
    }

    private var sizes: [Int] {
      let parts = ops.split(separator: ",").map { Int($0) }
      guard parts.allSatisfy({ $0 != nil && (1...10_000_000).contains($0!) }) else { return [] }
      return parts.map { $0! }
    }

    func run() async throws {
      let clock = ContinuousClock()
      print("kind          lines        parse        model         diff        print")
      for n in sizes {
        for (kind, text) in Self.files(n) {
          var s: OpSequence?
          let parse = try clock.measure { s = try SequenceFormat.parse(text, file: kind) }
          let world = World.named(s!.world)!
          var predicted: [[Observation]] = []
          let model = clock.measure { predicted = Machine.run(s!.ops, in: world) }
          let expected = s!.steps.enumerated().map { i, step in step.expected ?? predicted[i] }
          let diff = clock.measure { _ = Differ.firstDivergence(ops: s!.ops, expected: expected, observed: predicted) }
          let printing = clock.measure { _ = SequenceFormat.print(s!.withExpectations(predicted)) }
          print(
            kind.padding(toLength: 10, withPad: " ", startingAt: 0)
              + String(
                format: "%8d %10.3f s %10.3f s %10.3f s %10.3f s", n, Guest.seconds(parse), Guest.seconds(model),
                Guest.seconds(diff), Guest.seconds(printing)))
        }
      }
    }

    /// Sequence files of `n` lines of each kind.
    static func files(_ n: Int) -> [(String, String)] {
      let header = "harness-sequence \(OpSequence.formatVersion)\nworld mf\n\n"
      var spawn = header
      for i in 1...n { spawn += "spawn p\(i)\n" }
      var thread = header + "spawn p1\n"
      for i in 1...n { thread += "thread p1.t\(i)\n" }
      var plain = header + "spawn p1\n"
      for _ in 1...n { plain += "prctl p1.t0 mce-kill-get\n" }
      var observations = header + "spawn p1\n"
      for _ in 1...n { observations += "  = 0\n" }
      return [("spawn", spawn), ("thread", thread), ("plain", plain), ("observe", observations)]
    }
  }
}
