import Foundation
import Fuzz
import Reference

/// `harness ledger check`: every ledger entry's sequence replayed on one kernel, and per entry
/// whether the kernel still diverges as recorded, now does what the contract says, or diverges
/// differently.
///
/// The rule (README, "Checking the ledger on a kernel"): an entry's `sequence.seq` runs in a
/// fresh guest of the file's world, and the guest's observations are diffed against the model's
/// predictions for the world the guest reported (as `fuzz` does). Then
/// - *fixed*: no divergence in the whole sequence;
/// - *still*: the ledger's deviations explain the whole run (``Triage``), the entry's own among
///   those used, and the first divergence from the contract is at the step where the entry's
///   `observed.seq` first diverges (any step when `observed.seq` is missing or no longer
///   diverges);
/// - *changed*: anything else (a run the deviations do not explain, one explained without the
///   entry's deviation, or the divergence at another step), reported with its diff.
/// So *fixed* means the kernel matches the contract without the entry's deviation.
enum LedgerCheck {
  /// What replaying an entry showed.
  enum Outcome: String, Sendable, Codable, CaseIterable {
    case still
    case fixed
    case changed
  }

  /// One entry's result.
  struct EntryResult: Sendable {
    var entry: Ledger.Entry
    var sequence: OpSequence
    var observed: [[Observation]]
    /// The world the guest reported (the model's predictions were made for it).
    var world: World
    /// The first divergence on this kernel, `nil` when the sequence matched.
    var divergence: Divergence?
    /// The step where the entry's `observed.seq` first diverges, when it does.
    var recordedStep: Int?
    var outcome: Outcome
    var expected: Outcome
    /// The guest's console, last lines, when the sequence did not match.
    var console: String = ""

    var isRegression: Bool { outcome != expected }
  }

  /// The outcome of an entry whose replay first diverged as `d` (`nil`: matched), where the
  /// entry's recorded run first diverged at `recordedStep`.
  static func classify(_ entry: Ledger.Entry, explanation: Explanation, divergence d: Divergence?, recordedStep: Int?) -> Outcome {
    guard let d else { return .fixed }
    guard entry.explains(explanation) else { return .changed }
    if let recordedStep, recordedStep != d.step { return .changed }
    return .still
  }

  /// What an entry should show: *fixed* for a `model-bug-fixed` entry (the model was corrected,
  /// the kernel matches it) and for the entries in `expectFixed` (the user's patch fixes them),
  /// *still* for every other entry (`kernel-bug`, `doc-mismatch`, `intended`).
  static func expectedOutcome(_ entry: Ledger.Entry, expectFixed: Set<String>) -> Outcome {
    entry.status == "model-bug-fixed" || expectFixed.contains(entry.id) ? .fixed : .still
  }

  /// The ids `--expect-fixed` (or `--only`, `flag`) names: whole ids or their number (`0006`),
  /// comma-separated. An id the ledger does not have is a usage error.
  static func resolve(_ list: [String], flag: String = "--expect-fixed", in ledger: Ledger) throws(HarnessError) -> Set<String> {
    var out: Set<String> = []
    for item in list.flatMap({ $0.split(separator: ",") }).map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
      let matches = ledger.entries.filter { $0.id == item || $0.id.hasPrefix(item + "-") }
      guard matches.count == 1 else {
        throw .usage(
          "\(flag) \(item): no ledger entry \(matches.isEmpty ? "has" : "alone has") that id; "
            + "entries: \(ledger.entries.map { String($0.id.prefix(4)) }.joined(separator: ", "))")
      }
      out.insert(matches[0].id)
    }
    return out
  }

  /// An entry's `observed.seq`, `nil` when there is none. A kernel failure's detail is the
  /// console line as it came (timestamps with runs of spaces, which the sequence format does not
  /// take); only its kind counts here, so the details are emptied before parsing.
  static func recordedRun(_ path: String) throws(HarnessError) -> OpSequence? {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> Substring in
      guard line.hasPrefix("  failure "), let kind = line.dropFirst(10).split(separator: " ").first else { return line }
      return "  failure \(kind) \"\""
    }
    do {
      return try SequenceFormat.parse(lines.joined(separator: "\n"), file: path)
    } catch {
      throw .usage("\(path): \(error)")
    }
  }

  /// The step where the recorded observations first diverge from `predicted`.
  static func recordedStep(ops: [Op], predicted: [[Observation]], recorded: OpSequence?) -> Int? {
    guard let recorded, recorded.ops == ops else { return nil }
    let observed = recorded.steps.map { $0.expected ?? [] }
    return Differ.firstDivergence(ops: ops, expected: predicted, observed: observed)?.step
  }

  /// The worlds of the entries' sequences, sorted and comma-separated (the report's world).
  static func worlds(of ledger: Ledger, directory: String) throws(HarnessError) -> String {
    var worlds: Set<String> = []
    for e in ledger.entries { worlds.insert(try Corpus.load(directory + "/" + e.id + "/sequence.seq").world) }
    return worlds.sorted().joined(separator: ",")
  }

  /// The exit status: 0 when every entry shows what it should, 1 otherwise.
  static func status(_ results: [EntryResult]) -> ExitStatus {
    results.contains(where: \.isRegression) ? .divergence : .ok
  }

  /// Replays every entry of `ledger` (entries in `directory`) on the kernel of `artifacts`, each
  /// in a fresh guest of its world, `jobs` guests at once. `onResult` is called after each
  /// entry, in the ledger's order (progress).
  static func run(
    _ ledger: Ledger, directory: String, artifacts: GuestArtifacts, expectFixed: Set<String>, jobs: Int = 1,
    onResult: (Int, EntryResult) -> Void = { _, _ in }
  ) async throws -> [EntryResult] {
    // Read every entry first: a bad file stops the check before any guest boots.
    var inputs: [(entry: Ledger.Entry, sequence: OpSequence, recorded: OpSequence?)] = []
    for entry in ledger.entries {
      let folder = directory + "/" + entry.id
      let file = folder + "/sequence.seq"
      let sequence = try Corpus.load(file)
      _ = try Corpus.world(of: sequence, file: file)
      inputs.append((entry, sequence, try recordedRun(folder + "/observed.seq")))
    }
    var results: [EntryResult] = []
    try await Parallel.forEach(inputs, jobs: jobs) { input in
      let sequence = input.sequence
      return try await GuestSession.with(try GuestWorld.named(sequence.world), artifacts: artifacts) { g in
        var observed: [[Observation]] = []
        for op in sequence.ops {
          observed.append(g.apply(op))
          if g.fatal != nil { break }
        }
        return Run(observed: observed, world: g.world, console: g.console.tail(40))
      }
    } onResult: { i, run in
      let (entry, sequence, recorded) = inputs[i]
      let predicted = Machine.run(sequence.ops, in: run.world)
      let d = Differ.firstDivergence(ops: sequence.ops, expected: predicted, observed: run.observed)
      let step = recordedStep(ops: sequence.ops, predicted: predicted, recorded: recorded)
      let r = EntryResult(
        entry: entry, sequence: sequence, observed: run.observed, world: run.world, divergence: d, recordedStep: step,
        outcome: classify(
          entry, explanation: ledger.explain(ops: sequence.ops, observed: run.observed, world: run.world), divergence: d,
          recordedStep: step),
        expected: expectedOutcome(entry, expectFixed: expectFixed), console: d == nil ? "" : run.console)
      results.append(r)
      onResult(i, r)
    }
    return results
  }

  /// One entry's run in its guest.
  private struct Run: Sendable {
    var observed: [[Observation]]
    var world: World
    var console: String
  }
}

extension LedgerCheck {
  /// One line per entry: id, outcome, and what it means against what was expected.
  static func line(_ r: EntryResult) -> String {
    let id = r.entry.id.padding(toLength: max(46, r.entry.id.count + 1), withPad: " ", startingAt: 0)
    var text = id + r.outcome.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
    switch r.outcome {
    case .still:
      let d = r.divergence!
      text += "\(d.signature) at step \(d.step + 1), as recorded"
    case .fixed:
      text += "the kernel does what the contract says for the whole sequence"
    case .changed:
      let d = r.divergence!
      text += "\(d.signature) at step \(d.step + 1)"
      text += r.recordedStep.map { ", recorded at step \($0 + 1)" } ?? ""
    }
    if r.isRegression {
      text += "  [expected \(r.expected.rawValue)]"
      if r.outcome == .fixed, r.expected == .still {
        text += " (if your change fixes it: --expect-fixed \(r.entry.id.prefix(4)))"
      }
    }
    return text
  }

  /// The text report: a title, the kernel, one line per entry, the diff of every changed
  /// entry, and a closing count.
  static func text(_ results: [EntryResult], identity: KernelIdentity) -> String {
    var out = "harness ledger check: \(results.count) entries on \(identity.source)\n"
    for r in results { out += line(r) + "\n" }
    for r in results where r.outcome == .changed || (r.isRegression && r.divergence != nil) {
      out += "\n\(r.entry.id): \(r.outcome == .changed ? "diverges differently" : "diverges") (world \(r.sequence.world))\n"
      out += ReportWriter.describe(SequenceResult(sequence: r.sequence, observed: r.observed, verdict: .divergence(r.divergence!)))
    }
    out += "\n" + summaryLine(results) + "\n"
    return out
  }

  static func summaryLine(_ results: [EntryResult]) -> String {
    let counts = Outcome.allCases.map { o in "\(o.rawValue) \(results.count { $0.outcome == o })" }
    let bad = results.count(where: \.isRegression)
    return "entries \(results.count): \(counts.joined(separator: ", ")); "
      + (bad == 0 ? "as expected" : "\(bad) not as expected: \(results.filter(\.isRegression).map { String($0.entry.id.prefix(4)) }.joined(separator: ", "))")
  }

  /// KTAP: an entry that shows what was expected is `ok` (a known finding still there is
  /// `# XFAIL`, as in a campaign's KTAP); anything else is `not ok`.
  static func ktap(_ results: [EntryResult]) -> String {
    var out = "KTAP version 1\n1..\(results.count)\n"
    for (i, r) in results.enumerated() {
      let n = i + 1
      let what: String =
        switch r.outcome {
        case .still: "still \(r.divergence!.signature)"
        case .fixed: "fixed"
        case .changed: "changed \(r.divergence!.signature) at step \(r.divergence!.step + 1)"
        }
      if r.isRegression {
        out += "not ok \(n) \(r.entry.id) # \(what), expected \(r.expected.rawValue)\n"
      } else if r.outcome == .still {
        out += "ok \(n) \(r.entry.id) # XFAIL \(what)\n"
      } else {
        out += "ok \(n) \(r.entry.id)\n"
      }
    }
    return out
  }

  /// `summary.json`: the kernel, and per entry its status, outcome, expectation and divergence.
  static func json(_ results: [EntryResult], identity: KernelIdentity) -> String {
    struct Entry: Codable {
      var id, status, outcome, expected: String
      var ok: Bool
      var signature: String?
      var step: Int?
      var recorded_step: Int?
      var fix: String?
    }
    struct Summary: Codable {
      var command: String
      var identity: [String: String]
      var entries: [Entry]
      var not_as_expected: Int
    }
    let s = Summary(
      command: "ledger check", identity: identity.json,
      entries: results.map {
        Entry(
          id: $0.entry.id, status: $0.entry.status, outcome: $0.outcome.rawValue, expected: $0.expected.rawValue,
          ok: !$0.isRegression, signature: $0.divergence?.signature.description, step: $0.divergence.map { $0.step + 1 },
          recorded_step: $0.recordedStep.map { $0 + 1 }, fix: $0.entry.fix)
      }, not_as_expected: results.count(where: \.isRegression))
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: (try? enc.encode(s)) ?? Data(), as: UTF8.self) + "\n"
  }

  /// Writes `summary.txt`, `ktap.txt`, `summary.json` into `directory`, and for every entry
  /// that diverged otherwise than expected a folder with its `observed.seq`, `diff.txt` (the
  /// kernel's identity under it) and `console.log`.
  static func write(_ results: [EntryResult], identity: KernelIdentity, to directory: String) throws(HarnessError) {
    try Corpus.writeAtomically(text(results, identity: identity) + "\n" + identity.block, to: directory + "/summary.txt")
    try Corpus.writeAtomically(ktap(results), to: directory + "/ktap.txt")
    try Corpus.writeAtomically(json(results, identity: identity), to: directory + "/summary.json")
    for r in results where r.isRegression {
      let dir = directory + "/" + r.entry.id
      try Corpus.writeAtomically(SequenceFormat.print(r.sequence.withExpectations(r.observed)), to: dir + "/observed.seq")
      let verdict: Verdict = r.divergence.map { .divergence($0) } ?? .match
      let diff = ReportWriter.describe(SequenceResult(sequence: r.sequence, observed: r.observed, verdict: verdict))
      try Corpus.writeAtomically(diff + "\n" + identity.inWorld(r.sequence.world).block, to: dir + "/diff.txt")
      if !r.console.isEmpty { try Corpus.writeAtomically(r.console + "\n", to: dir + "/console.log") }
    }
  }
}
