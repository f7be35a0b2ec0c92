/// A known way the kernel departs from the contract, which the model can be told to predict.
///
/// The contract model (``MemoryFailureModel``, ``DmaBufModel``) predicts what docs/contract.md
/// says. A deviation, switched on in ``Machine/init(world:deviations:)``, layers one recorded
/// kernel behaviour on top of it: where its rule applies the model predicts what the kernel does
/// instead, and everywhere else the contract still decides. Each is written from a finding's
/// observed runs (the ledger's `observed.seq`), names the contract item it departs from, and is
/// switched on only to explain a divergence, never to hide one: a campaign looks for the smallest
/// set of deviations under which the model predicts every observation of a sequence
/// (Sources/Harness/Diff/Triage.swift), and a ledger entry names its deviation on its
/// `deviation:` line.
///
/// Some deviations leave the kernel in a state nothing defines (a freed node still linked in an
/// interval tree): from the op that makes it so, the model predicts nothing
/// (``Machine/undefined``) and the comparison of the sequence ends there.
package enum Deviation: String, CaseIterable, Hashable, Comparable, Sendable {
  /// C3.1: a process whose VMA maps the PFN only by the callback's offset (the address it gives
  /// lies past the VMA's end) is not left alone: the kernel SIGKILLs it (nvgrace's flavour does
  /// not bound the offset by the VMA), whether it is the current process or an early-kill one.
  case killOutsideVMA = "kill-outside-vma"
  /// C1.2: `unregister_pfn_address_space()` removes the space's node when *any* registered
  /// space overlaps its range, not when the space itself is registered. Unregistering a space
  /// never linked, overlapping a registered one, erases an unlinked node: the tree loses every
  /// registration. A space linked before and unlinked since (stale links) erased again: state
  /// undefined. A registered inverted range (first > last) overlaps nothing, not even itself:
  /// unregistering it leaves it linked, and the shim then frees it: state undefined.
  case unregisterByOverlap = "unregister-by-overlap"
  /// C1.1: registering an inverted range (first > last) that is already registered succeeds: the
  /// overlap check cannot see the space itself, and its node is linked twice: state undefined.
  case invertedRegistersTwice = "inverted-registers-twice"
  /// C5.4: an action-optional machine check on a registered PFN without struct page is recovered,
  /// and then the machine-check notifier's `set_mce_nospec()` WARNs (no direct map there). An
  /// action-required one (`inject-mce-ar`) WARNs the same way: `kill_me_maybe()` calls it too.
  case mceWarnsOnPFNMap = "mce-warns-on-pfnmap"
  /// Section 2 (flags), C5.3: `memory_failure_queue()` with `MF_SOFT_OFFLINE` (0x8) soft-offlines
  /// the PFN instead: no `memory_failure()` (no event, no signals), and the op returns 0.
  case queueSoftOffline = "queue-soft-offline"
  /// C3.7: `PR_MCE_KILL_SET` with an unknown policy returns `-EINVAL` after it has marked the
  /// thread as having a policy of its own: a thread without one becomes LATE.
  case prctlInvalidSetsPolicy = "prctl-invalid-sets-policy"
  /// C6.3: a dma-buf of two or more ranges, mapped through the host bridge with a translating
  /// IOMMU, fails with `-EADDRINUSE` (every range linked at IOVA offset 0); nothing is mapped.
  /// The observer's decisions: the first two ranges linked at offset 0 of one allocation, the
  /// second refused.
  case iovaMultiRangeFails = "iova-multi-range-fails"
  /// C7.1: `argsz` is checked against header and fixed payload only, not the range array.
  case exportArgszIgnoresRanges = "export-argsz-ignores-ranges"
  /// C7.2: `open_flags` bits other than the access mode, `O_NONBLOCK` and `O_CLOEXEC` are
  /// accepted.
  case exportOpenFlagsUnchecked = "export-open-flags-unchecked"
  /// C3.8 (mmap(2)): a fixed mapping at an address in the last 4095 bytes of the address space
  /// (2^64 − 4095 and up: unaligned, which mmap(2) answers with `EINVAL`) fails with the
  /// address itself as the error: errno 2^64 − addr (`EPERM` for 2^64 − 1, `EFAULT` for
  /// 2^64 − 14, 4095 for 2^64 − 4095), for any length the address space can hold.
  case mmapAddressAsError = "mmap-address-as-error"
  /// C3.2, C3.3 (C3.1's candidates): a process whose first thread (its leader, `t0`) has exited
  /// while other threads live on is left out of the kill walk altogether: no `BUS_MCEERR_AR`
  /// when one of its threads runs `memory_failure()`, no `BUS_MCEERR_AO` to its early-kill
  /// threads, and (with ``killOutsideVMA``) no SIGKILL either. The walk looks at each process
  /// through its leader, which keeps no memory map once it has exited.
  case exitedLeaderSkipsProcess = "exited-leader-skips-process"
  /// C7.4: `VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY` (and `_WITH_WAKEUP`, once its fd passed)
  /// revokes the device's dma-bufs while the device is still in D0, memory on and open: every
  /// attachment is notified, attach and map are `-ENODEV`. A dma-buf exported while the entry
  /// is in effect is not revoked (it is usable until a second entry). A second entry revokes again before
  /// it fails with `-EINVAL`. The next op that may restore (MEMORY written with MEMORY set, the
  /// end of a reset or hot reset, a low-power exit, with or without an entry in effect) makes
  /// them usable again, though the entry may still be in effect.
  case lowPowerEntryRevokes = "low-power-entry-revokes"
  /// C7.6 (the config write's interpretation, write(2)): a config write of one byte or more
  /// that does not lie inside the config region fails with `-EFAULT`, not `-EINVAL`; one that
  /// starts inside and runs past the end writes the bytes inside first.
  case configOutsideFault = "config-outside-fault"
  /// C6.3: for an importer with a DMA mask of 32 bits or fewer, the one IOVA allocation of the
  /// buf's size is made below the mask, outside what its DMA domain reserves (the host bridge's
  /// windows); when it finds no room, each range is mapped on its own (`dma_map_phys()` through
  /// the IOMMU): an IOVA of its own per range, entries cut per range as in C6.2, and a buf of
  /// several ranges maps. When a range finds no room either, the map fails with `-ENOMEM` and
  /// nothing stays mapped. The allocator (``DmaBufModel/IOVASpace``) is `alloc_iova()`'s:
  /// size-aligned, sizes under 32 pages rounded up to a power of two, the highest fit.
  case iovaNoRoomPerRange = "iova-no-room-per-range"
  /// C6.5 (with iova-no-room-per-range): when a range after the first finds no room, the error
  /// path of `dma_buf_phys_vec_to_sgt()` unmaps every entry of the table, the never-mapped ones
  /// too: each hands IOVA 0 of size 0 to `dma_unmap_phys()`, which puts page frame 0 into the
  /// IOVA cache of one-page allocations. A one-page allocation takes it back as "nothing cached"
  /// (most recent first, among the one-page IOVAs freed); the next allocation that finds no room
  /// empties the caches and WARNs (`iova_magazine_free_pfns()`: no IOVA at frame 0).
  case perRangeErrorCachesIOVAZero = "per-range-error-caches-iova-zero"
  /// C7.4 (`IOMMU_IOAS_MAP_FILE`, iommufd.h's "EOVERFLOW: Mathematics overflowed"): a `length`
  /// or an `iova` of 2^64 − 1 is `-EOVERFLOW` before any other check of the request, though
  /// nothing overflows (`start` 0 with that length ends at 2^64 − 1; a one-byte map at that
  /// IOVA too), where the model's interpretation checks the range against the buf (`-EINVAL`)
  /// or maps.
  case ioasMapULongMax = "ioas-map-ulong-max"
  /// C7.6 (the reset its world reports): an exporter whose reported reset methods are `bus`
  /// alone, and whose bus holds another PCI function, cannot be reset: `VFIO_DEVICE_RESET`
  /// answers `-EINVAL` and revokes nothing. The PCI core lists `bus` in sysfs `reset_method` for
  /// function 0 of a multifunction device behind a bridge, decided when that function was added
  /// alone on the bus, and a bus reset refuses a device whose bus it shares.
  case resetMethodStaleBus = "reset-method-stale-bus"

  /// The contract item the deviation departs from.
  package var contractItem: String {
    switch self {
    case .killOutsideVMA: "C3.1"
    case .unregisterByOverlap: "C1.2"
    case .invertedRegistersTwice: "C1.1"
    case .mceWarnsOnPFNMap: "C5.4"
    case .queueSoftOffline: "C5.3"
    case .prctlInvalidSetsPolicy: "C3.7"
    case .iovaMultiRangeFails: "C6.3"
    case .exportArgszIgnoresRanges: "C7.1"
    case .exportOpenFlagsUnchecked: "C7.2"
    case .mmapAddressAsError: "C3.8"
    case .exitedLeaderSkipsProcess: "C3.2"
    case .lowPowerEntryRevokes: "C7.4"
    case .configOutsideFault: "C7.6"
    case .iovaNoRoomPerRange: "C6.3"
    case .perRangeErrorCachesIOVAZero: "C6.5"
    case .ioasMapULongMax: "C7.4"
    case .resetMethodStaleBus: "C7.6"
    }
  }

  package static func < (a: Self, b: Self) -> Bool {
    allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
  }
}

/// What a sequence's run on the model predicts, with deviations on.
package struct Prediction: Sendable, Equatable {
  /// Per op, the predicted observations; `nil` from the op at which the state became undefined.
  package var steps: [[Observation]?]
  /// The op at which a deviation left the kernel's state undefined, and which one.
  package var undefined: (step: Int, by: Deviation)?

  package static func == (a: Self, b: Self) -> Bool {
    a.steps == b.steps && a.undefined?.step == b.undefined?.step && a.undefined?.by == b.undefined?.by
  }
}
