import ArgumentParser
import Foundation
import Fuzz
import Reference

/// `harness repro`: a standalone C reproducer for a sequence, optionally run in a guest.
struct Repro: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write a standalone C reproducer (KTAP, kselftest exit codes) for a sequence, or run it.",
    discussion: """
      The reproducer is one straight-line main(), one call per op, each compared with the \
      contract's prediction: results, signals, process ends, memory-failure events (tracefs), \
      kernel WARN/BUG/oops/hang reports (/dev/kmsg), dma-buf results, sg tables and importer \
      notifications. It carries only the runtime (VM/repro) it needs and builds with \
      `gcc -static`. Exit status: 0 the kernel does what the contract says, 1 a step \
      diverges, 4 the harness shim or the series is missing. For a ledger entry the header \
      says what the contract predicts, what the kernel did and on which kernel.

      With --run: builds the guest, boots the sequence's world in shell mode, runs the \
      reproducer there (sending it the machine checks it asks for) and exits with its status.

        harness repro Corpora/findings/0002-unregister-unregistered-drops-others/sequence.seq -o repro.c
        harness repro Corpora/findings/0002-unregister-unregistered-drops-others/sequence.seq --run
        harness repro FINDING/sequence.seq --run --kernel-src ~/src/linux     # is it fixed on my tree?
      """)

  @Argument(help: "The sequence (a ledger entry's sequence.seq, a report's sequence.seq…).") var file: String
  @Option(name: .shortAndLong, help: "Write the C source here instead of standard output.") var output: String?
  @Flag(help: "One self-contained file (the runtime it needs inlined), e.g. to attach to a mail.")
  var standalone = false
  @Flag(help: "Build it, run it in a guest of the sequence's world, exit with its status.") var run = false
  @OptionGroup(title: "Kernel under test (--run)") var kernel: KernelOptions

  func run() async throws {
    let program = try Self.program(for: file, form: standalone ? .standalone : .short)
    if let output {
      try Corpus.writeAtomically(program.source, to: output)
    } else if !run {
      print(program.source, terminator: "")
    }
    guard run else { return }
    let s = try Corpus.load(file)
    let world = try GuestWorld.named(s.world)
    let artifacts = try await kernel.build()
    let dir = try PrivateFiles.makeDirectory(in: RunDirectory.base, prefix: "harness-repro")
    defer { PrivateFiles.remove(dir) }
    let binary = try await ReproducerRun.compile(program, vm: try GuestBuild.vmDirectory(), in: dir)
    let outcome = try await ReproducerRun.run(binary: binary, world: world, artifacts: artifacts, echo: true)
    guard let status = outcome.status else {
      let tail = outcome.console.split(separator: "\n").suffix(40).joined(separator: "\n")
      print("the guest did not finish the reproducer (the kernel crashed or hung); console:\n\(tail)")
      throw Finished(.divergence)
    }
    switch status {
    case 0: return
    case 4: throw Finished(.skip)
    case 1: throw Finished(.divergence)
    default: throw HarnessError(.internal, "the reproducer exited with status \(status)")
    }
  }

  /// The reproducer for the sequence file `path`.
  static func program(
    for path: String, displayName: String? = nil, form: Reproducer.Form = .short
  ) throws -> Reproducer.Program {
    let s = try Corpus.load(path)
    let world = try Corpus.world(of: s, file: path)
    let runtime = try Reproducer.Runtime.load(vm: try GuestBuild.vmDirectory())
    let context = Reproducer.context(forSequenceAt: path, displayName: displayName ?? path)
    do {
      return try Reproducer.generate(
        s, predicted: Machine.run(s.ops, in: world), world: world, runtime: runtime, context: context,
        form: form)
    } catch {
      throw HarnessError.usage(
        "\(path): op \(error.step + 1) (`\(SequenceFormat.print(s.ops[error.step]))`): \(error.reason); replay it with `harness replay --target qemu \(path)` instead")
    }
  }
}
