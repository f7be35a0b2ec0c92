/// The dma-buf half of the model (docs/contract.md, sections 6 and 7).
///
/// Holds the exporter devices of the world (open or not, memory decoding), the dma-bufs exported
/// from them, and the shim importer's attachments with their mappings. A dma-buf is *usable*
/// exactly while the open it was exported in is still the device's current open, memory
/// decoding is enabled and the device is in D0 (C7.4); otherwise it is revoked. The power ops
/// (low power, config writes, hot reset, power state) are in DmaBufModel+Power.swift.
///
/// Invariant (``invariantViolation()``): every buf names an exporter of the world and an open of
/// it that happened; every attachment names a known buf and a world importer; a mapped
/// attachment is not detached and its buf is usable (revocation unmaps, C7.5, C7.7); IOVA
/// symbols of live mappings are distinct and were allocated (`$iova1`…`$iovaN`, N the counter).
///
/// Harness rules (Corpora/README.md) are checked before the contract's: `-EEXIST` for a name
/// already used, `-ENOENT` for an unknown device, buf, attachment or importer, `-EBADF` for a
/// closed buf fd or a device that is not open, `-EBUSY` for `map` of a mapped attachment,
/// `-EINVAL` for `unmap` of an unmapped one.
///
/// Interpretation: `vfio-open` of a device that is already open is `-EBUSY` (the agent holds one
/// fd per device).
/// Interpretation: opening a device enables its memory decoding (vfio-pci enables the device on
/// open), so bufs exported right after `vfio-open` are usable.
/// Interpretation: a name is used once the op creating it succeeded; a failed (or probing)
/// `export` or a failed `attach` leaves its name free.
/// Interpretation: restoring (memory on, end of reset) may notify the attachments of the bufs it
/// makes usable again, once each, after any revocation notification of the same op: C7.5 names
/// notifications for revocation only, C7.8 lists those "per revoke/restore" as observables, so
/// one at restore is permitted, not required (`notify?`). (The model first predicted none; the
/// kernel notifies on both transitions: Corpora/findings/0008.)
/// Interpretation: a reset keeps the memory-enable bit as the VFIO user sees it; the buf is usable
/// after it iff it was before. A reset the device does not support (`resetWorks == false`)
/// answers `-EINVAL` and revokes nothing.
/// Interpretation: the importer's `invalidate_mappings` unmaps (C7.7), so after a revocation the
/// attachment holds no mapping (`unmap` → `-EINVAL`, a new `map` allowed once usable again).
/// Interpretation: closing a buf fd does not revoke or detach: the importer holds a reference.
/// Interpretation: `map` checks revocation (`-ENODEV`, C7.4) before the map type (`-EINVAL`,
/// C6.1); an IOVA symbol is allocated only by a map that succeeds.
/// Interpretation: `importer-mode A M` (harness rule: `-ENOENT` for an attachment that is not
/// live) sets what the importer does when notified while mapped: `unmap` inside the callback
/// (the default), `remap` (unmap, then map again inside the callback: the buf is revoked, so
/// C7.4's `-ENODEV`, reported `importer A remap=-ENODEV`), `delayed` (a worker unmaps after a
/// bounded delay) or `never` (a worker unmaps only after the window W). C7.5: the revoking op
/// completes only after every importer has unmapped, so it completes after the worker
/// (`importer A revoke=waited`), and with `never` it is still running at the deadline D < W
/// (`importer A revoke=blocked`). An attachment notified without a mapping reports nothing.
/// Interpretation: after `unmap` of a table that IOVAs cover (C6.3), none of them translates any
/// more in the importer's IOMMU domain (C6.7: the free undoes what the map did):
/// `importer A stale=0`. Other tables (bus addresses, direct) are not checked.
package struct DmaBufModel: Sendable {
  package let world: World
  /// Known kernel behaviours predicted instead of the contract's (``Deviation``).
  package let deviations: Set<Deviation>
  /// Per exporter of the world, by name.
  package private(set) var devices: [DeviceName: DeviceState]
  /// Dma-bufs in creation order (closed ones stay: their names stay used).
  package private(set) var bufs: [BufState] = []
  /// Attachments in creation order: the order of notifications (Corpora/README.md).
  package private(set) var attachments: [AttachmentState] = []
  /// How many IOVA ranges maps allocated so far: the last symbol is `$iova<count>` (C6.3).
  package private(set) var iovaCount = 0
  /// How many IOVA allocations a failing map made (iova-multi-range-fails): `$iova-failed<count>`.
  package private(set) var failedIOVACount = 0
  /// Per importer, its IOVA cache of one-page allocations, most recent last: `true` for the
  /// page frame 0 the deviation per-range-error-caches-iova-zero puts there, `false` for a
  /// one-page IOVA freed (tracked only with that deviation).
  private var onePageIOVACache: [ImporterName: [Bool]] = [:]
  /// iommufd's IOASes and their mappings of the bufs (DmaBufModel+IOMMUFD.swift).
  package internal(set) var iommufd = IOMMUFDState()
  private var bufIndex: [BufName: Int] = [:]
  private var attachmentIndex: [AttachmentName: Int] = [:]
  /// The rules taken so far (model-rule coverage), when counting is on (``Machine``).
  package var ruleHits: RuleHits? = nil
  /// What the kernel decides inside the series during the last op applied (a map's P2P map
  /// type), as the observer reports it (``KernelDecision``).
  package private(set) var decisions: [KernelDecision] = []
  /// The `dma_buf:*` tracepoint records not yet read by `dmabuf-trace` (C7.8).
  package private(set) var traceRecords: [DmaBufTraceEvent] = []

  mutating func hit(_ r: Rule) { ruleHits?.add(r) }

  /// An exporter's VFIO state.
  package struct DeviceState: Hashable, Sendable {
    package var isOpen = false
    /// How many times the device was opened: the current open's number while `isOpen`.
    package var openCount = 0
    /// The MEMORY bit of `PCI_COMMAND` as the VFIO user sees it (C7.4).
    package var isMemoryEnabled = false
    /// Inside `VFIO_DEVICE_RESET` (C7.6: revoked for its duration); never true between ops.
    package var isResetting = false
    /// The PCI power state: 0 for D0, 3 for D3hot (C7.4).
    package var powerState = 0
    /// The low-power feature in effect (`VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY*`), if any.
    package var lowPower: LowPower? = nil
    /// The bufs a low-power entry revoked until the next restore: those exported before it
    /// (a buf's place in export order below this count); one exported during the entry is
    /// usable. Only with the deviation low-power-entry-revokes
    /// (``DmaBufModel/liftLowPowerRevoke(_:)``).
    package var lowPowerRevokedBelow: Int? = nil
  }

  /// Which low-power entry is in effect.
  package enum LowPower: Hashable, Sendable {
    case entry, wakeup
  }

  /// A dma-buf exported from a device.
  package struct BufState: Hashable, Sendable {
    package var name: BufName
    package var device: DeviceName
    /// The device open (its `openCount`) the buf was exported in.
    package var openNumber: Int
    /// The physical ranges, in request order (C7.7: maps cover these).
    package var ranges: [PhysRange]
    /// Whether the user still holds the buf's fd.
    package var isFDOpen = true
    /// The dma-buf's size: the sum of the range lengths (C7.2).
    package var size: UInt64 { ranges.reduce(0) { $0 &+ $1.length } }
  }

  /// One attachment of the shim's importer to a dma-buf.
  package struct AttachmentState: Hashable, Sendable {
    package var name: AttachmentName
    package var buf: BufName
    package var importer: ImporterName
    package var isDetached = false
    /// The table the importer holds, if mapped.
    package var mapping: SgTable?
    /// The IOVA symbol number (`$iovaK`) of the mapping, if it allocated one (C6.3).
    package var iovaNumber: Int?
    /// The IOVA page ranges the mapping holds, tracked only with the deviation
    /// iova-no-room-per-range (meaningful while `mapping` is set).
    package var iovaBlocks: [ClosedRange<UInt64>] = []
    /// What the importer does when notified while mapped (C7.5).
    package var mode: ImporterMode = .unmap
  }

  /// The exporter name `fdinfo` reports (C7.2).
  package static let exporterName = "vfio_pci_core"

  package init(world: World, deviations: Set<Deviation> = []) {
    self.world = world
    self.deviations = deviations
    self.devices = Dictionary(
      world.exporters.map { ($0.name, DeviceState()) }, uniquingKeysWith: { a, _ in a })
  }

  /// Applies a dma-buf op (`op.isDmaBuf`) and returns the predicted observations in canonical
  /// order: the result, then `notify` lines in attachment creation order (an attachment's own
  /// in the order they happen), then `sgt`, then `fdinfo`.
  package mutating func apply(_ op: Op) -> [Observation] {
    decisions = []
    var notified: [Notification] = []
    var extra: [Observation] = []
    let result: ResultValue
    switch op {
    case .vfioOpen(let d): result = open(d)
    case .vfioClose(let d): result = close(d, &notified)
    case .vfioMemory(let d, let enabled): result = setMemory(d, enabled: enabled, &notified)
    case .vfioReset(let d): result = reset(d, &notified)
    case .export(let b, let d, let request): result = export(b, d, request)
    case .bufClose(let b): result = closeBuf(b)
    case .fdinfo(let b): result = fdinfo(b, &extra)
    case .bufinfo(let b): result = bufinfo(b, &extra)
    case .dmabufTrace: result = readTrace(&extra)
    case .attach(let a, let b, let importer, let isDynamic):
      result = attach(a, b, importer: importer, isDynamic: isDynamic)
    case .map(let a): result = map(a, &extra)
    case .unmap(let a): result = unmap(a, &notified)
    case .detach(let a): result = detach(a)
    case .vfioLowPowerEntry(let d): result = lowPowerEntry(d, wakeup: nil, &notified)
    case .vfioLowPowerWakeup(let d, let fd): result = lowPowerEntry(d, wakeup: fd, &notified)
    case .vfioLowPowerExit(let d): result = lowPowerExit(d, &notified)
    case .vfioConfig(let d, let offset, let width, let value):
      result = configWrite(d, offset: offset, width: width, value: value, &notified)
    case .vfioHotReset(let d): result = hotReset(d, &notified)
    case .vfioPower(let d): result = powerState(d)
    case .importerMode(let a, let mode): result = setMode(a, mode)
    case .ioasAlloc(let s): result = ioasAlloc(s)
    case .ioasMapFile(let m, let s, let b, let start, let length, let iova):
      result = ioasMapFile(m, s, b, start: start, length: length, iova: iova)
    case .ioasUnmap(let m): result = ioasUnmap(m)
    case .ioasDevice(let s, let d): result = ioasDevice(s, d)
    default: result = .error(.notImplemented)
    }
    // An attachment's importer reports come after its notifications.
    let notes = notified.enumerated().sorted {
      ($0.element.order, $0.element.isReport ? 1 : 0, $0.offset) < ($1.element.order, $1.element.isReport ? 1 : 0, $1.offset)
    }
    return [.result(result)] + notes.map(\.element.observation) + extra
  }

  /// A notification an op causes: the attachment's creation order and the observation.
  package struct Notification: Sendable {
    var order: Int
    var observation: Observation
    /// An importer report (``ImporterEvent``), which follows the attachment's notifications.
    var isReport = false
  }

  /// Whether `buf` is usable (C7.4): its device's current open is the one it was exported in,
  /// memory decoding is on, the device is in D0, and no reset is running.
  package func isUsable(_ buf: BufState) -> Bool {
    guard let d = devices[buf.device] else { return false }
    return d.isOpen && d.openCount == buf.openNumber && d.isMemoryEnabled && d.powerState == 0 && !d.isResetting
      && !(d.lowPowerRevokedBelow.map { below in bufIndex[buf.name].map { $0 < below } ?? false } ?? false)
  }

  /// The state of buf `name`, if it was exported.
  package func buf(_ name: BufName) -> BufState? { bufIndex[name].map { bufs[$0] } }

  /// The state of attachment `name`, if it was created.
  package func attachment(_ name: AttachmentName) -> AttachmentState? {
    attachmentIndex[name].map { attachments[$0] }
  }

  // MARK: - Devices (C7.4–C7.6)

  private mutating func open(_ d: DeviceName) -> ResultValue {
    guard let state = devices[d] else { return .error(.noEntry) }
    if state.isOpen { return .error(.busy) }
    devices[d]!.isOpen = true
    devices[d]!.openCount += 1
    devices[d]!.isMemoryEnabled = true
    // Interpretation: a new open starts in D0 with no low-power entry in effect.
    devices[d]!.powerState = 0
    devices[d]!.lowPower = nil
    devices[d]!.lowPowerRevokedBelow = nil
    return .zero
  }

  private mutating func close(_ d: DeviceName, _ notified: inout [Notification]) -> ResultValue {
    guard let state = devices[d] else { return .error(.noEntry) }
    guard state.isOpen else { return .error(.badFD) }
    // C7.5, C7.6: closing revokes every buf of this open, forever (a later open is a new one).
    hit(.revokeByClose)
    change(d, &notified) { $0.isOpen = false }
    return .zero
  }

  private mutating func setMemory(
    _ d: DeviceName, enabled: Bool, _ notified: inout [Notification]
  ) -> ResultValue {
    guard let state = devices[d] else { return .error(.noEntry) }
    guard state.isOpen else { return .error(.badFD) }
    // C7.6: clearing MEMORY revokes, setting it restores (C7.4 decides usability).
    hit(.revokeByMemory)
    change(d, &notified) {
      $0.isMemoryEnabled = enabled
      Self.liftLowPowerRevoke(&$0)
    }
    return .zero
  }

  private mutating func reset(_ d: DeviceName, _ notified: inout [Notification]) -> ResultValue {
    guard let state = devices[d], let exporter = world.exporter(d) else {
      return .error(.noEntry)
    }
    guard state.isOpen else { return .error(.badFD) }
    guard exporter.resetWorks, !(deviations.contains(.resetMethodStaleBus) && Self.staleBusReset(exporter, world))
    else {
      hit(.resetUnsupported)
      return .error(.invalid)
    }
    // C7.6: revoked for the duration of the reset, then usable again (C7.5).
    hit(.revokeByReset)
    change(d, &notified) { $0.isResetting = true }
    // Interpretation: a reset leaves the device in D0.
    change(d, &notified) {
      $0.isResetting = false
      $0.powerState = 0
      Self.liftLowPowerRevoke(&$0)
    }
    return .zero
  }

  /// Applies `body` to device `d` and revokes what it made unusable (C7.5): every live
  /// attachment of a buf that was usable and no longer is gets notified (in creation order)
  /// and loses its mapping; one of a buf it made usable again may be notified (see the type's
  /// interpretations). Bufs of other devices are untouched (C7.6).
  mutating func change(
    _ d: DeviceName, _ notified: inout [Notification], _ body: (inout DeviceState) -> Void
  ) {
    let mine = bufs.filter { $0.device == d }
    let before = Set(mine.filter { isUsable($0) }.map(\.name))
    body(&devices[d]!)
    let revoked = before.filter { !isUsable(buf($0)!) }
    let restored = Set(mine.filter { !before.contains($0.name) && isUsable(buf($0.name)!) }.map(\.name))
    // C7.5: every importer, iommufd's mappings too.
    revokeIOASMappings(revoked)
    for i in attachments.indices where !attachments[i].isDetached {
      if revoked.contains(attachments[i].buf) {
        // C7.5: invalidate_mappings; the importer unmaps before the revocation completes (C7.7).
        hit(.revokedNotified)
        notified.append(Notification(order: i, observation: .notify(attachments[i].name)))
        releaseIOVA(i)
        if attachments[i].mapping != nil, let event = revokeReport(attachments[i].mode) {
          notified.append(Notification(order: i, observation: .importer(attachments[i].name, event), isReport: true))
        }
        attachments[i].mapping = nil
        attachments[i].iovaNumber = nil
      } else if restored.contains(attachments[i].buf) {
        hit(.restoredNotified)
        notified.append(Notification(order: i, observation: .optional(.notify(attachments[i].name))))
      }
    }
  }

  // MARK: - Bufs (C7.1, C7.2)

  private mutating func export(_ b: BufName, _ d: DeviceName, _ request: ExportRequest)
    -> ResultValue
  {
    if bufIndex[b] != nil { return .error(.exists) }
    guard let state = devices[d], let exporter = world.exporter(d) else {
      return .error(.noEntry)
    }
    guard state.isOpen else { return .error(.badFD) }
    let (decision, rule) = Self.validateExportTakingRule(request, exporter: exporter, deviations: deviations)
    hit(rule)
    switch decision {
    case .rejected(let e): return .error(e)
    case .probed: return .zero
    case .exported(let ranges):
      // C7.4: a buf created while not usable starts revoked: usability is computed.
      bufIndex[b] = bufs.count
      bufs.append(BufState(name: b, device: d, openNumber: state.openCount, ranges: ranges))
      if !isUsable(bufs[bufs.count - 1]) { hit(.exportedRevoked) }
      // C7.8: the export creates the dma-buf, then its fd.
      traceRecords += [.export(b), .fd(b)]
      return .symbol(Symbol(b.raw))
    }
  }

  private mutating func closeBuf(_ b: BufName) -> ResultValue {
    guard let i = bufIndex[b] else { return .error(.noEntry) }
    guard bufs[i].isFDOpen else { return .error(.badFD) }
    bufs[i].isFDOpen = false
    return .zero
  }

  private func fdinfo(_ b: BufName, _ extra: inout [Observation]) -> ResultValue {
    guard let buf = buf(b) else { return .error(.noEntry) }
    guard buf.isFDOpen else { return .error(.badFD) }
    // C7.2: size is the sum of the lengths, exporter name vfio_pci_core.
    extra.append(.fdinfo(b, size: buf.size, exporter: Self.exporterName))
    return .zero
  }

  /// C7.8: the buf's entry in debugfs `dma_buf/bufinfo`: size and exporter name as `fdinfo`
  /// gives them (C7.2), and one attached device per attachment that is not detached.
  /// Harness rules: as for `fdinfo`, `-ENOENT` for an unknown buf and `-EBADF` for a closed fd
  /// (the agent finds the entry by the inode of the buf's fd).
  /// Interpretation: a revocation leaves the attachments listed (C7.5 notifies the importer, it
  /// does not detach it; C7.7 unmaps only); the devices are compared as importer names, sorted,
  /// since the contract gives bufinfo no order.
  private mutating func bufinfo(_ b: BufName, _ extra: inout [Observation]) -> ResultValue {
    guard let buf = buf(b) else { return .error(.noEntry) }
    guard buf.isFDOpen else { return .error(.badFD) }
    hit(.bufinfoListed)
    let attached = attachments.filter { $0.buf == b && !$0.isDetached }.map(\.importer)
    extra.append(
      .bufinfo(b, size: buf.size, exporter: Self.exporterName, attached: attached.sorted { $0.raw < $1.raw }))
    return .zero
  }

  /// C7.8: the `dma_buf:*` tracepoint records (export, fd, attach, detach) since the last
  /// read, in the order they happened, one `trace` line each; always `0`.
  /// An export that creates a buf records `export` then `fd`; an attach that succeeds records
  /// `attach` of its importer (dynamic: C7.3 admits no other); a detach records `detach`.
  /// Interpretation: failed and probing ops record nothing of these four (no dma-buf or
  /// attachment is created or released); `buf-close` records none of them (it releases the
  /// user's fd only: the fd event is the one of installing it, and the importer keeps its
  /// reference, so the buf is not freed); revocations and restores (C7.5) attach and detach
  /// nothing.
  /// Harness rule: only the world's importers' records are reported (iommufd's own attachments,
  /// ioas-map-file, are left out: the contract gives its device no name); a record of a dma-buf
  /// the sequence did not export is an `error` line.
  private mutating func readTrace(_ extra: inout [Observation]) -> ResultValue {
    hit(traceRecords.isEmpty ? .traceEmpty : .traceRecords)
    extra += traceRecords.map { .dmabufTrace($0) }
    traceRecords = []
    return .zero
  }

  // MARK: - Attachments (C6, C7.3, C7.4, C7.7)

  private mutating func attach(
    _ a: AttachmentName, _ b: BufName, importer: ImporterName, isDynamic: Bool
  ) -> ResultValue {
    if attachmentIndex[a] != nil { return .error(.exists) }
    guard let buf = buf(b) else { return .error(.noEntry) }
    guard buf.isFDOpen else { return .error(.badFD) }
    guard world.importer(importer) != nil else { return .error(.noEntry) }
    // C7.3: importers must be dynamic.
    guard isDynamic else {
      hit(.attachStatic)
      return .error(.notSupported)
    }
    // C7.4: attach to a revoked buf fails.
    guard isUsable(buf) else {
      hit(.attachRevoked)
      return .error(.noDevice)
    }
    hit(.attached)
    attachmentIndex[a] = attachments.count
    attachments.append(AttachmentState(name: a, buf: b, importer: importer))
    traceRecords.append(.attach(b, importer, isDynamic: isDynamic))
    return .zero
  }

  /// The index of live (not detached) attachment `a`.
  private func liveAttachment(_ a: AttachmentName) -> Int? {
    guard let i = attachmentIndex[a], !attachments[i].isDetached else { return nil }
    return i
  }

  private mutating func map(_ a: AttachmentName, _ extra: inout [Observation]) -> ResultValue {
    guard let i = liveAttachment(a) else { return .error(.noEntry) }
    let att = attachments[i]
    if att.mapping != nil {
      hit(.mapBusy)
      return .error(.busy)
    }
    let buf = buf(att.buf)!
    // C7.4: map of a revoked buf fails.
    guard isUsable(buf) else {
      hit(.mapRevoked)
      return .error(.noDevice)
    }
    let exporter = world.exporter(buf.device)!
    let importer = world.importer(att.importer)!
    let mode: DMAMode
    let type = Self.mapType(exporter: exporter, importer: importer, in: world)
    decisions.append(.mapType(type))
    switch type {
    case .notSupported:
      hit(.mapNotSupported)
      return .error(.invalid)  // C6.1
    case .busAddress:
      hit(.mapBusAddress)
      mode = .busAddress(busOffset: exporter.busOffset)  // C6.2
    case .throughHostBridge:
      if world.iommu == .dma {
        var block: ClosedRange<UInt64>? = nil
        if deviations.contains(.iovaNoRoomPerRange), let space = IOVASpace(importer) {
          let taken = iovaBlocksHeld(by: importer.name)
          block = allocateIOVA(space, bytes: buf.size, avoiding: taken, for: importer.name, &extra)
          if block == nil {
            return mapPerRange(i, buf, space: space, taken: taken, &extra)
          }
        }
        if deviations.contains(.iovaMultiRangeFails), let e = Self.iovaLinkFailure(buf) {
          // The allocation the kernel made and freed again: a symbol of its own, so that the
          // sg tables' `$iovaN` stay numbered as the contract numbers them.
          failedIOVACount += 1
          let base = Symbol("iova-failed\(failedIOVACount)")
          decisions += Self.iovaLinkFailureDecisions(buf, base: base, error: e).map { .dmaRange($0) }
          return .error(e)
        }
        // C6.3: a fresh IOVA range, named by the model.
        hit(buf.ranges.count > 1 ? .mapIOVAMultiRange : .mapIOVA)
        iovaCount += 1
        attachments[i].iovaNumber = iovaCount
        attachments[i].iovaBlocks = block.map { [$0] } ?? []
        mode = .iova(base: Symbol("iova\(iovaCount)"))
      } else {
        hit(.mapDirect)
        mode = .direct  // C6.4
      }
    }
    decisions += Self.rangeDecisions(buf.ranges, mode: mode).map { .dmaRange($0) }
    // C7.7: the table of section 6 for the buf's ranges.
    let table = Self.sgTable(buf.ranges, mode: mode)
    attachments[i].mapping = table
    extra.append(.sgTable(a, table))
    return .zero
  }

  /// The IOVA page ranges the mapped attachments of `importer` hold (iova-no-room-per-range).
  private func iovaBlocksHeld(by importer: ImporterName) -> [ClosedRange<UInt64>] {
    attachments.filter { $0.importer == importer && $0.mapping != nil }.flatMap(\.iovaBlocks)
  }

  /// iova-no-room-per-range: the buf's size found no room below the importer's mask, so each
  /// range is mapped on its own (`dma_map_phys()` through the IOMMU): its own IOVA, its own
  /// entries (cut as in C6.2); the first range without room fails the map with `-ENOMEM`,
  /// and what was mapped is unmapped again.
  private mutating func mapPerRange(
    _ i: Int, _ buf: BufState, space: IOVASpace, taken: [ClosedRange<UInt64>], _ extra: inout [Observation]
  ) -> ResultValue {
    var blocks: [ClosedRange<UInt64>] = []
    var entries: [SgEntry] = []
    var symbols: [Int] = []
    let importer = attachments[i].importer
    for r in buf.ranges {
      guard let block = allocateIOVA(space, bytes: r.length, avoiding: taken + blocks, for: importer, &extra)
      else {
        // The observer's `dma=` of a failed dma_map_phys(): DMA_MAPPING_ERROR.
        decisions.append(.dmaRange(DMARangeDecision(.direct, r, .concrete(UInt64.max))))
        // The error path unmaps what was mapped, range by range (one entry each: no range
        // below a 32-bit mask needs two).
        for b in blocks { freeIOVA(b, for: importer) }
        if !blocks.isEmpty, deviations.contains(.perRangeErrorCachesIOVAZero) {
          // ... and every other entry of the table, never mapped: IOVA 0, size 0.
          let entries = Self.sgTable(buf.ranges, mode: .direct).nents
          onePageIOVACache[importer, default: []] += Array(repeating: true, count: entries - blocks.count)
        }
        return .error(Errno(12))  // ENOMEM
      }
      blocks.append(block)
      iovaCount += 1
      symbols.append(iovaCount)
      let base = Symbol("iova\(iovaCount)")
      decisions.append(.dmaRange(DMARangeDecision(.direct, r, .iova(base, offset: 0))))
      entries += Self.sgTable([r], mode: .iova(base: base)).entries
    }
    let table = SgTable(nents: entries.count, origNents: 0, entries: entries)
    attachments[i].mapping = table
    attachments[i].iovaNumber = symbols.first
    attachments[i].iovaBlocks = blocks
    // Before a WARN the failed allocation of the whole size gave (guest failures come last).
    let failure = extra.firstIndex { if case .guestFailure = $0 { true } else { false } }
    extra.insert(.sgTable(attachments[i].name, table), at: failure ?? extra.endIndex)
    return .zero
  }

  /// An IOVA allocation of `bytes` for `importer` (iova-no-room-per-range), through the
  /// one-page cache when per-range-error-caches-iova-zero is on: a one-page request takes the
  /// most recent entry (frame 0 counts as none); a request that finds no room empties the
  /// cache, and WARNs if frame 0 was in it.
  private mutating func allocateIOVA(
    _ space: IOVASpace, bytes: UInt64, avoiding taken: [ClosedRange<UInt64>], for importer: ImporterName,
    _ extra: inout [Observation]
  ) -> ClosedRange<UInt64>? {
    let tracking = deviations.contains(.perRangeErrorCachesIOVAZero)
    if tracking, bytes <= 1 << Arch.pageShift, !(onePageIOVACache[importer] ?? []).isEmpty {
      onePageIOVACache[importer]!.removeLast()
    }
    let block = space.allocate(bytes: bytes, avoiding: taken)
    if block == nil, tracking, let cache = onePageIOVACache[importer] {
      if cache.contains(true), !extra.contains(where: { if case .guestFailure = $0 { true } else { false } }) {
        extra.append(.guestFailure(kind: "warn", detail: ""))
      }
      onePageIOVACache[importer] = []
    }
    return block
  }

  /// A freed IOVA allocation: a one-page one goes into the cache (tracked only with
  /// per-range-error-caches-iova-zero).
  private mutating func freeIOVA(_ block: ClosedRange<UInt64>, for importer: ImporterName) {
    if deviations.contains(.perRangeErrorCachesIOVAZero), block.count == 1 {
      onePageIOVACache[importer, default: []].append(false)
    }
  }

  /// Frees the IOVA allocations of attachment `i`'s mapping (before the mapping goes).
  private mutating func releaseIOVA(_ i: Int) {
    guard attachments[i].mapping != nil else { return }
    for b in attachments[i].iovaBlocks { freeIOVA(b, for: attachments[i].importer) }
    attachments[i].iovaBlocks = []
  }

  /// What an importer in `mode` reports when a revocation notifies it while mapped, if anything.
  private mutating func revokeReport(_ mode: ImporterMode) -> ImporterEvent? {
    switch mode {
    case .unmap: return nil
    case .remap:
      // C7.4: mapping a revoked buf fails, also from inside the notification.
      hit(.remapRefused)
      return .remap(.error(.noDevice))
    case .delayed:
      // C7.5: the op completes only after the importer has unmapped.
      hit(.revokeWaitsForDelayed)
      return .revoke(.waited)
    case .never:
      // C7.5: it waits for the unmap that comes only after W, so at D < W it has not completed.
      hit(.revokeBlockedByNever)
      return .revoke(.blocked)
    }
  }

  private mutating func setMode(_ a: AttachmentName, _ mode: ImporterMode) -> ResultValue {
    guard let i = liveAttachment(a) else { return .error(.noEntry) }
    hit(.importerModeSet)
    attachments[i].mode = mode
    return .zero
  }

  private mutating func unmap(_ a: AttachmentName, _ notified: inout [Notification]) -> ResultValue {
    guard let i = liveAttachment(a) else { return .error(.noEntry) }
    guard attachments[i].mapping != nil else { return .error(.invalid) }
    // C6.7, C7.7: unmap releases the table.
    hit(.unmapped)
    releaseIOVA(i)
    if attachments[i].iovaNumber != nil {
      // C6.7: the free undoes the map: none of the table's IOVAs translates any more.
      hit(.unmapLeavesNothing)
      notified.append(Notification(order: i, observation: .importer(a, .stale(0)), isReport: true))
    }
    attachments[i].mapping = nil
    attachments[i].iovaNumber = nil
    return .zero
  }

  private mutating func detach(_ a: AttachmentName) -> ResultValue {
    guard let i = liveAttachment(a) else { return .error(.noEntry) }
    releaseIOVA(i)
    attachments[i].mapping = nil
    attachments[i].iovaNumber = nil
    attachments[i].isDetached = true
    traceRecords.append(.detach(attachments[i].buf, attachments[i].importer, isDynamic: true))
    return .zero
  }

  // MARK: - Invariant

  /// Checks the invariant; `nil` when it holds, else what is wrong.
  package func invariantViolation() -> String? {
    for (i, b) in bufs.enumerated() {
      if bufIndex[b.name] != i { return "buf \(b.name): index out of date" }
      guard let d = devices[b.device] else { return "buf \(b.name): unknown device \(b.device)" }
      if b.openNumber < 1 || b.openNumber > d.openCount {
        return "buf \(b.name): open \(b.openNumber) of \(b.device) never happened"
      }
      if b.ranges.isEmpty { return "buf \(b.name): no ranges" }
    }
    if bufIndex.count != bufs.count { return "buf index has \(bufIndex.count) names" }
    for (name, d) in devices {
      if d.isResetting { return "device \(name): still resetting between ops" }
      if d.powerState != 0 && d.powerState != 3 { return "device \(name): power state D\(d.powerState)" }
      if !d.isOpen && d.lowPower != nil && d.openCount == 0 { return "device \(name): low power before any open" }
    }
    var iovas: Set<Int> = []
    for (i, a) in attachments.enumerated() {
      if attachmentIndex[a.name] != i { return "attachment \(a.name): index out of date" }
      guard let buf = buf(a.buf) else { return "attachment \(a.name): unknown buf \(a.buf)" }
      if world.importer(a.importer) == nil {
        return "attachment \(a.name): unknown importer \(a.importer)"
      }
      if a.mapping == nil, a.iovaNumber != nil {
        return "attachment \(a.name): IOVA without a mapping"
      }
      guard a.mapping != nil else { continue }
      if a.isDetached { return "attachment \(a.name): mapped after detach" }
      if !isUsable(buf) { return "attachment \(a.name): mapped on revoked buf \(a.buf)" }
      if let k = a.iovaNumber {
        if k < 1 || k > iovaCount { return "attachment \(a.name): $iova\(k) never allocated" }
        if !iovas.insert(k).inserted { return "attachment \(a.name): $iova\(k) mapped twice" }
      }
    }
    if attachmentIndex.count != attachments.count {
      return "attachment index has \(attachmentIndex.count) names"
    }
    return iommufdInvariantViolation()
  }
}
