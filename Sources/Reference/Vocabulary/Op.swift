/// One operation of a sequence: the shared vocabulary of the model, the guest agent, the corpus
/// and the reports (Corpora/README.md has the text form and what each op means in the guest).
///
/// Each case has an ``OpKind`` whose ``OpSpec`` describes it (keyword, half, contract items,
/// placement, fields): a new case needs a kind and a spec too (docs/adding-an-op.md).
package enum Op: Hashable, Sendable {
  // Processes and threads.
  case spawn(ProcessName)
  case fork(ThreadRef, child: ProcessName)
  case threadCreate(ThreadRef)
  case threadExit(ThreadRef)
  case exit(ProcessName, code: Int32)
  /// `prctl(PR_MCE_KILL, arg2, arg3, 0, 0)` (C3.7).
  case mceKill(ThreadRef, arg2: UInt64, arg3: UInt64)
  /// `prctl(PR_MCE_KILL_GET, 0, 0, 0, 0)` (C3.7).
  case mceKillGet(ThreadRef)
  case sigbus(ProcessName, Disposition)
  case sigmask(ThreadRef, blocked: Bool)
  /// Write `vm.memory_failure_early_kill` (C3.9).
  case sysctlEarlyKill(Int64)

  // Mappings of the shim's device memory.
  case mmap(ProcessName, addr: UInt64, pages: UInt64, region: UInt64, pgoff: UInt64)
  case munmap(ProcessName, addr: UInt64, pages: UInt64)
  case madviseDontFork(ProcessName, addr: UInt64, pages: UInt64)
  /// `mprotect(2)` of a range (C3.8: takes no VMA away).
  case mprotect(ProcessName, addr: UInt64, pages: UInt64, prot: Protection)
  /// `mremap(2)` with `MREMAP_MAYMOVE | MREMAP_FIXED`: move `pages` pages at `addr` to `to`,
  /// same size.
  case mremap(ProcessName, addr: UInt64, pages: UInt64, to: UInt64)

  // PFN-space objects (section 1).
  case spaceCreate(SpaceName, first: UInt64, last: UInt64, callback: CallbackFlavour)
  case spaceRegister(SpaceName)
  case spaceUnregister(SpaceName)
  case spaceDestroy(SpaceName)

  // Triggers (section 5).
  case injectSysfs(ThreadRef, pfn: UInt64)
  case injectShim(ThreadRef, pfn: UInt64, flags: UInt32)
  case injectQueue(pfn: UInt64, flags: UInt32)
  case injectMCE(pfn: UInt64)
  /// An action-required machine check consumed by the thread: the host injects it while the
  /// thread spins in user mode, so `memory_failure(pfn, MF_ACTION_REQUIRED)` runs in that
  /// thread's context (C5.4).
  case injectMCEAR(ThreadRef, pfn: UInt64)
  /// `madvise(MADV_HWPOISON)` of a range: meant for pages with a struct page (C5.2).
  case madviseHWPoison(ProcessName, addr: UInt64, pages: UInt64)
  /// A write of the PFN to debugfs `hwpoison/corrupt-pfn`: meant for pages with a struct page
  /// (C5.2).
  case corruptPFN(pfn: UInt64)

  // Observations on demand (section 2).
  /// The kernel log's memory-failure lines since the last `mf-log` (C2.7), one `mf` line each.
  case mfLog
  /// `HardwareCorrupted` of `/proc/meminfo`, in pages, minus its value when the sequence
  /// began: the poisoned-page accounting (`num_poisoned_pages`, C2.8).
  case hwCorrupted

  // VFIO export and the shim's importer (sections 6, 7).
  case vfioOpen(DeviceName)
  case vfioClose(DeviceName)
  case vfioMemory(DeviceName, enabled: Bool)
  case vfioReset(DeviceName)
  /// `VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY` (SET): the device may enter a low-power state (C7.4).
  case vfioLowPowerEntry(DeviceName)
  /// `VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP` (SET) with a wakeup fd of this kind.
  case vfioLowPowerWakeup(DeviceName, wakeup: WakeupFD)
  /// `VFIO_DEVICE_FEATURE_LOW_POWER_EXIT` (SET).
  case vfioLowPowerExit(DeviceName)
  /// `pwrite` of the low `width` bytes of `value` (little endian) at `offset` of the VFIO
  /// config region: any register, any width (C7.4, C7.6).
  case vfioConfig(DeviceName, offset: UInt64, width: UInt64, value: UInt64)
  /// `VFIO_DEVICE_PCI_HOT_RESET` with an empty group fd array (the cdev form) (C7.5, C7.6).
  case vfioHotReset(DeviceName)
  /// Observes the device's power state (sysfs `power_state`): the result is 0 for D0, 1, 2,
  /// 3 for D3hot, 4 for D3cold (C7.4).
  case vfioPower(DeviceName)
  case export(BufName, DeviceName, ExportRequest)
  case bufClose(BufName)
  case fdinfo(BufName)
  case attach(AttachmentName, BufName, importer: ImporterName, isDynamic: Bool)
  case map(AttachmentName)
  case unmap(AttachmentName)
  case detach(AttachmentName)
  /// What the importer does when notified while it holds a mapping (C7.5; harness rule).
  case importerMode(AttachmentName, ImporterMode)

  // iommufd as a second importer of the dma-bufs (C7.3–C7.5; DmaBufModel+IOMMUFD.swift).
  /// `open("/dev/iommu")` and `IOMMU_IOAS_ALLOC`: an IOAS in an iommufd context of its own.
  case ioasAlloc(IOASName)
  /// `IOMMU_IOAS_MAP_FILE` of the dma-buf's fd, readable and writable: `length` bytes from byte
  /// `start` of the buf, at `iova` (`IOMMU_IOAS_MAP_FIXED_IOVA`) or, when `nil`, where the
  /// kernel chooses (the result is then that IOVA, a symbol).
  case ioasMapFile(IOASMappingName, IOASName, BufName, start: UInt64, length: UInt64, iova: UInt64?)
  /// `IOMMU_IOAS_UNMAP` of exactly the mapping's IOVA range: the result is the length unmapped.
  case ioasUnmap(IOASMappingName)
  /// Names the IOAS the exporter is attached to (`vfio-open` attaches it to a new IOAS in its
  /// iommufd), for as long as that open lasts: maps into it go through the device's IOMMU domain.
  case ioasDevice(IOASName, DeviceName)

  /// Two `memory_failure(pfn, 0)` calls at once, from two threads (the shim's direct poison):
  /// observes C2.1 through the most `pfn_to_vma_pgoff()` callbacks that ran at once.
  case mfRace(pfn: UInt64)
  /// The buf's entry in debugfs `dma_buf/bufinfo`: size, exporter name and attached devices
  /// (C7.8).
  case bufinfo(BufName)
  /// The `dma_buf:*` tracepoint records (export, fd, attach, detach) since the last
  /// `dmabuf-trace`, one `trace` line each (C7.8).
  case dmabufTrace
}

/// What the shim's importer does in `invalidate_mappings` when the attachment is mapped
/// (C7.5: the revoking operation completes only after every importer has unmapped).
package enum ImporterMode: String, Hashable, Sendable, CaseIterable {
  /// Unmaps inside the callback (the default).
  case unmap
  /// Unmaps, then maps again inside the callback (the exporter must refuse: C7.4).
  case remap
  /// Leaves the unmap to a kernel worker, after a bounded delay (`HARNESS_SHIM_DELAYED_MS`).
  case delayed
  /// Does not unmap within the window W (`HARNESS_SHIM_WINDOW_MS`); a worker unmaps then.
  case never
}

/// The `wakeup_eventfd` of `VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP`.
package enum WakeupFD: String, Hashable, Sendable, CaseIterable {
  /// A new eventfd.
  case eventfd
  /// -1: no file (written `none`).
  case absent = "none"
  /// An open fd that is not an eventfd (the device's own).
  case file
}

/// What a process does with SIGBUS (`sigaction`).
package enum Disposition: String, Hashable, Sendable, CaseIterable {
  /// An `SA_SIGINFO` handler that records what it receives.
  case handler
  /// `SIG_DFL`: SIGBUS kills the process.
  case `default`
  /// `SIG_IGN`
  case ignore
}

/// The protection an `mprotect` sets.
package enum Protection: String, Hashable, Sendable, CaseIterable {
  /// `PROT_NONE`
  case none
  /// `PROT_READ`
  case read
  /// `PROT_READ | PROT_WRITE`
  case rw
}

/// The driver callback a PFN-space object is registered with (docs/contract.md section 4).
package enum CallbackFlavour: String, Hashable, Sendable, CaseIterable {
  /// No callback: registration must fail (C1.1).
  case none
  /// nvgrace-gpu's arithmetic (C4.2): the default, so findings transfer to the real driver (C4.3).
  case nvgrace
  /// nvgrace's arithmetic plus a check that the PFN lies inside the VMA.
  case strict
}

/// One `{offset, length}` entry of a VFIO dma-buf request (C7.1).
package struct DMARange: Hashable, Sendable {
  package var offset: UInt64
  package var length: UInt64
  package init(offset: UInt64, length: UInt64) {
    self.offset = offset
    self.length = length
  }
}

/// A `VFIO_DEVICE_FEATURE` request for `VFIO_DEVICE_FEATURE_DMA_BUF` (docs/contract.md section 7).
///
/// `nil` fields take the well-formed default: the header flags `GET | 11`, `argsz` exactly the
/// header, payload and ranges, `nr_ranges` the number of ranges, `open_flags` `O_RDWR|O_CLOEXEC`.
package struct ExportRequest: Hashable, Sendable {
  package var region: UInt32
  package var ranges: [DMARange]
  package var feature: UInt32?
  package var argsz: UInt32?
  package var nrRanges: UInt32?
  package var flags: UInt32
  package var openFlags: UInt32?

  package init(
    region: UInt32, ranges: [DMARange], feature: UInt32? = nil, argsz: UInt32? = nil,
    nrRanges: UInt32? = nil, flags: UInt32 = 0, openFlags: UInt32? = nil
  ) {
    self.region = region
    self.ranges = ranges
    self.feature = feature
    self.argsz = argsz
    self.nrRanges = nrRanges
    self.flags = flags
    self.openFlags = openFlags
  }

  /// `VFIO_DEVICE_FEATURE_DMA_BUF`
  package static let featureDMABuf: UInt32 = 11
  /// `VFIO_DEVICE_FEATURE_GET`
  package static let get: UInt32 = 1 << 16
  /// `VFIO_DEVICE_FEATURE_SET`
  package static let set: UInt32 = 1 << 17
  /// `VFIO_DEVICE_FEATURE_PROBE`
  package static let probe: UInt32 = 1 << 18
  /// `O_RDWR | O_CLOEXEC`
  package static let defaultOpenFlags: UInt32 = 0o2 | 0o2_000_000
  /// Size of `struct vfio_device_feature` (argsz, flags).
  package static let headerSize: UInt32 = 8
  /// Size of `struct vfio_device_feature_dma_buf` without its ranges.
  package static let payloadSize: UInt32 = 16
  /// Size of one `struct vfio_region_dma_range`.
  package static let rangeSize: UInt32 = 16

  package var effectiveFeature: UInt32 { feature ?? (Self.get | Self.featureDMABuf) }
  package var effectiveNrRanges: UInt32 { nrRanges ?? UInt32(clamping: ranges.count) }
  package var effectiveOpenFlags: UInt32 { openFlags ?? Self.defaultOpenFlags }
  /// The `argsz` the agent sends: the given one, or exactly what `nr_ranges` ranges need, counting
  /// at most 2^20 of them (so a larger `nr_ranges` with the default `argsz` fails C7.1's check
  /// that `argsz` covers the range array).
  package var effectiveArgsz: UInt32 {
    argsz
      ?? Self.headerSize + Self.payloadSize
      + Self.rangeSize * UInt32(clamping: min(Int(effectiveNrRanges), 1 << 20))
  }
  /// The ranges the kernel reads: the first `nr_ranges` of those given, padded with zero ranges.
  package var rangesAsRead: [DMARange] {
    let n = Int(effectiveNrRanges)
    if n <= ranges.count { return Array(ranges.prefix(n)) }
    return ranges + Array(repeating: DMARange(offset: 0, length: 0), count: n - ranges.count)
  }
}
