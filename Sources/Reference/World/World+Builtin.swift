extension World {
  /// The built-in worlds (DESIGN.md, "Worlds"), with the layout QEMU gives them.
  ///
  /// These are the facts before a guest has reported; a guest's own report replaces them.
  package static let builtin: [World] = [mf, p2pSwitch, p2pHostBridgeZen, p2pHostBridgeZenPT,
    p2pHostBridgeIntel, p2pSwitch2x, p2pSwitchACS, p2pHostBridgeZenDMA32, mfP2PSwitch,
    p2pMultifunctionZen, p2pMultifunctionSwitch]

  package static func named(_ name: String) -> World? { builtin.first { $0.name == name } }

  private static let intel = CPU(vendor: "GenuineIntel", family: 6, model: 85)
  private static let zen = CPU(vendor: "AuthenticAMD", family: 0x17, model: 1)
  /// 128 MiB of guest RAM on q35 (PFNs): below the 640 KiB hole, then from 1 MiB up to the
  /// firmware's reserved top, all in the first 128 MiB section.
  private static let ram128: [ClosedRange<UInt64>] = [0x0...0x9e, 0x100...0x7fdf]
  /// The exporter's 8 GiB BAR2: where the firmware places it above 4 GiB with 128 MiB of RAM,
  /// behind the switch and on the root bus alike (measured in the guest; the guest reports it).
  private static let bigBAR = BAR(index: 2, phys: 0x2_0000_0000, size: 0x2_0000_0000)
  /// The exporter's BAR0: ivshmem's 256 bytes of registers (below 4 GiB; where depends on the
  /// slot, and no range of a page fits in it).
  private static func registers(_ phys: UInt64) -> BAR { BAR(index: 0, phys: phys, size: 0x100) }

  /// Memory failure: 64 MiB ivshmem device memory at `0xf8000000`, Intel CPU (MCE recovers).
  package static let mf = World(
    name: "mf", cpu: intel, deviceMemory: DeviceMemory(firstPFN: 0xf8000, pages: 0x4000),
    ram: ram128, iommu: .none)

  /// Exporter and importer behind one PCIe switch, ACS redirect off: bus addresses.
  package static let p2pSwitch = World(
    name: "p2p-switch", cpu: intel, deviceMemory: nil, ram: ram128, iommu: .dma,
    pci: [
      PCINode(name: "rp0", parent: nil, isBridge: true),
      PCINode(name: "up0", parent: "rp0", isBridge: true),
      PCINode(name: "dn0", parent: "up0", isBridge: true),
      PCINode(name: "dn1", parent: "up0", isBridge: true),
      PCINode(name: "ex0", parent: "dn0", isBridge: false),
      PCINode(name: "im0", parent: "dn1", isBridge: false),
    ],
    exporters: [Exporter(name: DeviceName("x0")!, node: "ex0", bars: [registers(0xfe80_0000), bigBAR])],
    importers: [Importer(name: ImporterName("i0")!, node: "im0")])

  private static let rootBus: [PCINode] = [
    PCINode(name: "ex0", parent: nil, isBridge: false),
    PCINode(name: "im0", parent: nil, isBridge: false),
  ]

  /// Both on the root bus, Zen CPU, IOMMU translating: IOVA tables.
  package static let p2pHostBridgeZen = World(
    name: "p2p-hostbridge-zen", cpu: zen, deviceMemory: nil, ram: ram128, iommu: .dma,
    pci: rootBus,
    exporters: [
      Exporter(name: DeviceName("x0")!, node: "ex0", bars: [registers(0xfeb0_0000), bigBAR], resetWorks: false)
    ],
    importers: [Importer(name: ImporterName("i0")!, node: "im0")])

  /// Both on the root bus, Zen CPU, IOMMU in passthrough: direct tables.
  package static let p2pHostBridgeZenPT: World = {
    var w = p2pHostBridgeZen
    w.name = "p2p-hostbridge-zen-pt"
    w.iommu = .passthrough
    return w
  }()

  /// Both on the root bus, Intel CPU, q35 host bridge not allowed: not supported.
  package static let p2pHostBridgeIntel: World = {
    var w = p2pHostBridgeZen
    w.name = "p2p-hostbridge-intel"
    w.cpu = intel
    return w
  }()

  /// The second exporter's 8 GiB BAR2, above the first's (the guest reports where it is).
  private static let bigBAR2 = BAR(index: 2, phys: 0x4_0000_0000, size: 0x2_0000_0000)

  /// Two exporters and one importer behind one switch, ACS redirect off: bus addresses for
  /// both (C6.2); revoking one exporter's bufs leaves the other's alone (C7.6).
  package static let p2pSwitch2x = World(
    name: "p2p-switch-2x", cpu: intel, deviceMemory: nil, ram: ram128, iommu: .dma,
    pci: [
      PCINode(name: "rp0", parent: nil, isBridge: true),
      PCINode(name: "up0", parent: "rp0", isBridge: true),
      PCINode(name: "dn0", parent: "up0", isBridge: true),
      PCINode(name: "dn1", parent: "up0", isBridge: true),
      PCINode(name: "dn2", parent: "up0", isBridge: true),
      PCINode(name: "ex0", parent: "dn0", isBridge: false),
      PCINode(name: "im0", parent: "dn1", isBridge: false),
      PCINode(name: "ex1", parent: "dn2", isBridge: false),
    ],
    exporters: [
      Exporter(name: DeviceName("x0")!, node: "ex0", bars: [registers(0xfe80_0000), bigBAR]),
      Exporter(name: DeviceName("x1")!, node: "ex1", bars: [registers(0xfe60_0000), bigBAR2]),
    ],
    importers: [Importer(name: ImporterName("i0")!, node: "im0")])

  /// p2p-switch with ACS redirect on at both downstream ports, as Linux enables it when an
  /// IOMMU is present (C6.6): through the q35 host bridge, which is not allowed: not supported.
  package static let p2pSwitchACS: World = {
    var w = p2pSwitch
    w.name = "p2p-switch-acs"
    for k in w.pci.indices where w.pci[k].name.hasPrefix("dn") { w.pci[k].acsRedirect = true }
    return w
  }()

  /// p2p-hostbridge-zen with an importer whose DMA mask is 32 bits.
  package static let p2pHostBridgeZenDMA32: World = {
    var w = p2pHostBridgeZen
    w.name = "p2p-hostbridge-zen-dma32"
    w.importers[0].dmaMaskBits = 32
    // What its guest reported (2026-12-04): q35's PCI windows and the MSI range.
    w.importers[0].iovaReserved = [
      0xa_0000...0xb_ffff, 0x800_0000...0xafff_ffff, 0xc000_0000...0xfebf_ffff,
      0x2_0000_0000...0x9_ffff_ffff, 0xfee0_0000...0xfeef_ffff,
    ]
    return w
  }()

  /// Both halves at once: the shim's device memory (as in `mf`) and p2p-switch's exporter and
  /// importer.
  package static let mfP2PSwitch: World = {
    var w = p2pSwitch
    w.name = "mf-p2p-switch"
    w.deviceMemory = mf.deviceMemory
    return w
  }()

  /// Exporter and importer as functions 0 and 1 of one device on the root bus, Zen CPU, no
  /// IOMMU (vfio-pci in no-IOMMU mode): through the host bridge, direct tables (C6.4).
  package static let p2pMultifunctionZen: World = {
    var w = p2pHostBridgeZen
    w.name = "p2p-multifunction-zen"
    w.iommu = .none
    return w
  }()

  /// The same two functions behind one downstream port of a switch, no IOMMU: their common
  /// upstream bridge is that port, so bus addresses (C6.2). Its guest reports the exporter's
  /// reset as `bus` (2026-12-04; see reset-method-stale-bus).
  package static let p2pMultifunctionSwitch: World = {
    var w = p2pSwitch
    w.name = "p2p-multifunction-switch"
    w.iommu = .none
    w.pci.removeAll { $0.name == "dn1" }
    for k in w.pci.indices where w.pci[k].name == "im0" { w.pci[k].parent = "dn0" }
    w.exporters[0].resetMethods = ["bus"]
    return w
  }()
}
