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
  /// Extra kernel command-line arguments (`harness.observer=off`: the agent loads no libbpf
  /// observer; `bench guest --without-observer` only).
  var kernelArguments: [String]
  /// Extra QEMU arguments: the dma-buf worlds' IOMMU, topology, exporter and importer.
  var devices: [String] = []

  /// The worlds the guest can run.
  static let all: [GuestWorld] = [
    GuestWorld(
      // With ACPI (its MADT): without it and without MP tables (CONFIG_X86_MPPARSE is off) the
      // kernel finds no local APIC and runs on the 8259 PIC, and then every irq_work waits for
      // the next 4 ms tick instead of a self-IPI: the ring buffer's wakeup of the agent's
      // trace_pipe poll, the MCE's work, the console's printing thread. `inject-queue` took
      // 7.0 ms, `inject-mce` 13.0 ms; with the APIC 3.3 and 8.2 ms. ACPI's initcall costs about
      // 0.17 s of boot under TCG, once per guest.
      name: "mf", model: .mf, cpu: intelCPU, deviceMemoryBytes: 64 << 20, kernelArguments: []),
    GuestWorld(
      name: "p2p-switch", model: .p2pSwitch, cpu: intelCPU, deviceMemoryBytes: nil,
      // No ACS redirect on the path (C6.6): QEMU's xio3130 downstream ports (104c:8233) have no
      // ACS capability (so the argument changes nothing); the root port's, above the switch's
      // upstream port, is not on the path (`harness worlds --guest p2p-switch`: `fact acs`).
      kernelArguments: p2pArguments + ["pci=disable_acs_redir=pci:104c:8233"],
      devices: iommu + pcieSwitch(downstreamPorts: 2)
        + exporter(bus: "dn0", addr: "0.0") + importer(bus: "dn1", addr: "0.0")),
    GuestWorld(
      name: "p2p-hostbridge-zen", model: .p2pHostBridgeZen, cpu: "EPYC", deviceMemoryBytes: nil,
      kernelArguments: p2pArguments,
      devices: iommu + exporter(bus: "pcie.0", addr: "5.0") + importer(bus: "pcie.0", addr: "6.0")),
    GuestWorld(
      name: "p2p-hostbridge-zen-pt", model: .p2pHostBridgeZenPT, cpu: "EPYC", deviceMemoryBytes: nil,
      kernelArguments: p2pArguments + ["iommu.passthrough=1"],
      devices: iommu + exporter(bus: "pcie.0", addr: "5.0") + importer(bus: "pcie.0", addr: "6.0")),
    GuestWorld(
      name: "p2p-hostbridge-intel", model: .p2pHostBridgeIntel, cpu: intelCPU, deviceMemoryBytes: nil,
      kernelArguments: p2pArguments,
      devices: iommu + exporter(bus: "pcie.0", addr: "5.0") + importer(bus: "pcie.0", addr: "6.0")),
    GuestWorld(
      // Two exporters and one importer behind one switch, ACS redirect off (C7.6: revoking
      // one exporter's bufs leaves the other's alone).
      name: "p2p-switch-2x", model: .p2pSwitch2x, cpu: intelCPU, deviceMemoryBytes: nil,
      kernelArguments: p2pArguments + ["pci=disable_acs_redir=pci:104c:8233"],
      devices: iommu + pcieSwitch(downstreamPorts: 3)
        + exporter(bus: "dn0", addr: "0.0") + importer(bus: "dn1", addr: "0.0")
        + exporter(bus: "dn2", addr: "0.0", id: "x1mem")),
    GuestWorld(
      // A switch whose downstream ports have ACS redirect on, as Linux sets them with an IOMMU
      // (C6.6), so the path goes through the q35 host bridge: not supported. The downstream
      // ports are QEMU's pcie-root-port (1b36:000c, with an ACS capability) behind the
      // upstream port, as xio3130-downstream has none.
      name: "p2p-switch-acs", model: .p2pSwitchACS, cpu: intelCPU, deviceMemoryBytes: nil,
      kernelArguments: p2pArguments,
      devices: iommu + [
        "-device", "pcie-root-port,id=rp0,bus=pcie.0,chassis=1,addr=4.0",
        "-device", "x3130-upstream,id=up0,bus=rp0",
        "-device", "pcie-root-port,id=dn0,bus=up0,chassis=2,slot=0,addr=0.0",
        "-device", "pcie-root-port,id=dn1,bus=up0,chassis=3,slot=1,addr=1.0",
      ]
        + exporter(bus: "dn0", addr: "0.0") + importer(bus: "dn1", addr: "0.0")),
    GuestWorld(
      // p2p-hostbridge-zen with a 32-bit importer: the IOVA of a map is allocated below 4 GiB.
      name: "p2p-hostbridge-zen-dma32", model: .p2pHostBridgeZenDMA32, cpu: "EPYC",
      deviceMemoryBytes: nil,
      // iommu.strict=1: an unmap frees its IOVA at once, not after the flush queue's 10 ms
      // (what room a later map finds must not depend on timing: iova-no-room-per-range).
      kernelArguments: p2pArguments + ["harness_shim.importer_dma_bits=32", "iommu.strict=1"],
      devices: iommu + exporter(bus: "pcie.0", addr: "5.0") + importer(bus: "pcie.0", addr: "6.0")),
    GuestWorld(
      // Both halves: the shim's device memory (its own ivshmem function, named to the shim)
      // and p2p-switch's exporter and importer.
      name: "mf-p2p-switch", model: .mfP2PSwitch, cpu: intelCPU, deviceMemoryBytes: 64 << 20,
      kernelArguments: [
        "harness_shim.devmem_bdf=\(deviceMemoryBDF)", "pci=disable_acs_redir=pci:104c:8233",
      ],
      devices: iommu + pcieSwitch(downstreamPorts: 2)
        + exporter(bus: "dn0", addr: "0.0") + importer(bus: "dn1", addr: "0.0")),
    GuestWorld(
      // Exporter and importer as two functions of one device on the root bus: ivshmem at
      // function 0 of slot 5, the importer at function 1. Without an IOMMU: QEMU's endpoints have
      // no ACS capability, so with one both functions share an IOMMU group, and vfio cannot own a
      // group whose other function the shim's driver holds (`vfio-open` is -EPERM). vfio-pci
      // binds the exporter in no-IOMMU mode (its cdev is noiommu-vfioN, bound to an iommufd
      // whose IOAS has a software page table). Zen: through the host bridge (C6.4).
      name: "p2p-multifunction-zen", model: .p2pMultifunctionZen, cpu: "EPYC",
      deviceMemoryBytes: nil, kernelArguments: p2pArguments + noIOMMUArguments,
      devices: exporter(bus: "pcie.0", addr: "5.0", multifunction: true)
        + importer(bus: "pcie.0", addr: "5.1")),
    GuestWorld(
      // The same two functions behind one downstream port of a switch: their common upstream
      // bridge is that port (C6.2, bus addresses). No IOMMU, as above.
      name: "p2p-multifunction-switch", model: .p2pMultifunctionSwitch, cpu: intelCPU,
      deviceMemoryBytes: nil, kernelArguments: p2pArguments + noIOMMUArguments,
      devices: pcieSwitch(downstreamPorts: 1)
        + exporter(bus: "dn0", addr: "0.0", multifunction: true) + importer(bus: "dn0", addr: "0.1")),
  ]

  /// vfio-pci binds a device that has no IOMMU group only in no-IOMMU mode (VM/harness.config
  /// builds it in; it taints the kernel, and only these worlds turn it on).
  static let noIOMMUArguments = ["vfio.enable_unsafe_noiommu_mode=1"]

  /// Skylake-SP: MCE injection recovers (GUEST.md); not a host bridge P2P allows (C6.6).
  static let intelCPU = "max,vendor=GenuineIntel,family=6,model=85,stepping=4"
  /// The shim leaves ivshmem to vfio-pci: in these worlds it is the exporter, not device memory.
  static let p2pArguments = ["harness_shim.devmem=0"]
  /// intel-iommu translates DMA under TCG (caching-mode for the vIOMMU's shadow); first, before
  /// the devices it translates for.
  static let iommu = ["-device", "intel-iommu,caching-mode=on"]

  /// The exporter: ivshmem with an 8 GiB BAR2 (sparse memfd), so ranges above 4 GiB exist.
  /// `id` names its memory backend (one per exporter); `multifunction`: function 0 of a slot
  /// whose other functions follow.
  static func exporter(bus: String, addr: String, id: String = "x0mem", multifunction: Bool = false) -> [String] {
    [
      "-object", "memory-backend-memfd,id=\(id),size=8G,share=on",
      "-device", "ivshmem-plain,memdev=\(id),master=on,bus=\(bus),addr=\(addr)"
        + (multifunction ? ",multifunction=on" : ""),
    ]
  }

  /// The importer's PCI function: QEMU's edu device, bound by the shim's importer driver.
  static func importer(bus: String, addr: String) -> [String] {
    ["-device", "edu,bus=\(bus),addr=\(addr)"]
  }

  /// A root port, and behind it a switch (`up0`) with one downstream port per slot
  /// (`dn0`, `dn1`, …): QEMU's xio3130 ports (104c:8232, 104c:8233).
  static func pcieSwitch(downstreamPorts: Int) -> [String] {
    [
      "-device", "pcie-root-port,id=rp0,bus=pcie.0,chassis=1,addr=4.0",
      "-device", "x3130-upstream,id=up0,bus=rp0",
    ]
      + (0..<downstreamPorts).flatMap { k in
        ["-device", "xio3130-downstream,id=dn\(k),bus=up0,chassis=\(k + 2),slot=\(k)"]
      }
  }

  /// The device memory's ivshmem function in `mf-p2p-switch`: the first free slot of the root
  /// bus after virtio-serial's (QEMU places it, as in `mf`); the shim binds only this one.
  static let deviceMemoryBDF = "0000:00:02.0"

  static func named(_ name: String) throws(HarnessError) -> GuestWorld {
    guard let w = all.first(where: { $0.name == name }) else {
      throw .usage(
        "world \(name) cannot run in the guest yet (guest worlds: \(all.map(\.name).joined(separator: ", "))); use --target model for it")
    }
    return w
  }

  /// The QEMU command line (without the executable) for a session in `run`.
  /// `snapshotAIO`: the snapshot drive's `aio=` (``HostTools/snapshotAIO(probing:)``).
  func qemuArguments(
    artifacts: GuestArtifacts, run: RunDirectory, shell: Bool = false, snapshotAIO: String = "threads"
  ) -> [String] {
    // tsc=unstable: timekeeping and sched_clock follow the HPET, i.e. QEMU's virtual clock, which a
    // snapshot restores; with the TSC (host time under TCG) every loadvm would look like a stall
    // of the time since savevm to the soft-lockup watchdog.
    // no_timer_check: the boot's IO-APIC timer test counts ticks during a busy wait on the TSC
    // (host time under TCG); on a loaded host the ticks come late, and with intel-iommu's
    // interrupt remapping a failed test panics ("timer doesn't work through Interrupt-remapped
    // IO-APIC"). The timer of QEMU's IO-APIC works; the test only measures host load.
    var kernelArgs = [
      "console=ttyS0", "panic=-1", "quiet", "noapictimer", "no_timer_check", "tsc=unstable",
      // The agent's console markers go through /dev/kmsg, which otherwise rate-limits them.
      "printk.devkmsg=on",
    ] + kernelArguments
    if shell { kernelArgs.append("harness.shell=1") }
    var args = [
      "-accel", "tcg", "-machine", "q35", "-cpu", cpu, "-smp", "1", "-m", "128",
      "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
      "-kernel", artifacts.bootKernel, "-initrd", artifacts.initramfs,
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
        "-drive", "if=none,id=snap,format=qcow2,file=\(run.snapshotPath),aio=\(snapshotAIO)",
      ]
    }
    if let bytes = deviceMemoryBytes {
      args += [
        "-object", "memory-backend-memfd,id=m0,size=\(bytes),share=on",
        "-device", "ivshmem-plain,memdev=m0,master=on",
      ]
    }
    return args + devices
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
