/// A decision point of the model: a contract item and one of its outcomes.
///
/// Model-rule coverage: the model counts the rules each op takes (``RuleHits``), a campaign
/// sums them and lists the rules it never took, and a test requires a regression sequence for
/// every rule. The raw value is the rule's name in reports: the contract item first.
package enum Rule: String, CaseIterable, Sendable, Comparable, Codable {
  // Section 1: PFN spaces.
  case registerNoCallback = "C1.1 register: no callback, -EINVAL"
  case registerOverlap = "C1.1 register: overlaps a registered space, -EBUSY"
  case registered = "C1.1 register: registered"
  case unregisterRegistered = "C1.2 unregister: a registered space"
  case unregisterNotRegistered = "C1.2 unregister: not registered, no effect"
  // Sections 2, 3: memory_failure() on a PFN without struct page.
  case failureNoSpace = "C2.3 failure: no registered space covers the PFN, ignored"
  case failureRecovered = "C2.4 failure: recovered"
  case raceSerialised = "C2.1 race: two calls at once, one callback at a time"
  case raceNoCallback = "C2.1 race: two calls at once, no callback asked"
  case logLines = "C2.7 log: one line per memory failure, in call order"
  case logEmpty = "C2.7 log: no memory failure since the last read"
  case accountingUnchanged = "C2.8 accounting: HardwareCorrupted unchanged"
  case processNotMapping = "C3.1 walk: a process that does not map the PFN"
  case outsideVMA = "C3.1 walk: the callback's offset lies outside the VMA"
  case callbackFails = "C4.1 walk: the callback fails for a VMA"
  case forcedAR = "C3.2 walk: current process, AR by force"
  case forcedUnblocked = "C3.2 walk: forced over a blocked or ignored SIGBUS"
  case earlyAO = "C3.3 walk: early-kill thread, AO"
  case lateNoSignal = "C3.3 walk: maps the PFN, no early-kill thread, no signal"
  case aoIgnored = "C3.3 walk: AO to an ignored SIGBUS, discarded"
  case aoBlocked = "C3.3 walk: AO to a blocked SIGBUS, stays pending"
  case alreadyPending = "C3.5 walk: a SIGBUS already pending, not queued again"
  case mayFollow = "C3.5 walk: a later AO may follow the handled first one"
  case deliveredToHandler = "C3.4 delivery: to a handler"
  case killedByDefault = "C3.3 delivery: the default action ends the process"
  // Section 3: policy, processes, VMAs.
  case policySet = "C3.7 prctl: policy set or cleared"
  case policyInvalid = "C3.7 prctl: invalid arguments, -EINVAL"
  case policyGet = "C3.7 prctl: policy read"
  case sysctlSet = "C3.9 sysctl: early kill set"
  case sysctlInvalid = "C3.9 sysctl: invalid value, -EINVAL"
  case forkKeepsVMAs = "C3.8 fork: the child gets the device VMAs"
  case forkDropsDontfork = "C3.8 fork: MADV_DONTFORK VMAs stay in the parent"
  case munmapSplits = "C3.8 munmap: a VMA trimmed or split"
  case threadExits = "C3.8 thread-exit: a thread other than the first exits"
  case leaderExits = "C3.8 thread-exit: the first thread exits, the process lives on"
  case candidateWithoutLeader = "C3.1 walk: a candidate whose first thread has exited"
  case mprotectKeepsVMAs = "C3.8 mprotect: a mapped range, no VMA taken away"
  case mprotectHoleChangesPrefix = "C3.8 mprotect: an unmapped page, the pages before it changed, -ENOMEM"
  case mremapMoves = "C3.8 mremap: pages moved with their offsets"
  case mremapMovesSeveral = "C3.8 mremap: a simple move over several mappings and the gaps between"
  case mremapUnmapped = "C3.8 mremap: the old address is not mapped, -EFAULT"
  case mremapOutsideWindow = "C3.8 mremap: a destination outside the map window, -EPERM (harness)"
  // Section 5: triggers.
  case injectNotPermitted = "C5.1 inject: the PFN is not injectable, -EPERM"
  case injectMCEBeyondAddressWidth = "C5.4 inject-mce: the address is beyond the CPU's physical width, -EPERM"
  case injectFromThread = "C5.3 inject: in a thread's context"
  case injectFromWorker = "C5.3 inject: from a kernel worker"
  case injectMCEARInContext = "C5.4 inject-mce-ar: memory_failure(MF_ACTION_REQUIRED) in the consuming thread"
  case injectMCEARNotRecovered = "C5.4 inject-mce-ar: not recovered, a plain SIGBUS (SI_KERNEL) for that thread"
  case hwpoisonMadviseFails = "C5.2 madvise: MADV_HWPOISON on device memory, -EFAULT"
  case hwpoisonDebugfsFails = "C5.2 corrupt-pfn: a PFN without struct page, -ENXIO"
  // Section 6: P2P mapping.
  case mapNotSupported = "C6.1 map: P2P not supported, -EINVAL"
  case mapBusAddress = "C6.2 map: bus addresses"
  case mapIOVA = "C6.3 map: one IOVA range"
  case mapIOVAMultiRange = "C6.3 map: one IOVA range for several physical ranges"
  case mapDirect = "C6.4 map: direct (IOMMU passthrough)"
  case mapBusy = "C6.7 map: already mapped, -EBUSY"
  case unmapped = "C6.7 unmap: the table released"
  // Section 7: VFIO export and revocation.
  case exportHeader = "C7.1(1) export: argsz below the header, unknown flags or GET with SET"
  case exportNoSupport = "C7.1(2) export: no dma-buf support, -EOPNOTSUPP"
  case exportSet = "C7.1(3) export: SET, -EINVAL"
  case exportProbe = "C7.1(4) export: PROBE, 0"
  case exportNoGet = "C7.1(5) export: neither GET nor SET"
  case exportPayload = "C7.1(6) export: argsz below the fixed payload"
  case exportNoRanges = "C7.1(7) export: no ranges or payload flags"
  case exportOpenFlags = "C7.2 export: an unknown open_flags bit, -EINVAL"
  case exportRegion = "C7.1(8) export: not a BAR with claimed MMIO, -ENODEV"
  case exportArgszRanges = "C7.1 export: argsz short of the range array, -EINVAL"
  case exportTooMany = "C7.1(9) export: too many ranges to copy, -ENOMEM"
  case exportMalformed = "C7.1(10) export: a zero-length or unaligned range"
  case exportTotal = "C7.1(11) export: total length overflows or has bit 63"
  case exportOverflow = "C7.1(12) export: bar start + range overflows, -EOVERFLOW"
  case exportBeyondBAR = "C7.1(13) export: a range past the BAR"
  case exported = "C7.1 export: a dma-buf"
  case exportedRevoked = "C7.4 export: created while not usable, revoked from the start"
  case attachStatic = "C7.3 attach: a static importer, -EOPNOTSUPP"
  case attachRevoked = "C7.4 attach: a revoked buf, -ENODEV"
  case attached = "C7.3 attach: attached"
  case bufinfoListed = "C7.8 bufinfo: size, exporter name and the live attachments' importers"
  case traceEmpty = "C7.8 dmabuf-trace: no dma_buf record since the last read"
  case traceRecords = "C7.8 dmabuf-trace: export, fd, attach, detach records since the last read"
  case mapRevoked = "C7.4 map: a revoked buf, -ENODEV"
  case revokedNotified = "C7.5 revoke: a live attachment notified and unmapped"
  case restoredNotified = "C7.5 restore: a live attachment may be notified"
  case revokeByClose = "C7.6 close: the open's bufs revoked"
  case revokeByMemory = "C7.6 memory: bufs revoked or restored with PCI_COMMAND's MEMORY bit"
  case revokeByReset = "C7.6 reset: bufs revoked for the reset"
  case resetUnsupported = "C7.6 reset: no reset method, -EINVAL"
  // Section 7: the device's power state and raw config writes (DmaBufModel+Power.swift).
  case lowPowerStaysD0 = "C7.4 low power: entered, no PM capability, stays in D0, nothing revoked"
  case lowPowerD3hot = "C7.4 low power: entered, PM capability, D3hot, bufs revoked"
  case lowPowerTwice = "C7.4 low power: already entered, -EINVAL"
  case lowPowerBadEventfd = "C7.4 low power: wakeup fd negative or not an eventfd, -EINVAL"
  case lowPowerExit = "C7.4 low power: exit, back to D0"
  case lowPowerExitNone = "C7.4 low power: exit with none in effect, 0"
  case configOutside = "C7.6 config: a write outside the config region, -EINVAL"
  case configEmpty = "C7.6 config: a write of no bytes, 0 wherever it points, nothing changes"
  case configMemory = "C7.6 config: a write of PCI_COMMAND's low byte sets or clears MEMORY"
  case configPowerState = "C7.4 config: PMCSR's PowerState to D0 or D3hot"
  case configPowerStateDiscarded = "C7.4 config: PMCSR's PowerState D1 or D2 discarded"
  case configOther = "C7.6 config: a write of other registers, nothing revoked"
  case revokeByHotReset = "C7.5 hot reset: bufs revoked for the reset"
  case hotResetUnsupported = "C7.6 hot reset: no bus or slot reset, -ENODEV"
  case hotResetNotOwned = "C7.6 hot reset: another function on the bus, not owned, -EINVAL"
  case powerD0 = "C7.4 power: D0"
  case powerLow = "C7.4 power: D3hot"
  // Importer modes (C7.5) and the IOMMU check of an unmap (C6.7).
  case importerModeSet = "C7.5 importer mode: set on a live attachment"
  case remapRefused = "C7.5 revoke: an importer that maps again inside the notification, -ENODEV"
  case revokeWaitsForDelayed = "C7.5 revoke: completes after a delayed importer unmapped"
  case revokeBlockedByNever = "C7.5 revoke: still blocked at the deadline by an importer that unmaps only after the window"
  case unmapLeavesNothing = "C6.7 unmap: no IOVA of the table still translates"
  // Section 7: iommufd as a second importer (DmaBufModel+IOMMUFD.swift).
  case ioasMapRange = "C7.3 ioas map: length 0, overflow or past the buf (interpretation)"
  case ioasMapRevoked = "C7.4 ioas map: a revoked buf, -ENODEV"
  case ioasMapMultiRange = "C7.3 ioas map: a buf of several ranges, -EOPNOTSUPP (iommufd.h)"
  case ioasMapIOVAInUse = "C7.5 ioas map: a fixed IOVA range in use, a revoked mapping's too, -EEXIST"
  case ioasMapped = "C7.3 ioas map: mapped"
  case ioasRevoked = "C7.5 revoke: an IOAS mapping revoked, its IOVA range kept"
  case ioasUnmapped = "C7.7 ioas unmap: the mapping's length"
  case ioasUnmapRevoked = "C7.5 ioas unmap: a revoked mapping, its length"
  case ioasDevice = "C7.3 ioas device: the IOAS an open exporter is attached to"
  case ioasMapUnaligned = "C7.3 ioas map: a device's IOAS, length, iova or start not page aligned, -EINVAL (interpretation)"
  case ioasMapReserved = "C7.3 ioas map: a device's IOAS, a fixed range outside its IOVA space, -EINVAL (interpretation)"

  /// The contract item, as `C7.1` (the name's first word without a step number).
  package var item: String {
    let word = rawValue.prefix { $0 != " " }
    return String(word.prefix { $0 != "(" })
  }

  package static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// How often each ``Rule`` was taken.
package struct RuleHits: Sendable, Equatable, Codable {
  package private(set) var counts: [Rule: Int] = [:]

  package init() {}

  package mutating func add(_ r: Rule) { counts[r, default: 0] += 1 }

  package mutating func merge(_ other: RuleHits) {
    for (r, n) in other.counts { counts[r, default: 0] += n }
  }

  /// The rules never taken, in name order.
  package var neverHit: [Rule] { Rule.allCases.filter { counts[$0] == nil }.sorted() }
}
