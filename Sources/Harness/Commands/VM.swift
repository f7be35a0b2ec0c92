import ArgumentParser
import Foundation
import Glibc
import Subprocess

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
        --kernel-src, builds your tree (git or not, dirty or with an in-tree build) from a \
        snapshot the harness keeps in its cache: your tree is only read, and an edit rebuilds \
        only what changed. Then checks with libelf that vmlinux carries both series and prints \
        the kernel's identity. Artifacts live under ${HARNESS_CACHE:-~/.cache/harness}.

        Examples:
          harness vm build
          harness vm build --kernel-src ~/src/linux
          harness vm build --kernel-src ~/src/linux --kernel-config ~/src/linux/.config
          harness vm build --coverage        # the coverage flavour (fuzz --coverage)
        """)
    @OptionGroup(title: "Kernel under test") var kernel: KernelOptions
    @Flag(help: "Build the coverage flavour: gcov on the series' files only (VM/coverage.files), its own cache entry.")
    var coverage = false

    func run() async throws {
      let a = try await kernel.build(coverage: coverage)
      print("guest: \(a.directory)")
      print(a.identity.block, terminator: "")
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

        Examples:
          harness vm shell --world mf
          harness vm shell --add repro       # the file appears as /repro in the guest
        """)
    @OptionGroup var worldOption: WorldOption
    @OptionGroup(title: "Kernel under test") var kernel: KernelOptions

    @Option(name: .customLong("add"), help: "Put this file into the guest's / (repeatable), e.g. a reproducer.")
    var additions: [String] = []

    func run() async throws {
      let world = try GuestWorld.named(worldOption.world)
      var artifacts = try await kernel.build()
      if !additions.isEmpty {
        // Left behind: QEMU replaces this process below. Private, in RunDirectory.base.
        let dir = try PrivateFiles.makeDirectory(in: RunDirectory.base, prefix: "harness-shell")
        artifacts.initramfsOverride = try await Self.initramfs(artifacts, adding: additions, in: dir)
      }
      // The shell needs no sockets or files: the console is this terminal.
      let run = RunDirectory(path: "/nonexistent")
      let qemu = try HostTools.qemu()
      let args = [qemu] + world.qemuArguments(artifacts: artifacts, run: run, shell: true)
      // Replace this process: QEMU owns the terminal, nothing is left behind when it quits.
      // The exec runs on a concurrency worker thread, whose signal mask blocks nearly everything,
      // and QEMU would inherit it: SIGTERM, and SIGHUP when the terminal goes away, would then
      // never end it. Exec with an empty mask.
      var none = sigset_t()
      sigemptyset(&none)
      pthread_sigmask(SIG_SETMASK, &none, nil)
      let cargs = args.map { strdup($0) } + [nil]
      execv(qemu, cargs)
      throw HarnessError(.environment, "cannot run \(qemu): \(String(cString: strerror(errno)))")
    }

    /// The built initramfs followed by a newc archive of `files` (the kernel unpacks
    /// concatenated archives in order), written into `dir`, a private directory
    /// (``PrivateFiles/makeDirectory(in:prefix:)``) the caller removes.
    static func initramfs(_ a: GuestArtifacts, adding files: [String], in dir: String) async throws -> String {
      let fm = FileManager.default
      try fm.createDirectory(atPath: dir + "/root", withIntermediateDirectories: false)
      for f in files {
        guard fm.fileExists(atPath: f) else { throw HarnessError.usage("--add \(f): no such file") }
        try fm.copyItem(atPath: f, toPath: dir + "/root/" + (f as NSString).lastPathComponent)
      }
      let names = files.map { ($0 as NSString).lastPathComponent }.joined(separator: "\n") + "\n"
      let r = try await Subprocess.run(
        .path("/bin/sh"), arguments: ["-c", "cd \(dir)/root && cpio --quiet -o -H newc -R 0:0 > ../extra.cpio"],
        input: .string(names), output: .discarded, error: .string(limit: 4096))
      guard case .exited(0) = r.terminationStatus else {
        throw HarnessError.environment("cpio failed (\(r.standardError)); install it: apt-get install -y cpio")
      }
      var image = try Data(contentsOf: URL(fileURLWithPath: a.initramfs))
      image.append(try Data(contentsOf: URL(fileURLWithPath: dir + "/extra.cpio")))
      try image.write(to: URL(fileURLWithPath: dir + "/initramfs.cpio"))
      return dir + "/initramfs.cpio"
    }
  }
}
