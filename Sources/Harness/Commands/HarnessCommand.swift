import ArgumentParser
import Foundation

/// The `harness` command tree.
struct HarnessCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "harness",
    abstract: "Differential tester and fuzzer for two Linux kernel series.",
    discussion: """
      Checks a kernel against a reference model of (1) memory failure on PFNs without struct \
      page (register_pfn_address_space, SIGBUS BUS_MCEERR_AO/AR) and (2) VFIO PCI MMIO export \
      through dma-buf (dma_buf_phys_vec_to_sgt, revocation). Sequences of operations are \
      generated from a seed, run on the model and on the kernel, and their observations \
      diffed. The model implements docs/contract.md; sequences use the text format of \
      Corpora/README.md.

      Examples:
        harness fuzz --seed 7 --count 100 --target model
        harness replay Corpora/regression/mf-ao-early-kill.seq
        harness replay --target qemu Corpora/regression/mf-ao-early-kill.seq
        harness vm build --kernel-src ~/src/linux
        harness ledger check --kernel-src ~/src/linux --expect-fixed 0006
        harness fuzz --seed 1 --kernel-src ~/src/linux --compare-kernel debian
        harness minimize reports/fuzz-mf-7-100-l30-model/seed-42/sequence.seq
        harness fuzz --seed 1 --world all --budget 10m --coverage cov/
        harness coverage merge cov-1/ cov-2/ -o cov/
        harness bench model

      Exit status: 0 no new divergence, 1 new divergence or guest failure, 2 usage or input \
      error, 3 environment missing, 70 internal error.
      """,
    subcommands: [Fuzz.self, Merge.self, Replay.self, Minimize.self, Record.self, Repro.self, LedgerCommand.self, CoverageCommand.self, VM.self, Bench.self, Worlds.self, Spec.self]
  )
}

/// `--world` values: a built-in world name.
struct WorldOption: ParsableArguments {
  @Option(name: .long, help: "The world (guest configuration): mf, p2p-switch, p2p-hostbridge-zen, p2p-hostbridge-zen-pt, p2p-hostbridge-intel, or all.")
  var world: String = "mf"
}

/// Where a sequence runs.
enum Target: String, ExpressibleByArgument, CaseIterable {
  /// The reference model alone (fast, no guest).
  case model
  /// The kernel in a QEMU guest (built on first use), compared with the model.
  case qemu
  /// Same as `qemu` for `fuzz`: every sequence runs on both and the two are diffed.
  case both
}

/// `--jobs N`: guests run at once (each with its own run directory, snapshot drive and
/// sockets); reports do not depend on it.
struct JobsOption: ParsableArguments {
  @Option(help: "Guests to run at once (default: the number of cores). Reports are the same for any value.")
  var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

  func validate() throws {
    guard (1...256).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 256 (got \(jobs))") }
  }
}
