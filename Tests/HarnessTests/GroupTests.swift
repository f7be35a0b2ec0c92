import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// New verdicts gathered by root cause (``RootCause``, ``VerdictGroup``), without a guest: the
/// ledger's recorded kernel runs judged against an empty ledger are grouped by the model's
/// deviation that explains them, whatever their first difference looks like.
@Suite struct GroupTests {
  static let empty = Ledger()

  static func result(_ number: String) throws -> (SequenceResult, World) {
    let r = try TriageTests.recorded(number)
    let s = OpSequence(world: r.world.name, ops: r.ops)
    let d = try #require(Differ.firstDivergence(ops: r.ops, expected: Machine.run(r.ops, in: r.world), observed: r.observed))
    var out = SequenceResult(sequence: s, observed: r.observed, verdict: .divergence(d))
    out.world = r.world
    out.triage(empty, world: r.world)
    return (out, r.world)
  }

  /// With no ledger, each kernel finding's run is new and grouped by its entry's deviations.
  @Test(arguments: TriageTests.kernelEntries)
  func aFindingsRunIsGroupedByItsDeviation(id: String) throws {
    let (r, world) = try Self.result(String(id.prefix(4)))
    #expect(r.knownIDs(Self.empty) == nil)
    let entry = try #require(TriageTests.ledger.entries.first { $0.id == id })
    let cause = r.rootCause(Self.empty, world: world)
    guard case .deviations(let ds) = cause else {
      Issue.record("\(id): \(String(describing: cause))")
      return
    }
    #expect(ds.allSatisfy(entry.deviations.contains), "\(id): \(ds)")
    // With the full ledger the same deviations are known: nothing beyond it is left to group by.
    #expect(r.rootCause(TriageTests.ledger, world: world) == .unexplained(r.verdict.signature!))
  }

  /// A run nothing explains is grouped by its first unexplained observation.
  @Test func anUnexplainedRunIsGroupedByItsFirstUnexplainedObservation() throws {
    let s1 = SpaceName("s1")!
    let ops: [Op] = [.spaceCreate(s1, first: 0xf8000, last: 0xf8fff, callback: .nvgrace), .spaceRegister(s1)]
    let observed: [[Observation]] = [[.result(.zero)], [.result(.error(Errno(16)))]]
    let d = try #require(Differ.firstDivergence(ops: ops, expected: Machine.run(ops, in: .mf), observed: observed))
    var r = SequenceResult(sequence: OpSequence(world: "mf", ops: ops), observed: observed, verdict: .divergence(d))
    r.triage(Self.empty, world: .mf)
    #expect(r.rootCause(Self.empty, world: .mf) == .unexplained(d.signature))
  }

  static func group(_ cause: RootCause, _ names: [String]) throws -> VerdictGroup {
    let (r, _) = try Self.result("0001")
    var g = VerdictGroup(cause: cause, members: [names[0]], representative: r, worldName: "mf")
    g.members = names
    return g
  }

  /// A group whose runs needed two deviations joins the first one's group when both have their
  /// own; one whose second deviation has no group of its own stays (it is that one's evidence).
  @Test func groupsOfSeveralDeviationsJoinTheSingleOnes() throws {
    let a = try Self.group(.deviations([.killOutsideVMA]), ["seed-1", "seed-2"])
    let b = try Self.group(.deviations([.mceWarnsOnPFNMap]), ["seed-3"])
    let ab = try Self.group(.deviations([.killOutsideVMA, .mceWarnsOnPFNMap]), ["seed-4"])
    let ac = try Self.group(.deviations([.killOutsideVMA, .queueSoftOffline]), ["seed-5"])
    let out = VerdictGroup.ordered([a, b, ab, ac])
    #expect(out.map(\.cause) == [.deviations([.killOutsideVMA]), .deviations([.killOutsideVMA, .queueSoftOffline]), .deviations([.mceWarnsOnPFNMap])])
    #expect(out[0].members == ["seed-1", "seed-2", "seed-4"] && out[0].joined == 1)
    #expect(out[0].summaryLines(1).hasPrefix(
      "  group-1: explained by deviation kill-outside-vma (no ledger entry): 3 sequence(s) (1 with other groups' deviations too): seed-1, seed-2, seed-4\n"))
  }

  /// The summary lists the groups, each with where its minimized sequence is.
  @Test func summaryListsGroupsWithTheirMinimizedSequence() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("groups-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var g = try Self.group(.deviations([.killOutsideVMA]), ["seed-1", "seed-2"])
    g.minimized = .init(folder: "group-1", ops: 6, runs: 40, cut: nil)
    try ReportWriter(directory: dir, title: "t").writeSummary(results: [], stats: CampaignStats(), groups: [g])
    let txt = try String(contentsOfFile: dir + "/summary.txt", encoding: .utf8)
    #expect(txt.contains("new groups: 1\n  group-1: explained by deviation kill-outside-vma (no ledger entry): 2 sequence(s): seed-1, seed-2\n    minimized \(g.representative.sequence.steps.count) -> 6 ops in 40 runs: group-1/\n"), "\(txt)")
    let json = try String(contentsOfFile: dir + "/summary.json", encoding: .utf8)
    #expect(json.contains("\"minimized_ops\" : \"6\""), "\(json)")
  }

  @Test func minimizeBudgetIsRunsOrTime() {
    #expect(MinimizeBudget(argument: "300") == .runs(300))
    #expect(MinimizeBudget(argument: "0")?.isZero == true)
    #expect(MinimizeBudget(argument: "90s") == .time(.seconds(90)))
    #expect(MinimizeBudget(argument: "-1") == nil)
    #expect(MinimizeBudget(argument: "lots") == nil)
  }

  /// A shrinker cut by its bound says so.
  @Test func aCutShrinkSaysSo() {
    let ops: [Op] = Array(repeating: .spawn(ProcessName("p1")!), count: 8)
    var shrinker = Shrinker(budget: 2)
    _ = shrinker.shrink(OpSequence(world: "mf", ops: ops)) { $0.ops.count >= 1 }
    #expect(shrinker.wasCut && shrinker.evaluations == 2)
    var free = Shrinker()
    _ = free.shrink(OpSequence(world: "mf", ops: ops)) { $0.ops.count >= 1 }
    #expect(!free.wasCut)
  }
}
