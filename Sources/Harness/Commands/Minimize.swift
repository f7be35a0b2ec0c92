import ArgumentParser
import Foundation
import Fuzz
import Reference

/// `harness minimize`: shrink a diverging sequence while its verdict signature stays the same.
struct Minimize: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Shrink a diverging sequence, keeping its verdict signature.",
    discussion: """
      On the model, the verdict is the first divergence between the file's recorded \
      expectations and the model's predictions (or a broken model invariant). In the guest \
      (--target qemu, with --signature from a report), it is the first divergence between the \
      kernel's observations and the model's predictions, or, when they match, between the \
      kernel's decisions the guest's libbpf observer reports and the model's (a signature such \
      as dma-range-different/C6.3/map); the guest is reset from a snapshot \
      before each candidate. Ops are removed and their arguments \
      simplified as long as the signature (kind/item/op) stays the same; kept ops keep their \
      recorded expectations. Prints the minimized sequence (or writes it with --output).

      Examples:
        harness minimize reports/fuzz-mf-7-100-l30-model/seed-42/sequence.seq
        harness minimize found.seq --signature result:0:-EINVAL/C1.1/space-register --output small.seq
        harness minimize reports/fuzz-mf-1-100-l30-both/seed-42/sequence.seq --target qemu \\
          --signature exit-unexpected:SIGKILL/C3.2/inject-shim
      """)

  @Argument(help: "The sequence file.") var file: String
  @Option(help: "Keep this signature (kind/item/op) instead of the file's own.") var signature: String?
  @Option(help: "Write the minimized sequence here instead of standard output.") var output: String?
  @Option(help: "Where candidates run: model, or qemu (the guest, with --signature).") var target: Target = .model
  @OptionGroup(title: "Kernel under test") var kernel: KernelOptions

  func run() async throws {
    let s = try Corpus.load(file)
    let world = try Corpus.world(of: s, file: file)
    let wanted: Signature
    if let text = signature {
      guard let sig = Signature(parsing: text) else {
        throw HarnessError.usage("--signature \(SequenceFormat.quoted(text)): expected KIND/ITEM/OP, e.g. result:0:-EINVAL/C1.1/space-register")
      }
      wanted = sig
    } else if target != .model {
      throw HarnessError.usage("minimize --target \(target.rawValue) needs --signature (copy it from the report's diff.txt)")
    } else {
      guard let sig = Self.verdict(s, world).signature else {
        throw HarnessError.usage("\(file): the sequence does not diverge on the \(target.rawValue) target; nothing to minimize")
      }
      wanted = sig
    }
    let start = ContinuousClock.now
    var shrinker = Shrinker()
    let small: OpSequence
    /// The input must show the signature: else the "minimized" output would be the input,
    /// unchanged, and look like a success.
    func notShown(_ own: Signature?) -> HarnessError {
      .usage(
        "\(file): the input does not show the signature \(wanted) on the \(target.rawValue) target (its own: \(own.map { "\($0)" } ?? "none, it matches the contract")); nothing to minimize")
    }
    if target == .model {
      let own = Self.verdict(s, world).signature
      guard own == wanted else { throw notShown(own) }
      small = shrinker.shrink(s) { Self.verdict($0, world).signature == wanted }
    } else {
      // In the guest: one boot, a snapshot, and a restore before every candidate.
      let artifacts = try await kernel.build()
      (small, shrinker) = try await GuestSession.with(try GuestWorld.named(s.world), artifacts: artifacts) { g in
        guard g.takeSnapshot() else {
          throw HarnessError.environment("the guest could not take a snapshot (savevm); see its console")
        }
        // The verdict as a campaign judges it: with the observer, a divergence in the kernel's
        // decisions alone (a walk, a signal, a map type, a range's DMA address) is one too.
        func verdict(_ ops: [Op]) -> Signature? {
          var observed: [[Observation]] = []
          var observer: [[String]] = []
          for op in ops {
            observed.append(g.apply(op))
            observer.append(g.observerLines)
          }
          return ObserverCheck.judge(
            ops: ops, observed: observed, observer: g.hasObserver ? observer : nil, world: g.world)?.signature
        }
        let own = verdict(s.ops)
        guard own == wanted else { throw notShown(own) }
        var first = false
        var shr = shrinker
        let result = shr.shrink(s) { candidate in
          if !first { guard g.restoreSnapshot() else { return false } }
          first = false
          return verdict(candidate.ops) == wanted
        }
        // The contract's predictions for the ops that are left: an op removed earlier (an mmap)
        // changes what a later one must do, so the input's expectations would be stale.
        return (result.withExpectations(Machine.run(result.ops, in: g.world)), shr)
      }
    }
    let elapsed = ContinuousClock.now - start
    FileHandle.standardError.write(Data(
      "minimize: \(s.steps.count) ops -> \(small.steps.count) ops, \(shrinker.evaluations) runs, \(elapsed.formatted(.units(allowed: [.seconds, .milliseconds]))), signature \(wanted)\n".utf8))
    let text = SequenceFormat.print(small)
    if let output { try Corpus.writeAtomically(text, to: output) } else { print(text, terminator: "") }
  }

  /// The verdict of a sequence on the model against its recorded expectations.
  static func verdict(_ s: OpSequence, _ world: World) -> Verdict {
    let r = ModelRun.run(s, world: world)
    if r.verdict != .match { return r.verdict }
    if let d = Differ.firstDivergence(ops: s.ops, expected: s.steps.map(\.expected), observed: r.observed) {
      return .divergence(d)
    }
    return .match
  }
}
