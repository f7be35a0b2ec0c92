import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// `inject-mce-ar` in the guest (C5.4): the host injects only while the consuming thread spins
/// at CPL 3 (``ActionRequiredMCE``), so every injection reaches `memory_failure()` in that
/// thread and none lands in the kernel (which would panic the guest).
@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(20)))
struct GuestActionRequiredTests {
  static let p1 = ProcessName("p1")!
  static let p2 = ProcessName("p2")!

  /// 200 injections in one guest, alternating a thread whose process maps the PFN (AR to it,
  /// recovered), one whose process does not (nothing for it), and an uncovered PFN (a plain
  /// SIGBUS to a handler): each one as the model predicts (known deviations aside), no crash,
  /// and the stops it took to find the thread in its loop.
  @Test func everyInjectionLandsInTheThreadInUserMode() async throws {
    let first = World.mf.deviceMemory!.firstPFN
    let s1 = SpaceName("s1")!
    var ops: [Op] = [
      .spaceCreate(s1, first: first, last: first + 0xfff, callback: .nvgrace), .spaceRegister(s1),
      .spawn(Self.p1), .sigbus(Self.p1, .handler), .threadCreate(ThreadRef(Self.p1, 1)),
      .mmap(Self.p1, addr: 0x1000_0000_0000, pages: 4, region: 2, pgoff: 0),
      .spawn(Self.p2), .sigbus(Self.p2, .handler),
    ]
    let setup = ops.count
    for i in 0..<200 {
      switch i % 3 {
      case 0: ops.append(.injectMCEAR(ThreadRef(Self.p1, i % 2), pfn: first + UInt64(i % 4)))
      case 1: ops.append(.injectMCEAR(ThreadRef(Self.p2, 0), pfn: first + 1))
      default: ops.append(.injectMCEAR(ThreadRef(Self.p2, 0), pfn: first + 0x1001))
      }
    }
    let a = try await GuestFixture.artifacts()
    let start = ContinuousClock.now
    let (observed, world, attempts, misses) = try await GuestSession.with(
      try GuestWorld.named("mf"), artifacts: a
    ) { g in
      (ops.map { g.apply($0) }, g.world, g.actionRequiredAttempts, g.actionRequiredMisses)
    }
    let elapsed = ContinuousClock.now - start
    #expect(attempts.count == 200, "\(attempts.count) injections")
    let stops = attempts.reduce(0, +)
    let firstStop = attempts.filter { $0 == 1 }.count
    print(
      "inject-mce-ar: 200 injections in \(elapsed): \(stops) stops of the guest, \(firstStop) injected at the first stop, "
        + "at most \(attempts.max() ?? 0) stops; the CPU was in the thread's loop at CPL 3 at \(200 * 100 / max(stops, 1)) % of the stops; the others: \(misses.map { "\($0.key.rawValue) \($0.value)" }.sorted())"
    )
    for (i, obs) in observed.enumerated().dropFirst(setup) {
      #expect(
        !obs.contains { if case .guestFailure(let kind, _) = $0 { kind != "warn" } else { false } },
        "op \(i + 1): \(obs)")
    }
    if let d = GuestFixture.divergence(ops, observed: observed, world: world) {
      Issue.record("inject-mce-ar diverges:\n\(d)")
    }
  }
}
