import Foundation
import Fuzz
import Reference

/// The verdict on one sequence.
package enum Verdict: Hashable, Sendable {
  case match
  case divergence(Divergence)
  /// The model broke its own invariant (a harness bug, reported with its sequence).
  case modelInvariant(step: Int, message: String)
  /// The host, not the kernel, ended every run of the sequence (QEMU killed or stopped from
  /// outside, a stall in which the guest did not run): no verdict on the kernel.
  case hostFault(String)

  package var signature: Signature? {
    switch self {
    case .match: nil
    case .divergence(let d): d.signature
    case .modelInvariant(let step, _):
      Signature(kind: "model-invariant", item: "harness", op: "step\(step)")
    case .hostFault:
      Signature(kind: "host-fault", item: "harness", op: "host")
    }
  }

  /// Whether this is a host fault (``hostFault(_:)``), not a verdict on the kernel or model.
  package var isHostFault: Bool {
    if case .hostFault = self { true } else { false }
  }
}

/// One sequence's verdict in a campaign, with the ledger entries that explain it.
package struct VerdictLine: Sendable {
  package var name: String
  package var verdict: Verdict
  /// The findings-ledger ids whose deviations explain the whole run (comma-separated), if the
  /// divergence is known.
  package var known: String?
  /// How the run was explained: the deviations used, or for a new verdict the known ones that
  /// explained everything before it; `nil` for a run on the model alone.
  package var explanation: Explanation? = nil
  package var isNew: Bool { verdict != .match && !verdict.isHostFault && known == nil }

  package init(name: String, verdict: Verdict, known: String?, explanation: Explanation? = nil) {
    self.name = name
    self.verdict = verdict
    self.known = known
    self.explanation = explanation
  }

  /// The deviations the verdict used, for reports: `deviations: a, b` or `behind: a, b`.
  var deviationNote: String? {
    guard let e = explanation, !e.deviations.isEmpty else { return nil }
    let names = e.deviations.map(\.rawValue).joined(separator: ", ")
    var note = (e.isExplained ? "deviations: " : "behind known deviations: ") + names
    if let u = e.undefinedAt { note += "; state undefined from step \(u + 1), not compared after" }
    return note
  }
}

/// The outcome of one sequence of a campaign.
package struct SequenceResult: Sendable {
  package var sequence: OpSequence
  package var observed: [[Observation]]
  package var verdict: Verdict
  /// The guest's console around the run, when it ran in a guest and did not match.
  package var console: String? = nil
  /// The world the guest reported (the model's predictions were made for it).
  package var world: World? = nil

  /// How the contract and the ledger's deviations explain the run (``Triage``); `nil` when it
  /// was not judged against a ledger.
  package var explanation: Explanation? = nil

  /// The model's rules the contract prediction took (model-rule coverage), when counted.
  package var ruleHits: RuleHits? = nil

  /// The guest's libbpf observer lines of each op (`bpf …` without the prefix: the kernel's
  /// decisions and error chains), when the guest had the observer.
  package var observerLines: [[String]]? = nil

  /// `SOURCE:LINE` of the series' kernel lines the guest ran since the sequence before (its
  /// reset included), when each sequence's counts were collected (`fuzz --guided --coverage`).
  package var kernelLines: Set<String>? = nil
  /// The same, while the host works them out beside the next sequence (``PendingLines``).
  package var pendingKernelLines: PendingLines? = nil

  /// Seeds that ran on the same guest before this sequence, without a snapshot restore in
  /// between, when the verdict appeared only after them (on a freshly restored guest the
  /// sequence matched).
  package var carriedAfter: [UInt64] = []

  package init(sequence: OpSequence, observed: [[Observation]], verdict: Verdict, console: String? = nil) {
    self.sequence = sequence
    self.observed = observed
    self.verdict = verdict
    self.console = console
  }

  /// This result, as met after `seeds` ran on the same guest: a divergence's signature kind
  /// gets the prefix `carried-` (never the ledger's standalone entry), and the report says
  /// which seeds came before.
  package func carried(after seeds: [UInt64]) -> SequenceResult {
    var r = self
    r.carriedAfter = seeds
    if case .divergence(var d) = verdict {
      d.signature.kind = "carried-" + d.signature.kind
      r.verdict = .divergence(d)
    }
    return r
  }
}

/// Counts over a campaign, for the summary.
package struct CampaignStats: Sendable, Codable, Equatable {
  package var sequences = 0
  package var ops = 0
  package var opCounts: [String: Int] = [:]
  package var observationCounts: [String: Int] = [:]
  package var errnoResults = 0
  /// Ops whose observations were compared (up to the end of the sequence, an undefined state, a
  /// new divergence, or a dead guest); `nil` for a campaign on the model alone.
  package var comparedOps: Int? = nil
  /// Sequences compared to their last op.
  package var comparedToEnd: Int? = nil
  /// How often each deviation took part in explaining a verdict (known ones and those a new one
  /// sits behind).
  package var deviationUses: [String: Int] = [:]
  /// How often each model rule (``Rule``, by name) was taken by the contract's predictions.
  package var rules: [String: Int] = [:]
  /// The rules no sequence took, by name.
  package var rulesNeverTaken: [String] = Rule.allCases.map(\.rawValue).sorted()
  /// Per op field, the values of each input class the campaign's ops held (InputClasses).
  package var inputClasses = InputCensus()
  /// How many sequences reached each rare outcome (``Outcome``), of those that could.
  package var outcomes = OutcomeCounts()
  /// The libbpf observer's lines by keyword (`walk`, `signal`, `map-type` compared with the
  /// model's decisions; `error-chain` for triage), over the sequences that ran with it; `nil`
  /// when none did (a campaign on the model, a kernel without BTF).
  package var observer: [String: Int]? = nil

  package init() {}

  /// `rules: N of M taken`, and the ones never taken.
  package var rulesLines: [String] {
    guard !rules.isEmpty else { return [] }
    var out = ["rules: \(Rule.allCases.count - rulesNeverTaken.count) of \(Rule.allCases.count) model rules taken"]
    out += rules.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value)" }
    if !rulesNeverTaken.isEmpty {
      out.append("rules never taken:")
      out += rulesNeverTaken.map { "  " + $0 }
    }
    return out
  }

  /// Counts the rules of one sequence.
  package mutating func add(rules hits: RuleHits) {
    for (r, n) in hits.counts { rules[r.rawValue, default: 0] += n }
    if !hits.counts.isEmpty { rulesNeverTaken.removeAll { name in hits.counts.keys.contains { $0.rawValue == name } } }
  }

  /// Counts the observer's decisions of one sequence when they were compared (its observations
  /// matched); `sequences` counts the compared sequences. Error chains are not counted: they
  /// serve triage (diff.txt), and a divergent sequence's kernel state is not the model's.
  package mutating func add(observer lines: [[String]], compared: Bool) {
    var counts = observer ?? [:]
    if compared {
      counts["sequences", default: 0] += 1
      for l in lines.joined() where ObserverCheck.comparedKinds.contains(ObserverCheck.keyword(l)) {
        counts[ObserverCheck.keyword(l), default: 0] += 1
      }
    }
    observer = counts
  }

  /// `observer (libbpf): …`, when some sequence ran with the libbpf observer.
  package var observerLine: String? {
    guard let observer else { return nil }
    let compared = ObserverCheck.comparedKinds.sorted().map { "\($0) \(observer[$0] ?? 0)" }.joined(separator: ", ")
    return "observer (libbpf): kernel decisions compared with the model's in \(observer["sequences"] ?? 0) sequences: \(compared)"
  }

  /// `compared: N of M ops (P %), K of S sequences to the end`, when the campaign compared.
  package var comparedLine: String? {
    guard let comparedOps, let comparedToEnd, ops > 0 else { return nil }
    let permille = comparedOps * 1000 / ops
    return "compared: \(comparedOps) of \(ops) ops (\(permille / 10).\(permille % 10) %), \(comparedToEnd) of \(sequences) sequences to the end"
  }

  package mutating func add(_ s: OpSequence, _ observed: [[Observation]], explanation: Explanation? = nil) {
    sequences += 1
    ops += s.steps.count
    if let e = explanation {
      comparedOps = (comparedOps ?? 0) + e.comparedOps
      comparedToEnd = (comparedToEnd ?? 0) + (e.comparedOps == s.steps.count ? 1 : 0)
      for d in e.deviations { deviationUses[d.rawValue, default: 0] += 1 }
    }
    for op in s.ops { opCounts[op.keyword, default: 0] += 1 }
    // Classified against the built-in world of that name (a guest's facts move BARs and RAM,
    // not the classes' edges that matter).
    if let world = World.named(s.world) {
      for op in s.ops { inputClasses.add(op, world: world) }
      outcomes.add(Outcome.reached(s.ops, observed), world: world)
    }
    for obs in observed {
      for o in obs {
        let k: String
        switch o {
        case .result(.error): errnoResults += 1; continue
        case .result: continue
        case .signal(_, _, let code, _, _):
          k = code == SignalCode.actionRequired ? "signal-AR" : "signal-AO"
        case .processEnd(_, .killed): k = "killed"
        case .processEnd: k = "exited"
        case .memoryFailure(_, _, let r): k = "event-\(r.name)"
        case .notify: k = "notify"
        case .importer: k = "importer"
        case .sgTable: k = "sgt"
        case .fdinfo: k = "fdinfo"
        case .bufinfo: k = "bufinfo"
        case .dmabufTrace: k = "trace"
        case .guestFailure: k = "guest-failure"
        case .optional: continue  // only predicted, never observed
        }
        observationCounts[k, default: 0] += 1
      }
    }
  }
}

/// Writes `reports/<run-id>/`: summary.txt, summary.json, ktap.txt and one folder per verdict.
///
/// Deterministic: no clocks, no host names; the same campaign writes the same bytes.
package struct ReportWriter {
  package var directory: String
  package var title: String
  /// The kernel the campaign ran on (its world set per verdict), written into every file.
  package var identity: KernelIdentity?

  package init(directory: String, title: String, identity: KernelIdentity? = nil) {
    self.directory = directory
    self.title = title
    self.identity = identity
  }

  /// One folder per non-matching sequence: the sequence with the model's predictions, the
  /// observed run, and the diff. Written atomically before the campaign moves on.
  /// `sequence.seq` carries the contract's predictions (replay it anywhere to compare),
  /// `observed.seq` what was observed, `diff.txt` the first divergence side by side.
  package func writeVerdict(_ r: SequenceResult, name: String, world: World, worldName: String? = nil) throws(HarnessError) {
    let dir = directory + "/" + name
    let predicted = r.sequence.withExpectations(Machine.run(r.sequence.ops, in: world))
    try Corpus.writeAtomically(SequenceFormat.print(predicted), to: dir + "/sequence.seq")
    try Corpus.writeAtomically(SequenceFormat.print(r.sequence.withExpectations(r.observed)), to: dir + "/observed.seq")
    var diff = Self.describe(r)
    if let identity { diff += "\n" + identity.inWorld(worldName ?? world.name).block }
    try Corpus.writeAtomically(diff, to: dir + "/diff.txt")
  }

  /// The human text of a verdict: what the contract predicted next to what happened.
  package static func describe(_ r: SequenceResult) -> String {
    var out = ""
    if let first = r.carriedAfter.first {
      out += """
        Seen only after seeds \(r.carriedAfter.map(String.init).joined(separator: ", ")) ran on the same guest \
        (clean resets by the agent, no snapshot restore in between); on a freshly restored guest this \
        sequence matched. Kernel state carried from one sequence to the next: rerun the chain with \
        `harness fuzz --seed \(first) --count \(r.carriedAfter.count + 1)` and the same --world and --length.


        """
    }
    switch r.verdict {
    case .match: return out + "match\n"
    case .modelInvariant(let step, let message):
      out += "model invariant broken after step \(step + 1): \(message)\n"
      out += "op: \(SequenceFormat.print(r.sequence.steps[step].op))\n"
    case .hostFault(let message):
      out += "host fault, no verdict on the kernel: \(message)\n"
    case .divergence(let d):
      out += "divergence at step \(d.step + 1): \(SequenceFormat.print(d.op))\n"
      out += "signature: \(d.signature)\n\n"
      out += sideBySide(expected: d.expected, observed: d.observed)
      if let k = d.decisions {
        out += "\nthe kernel's decisions differ (libbpf observer):\n"
        out += sideBySide(lines: k.expected, k.observed, headers: ("expected (contract)", "observed (kernel)"))
      }
      if let lines = r.observerLines, d.step < lines.count, let chain = ObserverCheck.errorChain(lines[d.step]) {
        out += "\nerror chain (libbpf observer, innermost first): \(chain)\n"
      }
    }
    return out
  }

  /// Two columns: the contract's prediction and the observation.
  /// `headers`: the columns' titles (two kernels compared: `--compare-kernel`).
  package static func sideBySide(
    expected: [Observation], observed: [Observation], headers: (String, String) = ("expected (contract)", "observed")
  ) -> String {
    sideBySide(lines: expected.map(SequenceFormat.print), observed.map(SequenceFormat.print), headers: headers)
  }

  /// Two columns of lines.
  static func sideBySide(lines expected: [String], _ observed: [String], headers: (String, String)) -> String {
    let left = [headers.0] + expected
    let right = [headers.1] + observed
    let width = max(24, left.map(\.count).max() ?? 0) + 2
    var out = ""
    for i in 0..<max(left.count, right.count) {
      let l = i < left.count ? left[i] : ""
      let r = i < right.count ? right[i] : ""
      let mark = i == 0 || (i < left.count && i < right.count && l == r) ? "  " : "! "
      out += mark + l.padding(toLength: width, withPad: " ", startingAt: 0) + r + "\n"
    }
    return out
  }

  /// summary.txt, summary.json and ktap.txt for the whole campaign.
  /// `notes`: extra lines for summary.txt (how the guest was reset, a budget that ran out).
  /// `groups`: the new verdicts gathered by root cause, minimized or not.
  /// `coverage`: the kernel coverage of the series' files (`fuzz --coverage`).
  func writeSummary(
    results: [VerdictLine], stats: CampaignStats, groups: [VerdictGroup] = [], notes: [String] = [],
    coverage: CoverageSummary? = nil
  ) throws(HarnessError) {
    let hostFaults = results.filter(\.verdict.isHostFault)
    let failing = results.filter { $0.verdict != .match && !$0.verdict.isHostFault }
    var txt = "\(title)\n"
    txt += "sequences: \(stats.sequences), ops: \(stats.ops), new verdicts: \(failing.count { $0.known == nil }), known: \(failing.count { $0.known != nil })\n"
    for f in failing {
      txt += "  \(f.name): \(f.verdict.signature?.description ?? "")"
      txt += f.known.map { " (known: \($0))" } ?? " (new)"
      txt += f.deviationNote.map { " [\($0)]\n" } ?? "\n"
    }
    // New verdicts grouped by root cause (VerdictGroup): one group is most likely one bug; its
    // first sequence is the one minimized.
    if !groups.isEmpty {
      txt += "new groups: \(groups.count)\n"
      for (i, g) in groups.enumerated() { txt += g.summaryLines(i + 1) }
    }
    if !hostFaults.isEmpty {
      txt += "host faults: \(hostFaults.count) (sequences the host kept from running; no verdict on the kernel)\n"
      for h in hostFaults {
        if case .hostFault(let m) = h.verdict { txt += "  \(h.name): \(m)\n" }
      }
    }
    if let compared = stats.comparedLine { txt += compared + "\n" }
    if let o = stats.observerLine { txt += o + "\n" }
    for line in stats.rulesLines { txt += line + "\n" }
    if let line = stats.outcomes.line { txt += line + "\n" }
    if !stats.deviationUses.isEmpty {
      txt += "deviations used: " + stats.deviationUses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
    }
    txt += "ops: " + stats.opCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
    txt += "observations: " + stats.observationCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ", errno results \(stats.errnoResults)\n"
    for n in notes { txt += n + "\n" }
    for l in coverage?.lines ?? [] { txt += l + "\n" }
    if let identity { txt += "\n" + identity.block }
    try Corpus.writeAtomically(txt, to: directory + "/summary.txt")

    var ktap = "KTAP version 1\n1..\(results.count)\n"
    for (i, r) in results.enumerated() {
      if case .hostFault(let m) = r.verdict {
        ktap += "ok \(i + 1) \(r.name) # SKIP host fault: \(m)\n"
      } else if let sig = r.verdict.signature, let known = r.known {
        // XFAIL, not SKIP: the sequence ran and failed as the ledger expects.
        ktap += "ok \(i + 1) \(r.name) # XFAIL known \(known): \(sig)\n"
      } else if let sig = r.verdict.signature {
        ktap += "not ok \(i + 1) \(r.name) # \(sig)\n"
      } else {
        ktap += "ok \(i + 1) \(r.name)\n"
      }
    }
    try Corpus.writeAtomically(ktap, to: directory + "/ktap.txt")

    struct JSONSummary: Codable {
      var title: String
      var stats: CampaignStats
      var verdicts: [[String: String]]
      var groups: [[String: String]]
      var identity: [String: String]?
      var coverage: CoverageSummary?
    }
    let json = JSONSummary(
      title: title, stats: stats,
      verdicts: failing.map {
        [
          "sequence": $0.name, "signature": $0.verdict.signature?.description ?? "", "known": $0.known ?? "",
          "deviations": $0.explanation?.deviations.map(\.rawValue).joined(separator: ",") ?? "",
          "compared_ops": $0.explanation.map { String($0.comparedOps) } ?? "",
        ]
      },
      groups: groups.enumerated().map { i, g in
        var d = [
          "group": "group-\(i + 1)", "cause": g.cause.description, "sequences": g.members.joined(separator: ","),
          "world": g.worldName,
        ]
        if let m = g.minimized {
          d["minimized"] = m.folder
          d["minimized_ops"] = String(m.ops)
          d["runs"] = String(m.runs)
          if let cut = m.cut { d["cut"] = cut }
        }
        return d
      },
      identity: identity?.json, coverage: coverage)
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = (try? enc.encode(json)) ?? Data()
    try Corpus.writeAtomically(String(decoding: data, as: UTF8.self) + "\n", to: directory + "/summary.json")
  }
}
