import ArgumentParser
import Foundation
import Fuzz
import Reference

/// `harness repro`: a standalone C reproducer for a sequence.
struct Repro: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write a standalone C reproducer (KTAP output) for a sequence.",
    discussion: """
      The reproducer uses plain syscalls and the shim's ioctls (its uapi header is embedded), \
      builds with `gcc -static`, and prints KTAP: one test per op, `not ok` with the contract's \
      prediction and the kernel's behaviour where they differ: the result, the signals every \
      thread received, how processes ended. Every logical process is a forked process, every \
      logical thread a thread; the memory-failure ops are covered (not yet the dma-buf ops). \
      Run it in the guest, once per boot (the shim's spaces outlive it):

        harness repro Corpora/findings/0001-nvgrace-pgoff-outside-vma-sigkill/sequence.seq -o repro.c
        gcc -static -O2 -pthread -o repro repro.c
        harness vm shell --add repro        # then, in the guest: /repro
      """)

  @Argument(help: "The sequence (a ledger entry's sequence.seq, a report's sequence.seq…).") var file: String
  @Option(name: .shortAndLong, help: "Write the C source here instead of standard output.") var output: String?

  func run() async throws {
    let s = try Corpus.load(file)
    let world = try Corpus.world(of: s, file: file)
    let vm = try GuestBuild.vmDirectory()
    guard let header = try? String(contentsOfFile: vm + "/shim/harness_shim.h", encoding: .utf8) else {
      throw HarnessError.environment("\(vm)/shim/harness_shim.h not found: run harness from the project's top directory")
    }
    let predicted = Machine.run(s.ops, in: world)
    let c: String
    do {
      c = try Reproducer.generate(s, predicted: predicted, shimHeader: header, source: file)
    } catch {
      throw HarnessError.usage(
        "\(file): op \(error.step + 1) (`\(SequenceFormat.print(s.ops[error.step]))`): \(error.reason); replay it with `harness replay --target qemu \(file)` instead")
    }
    if let output { try Corpus.writeAtomically(c, to: output) } else { print(c, terminator: "") }
  }
}
