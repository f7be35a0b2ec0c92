import Foundation
import Fuzz
import Reference

/// The findings ledger: `Corpora/findings/NNNN-short-name/finding.txt` (DESIGN.md, "Findings
/// ledger"). Each kernel finding names the ``Deviation`` that predicts what the kernel does; a
/// divergence is *known* when the ledger's deviations explain the whole run (``Triage``), and the
/// entries whose deviations the explanation used are the ones reported.
///
/// `finding.txt` holds `key: value` lines: `deviation` (one or more: a ``Deviation`` name; every
/// entry needs one except a `model-bug-fixed` one, which needs none: the model was corrected),
/// `signature` (one or more, `kind/item/op`: how the finding first showed, a label for reports
/// and for `minimize`, not what decides known or new), `reset: restore` (the kernel's state after
/// this finding cannot be trusted: a campaign restores the guest from its snapshot instead of a
/// clean reset), `status` (`kernel-bug`, `doc-mismatch`, `model-bug-fixed`, `intended`),
/// `contract` (the item it contradicts), `summary` (one line), `kernel` (the kernel it was
/// recorded on, as ``KernelIdentity/line`` renders it), `fix` (the candidate kernel fix, a patch
/// file relative to the entry's folder: `fix.patch`, or `../0005-…/fix.patch` for a fix another
/// entry carries). Beside it: `sequence.seq` (the minimized sequence with the contract's
/// predictions), `observed.seq` (what the kernel did), and a reproducer.
package struct Ledger: Sendable {
  package struct Entry: Sendable, Equatable {
    package var id: String
    package var signatures: [Signature]
    package var status: String
    package var contract: String
    package var summary: String
    /// `deviation:` what the kernel does instead of the contract, as the model predicts it.
    package var deviations: [Deviation] = []
    /// `kernel:` the kernel the entry was recorded on (``KernelIdentity/line``).
    package var kernel = ""
    /// `reset: restore`: after this finding the guest is restored, never cleaned.
    package var needsRestore = false
    /// `fix:` the candidate kernel fix, a patch file relative to the entry's folder (`fix.patch`,
    /// `../0005-inverted-range-unregister-uaf-hang/fix.patch`); `nil` when there is none.
    package var fix: String? = nil

    /// Whether `e` is a known divergence that this entry's deviations took part in explaining.
    package func explains(_ e: Explanation) -> Bool {
      e.isExplained && e.deviations.contains { deviations.contains($0) }
    }
  }

  package static let statuses = ["kernel-bug", "doc-mismatch", "model-bug-fixed", "intended"]

  package var entries: [Entry] = []

  package init(entries: [Entry] = []) { self.entries = entries }

  /// The deviations triage may switch on: those of every entry.
  package var deviations: Set<Deviation> { Set(entries.flatMap(\.deviations)) }

  /// The entries whose deviations explain `e` (none when `e` is not fully explained).
  package func entries(explaining e: Explanation) -> [Entry] {
    entries.filter { $0.explains(e) }
  }

  /// The explanation of a run by the contract and this ledger's deviations.
  package func explain(ops: [Op], observed: [[Observation]], world: World) -> Explanation {
    Triage.explain(ops: ops, observed: observed, world: world, candidates: deviations)
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
        guard words.count == 1, let sig = Signature(parsing: value) else {
          if words.count > 1, ["when", "with", "after"].contains(words[1]) {
            throw .usage(
              "\(path):\(n + 1):12: error: `\(words[1])` qualifiers are gone: a signature is a label; "
                + "what the entry explains is its `deviation:` line (delete everything after `\(words[0])`)")
          }
          throw .usage("\(path):\(n + 1):12: error: expected a signature KIND/ITEM/OP, found `\(value)`")
        }
        e.signatures.append(sig)
      case "deviation":
        for name in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
          guard let d = Deviation(rawValue: name) else {
            throw .usage(
              "\(path):\(n + 1):12: error: unknown deviation `\(name)`; known: "
                + Deviation.allCases.map(\.rawValue).joined(separator: ", ")
                + " (a new one is written in Sources/Reference, see Deviation.swift)")
          }
          e.deviations.append(d)
        }
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
        throw .usage("\(path):\(n + 1):1: error: unknown key `\(key)` (deviation, signature, status, contract, summary, reset, kernel, fix)")
      }
    }
    guard !e.signatures.isEmpty, !e.status.isEmpty else {
      throw .usage("\(path): a ledger entry needs at least `signature:` and `status:` lines")
    }
    if e.status == "model-bug-fixed" {
      guard e.deviations.isEmpty else {
        throw .usage("\(path): a model-bug-fixed entry has no deviation (the model was corrected); delete its `deviation:` line")
      }
    } else if e.deviations.isEmpty {
      throw .usage(
        "\(path): a \(e.status) entry needs a `deviation:` line naming what the kernel does instead "
          + "(one of \(Deviation.allCases.map(\.rawValue).joined(separator: ", ")), or a new one in Sources/Reference)")
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
