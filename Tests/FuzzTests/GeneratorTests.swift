import Reference
import Testing

@testable import Fuzz

@Suite struct GeneratorTests {
  @Test(arguments: World.builtin.map(\.name))
  func sameSeedSameSequence(world: String) {
    let w = World.named(world)!
    for seed in [0, 1, 77, UInt64.max] {
      let a = SequenceFormat.print(Generator.generate(world: w, seed: seed, length: 60))
      let b = SequenceFormat.print(Generator.generate(world: w, seed: seed, length: 60))
      #expect(a == b)
    }
    #expect(
      Generator.generate(world: w, seed: 1, length: 60) != Generator.generate(world: w, seed: 2, length: 60))
  }

  /// Over 1,000 seeds every op kind appears, the model predicts each (never `-ENOSYS`, its
  /// answer to an op it does not know), and its invariants hold after every op.
  @Test func coversEveryOpKindAndKeepsInvariants() {
    var seen: Set<OpKind> = []
    var results: Set<String> = []
    for seed in 0..<1000 {
      let world = World.builtin[seed % World.builtin.count]
      let s = Generator.generate(world: world, seed: UInt64(seed), length: 40)
      #expect(s.steps.count == 40)
      var m = Machine(world: world)
      for op in s.ops {
        seen.insert(op.kind)
        if case .result(let v) = m.apply(op).first { results.insert("\(op.keyword) \(SequenceFormat.print(v))") }
        if let v = m.invariantViolation() {
          Issue.record("seed \(seed): \(v) after \(SequenceFormat.print(op))")
          return
        }
      }
    }
    #expect(seen == Set(OpKind.allCases), "missing: \(Set(OpKind.allCases).subtracting(seen))")
    #expect(!results.contains { $0.hasSuffix(" -ENOSYS") }, "the model does not know: \(results.filter { $0.hasSuffix(" -ENOSYS") })")
    // Deliberately invalid ops are generated too.
    for expected in [
      "space-register -EBUSY", "space-register -EINVAL", "mmap -EEXIST", "mmap -EINVAL",
      "inject-shim -EPERM", "prctl -EINVAL", "sysctl -EINVAL", "export -EINVAL", "export -ENOMEM",
      "export -ENODEV", "map -ENODEV", "attach -EOPNOTSUPP",
    ] {
      #expect(results.contains(expected), "never generated: \(expected)")
    }
  }

  /// In every world, every op kind of each half the world has (device memory: the
  /// memory-failure half; exporters and importers: the dma-buf half) is generated within 400
  /// seeds, and no kind of a half it lacks.
  @Test(arguments: World.builtin.map(\.name))
  func generatesEveryKindThatCanRunInTheWorld(world: String) {
    let w = World.named(world)!
    var halves: Set<OpHalf> = []
    if w.deviceMemory != nil { halves.insert(.memoryFailure) }
    if !w.exporters.isEmpty && !w.importers.isEmpty { halves.insert(.dmaBuf) }
    let runnable = Set(OpKind.allCases.filter { halves.contains($0.spec.half) })
    var seen: Set<OpKind> = []
    var exporters: Set<DeviceName> = []
    for seed in 0..<400 {
      for op in Generator.generate(world: w, seed: UInt64(seed), length: 40).ops {
        seen.insert(op.kind)
        if case .export(_, let d, _) = op { exporters.insert(d) }
      }
      if seen == runnable && exporters.count == w.exporters.count { break }
    }
    #expect(seen == runnable, "\(world): never generated \(runnable.subtracting(seen)), not runnable \(seen.subtracting(runnable))")
    // C7.6 ("other devices"): every exporter of the world exports.
    #expect(exporters == Set(w.exporters.map(\.name)), "\(world): exports from \(exporters) only")
  }

  /// Exports reach C7.1's argsz against the range array (just below, at and above 24 + 16 per
  /// range) and C7.2's open flags (refused bits, and accepted ones other than the default),
  /// while most exports (60 %) stay well formed.
  @Test func exportsReachArgszAndOpenFlagClasses() {
    var classes: Set<String> = []
    var exports = 0
    var wellFormed = 0
    let worlds = World.builtin.filter { !$0.exporters.isEmpty }
    for seed in 0..<1000 {
      let s = Generator.generate(world: worlds[seed % worlds.count], seed: UInt64(seed), length: 40)
      for case .export(_, _, let r) in s.ops {
        exports += 1
        if r == ExportRequest(region: r.region, ranges: r.ranges) { wellFormed += 1 }
        if let argsz = r.argsz, r.nrRanges == nil {
          let needed = UInt32(24 + 16 * r.ranges.count)
          if argsz == needed - 1 { classes.insert("argsz just below") }
          if argsz >= 24 && argsz < needed - 1 { classes.insert("argsz below") }
          if argsz == needed { classes.insert("argsz at") }
          if argsz > needed { classes.insert("argsz above") }
        }
        if let flags = r.openFlags {
          classes.insert(flags & ~DmaBufModel.acceptedOpenFlags != 0 ? "open refused" : "open accepted")
        }
      }
    }
    #expect(
      classes == [
        "argsz just below", "argsz below", "argsz at", "argsz above", "open refused",
        "open accepted",
      ])
    // The input classes (InputClasses) replace fields of about a quarter of the exports too.
    #expect(wellFormed * 100 >= exports * 60, "\(wellFormed) of \(exports) exports well formed")
  }

  /// Generated sequences reach the interesting outcomes: the three signal codes (AR, AO, and
  /// `SI_KERNEL` of an unrecovered action-required machine check, C5.4), kills, both results.
  @Test func reachesSignalsKillsAndEvents() {
    var kinds: Set<String> = []
    for seed in 0..<300 {
      let s = Generator.generate(world: .mf, seed: UInt64(seed), length: 100)
      for obs in Machine.run(s.ops, in: .mf) {
        for o in obs {
          switch o {
          case .signal(_, _, let code, _, _): kinds.insert("sig\(code)")
          case .processEnd(_, .killed): kinds.insert("killed")
          case .memoryFailure(_, _, let r): kinds.insert(r.name)
          default: break
          }
        }
      }
    }
    #expect(kinds == ["sig4", "sig5", "sig128", "killed", "ignored", "recovered"])
  }
}

@Suite struct ShrinkerTests {
  /// A culprit planted in a 200-op sequence is reduced to exactly the culprit.
  @Test func plantedRegistrationWithoutCallback() {
    var s = Generator.generate(world: .mf, seed: 5, length: 200)
    let s99 = SpaceName("s99")!
    s.steps.insert(OpSequence.Step(op: .spaceCreate(s99, first: 1, last: 2, callback: .none)), at: 37)
    s.steps.insert(OpSequence.Step(op: .spaceRegister(s99)), at: 150)
    let holds: (OpSequence) -> Bool = { c in
      zip(c.ops, Machine.run(c.ops, in: .mf)).contains { op, obs in
        op == .spaceRegister(s99) && obs.first == .result(.error(.invalid))
      }
    }
    #expect(holds(s))
    var shrinker = Shrinker()
    let small = shrinker.shrink(s, preserving: holds)
    #expect(small.ops == [.spaceCreate(s99, first: 1, last: 2, callback: .none), .spaceRegister(s99)])
  }

  /// A SIGBUS kill needs five ops; arguments are simplified too.
  @Test func plantedKillIsMinimalAndSimplified() {
    let p = ProcessName("p99")!
    let culprit: [Op] = [
      .spawn(p), .mmap(p, addr: 0x1000_0800_0000, pages: 9, region: 2, pgoff: 3),
      .spaceCreate(SpaceName("s99")!, first: 0xf8000, last: 0xfbfff, callback: .nvgrace),
      .spaceRegister(SpaceName("s99")!), .injectShim(ThreadRef(p, 0), pfn: 0xf8003, flags: 0x20),
    ]
    // Background noise that cannot register a space covering the culprit's PFN, nor make
    // early kill the default (an AO from another process's inject would kill p99 too).
    var s = Generator.generate(world: .mf, seed: 11, length: 200)
    s.steps.removeAll {
      switch $0.op {
      case .spaceRegister, .sysctlEarlyKill: true
      default: false
      }
    }
    for (i, op) in culprit.enumerated() { s.steps.insert(OpSequence.Step(op: op), at: 20 + i * 40) }
    let holds: (OpSequence) -> Bool = { c in
      Machine.run(c.ops, in: .mf).joined().contains(.processEnd(p, .killed(signal: Signal.bus)))
    }
    #expect(holds(s))
    var shrinker = Shrinker()
    let small = shrinker.shrink(s, preserving: holds)
    #expect(small.steps.count == 5, "\(SequenceFormat.print(small))")
    #expect(small.ops.last == .injectSysfs(ThreadRef(p, 0), pfn: 0xf8003))
    #expect(small.ops[1] == .mmap(p, addr: 0x1000_0800_0000, pages: 1, region: 2, pgoff: 3))
  }
}
