import Reference

/// A world as QEMU runs it: the machine, devices and kernel arguments of one guest
/// configuration (DESIGN.md, "Worlds"; GUEST.md for why each option is there).
struct GuestWorld: Sendable {
  let name: String
  /// The facts before the guest reports its own.
  let model: World
  /// `-cpu` value.
  let cpu: String
  /// Size of the shim's ivshmem device memory, if the world has one.
  let deviceMemoryBytes: UInt64?
  /// Extra kernel command-line arguments.
  let kernelArguments: [String]

  /// The worlds the guest can run today.
  static let all: [GuestWorld] = [
    GuestWorld(
      name: "mf", model: .mf, cpu: "max,vendor=GenuineIntel,family=6,model=85,stepping=4",
      deviceMemoryBytes: 64 << 20, kernelArguments: [])
  ]

  static func named(_ name: String) throws(HarnessError) -> GuestWorld {
    guard let w = all.first(where: { $0.name == name }) else {
      throw .usage(
        "world \(name) cannot run in the guest yet (guest worlds: \(all.map(\.name).joined(separator: ", "))); use --target model for it")
    }
    return w
  }

  /// The QEMU command line (without the executable) for a session in `run`.
  func qemuArguments(artifacts: GuestArtifacts, run: RunDirectory, shell: Bool = false) -> [String] {
    // tsc=unstable: timekeeping and sched_clock follow the HPET, i.e. QEMU's virtual clock, which a
    // snapshot restores; with the TSC (host time under TCG) every loadvm would look like a stall
    // of the time since savevm to the soft-lockup watchdog.
    var kernelArgs = ["console=ttyS0", "panic=-1", "quiet", "noapictimer", "tsc=unstable"] + kernelArguments
    if shell { kernelArgs.append("harness.shell=1") }
    var args = [
      "-accel", "tcg", "-machine", "q35", "-cpu", cpu, "-smp", "1", "-m", "512",
      "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
      "-kernel", artifacts.bzImage, "-initrd", artifacts.initramfs,
      "-append", kernelArgs.joined(separator: " "),
    ]
    if shell {
      args += ["-serial", "mon:stdio"]
    } else {
      args += [
        "-serial", "file:" + run.consolePath,
        "-chardev", "socket,id=ctl,path=\(run.controlPath),server=on,wait=off",
        "-device", "virtio-serial-pci", "-device", "virtserialport,chardev=ctl,name=ctl",
        "-monitor", "unix:\(run.monitorPath),server=on,wait=off",
        // Any qcow2 drive enables internal snapshots (savevm/loadvm) for the reset between
        // sequences (GUEST.md).
        "-drive", "if=none,id=snap,format=qcow2,file=\(run.snapshotPath)",
      ]
    }
    if let bytes = deviceMemoryBytes {
      args += [
        "-object", "memory-backend-memfd,id=m0,size=\(bytes),share=on",
        "-device", "ivshmem-plain,memdev=m0,master=on",
      ]
    }
    return args
  }
}

/// Where one guest session keeps its sockets, console log and snapshot drive.
struct RunDirectory: Sendable {
  let path: String
  var controlPath: String { path + "/ctl.sock" }
  var monitorPath: String { path + "/mon.sock" }
  var consolePath: String { path + "/console.log" }
  var qemuErrorPath: String { path + "/qemu.stderr" }
  var snapshotPath: String { path + "/snap.qcow2" }
}
