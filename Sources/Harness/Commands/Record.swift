import ArgumentParser
import Foundation
import Fuzz
import Reference

/// `harness record`: add a findings-ledger entry for a diverging sequence.
struct Record: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Record a divergence in the findings ledger (Corpora/findings).",
    discussion: """
      Runs the sequence (a report's sequence.seq, or any sequence file) on the target, finds \
      its first divergence from the contract, and writes Corpora/findings/NNNN-NAME/ with \
      finding.txt (signature, status, contract item, summary), sequence.seq (the ops with the \
      contract's predictions), observed.seq (what the target did), diff.txt, repro.c (a \
      standalone C reproducer, see `harness repro`) and, from a guest run, console.log. From then on that signature is reported as known.

      Example:
        harness record reports/fuzz-mf-1-100-l30-both/seed-17/sequence.seq --target qemu \\
          --name unregister-drops-others --status kernel-bug \\
          --summary "unregistering an unregistered overlapping space removes registered ones"
      """)

  @Argument(help: "The diverging sequence.") var file: String
  @Option(help: "Short name (lower case, dashes) for the entry's folder.") var name: String
  @Option(help: "kernel-bug, doc-mismatch, model-bug-fixed or intended.") var status: String
  @Option(help: "One line: what the kernel does against what the contract says.") var summary: String
  @Option(help: "Where the sequence runs: qemu (default) or model.") var target: Target = .qemu
  @Option(help: "The ledger directory.") var findings: String = "Corpora/findings"
  @OptionGroup(title: "Kernel under test") var kernel: KernelOptions

  func validate() throws {
    guard Ledger.statuses.contains(status) else {
      throw ValidationError("--status must be one of \(Ledger.statuses.joined(separator: ", "))")
    }
    guard name.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" }), !name.isEmpty else {
      throw ValidationError("--name \(name): use lower-case letters, digits and dashes")
    }
  }

  func run() async throws {
    let s = try Corpus.load(file).bare
    var world = try Corpus.world(of: s, file: file)
    var observed: [[Observation]]
    var console: String?
    var identity = KernelIdentity.modelOnly(world: s.world)
    if target == .model {
      observed = Machine.run(s.ops, in: world)
    } else {
      let artifacts = try await kernel.build()
      identity = artifacts.identity.inWorld(s.world)
      (observed, world, console) = try await GuestSession.with(try GuestWorld.named(s.world), artifacts: artifacts) { g in
        (s.ops.map { g.apply($0) }, g.world, g.console.tail(400))
      }
    }
    let predicted = Machine.run(s.ops, in: world)
    guard let d = Differ.firstDivergence(ops: s.ops, expected: predicted, observed: observed) else {
      throw HarnessError.usage("\(file): no divergence on \(target.rawValue); nothing to record")
    }
    let existing = (try? FileManager.default.contentsOfDirectory(atPath: findings)) ?? []
    let next = (existing.compactMap { Int($0.prefix(4)) }.max() ?? 0) + 1
    let id = String(format: "%04d-%@", next, name)
    let dir = "\(findings)/\(id)"
    let entry = """
      # \(summary)
      signature: \(d.signature)
      status: \(status)
      contract: \(d.signature.item)
      summary: \(summary)
      kernel: \(identity.line)

      """
    try Corpus.writeAtomically(entry, to: dir + "/finding.txt")
    try Corpus.writeAtomically(SequenceFormat.print(s.withExpectations(predicted)), to: dir + "/sequence.seq")
    try Corpus.writeAtomically(SequenceFormat.print(s.withExpectations(observed)), to: dir + "/observed.seq")
    let r = SequenceResult(sequence: s, observed: observed, verdict: .divergence(d))
    try Corpus.writeAtomically(ReportWriter.describe(r) + "\n" + identity.block, to: dir + "/diff.txt")
    if let console { try Corpus.writeAtomically(console + "\n", to: dir + "/console.log") }
    // The standalone reproducer people receive with the finding.
    try Corpus.writeAtomically(
      try Repro.program(for: dir + "/sequence.seq", displayName: "Corpora/findings/\(id)/sequence.seq").source,
      to: dir + "/repro.c")
    print("recorded \(dir): \(d.signature)")
  }
}
