import Fuzz
import Reference

/// What identifies a divergence for deduplication and minimization: its kind, the contract item
/// the diverging observation belongs to, and the op (DESIGN.md, "Observations and the differ").
package struct Signature: Hashable, Comparable, Sendable, CustomStringConvertible {
  /// `result:EXPECTED:OBSERVED` (`result:0:-EINVAL`), `signal-missing`, `signal-unexpected`,
  /// `signal-different`, `exit-missing`, … or `guest-failure`.
  package var kind: String
  /// A contract item (`C3.3`, docs/contract.md), or `harness` for the harness's own rules.
  package var item: String
  /// The op keyword (`inject-shim`).
  package var op: String

  package init(kind: String, item: String, op: String) {
    self.kind = kind
    self.item = item
    self.op = op
  }

  /// `kind/item/op`, the form ledger entries and `--signature` use.
  package var description: String { "\(kind)/\(item)/\(op)" }

  package init?(parsing s: String) {
    let p = s.split(separator: "/", omittingEmptySubsequences: false)
    guard p.count == 3, p.allSatisfy({ !$0.isEmpty }) else { return nil }
    self.init(kind: String(p[0]), item: String(p[1]), op: String(p[2]))
  }

  package static func < (a: Self, b: Self) -> Bool { a.description < b.description }
}

/// The first step where what the model predicted and what was observed differ.
package struct Divergence: Hashable, Sendable {
  /// Index of the diverging op in the sequence (0-based).
  package var step: Int
  package var op: Op
  package var expected: [Observation]
  package var observed: [Observation]
  package var signature: Signature
  /// The kernel's decisions that differ (the libbpf observer's against the model's), when the
  /// observations matched and they did not (``ObserverCheck``).
  package var decisions: DecisionDifference? = nil
}

/// Compares predicted with observed observations, binding symbols per sequence.
///
/// A symbol (`$p1`, `$b1`, `$iova1`) is bound to the observed value on first sight; every later
/// use must match the binding. Two symbolic values (from a hand-written expectation) match when
/// they name the same symbol. Lists are compared in canonical order, element by element.
package struct Differ: Sendable {
  private var bindings: [String: UInt64] = [:]

  package init() {}

  /// `nil` when `observed` matches `expected` for step `step`; binds the symbols it meets.
  package mutating func compare(step: Int, op: Op, expected: [Observation], observed: [Observation])
    -> Divergence?
  {
    let expected = Self.resolve(expected, against: observed)
    var saved = bindings
    // A guest failure (panic, hang, WARN…) the contract did not predict is the verdict,
    // whatever else differs; the kernel's own (from the console) before the agent's, which it
    // explains (an oops kills the process the agent was waiting for).
    // Then a process end it did not predict (a SIGKILL explains the signals that are missing).
    let failures = observed.filter { o in
      if case .guestFailure = o { !expected.contains { Self.failureMatches($0, o) } } else { false }
    }
    let severe =
      failures.first { if case .guestFailure(let kind, _) = $0 { kind != "agent" } else { false } }
      ?? failures.first
      ?? observed.first { if case .processEnd = $0 { !expected.contains($0) } else { false } }
    if let severe {
      let sig = Self.signature(op: op, expected: nil, observed: severe)
      return Divergence(step: step, op: op, expected: expected, observed: observed, signature: sig)
    }
    for i in 0..<max(expected.count, observed.count) {
      let e = i < expected.count ? expected[i] : nil
      let o = i < observed.count ? observed[i] : nil
      if let e, let o, match(e, o, &saved) { continue }
      let sig = Self.signature(op: op, expected: e, observed: o)
      return Divergence(step: step, op: op, expected: expected, observed: observed, signature: sig)
    }
    bindings = saved
    return nil
  }

  /// The prediction with each optional observation (C3.5's `sig?`) made required where the
  /// guest showed it at that place, dropped where it did not.
  package static func resolve(_ expected: [Observation], against observed: [Observation])
    -> [Observation]
  {
    guard expected.contains(where: { if case .optional = $0 { true } else { false } }) else {
      return expected
    }
    var out: [Observation] = []
    var j = 0
    for e in expected {
      if case .optional(let o) = e {
        // The model's own prediction (replaying a corpus file on the model) keeps it optional.
        // A kernel failure matches by kind (its console line is the kernel's).
        if j < observed.count && (observed[j] == o || observed[j] == e || Self.failureMatches(o, observed[j])) {
          out.append(observed[j])
          j += 1
        }
      } else {
        out.append(e)
        j += 1
      }
    }
    return out
  }

  private func match(_ e: Observation, _ o: Observation, _ b: inout [String: UInt64]) -> Bool {
    switch (e, o) {
    case (.result(let x), .result(let y)): return match(x, y, &b)
    case (.guestFailure, .guestFailure): return Self.failureMatches(e, o)
    case (.sgTable(let a1, let t1), .sgTable(let a2, let t2)):
      guard a1 == a2, t1.nents == t2.nents, t1.origNents == t2.origNents,
        t1.entries.count == t2.entries.count
      else { return false }
      for (x, y) in zip(t1.entries, t2.entries) {
        guard x.length == y.length, match(x.address, y.address, &b) else { return false }
      }
      return true
    default: return e == o
    }
  }

  private func match(_ x: ResultValue, _ y: ResultValue, _ b: inout [String: UInt64]) -> Bool {
    switch (x, y) {
    case (.symbol(let s), .number(let n)) where n >= 0: return bind(s.name, UInt64(n), &b)
    case (.number(let n), .symbol(let s)) where n >= 0: return bind(s.name, UInt64(n), &b)
    default: return x == y
    }
  }

  private func match(_ x: DMAAddress, _ y: DMAAddress, _ b: inout [String: UInt64]) -> Bool {
    switch (x, y) {
    case (.iova(let s, let off), .concrete(let a)) where a >= off: return bind(s.name, a - off, &b)
    case (.concrete(let a), .iova(let s, let off)) where a >= off: return bind(s.name, a - off, &b)
    default: return x == y
    }
  }

  /// A kernel failure a deviation predicts has no detail (the console line is the kernel's):
  /// it matches any failure of its kind.
  static func failureMatches(_ e: Observation, _ o: Observation) -> Bool {
    guard case .guestFailure(let k1, let d1) = e, case .guestFailure(let k2, let d2) = o else { return false }
    return k1 == k2 && (d1.isEmpty || d1 == d2)
  }

  private func bind(_ name: String, _ value: UInt64, _ b: inout [String: UInt64]) -> Bool {
    if let v = b[name] { return v == value }
    b[name] = value
    return true
  }

  /// The signature of a divergence whose first differing pair is (`e`, `o`).
  package static func signature(op: Op, expected e: Observation?, observed o: Observation?)
    -> Signature
  {
    let category: String
    let how: String
    switch (e, o) {
    case (let e?, let o?) where e.categoryRank == o.categoryRank:
      category = name(e)
      how = "different"
    case (let e?, let o?):
      // Canonical order: the one with the lower rank is present on one side only.
      if e.categoryRank < o.categoryRank {
        category = name(e)
        how = "missing"
      } else {
        category = name(o)
        how = "unexpected"
      }
    case (let e?, nil):
      category = name(e)
      how = "missing"
    case (nil, let o?):
      category = name(o)
      how = "unexpected"
    case (nil, nil):
      category = "none"
      how = "different"
    }
    if category == "failure", case .guestFailure(let failure, _)? = o ?? e {
      // A kernel failure is a verdict of its own; its kind (panic, warn, hang…) is part of it.
      return Signature(kind: "guest-failure:\(failure)", item: contractItem(op: op, category: "result", nil), op: op.keyword)
    }
    // Which values differ is part of the signature, so deduplication and minimization keep
    // the same failure (a SIGKILL is not a SIGBUS, an Ignored event not a missing one).
    var kind = "\(category)-\(how)"
    switch (e, o) {
    case (.result(let x)?, .result(let y)?):
      kind = "result:\(signatureValue(x, op: op)):\(signatureValue(y, op: op))"
    case (.memoryFailure(_, _, let x)?, .memoryFailure(_, _, let y)?) where x != y:
      kind = "event:\(x.name):\(y.name)"
    default:
      if let detail = (how == "unexpected" ? o : e).flatMap(Self.detail) { kind += ":" + detail }
    }
    return Signature(kind: kind, item: contractItem(op: op, category: category, e ?? o), op: op.keyword)
  }

  /// How a step's memory-failure events differ beside its first difference, for a ledger
  /// entry's `with` qualifier: `event:X:Y` (the same PFN, result X predicted, Y observed),
  /// `event-missing:X`, `event-unexpected:Y`.
  package static func eventDifferences(_ d: Divergence) -> Set<String> {
    func events(_ list: [Observation]) -> [UInt64: MFResult] {
      var out: [UInt64: MFResult] = [:]
      for o in list { if case .memoryFailure(let pfn, _, let r) = o.required { out[pfn] = r } }
      return out
    }
    let e = events(d.expected)
    let o = events(d.observed)
    var out: Set<String> = []
    for (pfn, x) in e {
      if let y = o[pfn] {
        if x != y { out.insert("event:\(x.name):\(y.name)") }
      } else {
        out.insert("event-missing:\(x.name)")
      }
    }
    for (pfn, y) in o where e[pfn] == nil { out.insert("event-unexpected:\(y.name)") }
    return out
  }

  /// A result as a signature shows it: what an op creates by its kind, not its number or name.
  /// A pid from `spawn` or `fork` prints as `$p`, an fd from an `export` (GET) as `$b`, and so
  /// do the model's symbols for them (`$p3`, `$b1`): the number the kernel hands out depends on
  /// what ran before, so without this one divergence would have a signature per fd.
  private static func signatureValue(_ v: ResultValue, op: Op) -> String {
    let created: String? =
      switch op {
      case .spawn, .fork: "$p"
      case .export(_, _, let r) where r.effectiveFeature & ExportRequest.probe == 0: "$b"
      default: nil
      }
    switch v {
    case .symbol(let s):
      return "$" + String(s.name.prefix { !$0.isNumber })
    case .number(let n) where n > 0:
      return created ?? SequenceFormat.print(v)
    default:
      return SequenceFormat.print(v)
    }
  }

  /// The distinguishing value of an observation for signatures: how a process ended, a
  /// signal's code, an event's result.
  private static func detail(_ o: Observation) -> String? {
    switch o.required {
    case .processEnd(_, .killed(let sig)): Signal.names[sig] ?? String(sig)
    case .processEnd(_, .exited): "exit"
    case .signal(_, _, SignalCode.actionRequired, _, _): "AR"
    case .signal(_, _, SignalCode.actionOptional, _, _): "AO"
    case .memoryFailure(_, _, let r): r.name
    default: nil
    }
  }

  private static func name(_ o: Observation) -> String {
    switch o.required {
    case .result: "result"
    case .signal: "signal"
    case .processEnd: "exit"
    case .memoryFailure: "event"
    case .notify: "notify"
    case .importer: "importer"
    case .sgTable: "sgt"
    case .fdinfo: "fdinfo"
    case .bufinfo: "bufinfo"
    case .dmabufTrace: "trace"
    case .guestFailure: "failure"
    case .optional: "optional"  // unreachable: `required` unwraps
    }
  }

  /// The contract item (docs/contract.md) a divergence of `category` on `op` contradicts (coarse but stable).
  package static func contractItem(op: Op, category: String, _ sample: Observation?) -> String {
    switch category {
    case "signal":
      if case .signal(_, _, let code, _, _)? = sample?.required, code == SignalCode.actionRequired {
        return "C3.2"
      }
      return "C3.3"
    case "exit": return op.keyword == "exit" ? "C3.8" : "C3.2"
    case "event": return "C2.7"
    case "notify": return "C7.5"
    case "importer":
      if case .importer(_, .stale)? = sample?.required { return "C6.7" }
      return "C7.5"
    case "sgt": return "C6"
    case "fdinfo": return "C7.2"
    case "bufinfo": return "C7.8"
    case "trace": return "C7.8"
    default: break
    }
    // The result: the op's own item (its spec's first, OpSpec.items).
    return op.contractItem
  }

  /// The symbols a whole run binds (`$b1`, `$iova1`…) up to its first divergence.
  package static func bindings(ops: [Op], expected: [[Observation]?], observed: [[Observation]]) -> [String: UInt64] {
    var d = Differ()
    for (i, op) in ops.enumerated() {
      guard i < observed.count else { break }
      guard let e = expected[i] else { continue }
      if d.compare(step: i, op: op, expected: e, observed: observed[i]) != nil { break }
    }
    return d.bindings
  }

  /// Compares a whole run: the first divergence, if any.
  package static func firstDivergence(ops: [Op], expected: [[Observation]?], observed: [[Observation]])
    -> Divergence?
  {
    var d = Differ()
    for (i, op) in ops.enumerated() {
      guard i < observed.count else { break }
      guard let e = expected[i] else { continue }
      if let div = d.compare(step: i, op: op, expected: e, observed: observed[i]) { return div }
    }
    return nil
  }
}
