/// The fixed facts of one guest configuration (DESIGN.md, "Worlds").
///
/// The model predicts from these facts alone; the guest reports its own at boot and the model is
/// rebuilt from that report, so a different layout never breaks predictions.
///
/// Invariant: device-memory pages are even (two regions of equal size); exporter and importer
/// nodes name nodes of `pci`; `pci` parents name earlier nodes.
package struct World: Hashable, Sendable {
  package var name: String
  package var cpu: CPU
  /// The shim's device memory (ivshmem BAR2), or `nil` when the world has none.
  package var deviceMemory: DeviceMemory?
  /// PFN ranges of System RAM (inclusive).
  package var ram: [ClosedRange<UInt64>]
  package var iommu: IOMMUMode
  /// The PCI topology: bridges and endpoints; a node without parent sits on the root bus.
  package var pci: [PCINode]
  /// Whether the host bridge is on the P2P allow-list (C6.6; QEMU's q35 `8086:29c0` is not).
  package var hostBridgeAllowed: Bool
  package var exporters: [Exporter]
  package var importers: [Importer]
  /// Virtual addresses the generator places mappings in (never used by anything else).
  package var mapWindow: ClosedRange<UInt64>

  /// The map window the guest agent knows (its `MAP_WINDOW_FIRST`/`LAST`, written into
  /// `VM/agent/ops.h` from here): every world the guest runs has it.
  package static let agentMapWindow: ClosedRange<UInt64> = 0x1000_0000_0000...0x1000_ffff_ffff

  package init(
    name: String, cpu: CPU, deviceMemory: DeviceMemory?, ram: [ClosedRange<UInt64>],
    iommu: IOMMUMode, pci: [PCINode] = [], hostBridgeAllowed: Bool = false,
    exporters: [Exporter] = [], importers: [Importer] = [],
    mapWindow: ClosedRange<UInt64> = World.agentMapWindow
  ) {
    self.name = name
    self.cpu = cpu
    self.deviceMemory = deviceMemory
    self.ram = ram
    self.iommu = iommu
    self.pci = pci
    self.hostBridgeAllowed = hostBridgeAllowed
    self.exporters = exporters
    self.importers = importers
    self.mapWindow = mapWindow
  }

  /// Whether the harness may inject a memory failure at `pfn`: not RAM, and in a 128 MiB
  /// section with no RAM at all, so the kernel has no memory map for it (C2.2).
  /// Harness rule: PFNs from 2^52 on (beyond any physical address) are never injected.
  package func isInjectable(_ pfn: UInt64) -> Bool {
    guard pfn >> 52 == 0 else { return false }
    let section = pfn >> Arch.sectionPFNShift
    return !ram.contains { r in
      (r.lowerBound >> Arch.sectionPFNShift)...(r.upperBound >> Arch.sectionPFNShift) ~= section
    }
  }

  /// Whether the harness may inject a machine check at `pfn`: injectable, and its address fits
  /// the CPU's physical address width.
  /// Harness rule: MCi_ADDR holds a physical address of that width (the bits above it are
  /// reserved), so a machine check cannot report a PFN beyond it; the harness injects none there.
  package func isInjectableByMachineCheck(_ pfn: UInt64) -> Bool {
    let width = cpu.physicalAddressBits
    guard width > Int(Arch.pageShift), width < 64 else { return false }
    return isInjectable(pfn) && pfn >> (UInt64(width) - Arch.pageShift) == 0
  }

  package func exporter(_ name: DeviceName) -> Exporter? { exporters.first { $0.name == name } }
  package func importer(_ name: ImporterName) -> Importer? { importers.first { $0.name == name } }
  package func node(_ name: String) -> PCINode? { pci.first { $0.name == name } }

  /// Whether another PCI function sits on the bus of exporter `e`'s device, behind the same
  /// bridge (on the root bus: `false`, as no bus or slot reset reaches it). The topology names
  /// only exporters, importers and the bridges above them, so this sees those.
  package func sharesBus(_ e: Exporter) -> Bool {
    guard let parent = node(e.node)?.parent else { return false }
    return pci.contains { !$0.isBridge && $0.parent == parent && $0.name != e.node }
  }

  /// Checks the invariant; `nil` when it holds, else what is wrong.
  package func invariantViolation() -> String? {
    if let m = deviceMemory, m.pages == 0 || m.pages % 2 != 0 {
      return "device memory of \(m.pages) pages is not a positive even number of pages"
    }
    var seen: Set<String> = []
    for n in pci {
      if let p = n.parent, !seen.contains(p) { return "pci node \(n.name): unknown parent \(p)" }
      seen.insert(n.name)
    }
    for e in exporters where !seen.contains(e.node) {
      return "exporter \(e.name): unknown pci node \(e.node)"
    }
    for i in importers where !seen.contains(i.node) {
      return "importer \(i.name): unknown pci node \(i.node)"
    }
    return nil
  }
}

/// The guest's CPU as `/proc/cpuinfo` reports it.
package struct CPU: Hashable, Sendable {
  package var vendor: String
  package var family: Int
  package var model: Int
  /// The width of a physical address (`address sizes: N bits physical`); QEMU's CPU models
  /// default to 40.
  package var physicalAddressBits: Int
  package init(vendor: String, family: Int, model: Int, physicalAddressBits: Int = 40) {
    self.vendor = vendor
    self.family = family
    self.model = model
    self.physicalAddressBits = physicalAddressBits
  }
  /// AMD Zen or later (family ≥ 0x17): P2P through the host bridge is allowed (C6.6).
  package var isZenOrLater: Bool { vendor == "AuthenticAMD" && family >= 0x17 }
}

/// How the IOMMU treats the importer's DMA (C6.3, C6.4).
package enum IOMMUMode: String, Hashable, Sendable, CaseIterable {
  /// No IOMMU.
  case none
  /// A translating DMA domain: the importer sees IOVAs.
  case dma
  /// An identity (passthrough) domain.
  case passthrough
}

/// The shim's device memory: `pages` pages from `firstPFN`, split into VFIO-style regions 2 and 4.
package struct DeviceMemory: Hashable, Sendable {
  package var firstPFN: UInt64
  package var pages: UInt64
  package init(firstPFN: UInt64, pages: UInt64) {
    self.firstPFN = firstPFN
    self.pages = pages
  }

  /// Region indexes the shim maps (the two halves, like nvgrace-gpu's two memory regions).
  package static let regionIndexes: [UInt64] = [2, 4]

  /// The first PFN and page count of `region`, or `nil` if it is not a device-memory region.
  package func region(_ index: UInt64) -> (firstPFN: UInt64, pages: UInt64)? {
    switch index {
    case 2: (firstPFN, pages / 2)
    case 4: (firstPFN + pages / 2, pages / 2)
    default: nil
    }
  }
}

/// A node of the PCI topology.
package struct PCINode: Hashable, Sendable {
  package var name: String
  /// The upstream node; `nil` on the root bus (behind the host bridge).
  package var parent: String?
  package var isBridge: Bool
  /// ACS P2P request/completion redirect enabled on this port (C6.6).
  package var acsRedirect: Bool
  package init(name: String, parent: String?, isBridge: Bool, acsRedirect: Bool = false) {
    self.name = name
    self.parent = parent
    self.isBridge = isBridge
    self.acsRedirect = acsRedirect
  }
}

/// A BAR of an exporter device.
package struct BAR: Hashable, Sendable {
  package var index: UInt32
  package var phys: UInt64
  package var size: UInt64
  /// Whether the driver claimed its MMIO (C7.1: a BAR without claimed MMIO gives `-ENODEV`).
  package var isClaimed: Bool
  package init(index: UInt32, phys: UInt64, size: UInt64, isClaimed: Bool = true) {
    self.index = index
    self.phys = phys
    self.size = size
    self.isClaimed = isClaimed
  }
}

/// A device the guest binds to vfio-pci and exports from.
package struct Exporter: Hashable, Sendable {
  package var name: DeviceName
  package var node: String
  package var bars: [BAR]
  /// `p2pdma_provider.bus_offset` (C6.2).
  package var busOffset: UInt64
  package var supportsDmaBuf: Bool
  /// Whether `VFIO_DEVICE_RESET` can reset this device (vfio answers `-EINVAL` if not).
  package var resetWorks: Bool
  /// Whether `VFIO_DEVICE_PCI_HOT_RESET` can reset it: its reset methods include a bus (or
  /// slot) reset, which a device on the root bus does not have.
  package var hotResetWorks: Bool
  /// The config-space offset of its PCI power-management capability, if it has one (QEMU's
  /// ivshmem has none: it stays in D0).
  package var pmCapability: UInt64?
  /// The reset methods the guest reported (sysfs `reset_method`, in order), when it did.
  package var resetMethods: [String]?
  /// The size of its config space (256, or 4096 with extended config space): the VFIO config
  /// region's size.
  package var configSize: UInt64
  package init(
    name: DeviceName, node: String, bars: [BAR], busOffset: UInt64 = 0,
    supportsDmaBuf: Bool = true, resetWorks: Bool = true, hotResetWorks: Bool? = nil,
    pmCapability: UInt64? = nil, configSize: UInt64 = 256, resetMethods: [String]? = nil
  ) {
    self.name = name
    self.node = node
    self.bars = bars
    self.busOffset = busOffset
    self.supportsDmaBuf = supportsDmaBuf
    self.resetWorks = resetWorks
    self.hotResetWorks = hotResetWorks ?? resetWorks
    self.pmCapability = pmCapability
    self.configSize = configSize
    self.resetMethods = resetMethods
  }
  package func bar(_ index: UInt32) -> BAR? { bars.first { $0.index == index } }
}

/// A PCI function the shim's importer is bound to.
package struct Importer: Hashable, Sendable {
  package var name: ImporterName
  package var node: String
  /// The width of its DMA mask (`dma_set_mask`): the IOVAs a translating IOMMU may hand it lie
  /// below 2^bits. The contract's C6.3 does not depend on it.
  package var dmaMaskBits: Int
  /// The byte ranges its DMA domain keeps out of the IOVA space (the host bridge's memory
  /// windows, its IOMMU group's reserved regions), as the guest reports them; `nil` when not
  /// reported. Only the deviation iova-no-room-per-range looks at them.
  package var iovaReserved: [ClosedRange<UInt64>]?
  package init(
    name: ImporterName, node: String, dmaMaskBits: Int = 64, iovaReserved: [ClosedRange<UInt64>]? = nil
  ) {
    self.name = name
    self.node = node
    self.dmaMaskBits = dmaMaskBits
    self.iovaReserved = iovaReserved
  }
}
