import Foundation

/// `--bisect`: the harness's outcomes in `git bisect run`'s terms, so that
/// `git bisect run harness replay --bisect --kernel-src . FILE` finds the commit that
/// introduced (or fixed) a behaviour.
///
/// - 0, *good*: a verdict on the kernel, and it is the one wanted (the sequences do what the
///   contract says; `ledger check`: every entry shows what it should).
/// - 1, *bad*: a verdict on the kernel, and not that one: a divergence, a kernel failure or a
///   hang, or a ledger entry that is not as expected.
/// - 125, *skip*: anything that is not a verdict on the kernel: the kernel does not build (or
///   the tree at that commit is no kernel tree), the guest does not boot, the kernel lacks the
///   series, the host lacks a tool, a harness error. `git bisect` then tries a nearby commit.
///
/// A command line the harness cannot parse is none of these: it exits 128, which makes
/// `git bisect run` stop at once instead of skipping every commit.
enum Bisect {
  /// The status `--bisect` exits with after `body` finished (0) or threw `error`.
  static func status(for error: (any Error)?) -> ExitStatus {
    guard let error else { return .ok }
    if let f = error as? Finished {
      switch f.status {
      case .ok: return .ok
      case .divergence: return .divergence
      default: return .bisectSkip
      }
    }
    return .bisectSkip
  }

  /// Runs `body`; with `enabled`, maps its end to a bisect status (printing any error first,
  /// with the status it became) instead of the usual exit statuses.
  static func run(enabled: Bool, _ body: () async throws -> Void) async throws {
    guard enabled else { return try await body() }
    var failure: (any Error)?
    do { try await body() } catch { failure = error }
    let status = status(for: failure)
    if let failure, !(failure is Finished) {
      let message = (failure as? HarnessError)?.message ?? String(describing: failure)
      FileHandle.standardError.write(Data("harness: \(message)\n".utf8))
    }
    let word = [ExitStatus.ok: "good", .divergence: "bad"][status] ?? "skip (not a verdict on this kernel)"
    FileHandle.standardError.write(Data("harness: --bisect: \(word), exit \(status.rawValue)\n".utf8))
    throw Finished(status)
  }
}
