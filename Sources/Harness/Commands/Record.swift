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
      finding.txt (deviation, signature, status, contract item, summary), sequence.seq (the \
      ops with the contract's predictions), observed.seq (what the target did), diff.txt, \
      repro.c (a C reproducer, see `harness repro`) and, from a guest run, console.log.

      A finding starts life as a deviation: what the kernel does instead of the contract, \
      written as a case of Deviation in Sources/Reference (Deviation.swift says how). --deviation \
      names it, and record refuses the entry (exit 2) unless the ledger's deviations with this \
      one predict every observation of the run, this one among those used. From then on, runs \
      it explains are reported as known. A model-bug-fixed entry has no deviation (the model \
      was corrected instead).

      A campaign's group folder (REPORTS/RUN/group-N, written by `fuzz` for each group of new \
      verdicts) can be given instead of a file: its minimized sequence.seq is recorded, and when \
      the model's deviations explained the group, its group.txt names them (no --deviation needed).

      Examples:
        harness record reports/fuzz-all-1-100000-l30-both/group-1 --name drops-others \\
          --status kernel-bug --summary "unregistering an overlapping space removes registered ones"
        harness record reports/fuzz-mf-1-100-l30-both/seed-17/sequence.seq --target qemu \\
          --name unregister-drops-others --status kernel-bug --deviation unregister-by-overlap \\
          --summary "unregistering an unregistered overlapping space removes registered ones"
      """)

  @Argument(help: "The diverging sequence, or a campaign's group folder (REPORTS/RUN/group-N).") var file: String
  @Option(help: "Short name (lower case, dashes) for the entry's folder.") var name: String
  @Option(help: "kernel-bug, doc-mismatch, model-bug-fixed or intended.") var status: String
  @Option(help: "One line: what the kernel does against what the contract says.") var summary: String
  @Option(help: ArgumentHelp("The deviation (Sources/Reference, Deviation) that predicts what the kernel does; repeat for more.", valueName: "NAME"))
  var deviation: [String] = []
  @Option(help: "Where the sequence runs: qemu (default) or model.") var target: Target = .qemu
  @Option(help: "The ledger directory.") var findings: String = "Corpora/findings"
  @OptionGroup(title: "Kernel under test") var kernel: KernelOptions

  func validate() throws {
    // One line: finding.txt is `key: value` lines, and a newline would add keys of its own.
    if let bad = summary.unicodeScalars.first(where: { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" }) {
      throw ValidationError(
        "--summary: one line of text without control characters (found U+\(String(bad.value, radix: 16, uppercase: true).leftPad(4)))")
    }
    guard !summary.trimmingCharacters(in: .whitespaces).isEmpty, summary.count <= 300 else {
      throw ValidationError("--summary: one line of 1 to 300 characters (got \(summary.count))")
    }
    guard Ledger.statuses.contains(status) else {
      throw ValidationError("--status must be one of \(Ledger.statuses.joined(separator: ", "))")
    }
    guard name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }), (1...60).contains(name.count) else {
      throw ValidationError("--name \(name.prefix(80)): use 1 to 60 lower-case letters, digits and dashes")
    }
    let known = Deviation.allCases.map(\.rawValue).joined(separator: ", ")
    for d in deviation where Deviation(rawValue: d) == nil {
      throw ValidationError("--deviation \(d): no such deviation; known: \(known) (a new one is a case of Deviation in Sources/Reference)")
    }
    if status == "model-bug-fixed" {
      guard deviation.isEmpty else { throw ValidationError("a model-bug-fixed entry has no --deviation: the model was corrected") }
    } else if deviation.isEmpty, Self.groupDeviations(file).isEmpty {
      throw ValidationError("--deviation NAME is needed for a \(status) entry: the deviation that predicts what the kernel does (known: \(known))")
    }
  }

  /// The deviations a campaign's group folder names (its group.txt's `deviation:` line); none
  /// for a file or a group the model's deviations did not explain.
  static func groupDeviations(_ path: String) -> [String] {
    guard let text = try? String(contentsOfFile: path + "/group.txt", encoding: .utf8),
      let line = text.split(separator: "\n").first(where: { $0.hasPrefix("deviation: ") })
    else { return [] }
    return line.dropFirst("deviation: ".count).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
  }

  /// `text` with its control characters (a newline in a tree's path) as spaces.
  static func oneLine(_ text: String) -> String {
    String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : $0 }))
  }

  func run() async throws {
    var isDirectory: ObjCBool = false
    let isGroup = FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) && isDirectory.boolValue
    if isGroup, !FileManager.default.fileExists(atPath: file + "/group.txt") {
      throw HarnessError.usage("\(file): a directory, but not a campaign's group folder (no group.txt); give a sequence file")
    }
    let file = isGroup ? file + "/sequence.seq" : file
    let deviation = deviation.isEmpty && isGroup && status != "model-bug-fixed" ? Self.groupDeviations(self.file) : deviation
    let s = try Corpus.load(file).bare
    var world = try Corpus.world(of: s, file: file)
    var observed: [[Observation]]
    var console: String?
    var observer: [[String]]?
    var identity = KernelIdentity.modelOnly(world: s.world)
    if target == .model {
      observed = Machine.run(s.ops, in: world)
    } else {
      let artifacts = try await kernel.build()
      identity = artifacts.identity.inWorld(s.world)
      (observed, world, console, observer) = try await GuestSession.with(try GuestWorld.named(s.world), artifacts: artifacts) { g in
        var lines: [[String]] = []
        let o = s.ops.map { op in
          defer { lines.append(g.observerLines) }
          return g.apply(op)
        }
        return (o, g.world, g.console.tail(400), g.hasObserver ? lines : nil)
      }
    }
    let predicted = Machine.run(s.ops, in: world)
    guard let d = Differ.firstDivergence(ops: s.ops, expected: predicted, observed: observed) else {
      throw HarnessError.usage("\(file): no divergence on \(target.rawValue); nothing to record")
    }
    let deviations = deviation.compactMap(Deviation.init(rawValue:))
    if !deviations.isEmpty {
      // The entry's deviation must explain its own run, with those the ledger already has.
      let ledger = try Ledger.load(findings)
      let e = Triage.explain(ops: s.ops, observed: observed, world: world, candidates: ledger.deviations.union(deviations))
      guard e.isExplained, e.deviations.contains(where: deviations.contains) else {
        let why =
          e.unexplained.map { "step \($0.step + 1) (\(SequenceFormat.print($0.op))) is not predicted: \($0.signature)" }
          ?? "the run is explained without it, by \(e.deviations.map(\.rawValue).joined(separator: ", "))"
        throw HarnessError.usage(
          "\(file): --deviation \(deviation.joined(separator: ",")) does not explain the run on \(target.rawValue): \(why); "
            + "write or fix the deviation in Sources/Reference first")
      }
    }
    let existing = (try? FileManager.default.contentsOfDirectory(atPath: findings)) ?? []
    let next = (existing.compactMap { Int($0.prefix(4)) }.max() ?? 0) + 1
    let id = String(format: "%04d-%@", next, name)
    let dir = "\(findings)/\(id)"
    let entry = """
      # \(summary)
      signature: \(d.signature)
      status: \(status)\(deviations.isEmpty ? "" : "\ndeviation: " + deviation.joined(separator: ", "))
      contract: \(d.signature.item)
      summary: \(summary)
      kernel: \(Self.oneLine(identity.line))

      """
    try Corpus.writeAtomically(entry, to: dir + "/finding.txt")
    try Corpus.writeAtomically(SequenceFormat.print(s.withExpectations(predicted)), to: dir + "/sequence.seq")
    try Corpus.writeAtomically(SequenceFormat.print(s.withExpectations(observed)), to: dir + "/observed.seq")
    var r = SequenceResult(sequence: s, observed: observed, verdict: .divergence(d))
    r.observerLines = observer
    try Corpus.writeAtomically(ReportWriter.describe(r) + "\n" + identity.block, to: dir + "/diff.txt")
    if let console { try Corpus.writeAtomically(console + "\n", to: dir + "/console.log") }
    // The standalone reproducer people receive with the finding.
    try Corpus.writeAtomically(
      try Repro.program(for: dir + "/sequence.seq", displayName: "Corpora/findings/\(id)/sequence.seq").source,
      to: dir + "/repro.c")
    print("recorded \(dir): \(d.signature)")
  }
}

extension String {
  fileprivate func leftPad(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
