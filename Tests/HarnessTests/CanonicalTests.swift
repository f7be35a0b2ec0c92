import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// Reports keep a signal the contract permits without requiring it (C3.5's `sig?`) as that
/// permission, whether the guest's scheduling let it arrive or not: the same kernel gives the
/// same report on a quiet host and a loaded one (CI's `killedGuestIsReplaced` saw a second AO
/// arrive in one campaign and not in the other, and the reports differed).
/// (The step of ``DifferTests``: `= 0`, one AO, a permitted second one, the event.)
@Suite struct CanonicalTests {
  static func sig(_ addr: UInt64) -> Observation { DifferTests.sig(addr) }
  static let event = DifferTests.event
  static let expected = DifferTests.expected

  @Test func aPermittedSignalIsKeptAsThePermissionWhetherItCameOrNot() {
    let came = Differ.canonical([.result(.zero), Self.sig(0x1000), Self.sig(0x2000), Self.event], expected: Self.expected)
    let not = Differ.canonical([.result(.zero), Self.sig(0x1000), Self.event], expected: Self.expected)
    #expect(came == Self.expected)
    #expect(not == Self.expected)
  }

  /// A permitted WARN (a deviation's `failure? warn`) is not the scheduling's: kept as seen.
  @Test func otherPermittedObservationsAreKeptAsSeen() {
    let warn = Observation.guestFailure(kind: "warn", detail: "WARNING: at mm/memory-failure.c")
    let expected: [Observation] = [.result(.zero), .optional(Self.sig(0x2000)), .optional(.guestFailure(kind: "warn", detail: ""))]
    #expect(Differ.canonical([.result(.zero), warn], expected: expected) == [.result(.zero), .optional(Self.sig(0x2000)), warn])
    #expect(Differ.canonical([.result(.zero)], expected: expected) == [.result(.zero), .optional(Self.sig(0x2000))])
  }

  @Test func stepsAfterTheMatchedOnesKeepWhatTheGuestShowed() {
    let observed: [[Observation]] = [[.result(.zero), Self.sig(0x1000), Self.event], [.result(.zero), Self.sig(0x1000), Self.event]]
    let c = Differ.canonical(observed, predicted: [Self.expected, Self.expected], steps: 1)
    #expect(c[0] == Self.expected)
    #expect(c[1] == observed[1])
  }

  /// The whole judgement, on the regression sequence with two VMAs over the PFN: the guest ran
  /// its handler before the second SIGBUS (it came) or not (it did not). The report is the same
  /// bytes, the observation counts the same, and so is the verdict; also when a later op
  /// diverges (a new divergence after the permitted signal).
  @Test(arguments: [false, true])
  func theReportDoesNotSayWhetherThePermittedSignalCame(divergesAfter: Bool) throws {
    let file = try Corpus.load(Paths.root + "/Corpora/regression/mf-two-vmas-one-signal.seq")
    // One more op after the injection: `sigbus p1 handler` again, which a divergence may hit.
    let s = OpSequence(world: file.world, ops: file.ops + [file.ops[1]])
    #expect(s.ops.last?.keyword == "sigbus")
    let world = try #require(World.named(s.world))
    let predicted = Machine.run(s.ops, in: world)
    let withPermitted = try #require(predicted.firstIndex { $0.contains { if case .optional(.signal) = $0 { true } else { false } } })
    func observed(came: Bool) -> [[Observation]] {
      var steps = predicted.enumerated().map { i, step in
        step.compactMap { o -> Observation? in
          switch o {
          case .optional(let x): return came ? x : nil
          case .result(.symbol): return .result(.number(Int64(100 + i)))
          default: return o
          }
        }
      }
      if divergesAfter {
        steps[steps.count - 1][0] = .result(.error(.busy))
      }
      return steps
    }
    #expect(withPermitted < predicted.count - 1)
    let a = GuestRun.judge(s, observed: observed(came: true), observer: nil, world: world, ledger: TriageTests.ledger)
    let b = GuestRun.judge(s, observed: observed(came: false), observer: nil, world: world, ledger: TriageTests.ledger)
    #expect(a.verdict == b.verdict)
    #expect(divergesAfter ? a.verdict != .match : a.verdict == .match)
    #expect(ReportWriter.describe(a) == ReportWriter.describe(b))
    #expect(a.observed == b.observed)
    var sa = CampaignStats()
    var sb = CampaignStats()
    sa.add(s, a.observed, explanation: a.explanation)
    sb.add(s, b.observed, explanation: b.explanation)
    #expect(sa == sb)
  }
}

/// `replay` prints a value the kernel chose by the model's name up to the first divergence
/// (CI's `replayAndLedgerCheckWithTwoGuests`: a guest booted on a busier host gave the same file
/// pid 35 instead of 34), and what the guest did from there on.
@Suite struct SymbolicReplayTests {
  @Test func kernelChosenValuesAreNamedUpToTheFirstDivergence() throws {
    let s = try Corpus.load(Paths.root + "/Corpora/regression/mf-ao-default-kills.seq")
    let world = try #require(World.named(s.world))
    let predicted = Machine.run(s.ops, in: world)
    let expected: [[Observation]?] = s.steps.enumerated().map { i, step in step.expected ?? predicted[i] }
    let spawn = try #require(s.ops.firstIndex { $0.keyword == "spawn" })
    #expect(expected[spawn]?.first.map { if case .result(.symbol) = $0 { true } else { false } } == true)
    func observed(pid: Int64) -> [[Observation]] {
      expected.enumerated().map { i, e in
        (e ?? []).compactMap { o -> Observation? in
          switch o {
          case .result(.symbol): return .result(.number(pid))
          case .optional: return nil
          default: return o
          }
        }
      }
    }
    let a = Differ.symbolic(ops: s.ops, expected: expected, observed: observed(pid: 34))
    let b = Differ.symbolic(ops: s.ops, expected: expected, observed: observed(pid: 35))
    #expect(a == b)
    #expect(a[spawn] == expected[spawn])
    // A divergence at the spawn itself: what the guest did, from there on.
    var failed = observed(pid: 34)
    failed[spawn] = [.result(.error(.noMemory))]
    let c = Differ.symbolic(ops: s.ops, expected: expected, observed: failed)
    #expect(c == failed)
  }
}
