import Foundation
import Fuzz
import Reference

/// `campaign.json`: everything a campaign's summary is made of, so that `harness merge` can
/// write, from the records of its shards, the summary one run over all the seeds writes.
///
/// Written by every campaign (a whole one has no `shard`); deterministic like the rest of the
/// report (no clocks, no host). Invariant: `sequences` in the campaign's order (world, then seed).
struct CampaignRecord: Codable, Equatable, Sendable {
  /// Bumped when the format changes: merge refuses records of another version.
  static let version = 1

  var version = Self.version
  var parameters: Campaign.Parameters
  var shard: Shard?
  var identity: Identity
  /// ``Ledger/fingerprint``: shards judged by different ledgers do not merge.
  var ledger: String
  /// The worlds run, in order, with what the summary says of each.
  var worlds: [WorldNote]
  var stats: CampaignStats
  var sequences: [Sequence]

  /// ``KernelIdentity``, field by field.
  struct Identity: Codable, Equatable, Sendable {
    var fields: [[String]]
    var qemu: String
    var harness: String
    var world: String

    init(_ id: KernelIdentity) {
      fields = id.fields.map { [$0.key, $0.value] }
      qemu = id.qemu
      harness = id.harness
      world = id.world
    }

    var kernelIdentity: KernelIdentity {
      KernelIdentity(fields: fields.map { ($0[0], $0.count > 1 ? $0[1] : "") }, qemu: qemu, harness: harness, world: world)
    }
  }

  /// A world's resets (guest campaigns) and whether the budget stopped it.
  struct WorldNote: Codable, Equatable, Sendable {
    var name: String
    var inGuest: Bool
    var cleanResets = 0
    var refused: [Refused] = []
    /// Sequences started before the budget ran out; `nil` when it did not.
    var budgetStoppedAfter: Int?

    struct Refused: Codable, Equatable, Sendable {
      var seed: UInt64
      var what: String
    }

    /// The summary's lines for this world.
    var lines: [String] {
      var out: [String] = []
      if inGuest {
        var r = GuestRun.Resets()
        r.cleanResets = cleanResets
        r.refused = refused.map { ($0.seed, $0.what) }
        out.append(r.line(name))
      }
      return out
    }
  }

  /// One sequence's verdict, as the summary and the terminal show it.
  struct Sequence: Codable, Equatable, Sendable {
    var name: String
    var world: String
    var seed: UInt64
    var verdict: VerdictRecord
    var known: String?
    var explanation: ExplanationRecord?
    /// A new verdict's group (``RootCause``).
    var cause: CauseRecord? = nil
  }

  /// ``RootCause``: the deviations beyond the ledger, or the first unexplained signature.
  struct CauseRecord: Codable, Equatable, Sendable {
    var deviations: [String]?
    var signature: [String]?

    init(_ c: RootCause) {
      switch c {
      case .deviations(let ds): deviations = ds.map(\.rawValue)
      case .unexplained(let s): signature = [s.kind, s.item, s.op]
      }
    }

    var cause: RootCause? {
      if let deviations { return .deviations(deviations.compactMap(Deviation.init(rawValue:))) }
      guard let s = signature, s.count == 3 else { return nil }
      return .unexplained(Signature(kind: s[0], item: s[1], op: s[2]))
    }
  }

  /// ``Verdict``: the diverging op and observations in the sequence format.
  struct VerdictRecord: Codable, Equatable, Sendable {
    /// `match`, `divergence`, `model-invariant`.
    var kind: String
    var step: Int?
    var message: String?
    var divergence: DivergenceRecord?

    init(_ v: Verdict) {
      switch v {
      case .match: kind = "match"
      case .divergence(let d):
        kind = "divergence"
        divergence = DivergenceRecord(d)
      case .modelInvariant(let step, let message):
        kind = "model-invariant"
        self.step = step
        self.message = message
      case .hostFault(let message):
        kind = "host-fault"
        self.message = message
      }
    }

    var verdict: Verdict {
      switch kind {
      case "divergence": divergence.flatMap(\.divergence).map { .divergence($0) } ?? .match
      case "model-invariant": .modelInvariant(step: step ?? 0, message: message ?? "")
      case "host-fault": .hostFault(message ?? "")
      default: .match
      }
    }
  }

  struct DivergenceRecord: Codable, Equatable, Sendable {
    var step: Int
    var op: String
    var expected: [String]
    var observed: [String]
    /// kind, item, op.
    var signature: [String]

    /// A kernel failure keeps its kind, not its console line: the line carries the kernel's
    /// timestamp, which no two runs share (the verdict's folder has the line).
    init(_ d: Divergence) {
      // What an op creates is named as the model names it: the pid or fd the kernel handed out
      // depends on what ran before on that guest (another with --jobs), not on the sequence.
      let created: Symbol? =
        switch d.op {
        case .spawn(let p), .fork(_, let p): Symbol(p.raw)
        case .export(let b, _, let r) where r.effectiveFeature & ExportRequest.probe == 0: Symbol(b.raw)
        default: nil
        }
      func text(_ o: Observation) -> String {
        if case .guestFailure(let kind, _) = o { return SequenceFormat.print(.guestFailure(kind: kind, detail: "")) }
        if case .result(.number(let n)) = o, n > 0, let created { return SequenceFormat.print(.result(.symbol(created))) }
        return SequenceFormat.print(o)
      }
      step = d.step
      op = SequenceFormat.print(d.op)
      expected = d.expected.map(text)
      observed = d.observed.map(text)
      signature = [d.signature.kind, d.signature.item, d.signature.op]
    }

    /// The divergence back; an observation whose text does not parse (a console line with runs
    /// of spaces) is left out: the summary needs the step, the op and the signature.
    var divergence: Divergence? {
      guard let op = try? SequenceFormat.parseOp(op[...]), signature.count == 3 else { return nil }
      func parse(_ lines: [String]) -> [Observation] {
        lines.compactMap { try? SequenceFormat.parseObservation($0[...], file: "campaign.json", line: 0) }
      }
      return Divergence(
        step: step, op: op, expected: parse(expected), observed: parse(observed),
        signature: Signature(kind: signature[0], item: signature[1], op: signature[2]))
    }
  }

  struct ExplanationRecord: Codable, Equatable, Sendable {
    var deviations: [String]
    var unexplained: DivergenceRecord?
    var undefinedAt: Int?
    var comparedOps: Int

    init(_ e: Explanation) {
      deviations = e.deviations.map(\.rawValue)
      unexplained = e.unexplained.map(DivergenceRecord.init)
      undefinedAt = e.undefinedAt
      comparedOps = e.comparedOps
    }

    var explanation: Explanation {
      Explanation(
        deviations: deviations.compactMap(Deviation.init(rawValue:)), unexplained: unexplained?.divergence,
        undefinedAt: undefinedAt, comparedOps: comparedOps)
    }
  }

  /// The JSON text (sorted keys, indented, a final newline).
  var json: String {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: (try? enc.encode(self)) ?? Data(), as: UTF8.self) + "\n"
  }

  static func load(_ path: String) throws(HarnessError) -> CampaignRecord {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw .usage("\(path): no such file; give report directories written by `harness fuzz` (each holds campaign.json)")
    }
    do {
      return try JSONDecoder().decode(CampaignRecord.self, from: data)
    } catch {
      throw .usage("\(path): not a campaign record (\(error))")
    }
  }
}

extension CampaignStats {
  /// Adds another part of the campaign's counts (a shard's).
  mutating func merge(_ o: CampaignStats) {
    sequences += o.sequences
    ops += o.ops
    opCounts.merge(o.opCounts, uniquingKeysWith: +)
    observationCounts.merge(o.observationCounts, uniquingKeysWith: +)
    errnoResults += o.errnoResults
    if let c = o.comparedOps { comparedOps = (comparedOps ?? 0) + c }
    if let c = o.comparedToEnd { comparedToEnd = (comparedToEnd ?? 0) + c }
    deviationUses.merge(o.deviationUses, uniquingKeysWith: +)
    rules.merge(o.rules, uniquingKeysWith: +)
    rulesNeverTaken = rulesNeverTaken.filter(o.rulesNeverTaken.contains)
    inputClasses.merge(o.inputClasses)
    outcomes.merge(o.outcomes)
    if let b = o.observer { observer = (observer ?? [:]).merging(b, uniquingKeysWith: +) }
  }
}

extension Ledger {
  /// A short fingerprint of what judges runs: every entry's id, status, deviations, signatures
  /// and reset rule (FNV-1a 64 over their text).
  var fingerprint: String {
    var text = ""
    for e in entries {
      text += "\(e.id)|\(e.status)|\(e.deviations.map(\.rawValue).joined(separator: ","))|"
      text += "\(e.signatures.map(\.description).joined(separator: ","))|\(e.needsRestore)\n"
    }
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in text.utf8 {
      h ^= UInt64(b)
      h = h &* 0x100_0000_01b3
    }
    return "\(entries.count) entries, fnv1a64 " + String(h, radix: 16)
  }
}
