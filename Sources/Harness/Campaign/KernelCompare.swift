import Foundation
import Fuzz
import Reference

/// `harness fuzz --compare-kernel OTHER`: the same seeds on two kernels, and the sequences where
/// the kernels' observations differ from each other, whatever the contract says: what a fix or a
/// backport changed, op by op.
///
/// Each kernel runs the campaign as `fuzz` runs it (one guest per world, reset between
/// sequences). Then, per sequence, the other kernel's observations are the expectation and
/// this kernel's the observation, diffed by the same differ as model against kernel: values a
/// kernel chooses (pids, fds, IOVA bases), which the model names by a symbol, are bound per
/// sequence, so two kernels that hand out other numbers still agree; a kernel failure is
/// compared by its kind (oops, warn, hang…), not its console line.
enum KernelCompare {
  /// A sequence on which the two kernels differ.
  struct Difference: Sendable {
    var name: String
    var sequence: OpSequence
    /// The other kernel's observations (the expectation) and this kernel's.
    var other: [[Observation]]
    var this: [[Observation]]
    /// The first step where they differ (its signature: `result:OTHER:THIS/…`).
    var divergence: Divergence
  }

  /// The first step where `this` differs from `other` for `ops`, `nil` when they agree.
  /// `predicted` (the model's) says which values are the kernel's to choose. A run that stopped
  /// early (a fatal kernel failure) has no observations for the later steps.
  static func firstDifference(ops: [Op], other: [[Observation]], this: [[Observation]], predicted: [[Observation]])
    -> Divergence?
  {
    let expected = symbolize(other, like: predicted).map { $0.map(withoutDetail) }
    let observed = this.map { $0.map(withoutDetail) }
    var differ = Differ()
    for (i, op) in ops.enumerated() {
      let e = i < expected.count ? expected[i] : []
      let o = i < observed.count ? observed[i] : []
      if e.isEmpty && o.isEmpty { continue }
      if var d = differ.compare(step: i, op: op, expected: e, observed: o) {
        // The report shows the kernels' own lines (a failure with its console line).
        d.expected = i < other.count ? other[i] : []
        d.observed = i < this.count ? this[i] : []
        return d
      }
    }
    return nil
  }

  /// `observed` with the values the kernel chose replaced by the model's symbols where the
  /// model predicts one at that place: a created pid or fd (`= $p1`, `= $b1`), an IOVA base in
  /// an sg table (`$iova1+0x0`).
  static func symbolize(_ observed: [[Observation]], like predicted: [[Observation]]) -> [[Observation]] {
    observed.enumerated().map { i, step in
      let p = i < predicted.count ? predicted[i].map(\.required) : []
      return step.map { o in
        switch o {
        case .result(.number(let n)) where n > 0:
          for case .result(.symbol(let s)) in p { return .result(.symbol(s)) }
          return o
        case .sgTable(let a, var t):
          for case .sgTable(a, let pt) in p where pt.entries.count == t.entries.count {
            for k in t.entries.indices {
              if case .iova(let s, let off) = pt.entries[k].address, case .concrete(let x) = t.entries[k].address, x >= off {
                t.entries[k].address = .iova(s, offset: off)
              }
            }
          }
          return .sgTable(a, t)
        default:
          return o
        }
      }
    }
  }

  private static func withoutDetail(_ o: Observation) -> Observation {
    if case .guestFailure(let kind, _) = o { return .guestFailure(kind: kind, detail: "") }
    return o
  }

  /// Runs `seeds` of every world in `worlds` on both kernels (the other first) and returns the
  /// differences in world and seed order. `onSequence` is called after each sequence (progress).
  static func run(
    worlds: [GuestWorld], seeds: [UInt64], length: Int, reset: ResetMode, ledger: Ledger,
    this: GuestArtifacts, other: GuestArtifacts, jobs: Int = 1, onSequence: () -> Void = {}
  ) async throws -> (differences: [Difference], sequences: Int) {
    var differences: [Difference] = []
    var sequences = 0
    for gw in worlds {
      var runs: [[UInt64: SequenceResult]] = [[:], [:]]
      for (k, artifacts) in [other, this].enumerated() {
        _ = try await GuestRun.campaign(
          gw, artifacts: artifacts, seeds: seeds, length: length, reset: reset, ledger: ledger, jobs: jobs
        ) {
          s, _, r in
          runs[k][s] = r
          onSequence()
        }
      }
      for s in seeds {
        guard let a = runs[0][s], let b = runs[1][s] else { continue }
        sequences += 1
        let world = b.world ?? a.world ?? gw.model
        let predicted = Machine.run(b.sequence.ops, in: world)
        if let d = firstDifference(ops: b.sequence.ops, other: a.observed, this: b.observed, predicted: predicted) {
          let name = worlds.count > 1 ? "\(gw.name)-seed-\(s)" : "seed-\(s)"
          differences.append(Difference(name: name, sequence: b.sequence, other: a.observed, this: b.observed, divergence: d))
        }
      }
    }
    return (differences, sequences)
  }

  /// The human text of a difference: the op, the signature, the two kernels side by side.
  static func describe(_ d: Difference) -> String {
    let v = d.divergence
    var out = "the kernels differ at step \(v.step + 1): \(SequenceFormat.print(v.op))\n"
    out += "signature: \(v.signature) (other kernel's value first)\n\n"
    out += ReportWriter.sideBySide(
      expected: v.expected, observed: v.observed, headers: ("other kernel (--compare-kernel)", "this kernel"))
    return out
  }

  /// Writes `summary.txt`, `summary.json`, `ktap.txt` (one test per sequence: `ok` when the
  /// kernels agree) and per difference a folder: `sequence.seq` (the model's predictions, to
  /// replay anywhere), `other.seq` and `this.seq` (each kernel's observations), `diff.txt`
  /// (with both kernels' identities).
  static func write(
    _ differences: [Difference], names: [String], title: String, this: KernelIdentity, other: KernelIdentity,
    worlds: [String: World], to directory: String
  ) throws(HarnessError) {
    func block(_ heading: String, _ id: KernelIdentity) -> String {
      heading + "\n" + id.block.split(separator: "\n", omittingEmptySubsequences: false).dropFirst().joined(separator: "\n")
    }
    let identities = block("this kernel:", this) + "\n" + block("other kernel (--compare-kernel):", other)
    for d in differences {
      let dir = directory + "/" + d.name
      let world = worlds[d.sequence.world] ?? World.named(d.sequence.world)!
      try Corpus.writeAtomically(
        SequenceFormat.print(d.sequence.withExpectations(Machine.run(d.sequence.ops, in: world))), to: dir + "/sequence.seq")
      try Corpus.writeAtomically(SequenceFormat.print(d.sequence.withExpectations(d.other)), to: dir + "/other.seq")
      try Corpus.writeAtomically(SequenceFormat.print(d.sequence.withExpectations(d.this)), to: dir + "/this.seq")
      try Corpus.writeAtomically(describe(d) + "\n" + identities, to: dir + "/diff.txt")
    }
    var txt = "\(title)\n"
    txt += "this kernel: \(this.source)\nother kernel: \(other.source)\n"
    txt += "sequences: \(names.count), the kernels differ on \(differences.count)\n"
    for d in differences { txt += "  \(d.name): \(d.divergence.signature) at step \(d.divergence.step + 1)\n" }
    try Corpus.writeAtomically(txt + "\n" + identities, to: directory + "/summary.txt")
    let differing = Dictionary(uniqueKeysWithValues: differences.map { ($0.name, $0) })
    var ktap = "KTAP version 1\n1..\(names.count)\n"
    for (i, n) in names.enumerated() {
      if let d = differing[n] {
        ktap += "not ok \(i + 1) \(n) # kernels differ: \(d.divergence.signature) at step \(d.divergence.step + 1)\n"
      } else {
        ktap += "ok \(i + 1) \(n)\n"
      }
    }
    try Corpus.writeAtomically(ktap, to: directory + "/ktap.txt")
    struct JSONSummary: Codable {
      var title: String
      var sequences: Int
      var differences: [[String: String]]
      var this: [String: String]
      var other: [String: String]
    }
    let json = JSONSummary(
      title: title, sequences: names.count,
      differences: differences.map {
        ["sequence": $0.name, "signature": $0.divergence.signature.description, "step": String($0.divergence.step + 1)]
      }, this: this.json, other: other.json)
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    try Corpus.writeAtomically(String(decoding: (try? enc.encode(json)) ?? Data(), as: UTF8.self) + "\n", to: directory + "/summary.json")
  }
}
