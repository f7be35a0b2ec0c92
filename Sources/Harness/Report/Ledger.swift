import Foundation
import Fuzz
import Reference

/// The findings ledger: `Corpora/findings/NNNN-short-name/finding.txt` (DESIGN.md, "Findings
/// ledger"). A divergence whose signature an entry lists is *known* (reported with its id);
/// anything else is *new*.
///
/// `finding.txt` holds `key: value` lines: `signature` (one or more, `kind/item/op`, optionally
/// followed by `when TOKEN`: then only a divergence whose op line has that token, such as
/// `flags=0x8`, matches (a TOKEN naming a class of ops, ``OpClass``, such as `short-argsz`,
/// matches the ops of that class instead); and/or by `with EVENT-DIFFERENCE`: then only a
/// divergence whose step also shows that difference in its memory-failure events, such as
/// `event:recovered:ignored`, matches; and/or by `after EARLIER-OP`: then only a divergence in a sequence that ran such an op
/// before the diverging one matches, where EARLIER-OP is `inverted-range` (a space created with
/// first > last) or `bad-mce-kill-set` (`prctl … mce-kill 1 X` with X not 0, 1 or 2)),
/// `reset: restore` (the kernel's state after this finding cannot be trusted: a campaign
/// restores the guest from its snapshot instead of a clean reset), `status`
/// (`kernel-bug`, `doc-mismatch`, `model-bug-fixed`, `intended`), `contract` (the item it
/// contradicts), `summary` (one line), `kernel` (the kernel it was recorded on, as
/// ``KernelIdentity/line`` renders it), `fix` (the candidate kernel fix, a patch file relative to
/// the entry's folder: `fix.patch`, or `../0005-…/fix.patch` for a fix another entry carries).
/// Beside it: `sequence.seq` (the minimized sequence with the
/// contract's predictions), `observed.seq` (what the kernel did), and a reproducer when there is one.
package struct Ledger: Sendable {
  package struct Entry: Sendable, Equatable {
    package var id: String
    package var signatures: [Signature]
    package var status: String
    package var contract: String
    package var summary: String
    /// `kernel:` the kernel the entry was recorded on (``KernelIdentity/line``).
    package var kernel = ""
    /// Signatures that match only when the diverging op's line has this token (`when TOKEN`).
    package var opTokens: [Signature: String] = [:]
    /// Signatures that match only when the diverging step's events also differ this way (`with
    /// event:X:Y`, ``Differ/eventDifferences(_:)``).
    package var companions: [Signature: String] = [:]
    /// Signatures that match only after an earlier op of the sequence of this kind (`after
    /// EARLIER-OP`): the kernel's state is wrong from then on (0005's tree, 0006's policy).
    package var after: [Signature: EarlierOp] = [:]
    /// `reset: restore`: after this finding the guest is restored, never cleaned.
    package var needsRestore = false
    /// `fix:` the candidate kernel fix, a patch file relative to the entry's folder (`fix.patch`,
    /// `../0005-inverted-range-unregister-uaf-hang/fix.patch`); `nil` when there is none.
    package var fix: String? = nil

    /// Whether this entry knows `signature`, met at `op` (`nil`: the op is unknown, so a
    /// signature qualified by `when` does not match) in a step whose events differ as `events`
    /// says (a signature qualified by `with` needs its difference there).
    package func knows(_ signature: Signature, op: Op?, events: Set<String> = []) -> Bool {
      guard signatures.contains(signature) else { return false }
      if let companion = companions[signature], !events.contains(companion) { return false }
      guard let token = opTokens[signature] else { return true }
      guard let op else { return false }
      // A token naming a class of ops (`when short-argsz`) matches the ops of that class.
      if let opClass = OpClass(rawValue: token) { return opClass.matches(op) }
      return SequenceFormat.print(op).split(separator: " ").contains { $0 == token }
    }

    /// Whether this entry knows divergence `d` of the sequence `ops` (empty: the sequence is
    /// unknown, so a signature qualified by `after` does not match).
    package func knows(_ d: Divergence, ops: [Op] = []) -> Bool {
      if let earlier = after[d.signature], !ops.prefix(d.step).contains(where: earlier.matches) { return false }
      return knows(d.signature, op: d.op, events: Differ.eventDifferences(d))
    }
  }

  /// An op after which the kernel's state is known to be wrong (the `after` qualifier).
  package enum EarlierOp: String, Sendable, CaseIterable {
    /// A space created with its first PFN above its last (0005, 0009, 0010).
    case invertedRange = "inverted-range"
    /// `prctl(PR_MCE_KILL, PR_MCE_KILL_SET, X)` with X not LATE, EARLY or DEFAULT: -EINVAL, but the
    /// thread's policy has changed (0006).
    case badMceKillSet = "bad-mce-kill-set"

    func matches(_ op: Op) -> Bool {
      switch (self, op) {
      case (.invertedRange, .spaceCreate(_, let first, let last, _)): first > last
      case (.badMceKillSet, .mceKill(_, let arg2, let arg3)): arg2 == 1 && arg3 > 2
      default: false
      }
    }
  }

  /// A class of ops a `when` qualifier can name instead of a token: the op line alone does not
  /// say it in one token.
  package enum OpClass: String, Sendable, CaseIterable {
    /// An `export` whose `argsz` is below 8 + 16 + 16 × `nr_ranges`: the range array is not
    /// covered (C7.1).
    case shortArgsz = "short-argsz"

    func matches(_ op: Op) -> Bool {
      guard case .export(_, _, let r) = op else { return false }
      let needed =
        UInt64(ExportRequest.headerSize) + UInt64(ExportRequest.payloadSize)
        + UInt64(ExportRequest.rangeSize) * UInt64(r.effectiveNrRanges)
      return UInt64(r.effectiveArgsz) < needed
    }
  }

  package static let statuses = ["kernel-bug", "doc-mismatch", "model-bug-fixed", "intended"]

  package var entries: [Entry] = []

  package init(entries: [Entry] = []) { self.entries = entries }

  /// The entry that knows `signature` met at `op`, if any.
  package func known(_ signature: Signature, op: Op? = nil) -> Entry? {
    entries.first { $0.knows(signature, op: op) }
  }

  /// The entry that knows divergence `d` of the sequence `ops`, if any.
  package func known(_ d: Divergence, ops: [Op] = []) -> Entry? {
    entries.first { $0.knows(d, ops: ops) }
  }

  /// The entry that knows `verdict`, met in the sequence `ops`, if any.
  package func known(_ verdict: Verdict, ops: [Op] = []) -> Entry? {
    guard let signature = verdict.signature else { return nil }
    if case .divergence(let d) = verdict { return known(d, ops: ops) }
    return known(signature)
  }

  /// Loads every entry under `directory` (a missing directory is an empty ledger).
  package static func load(_ directory: String) throws(HarnessError) -> Ledger {
    let fm = FileManager.default
    guard let names = try? fm.contentsOfDirectory(atPath: directory) else { return Ledger() }
    var ledger = Ledger()
    for name in names.sorted() {
      let path = "\(directory)/\(name)/finding.txt"
      guard fm.fileExists(atPath: path) else { continue }
      ledger.entries.append(try parse(path: path, id: name))
    }
    return ledger
  }

  static func parse(path: String, id: String) throws(HarnessError) -> Entry {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
      throw .usage("\(path): cannot read the ledger entry")
    }
    var e = Entry(id: id, signatures: [], status: "", contract: "", summary: "")
    for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      if line.isEmpty || line.hasPrefix("#") { continue }
      guard let colon = line.firstIndex(of: ":") else {
        throw .usage("\(path):\(n + 1):1: error: expected `key: value`")
      }
      let key = line[..<colon]
      let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
      switch key {
      case "signature":
        let words = value.split(separator: " ").map(String.init)
        var qualifiers: [String: String] = [:]
        var i = 1
        while i + 1 < words.count, ["when", "with", "after"].contains(words[i]), qualifiers[words[i]] == nil {
          qualifiers[words[i]] = words[i + 1]
          i += 2
        }
        guard let sig = words.first.flatMap(Signature.init(parsing:)), i == words.count,
          qualifiers["with"].map({ $0.hasPrefix("event") }) ?? true,
          qualifiers["after"].map({ EarlierOp(rawValue: $0) != nil }) ?? true
        else {
          throw .usage(
            "\(path):\(n + 1):12: error: expected a signature KIND/ITEM/OP "
              + "[when TOKEN|\(OpClass.allCases.map(\.rawValue).joined(separator: "|"))] "
              + "[with event:X:Y|event-missing:X|event-unexpected:Y] "
              + "[after \(EarlierOp.allCases.map(\.rawValue).joined(separator: "|"))], found `\(value)`")
        }
        e.signatures.append(sig)
        e.opTokens[sig] = qualifiers["when"]
        e.companions[sig] = qualifiers["with"]
        e.after[sig] = qualifiers["after"].flatMap(EarlierOp.init(rawValue:))
      case "status":
        guard statuses.contains(value) else {
          throw .usage("\(path):\(n + 1):9: error: status must be one of \(statuses.joined(separator: ", "))")
        }
        e.status = value
      case "reset":
        guard value == "restore" else {
          throw .usage("\(path):\(n + 1):8: error: `reset:` takes only `restore`, found `\(value)`")
        }
        e.needsRestore = true
      case "contract": e.contract = value
      case "summary": e.summary = value
      case "kernel": e.kernel = value
      case "fix":
        // A path relative to the entry's folder, naming a patch that exists.
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard !value.isEmpty, !value.hasPrefix("/"), FileManager.default.isReadableFile(atPath: folder + "/" + value)
        else {
          throw .usage("\(path):\(n + 1):6: error: `fix:` names a patch file relative to the entry's folder; no such file `\(value)`")
        }
        e.fix = value
      default:
        throw .usage("\(path):\(n + 1):1: error: unknown key `\(key)` (signature, status, contract, summary, reset, kernel, fix)")
      }
    }
    guard !e.signatures.isEmpty, !e.status.isEmpty else {
      throw .usage("\(path): a ledger entry needs at least `signature:` and `status:` lines")
    }
    return e
  }

  /// The project's ledger, next to the regression corpus.
  package static func project() throws(HarnessError) -> Ledger {
    try load(projectDirectory())
  }

  /// The project's ledger directory, `Corpora/findings`.
  package static func projectDirectory() -> String {
    let dir = (try? GuestBuild.vmDirectory()).map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
    return (dir ?? FileManager.default.currentDirectoryPath) + "/Corpora/findings"
  }
}
