import ArgumentParser
import Foundation
import Glibc

/// `harness vm`: build and inspect the guest.
struct VM: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Build the guest (kernel, shim, agent, initramfs) or boot it interactively.",
    subcommands: [Build.self, Shell.self])

  struct Build: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Build the guest; cached, so an unchanged second build takes seconds.",
      discussion: """
        Without --kernel-src, downloads Debian's linux-source-7.3 (private apt state, the \
        system's sources are not touched) and builds it with VM/harness.config. With \
        --kernel-src, builds your tree out of tree (the tree stays clean). Then checks with \
        libelf that vmlinux carries both series. Artifacts live under \
        ${HARNESS_CACHE:-~/.cache/harness}.

        Examples:
          harness vm build
          harness vm build --kernel-src ~/src/linux
        """)
    @Option(help: "Build this kernel tree instead of Debian's linux-source-7.3.") var kernelSrc: String?

    func run() async throws {
      let a = try await GuestBuild.build(kernelSource: kernelSrc)
      print("guest: \(a.directory)")
      print("series present in \(a.vmlinux): \(KernelImage.seriesSymbols.joined(separator: ", "))")
    }
  }

  struct Shell: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Boot a guest with the shim loaded and a shell on this terminal.",
      discussion: """
        The console is this terminal (Ctrl-A X quits QEMU). The shim is loaded, tracefs is \
        mounted and ras:memory_failure_event enabled; the agent is not started. A reproducer \
        built with `gcc -static` can be put into the initramfs or typed in.

        Example:
          harness vm shell --world mf
        """)
    @OptionGroup var worldOption: WorldOption
    @Option(help: "Build this kernel tree instead of Debian's linux-source-7.3.") var kernelSrc: String?

    func run() async throws {
      let world = try GuestWorld.named(worldOption.world)
      let artifacts = try await GuestBuild.build(kernelSource: kernelSrc)
      // The shell needs no sockets or files: the console is this terminal.
      let run = RunDirectory(path: "/nonexistent")
      let qemu = try HostTools.qemu()
      let args = [qemu] + world.qemuArguments(artifacts: artifacts, run: run, shell: true)
      // Replace this process: QEMU owns the terminal, nothing is left behind when it quits.
      let cargs = args.map { strdup($0) } + [nil]
      execv(qemu, cargs)
      throw HarnessError(.environment, "cannot run \(qemu): \(String(cString: strerror(errno)))")
    }
  }
}
