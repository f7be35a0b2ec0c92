import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// The agent's libbpf observer in a real guest (VM/agent/observer.bpf.c): it loads against the
/// guest kernel's BTF, the kernel's decisions it reports are the ones the model predicts, a
/// campaign compares them, and a divergent errno's diff.txt carries the chain of the series'
/// functions that returned it.
@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(30)))
struct GuestObserverTests {
  /// Runs `text`'s ops in a fresh guest: the observations, the observer's lines, the world, the facts.
  static func run(_ text: String) async throws -> (OpSequence, [[Observation]], [[String]], World, [String]) {
    let s = try SequenceFormat.parse("harness-sequence 1\n" + text)
    let a = try await GuestFixture.artifacts()
    return try await GuestSession.with(try GuestWorld.named(s.world), artifacts: a) { g in
      var lines: [[String]] = []
      let observed = s.ops.map { op in
        defer { lines.append(g.observerLines) }
        return g.apply(op)
      }
      return (s, observed, lines, g.world, g.facts)
    }
  }

  /// An AO walk from the queue's worker to the early-kill thread, and an AR walk forced on the
  /// thread that runs the trigger: the candidates and the signals the kernel generated, as the
  /// model predicts them.
  @Test func walkAndSignalsAreTheModels() async throws {
    let (s, observed, lines, world, facts) = try await Self.run(
      """
      world mf

      spawn p1
      sigbus p1 handler
      thread p1.t1
      prctl p1.t1 mce-kill 1 1
      mmap p1 addr=0x100000000000 pages=4 region=2 pgoff=0x0
      space-create s1 first=0xf8000 last=0xfbfff callback=nvgrace
      space-register s1
      inject-queue pfn=0xf8001 flags=0x0
      inject-shim p1.t0 pfn=0xf8002 flags=0x0

      """)
    #expect(facts.contains { $0.hasPrefix("fact observer attached=") }, "\(facts)")
    #expect(Differ.firstDivergence(ops: s.ops, expected: Machine.run(s.ops, in: world), observed: observed) == nil)
    let (_, decisions, _) = Machine.runWithDecisions(s.ops, in: world)
    #expect(decisions[7].count == 2 && decisions[8].count == 2)
    #expect(ObserverCheck.comparable(lines[7]) == decisions[7].map(\.description), "\(lines[7])")
    #expect(ObserverCheck.comparable(lines[8]) == decisions[8].map(\.description), "\(lines[8])")
    let d = ObserverCheck.firstDivergence(ops: s.ops, predicted: decisions, observed: lines, observations: observed)
    #expect(d == nil, "\(String(describing: d))")
  }

  /// The P2P map type of a map below one switch (C6.6: bus addresses).
  @Test func mapTypeIsTheModels() async throws {
    let (s, observed, lines, world, _) = try await Self.run(
      """
      world p2p-switch

      vfio-open x0
      export b1 x0 region=2 ranges=0x0+0x1000
      attach a1 b1 importer=i0
      map a1

      """)
    let (_, decisions, _) = Machine.runWithDecisions(s.ops, in: world)
    #expect(ObserverCheck.comparable(lines[3]) == ["map-type bus"], "\(lines)")
    #expect(ObserverCheck.firstDivergence(ops: s.ops, predicted: decisions, observed: lines, observations: observed) == nil)
  }

  /// Finding 0011's -ENOMEM (C7.1 says -EINVAL): `harness record` writes a diff.txt with the
  /// chain of the series' functions that returned it.
  @Test func divergentErrnoDiffCarriesTheErrorChain() throws {
    let tmp = NSTemporaryDirectory() + "observer-\(getpid())"
    try FileManager.default.createDirectory(atPath: tmp + "/findings", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    let seq = tmp + "/enomem.seq"
    try """
      harness-sequence 1
      world p2p-switch

      vfio-open x0
      export b2 x0 region=2 ranges=0x0+0x1000 nr=4294967295

      """.write(toFile: seq, atomically: true, encoding: .utf8)
    let r = try runHarness([
      "record", seq, "--name", "enomem", "--status", "kernel-bug", "--deviation", "export-argsz-ignores-ranges", "--summary", "s",
      "--findings", tmp + "/findings",
    ])
    #expect(r.status == 0, "\(r.err)")
    let diff = try String(contentsOfFile: tmp + "/findings/0001-enomem/diff.txt", encoding: .utf8)
    #expect(diff.contains("signature: result:-EINVAL:-ENOMEM/C7.1/export"), "\(diff)")
    let chain = try #require(diff.split(separator: "\n").first { $0.hasPrefix("error chain (libbpf observer") }, "\(diff)")
    #expect(chain.contains("vfio_pci_core_feature_dma_buf=-ENOMEM"), "\(chain)")
  }

  /// A campaign compares the decisions and says how many in summary.txt.
  @Test func campaignComparesDecisions() throws {
    let tmp = NSTemporaryDirectory() + "observer-fuzz-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    let r = try runHarness([
      "fuzz", "--seed", "1", "--count", "30", "--world", "mf", "--jobs", "1", "--minimize-budget", "0", "--reports", tmp,
    ])
    #expect(r.status == 0 || r.status == 1, "\(r.err)")
    let run = try #require(try FileManager.default.contentsOfDirectory(atPath: tmp).first)
    let summary = try String(contentsOfFile: "\(tmp)/\(run)/summary.txt", encoding: .utf8)
    let line = try #require(summary.split(separator: "\n").first { $0.hasPrefix("observer (libbpf):") }, "\(summary)")
    // `… in N sequences: map-type N, signal N, walk N`: walks were compared.
    func count(_ key: String) -> Int? {
      guard let r = line.range(of: key + " ") else { return nil }
      return Int(line[r.upperBound...].prefix(while: \.isNumber))
    }
    #expect((count("in") ?? 0) > 0 && (count("walk") ?? 0) > 0 && count("signal") == count("walk"), "\(line)")
  }
}
