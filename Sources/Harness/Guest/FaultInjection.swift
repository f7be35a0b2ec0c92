import Foundation
import Glibc
import Synchronization

/// Faults the harness injects into its own guests, for the fault tests only (docs/faults.md).
///
/// Off unless the environment variable `HARNESS_FAULT` is set, to a comma-separated list of
/// `KIND@N` (e.g. `HARNESS_FAULT=kill-qemu-after-restore@3,kill-qemu-booting@2`). N counts
/// the events of that kind's trigger in this harness process, from 1, over every guest: boots
/// (QEMU started), snapshot restores (successful ones), ops sent to the agent. An op fault may
/// name a seed's op instead, `KIND@S:K`: op K (from 1) of every run of seed S of a campaign
/// (the same seed and op whatever ran before it: three runs of it make a host fault). The faults are
/// real: QEMU gets a real SIGKILL, the agent kills itself (`die`), the garbled line crosses the
/// real control channel. What the harness then reports must not depend on them: every seed
/// gets the verdict an undisturbed run gives it, or a host fault.
enum FaultInjection {
  /// What happens, and at which event.
  enum Kind: String, CaseIterable, Sendable {
    /// SIGKILL to QEMU right after the Nth snapshot restore (the agent answered its ping): the
    /// first op after the restore meets a dead guest.
    case killQEMUAfterRestore = "kill-qemu-after-restore"
    /// SIGKILL to QEMU during the Nth boot, once its sockets are open and before the agent's
    /// hello (the guest is booting).
    case killQEMUBooting = "kill-qemu-booting"
    /// The Nth op line reaches the agent garbled (cut in half, control bytes appended).
    case corruptOp = "corrupt-op"
    /// The Nth op is answered with a garbled line (the agent's `echo` writes it; the op does
    /// not run).
    case corruptReply = "corrupt-reply"
    /// The agent is killed in place of the Nth op (`die`: SIGKILL to itself; `/init` powers
    /// the guest off).
    case killAgent = "kill-agent"

    /// The event whose count N is.
    var trigger: Trigger {
      switch self {
      case .killQEMUAfterRestore: .restore
      case .killQEMUBooting: .boot
      case .corruptOp, .corruptReply, .killAgent: .op
      }
    }
  }

  enum Trigger: Sendable, CaseIterable { case boot, restore, op }

  /// Where a fault strikes: the Nth event of its trigger, or op K of every run of seed S.
  enum Moment: Equatable, Sendable {
    case event(Int)
    case seedOp(seed: UInt64, op: Int)
  }

  /// The faults `HARNESS_FAULT` asks for: kind and moment.
  static func parse(_ text: String) throws(HarnessError) -> [(kind: Kind, at: Moment)] {
    var out: [(Kind, Moment)] = []
    for item in text.split(separator: ",", omittingEmptySubsequences: true) {
      let parts = item.split(separator: "@", maxSplits: 1)
      let kind = parts.count == 2 ? Kind(rawValue: String(parts[0])) : nil
      let at = parts.count == 2 ? parts[1].split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false) : []
      var moment: Moment?
      if let kind, at.count == 1, let n = Int(at[0]), (1...1_000_000).contains(n) {
        moment = .event(n)
      } else if kind?.trigger == .op, at.count == 2, let seed = UInt64(at[0]), let k = Int(at[1]), (1...1_000_000).contains(k) {
        moment = .seedOp(seed: seed, op: k)
      }
      guard let kind, let moment else {
        let shown = item.count > 80 ? String(item.prefix(80)) + "…" : String(item)
        throw .usage(
          "HARNESS_FAULT: `\(shown)` is not KIND@N (N from 1 to 1000000) or, for an op's fault, KIND@SEED:K; kinds: "
            + Kind.allCases.map(\.rawValue).joined(separator: ", ")
            + " (a variable for the fault tests: unset it for a real campaign)")
      }
      out.append((kind, moment))
    }
    return out
  }

  private static let planned: Result<[(kind: Kind, at: Moment)], HarnessError> = {
    guard let text = ProcessInfo.processInfo.environment["HARNESS_FAULT"], !text.isEmpty else { return .success([]) }
    do throws(HarnessError) { return .success(try parse(text)) } catch { return .failure(error) }
  }()

  /// Throws the usage error of a malformed `HARNESS_FAULT` (before a guest boots).
  static func check() throws(HarnessError) { _ = try planned.get() }

  private static let counts = Mutex<[Trigger: Int]>([:])

  /// Counts one event of `trigger`; returns the fault planned for it, if any. `seedOp`: for an
  /// op of a campaign's sequence, its seed and its number in the sequence (from 1).
  static func next(_ trigger: Trigger, seedOp: (seed: UInt64, op: Int)? = nil) -> Kind? {
    guard case .success(let plan) = planned, !plan.isEmpty else { return nil }
    let n = counts.withLock { c in
      c[trigger, default: 0] += 1
      return c[trigger]!
    }
    return plan.first {
      guard $0.kind.trigger == trigger else { return false }
      switch $0.at {
      case .event(let k): return k == n
      case .seedOp(let seed, let op): return seedOp.map { $0.seed == seed && $0.op == op } ?? false
      }
    }?.kind
  }

  /// Says on standard error what was injected (the tests check that it was).
  static func announce(_ kind: Kind, _ what: String) {
    FileHandle.standardError.write(Data("harness: HARNESS_FAULT \(kind.rawValue): \(what)\n".utf8))
  }

  /// `line` as a garbled channel would deliver it: cut in half, a control byte and a tilde
  /// appended (no op token holds either, so the agent rejects the line as malformed).
  static func garbled(_ line: String) -> String {
    String(line.prefix(max(1, line.count / 2))) + "\u{1}~"
  }
}
