import Foundation
import Fuzz
import Reference

/// The findings ledger: `Corpora/findings/NNNN-short-name/finding.txt` (DESIGN.md, "Findings
/// ledger"). A divergence whose signature an entry lists is *known* (reported with its id);
/// anything else is *new*.
///
/// `finding.txt` holds `key: value` lines: `signature` (one or more, `kind/item/op`, optionally
/// followed by `when TOKEN`: then only a divergence whose op line has that token, such as
/// `flags=0x8`, matches), `reset: restore` (the kernel's state after this finding cannot be
/// trusted: a campaign restores the guest from its snapshot instead of a clean reset), `status`
/// (`kernel-bug`, `doc-mismatch`, `model-bug-fixed`, `intended`), `contract` (the item it
/// contradicts), `summary` (one line). Beside it: `sequence.seq` (the minimized sequence with the
/// contract's predictions), `observed.seq` (what the kernel did), and a reproducer when there is one.
package struct Ledger: Sendable {
  package struct Entry: Sendable, Equatable {
    package var id: String
    package var signatures: [Signature]
    package var status: String
    package var contract: String
    package var summary: String
    /// Signatures that match only when the diverging op's line has this token (`when TOKEN`).
    package var opTokens: [Signature: String] = [:]
    /// `reset: restore`: after this finding the guest is restored, never cleaned.
    package var needsRestore = false

    /// Whether this entry knows `signature`, met at `op` (`nil`: the op is unknown, so a
    /// signature qualified by `when` does not match).
    package func knows(_ signature: Signature, op: Op?) -> Bool {
      guard signatures.contains(signature) else { return false }
      guard let token = opTokens[signature] else { return true }
      guard let op else { return false }
      return SequenceFormat.print(op).split(separator: " ").contains { $0 == token }
    }
  }

  package static let statuses = ["kernel-bug", "doc-mismatch", "model-bug-fixed", "intended"]

  package var entries: [Entry] = []

  package init(entries: [Entry] = []) { self.entries = entries }

  /// The entry that knows `signature` met at `op`, if any.
  package func known(_ signature: Signature, op: Op? = nil) -> Entry? {
    entries.first { $0.knows(signature, op: op) }
  }

  /// The entry that knows `verdict`, if any.
  package func known(_ verdict: Verdict) -> Entry? {
    guard let signature = verdict.signature else { return nil }
    if case .divergence(let d) = verdict { return known(signature, op: d.op) }
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
        let words = value.split(separator: " ")
        guard let sig = words.first.flatMap({ Signature(parsing: String($0)) }),
          words.count == 1 || (words.count == 3 && words[1] == "when")
        else {
          throw .usage("\(path):\(n + 1):12: error: expected a signature KIND/ITEM/OP [when TOKEN], found `\(value)`")
        }
        e.signatures.append(sig)
        if words.count == 3 { e.opTokens[sig] = String(words[2]) }
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
      default:
        throw .usage("\(path):\(n + 1):1: error: unknown key `\(key)` (signature, status, contract, summary, reset)")
      }
    }
    guard !e.signatures.isEmpty, !e.status.isEmpty else {
      throw .usage("\(path): a ledger entry needs at least `signature:` and `status:` lines")
    }
    return e
  }

  /// The project's ledger, next to the regression corpus.
  package static func project() throws(HarnessError) -> Ledger {
    let dir = (try? GuestBuild.vmDirectory()).map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
    return try load((dir ?? FileManager.default.currentDirectoryPath) + "/Corpora/findings")
  }
}
