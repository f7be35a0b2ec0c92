import Foundation
import Fuzz
import Reference

extension ReportWriter {
  /// `DIR/group-N/`: the group's minimized representative with the contract's predictions
  /// (sequence.seq), what the kernel did (observed.seq), the diff, its C reproducer, and
  /// group.txt (the cause, the members, how to record it).
  package func writeGroup(
    _ g: VerdictGroup, number: Int, minimized s: OpSequence, observed: [[Observation]], result: SequenceResult
  ) throws(HarnessError) {
    let folder = "group-\(number)"
    let dir = directory + "/" + folder
    guard let world = result.world ?? g.representative.world ?? World.named(g.worldName) else {
      throw HarnessError(.internal, "group-\(number): no world \(g.worldName)")
    }
    try Corpus.writeAtomically(SequenceFormat.print(s.withExpectations(Machine.run(s.ops, in: world))), to: dir + "/sequence.seq")
    try Corpus.writeAtomically(SequenceFormat.print(s.withExpectations(observed)), to: dir + "/observed.seq")
    var diff = Self.describe(result)
    if let identity { diff += "\n" + identity.inWorld(g.worldName).block }
    try Corpus.writeAtomically(diff, to: dir + "/diff.txt")
    try Corpus.writeAtomically(groupText(g, number: number, minimizedOps: s.steps.count, result: result), to: dir + "/group.txt")
    do {
      let program = try Repro.program(for: dir + "/sequence.seq", displayName: "\(folder)/sequence.seq")
      try Corpus.writeAtomically(program.source, to: dir + "/repro.c")
    } catch let e as HarnessError {
      throw e
    } catch {
      throw HarnessError(.internal, "\(dir)/repro.c: \(error)")
    }
  }

  /// group.txt: what the group is, which sequences it holds, and the `record` line that turns
  /// it into a ledger entry.
  func groupText(_ g: VerdictGroup, number: Int, minimizedOps: Int, result: SequenceResult) -> String {
    var t = "group-\(number): \(g.cause)\n"
    t += "world: \(g.worldName)\n"
    if case .deviations(let ds) = g.cause { t += "deviation: \(ds.map(\.rawValue).joined(separator: ", "))\n" }
    t += "sequences (\(g.members.count)): \(g.members.joined(separator: ", "))\n"
    t += "representative: \(g.members[0]), \(g.representative.sequence.steps.count) ops; minimized to \(minimizedOps) ops\n"
    if let sig = result.verdict.signature { t += "signature: \(sig)\n" }
    if let e = result.explanation, !e.deviations.isEmpty {
      t += "behind known deviations: \(e.deviations.map(\.rawValue).joined(separator: ", "))\n"
    }
    if case .deviations = g.cause {
      t += """

        To record it (the group's deviation is taken from this file):
          harness record \(directory)/group-\(number) --name NAME --status kernel-bug --summary "..."

        """
    } else {
      t += """

        To record it, write the deviation that predicts what the kernel does (a case of Deviation in
        Sources/Reference; Deviation.swift says how), then:
          harness record \(directory)/group-\(number) --name NAME --status kernel-bug --deviation NAME --summary "..."

        """
    }
    if let identity { t += "\n" + identity.inWorld(g.worldName).block }
    return t
  }
}
