/// The device power state and what changes it (C7.4–C7.6): the low-power features, raw
/// config-space writes, `VFIO_DEVICE_PCI_HOT_RESET`, and the power state as observed.
///
/// C7.4 makes a dma-buf usable only while its device is in D0; C7.5 and C7.6 say a PCI reset
/// and clearing the MEMORY bit revoke. The contract says nothing of the low-power features,
/// of config writes other than `PCI_COMMAND`'s MEMORY bit, or of the hot reset's answers; the
/// model's predictions for them are these interpretations:
///
/// Interpretation: `VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY` (and `_WITH_WAKEUP`) lets the device
/// leave D0 (uapi: "allow the device to be moved into a low power state"). A device without
/// the PCI power-management capability has no lower state (PCI PM spec), so it stays in D0 and
/// its dma-bufs stay usable: the entry revokes nothing (the kernel revokes anyway: the
/// deviation `low-power-entry-revokes`). One with the capability goes to D3hot
/// until `LOW_POWER_EXIT` (no guest world has such an exporter: model only, and the model does
/// not follow runtime PM's own wakeups on an access).
/// Interpretation: an entry while one is in effect is `-EINVAL` (the request is invalid in the
/// device's state); an exit when none is in effect is 0 (it disallows what is already
/// disallowed).
/// Interpretation: the wakeup fd is checked before the device's state. A negative one is
/// `-EINVAL`: the field is a signed `__s32`, and VFIO's uapi gives a negative eventfd a meaning
/// of its own where it takes one (`VFIO_DEVICE_SET_IRQS`: "a value of -1 can be used to
/// de-assign"), so a negative value is an argument the feature has no use for, not a
/// descriptor. (Corrected: the model first said `-EBADF`, reading -1 as a closed descriptor;
/// the guest answered `-EINVAL`.) An fd that is not an eventfd is `-EINVAL` too (eventfd's own
/// answer for a file it cannot use); a non-negative fd that is not open would be `-EBADF` (not
/// generated).
/// Interpretation: a config write is one `pwrite` of `width` bytes at `offset` of the VFIO
/// config region, whose size is the config space's. A write of no bytes returns 0 and changes
/// nothing, wherever it points: write(2)'s rule for a count of zero ("0 is returned without
/// causing any other effect"), which the region is taken to follow as a file does. (Corrected:
/// the model first checked a zero-width write's offset against the region like any other.)
/// One of one byte or more that does not lie inside the region is `-EINVAL` and changes
/// nothing (the offset is an argument outside the object; write(2) keeps `EFAULT` for a buffer
/// outside the caller's address space; the kernel answers `EFAULT`: the deviation
/// `config-outside-fault`); any other succeeds (any width, any alignment) and
/// changes usability only through `PCI_COMMAND`'s MEMORY bit (C7.6) and, with a PM capability,
/// the PowerState field of PMCSR (C7.4: 0 is D0, 3 is D3hot; 1 and 2, which the capability does
/// not announce here, are discarded as the PCI PM spec says of unsupported states).
/// Interpretation: `VFIO_DEVICE_PCI_HOT_RESET` (cdev form, empty group fd array) resets the
/// device's bus or slot as `VFIO_DEVICE_RESET` resets the device: revoked for its duration,
/// usable after iff it was before, in D0. A device that has neither (on the root bus) answers
/// `-ENODEV` and nothing is revoked. One whose bus holds another PCI function answers `-EINVAL`
/// and nothing is revoked: vfio.h requires the caller to own every device the reset affects
/// (bound to a vfio driver, in the caller's iommufd context), and each `vfio-open` binds an
/// iommufd of its own, so another function is never owned; the errno is not documented, and
/// `-EINVAL` is the legacy form's answer to group fds that do not cover the affected devices.
/// (Corrected: the model first left the ownership rule out, finding 0020.)
/// Interpretation: the power state is observed only while the device is open (`-EBADF`
/// otherwise, the harness's rule for a device that is not open).
extension DmaBufModel {
  /// `PCI_COMMAND`'s low byte and its MEMORY bit.
  package static let commandOffset: UInt64 = 0x4
  package static let commandMemory: UInt64 = 0x2
  /// PMCSR's offset in the power-management capability.
  package static let pmcsrOffset: UInt64 = 0x4

  mutating func lowPowerEntry(
    _ d: DeviceName, wakeup: WakeupFD?, _ notified: inout [Notification]
  ) -> ResultValue {
    guard let state = devices[d], let exporter = world.exporter(d) else { return .error(.noEntry) }
    guard state.isOpen else { return .error(.badFD) }
    switch wakeup {
    case .absent?, .file?:
      hit(.lowPowerBadEventfd)
      return .error(.invalid)
    case .eventfd?, nil: break
    }
    if deviations.contains(.lowPowerEntryRevokes) {
      // low-power-entry-revokes: the bufs exported so far are revoked before the state is
      // looked at, even by an entry that then fails; one exported later is not.
      let exported = bufs.count
      change(d, &notified) { $0.lowPowerRevokedBelow = exported }
    }
    if state.lowPower != nil {
      hit(.lowPowerTwice)
      return .error(.invalid)
    }
    let hasPM = exporter.pmCapability != nil
    hit(hasPM ? .lowPowerD3hot : .lowPowerStaysD0)
    change(d, &notified) {
      $0.lowPower = wakeup == nil ? .entry : .wakeup
      if hasPM { $0.powerState = 3 }
    }
    return .zero
  }

  mutating func lowPowerExit(_ d: DeviceName, _ notified: inout [Notification]) -> ResultValue {
    guard let state = devices[d] else { return .error(.noEntry) }
    guard state.isOpen else { return .error(.badFD) }
    guard state.lowPower != nil else {
      hit(.lowPowerExitNone)
      change(d, &notified) { Self.liftLowPowerRevoke(&$0) }
      return .zero
    }
    hit(.lowPowerExit)
    let hasPM = world.exporter(d)?.pmCapability != nil
    change(d, &notified) {
      $0.lowPower = nil
      if hasPM { $0.powerState = 0 }
      Self.liftLowPowerRevoke(&$0)
    }
    return .zero
  }

  mutating func configWrite(
    _ d: DeviceName, offset: UInt64, width: UInt64, value: UInt64, _ notified: inout [Notification]
  ) -> ResultValue {
    guard let state = devices[d], let exporter = world.exporter(d) else { return .error(.noEntry) }
    guard state.isOpen else { return .error(.badFD) }
    if width == 0 {
      hit(.configEmpty)
      return .zero
    }
    let (reach, overflow) = offset.addingReportingOverflow(width)
    let inside = !overflow && reach <= exporter.configSize && width <= 8
    if !inside, !deviations.contains(.configOutsideFault) {
      hit(.configOutside)
      return .error(.invalid)
    }
    // config-outside-fault: the bytes inside the region are written, then -EFAULT.
    let end = inside ? reach : min(overflow ? .max : reach, exporter.configSize)
    /// The byte written at config offset `at`, if the write covers it.
    func byte(_ at: UInt64) -> UInt64? {
      at >= offset && at < end ? value >> ((at - offset) * 8) & 0xff : nil
    }
    var touched = false
    if let command = byte(Self.commandOffset) {
      // C7.6: clearing MEMORY revokes, setting it restores.
      hit(.configMemory)
      touched = true
      change(d, &notified) {
        $0.isMemoryEnabled = command & Self.commandMemory != 0
        Self.liftLowPowerRevoke(&$0)
      }
    }
    if let pm = exporter.pmCapability, let pmcsr = byte(pm + Self.pmcsrOffset) {
      touched = true
      let requested = Int(pmcsr & 3)
      if requested == 0 || requested == 3 {
        // C7.4: out of D0, revoked; back in D0, usable.
        hit(.configPowerState)
        change(d, &notified) {
          $0.powerState = requested
          Self.liftLowPowerRevoke(&$0)
        }
      } else {
        hit(.configPowerStateDiscarded)
      }
    }
    if !touched { hit(.configOther) }
    return inside ? .zero : .error(.fault)
  }

  mutating func hotReset(_ d: DeviceName, _ notified: inout [Notification]) -> ResultValue {
    guard let state = devices[d], let exporter = world.exporter(d) else { return .error(.noEntry) }
    guard state.isOpen else { return .error(.badFD) }
    guard exporter.hotResetWorks else {
      hit(.hotResetUnsupported)
      return .error(.noDevice)
    }
    // vfio.h: every device the reset affects must be owned by the caller.
    guard !world.sharesBus(exporter) else {
      hit(.hotResetNotOwned)
      return .error(.invalid)
    }
    // C7.5: "access is revoked when … a PCI reset is issued", usable again after.
    hit(.revokeByHotReset)
    change(d, &notified) { $0.isResetting = true }
    change(d, &notified) {
      $0.isResetting = false
      $0.powerState = 0
      Self.liftLowPowerRevoke(&$0)
    }
    return .zero
  }

  mutating func powerState(_ d: DeviceName) -> ResultValue {
    guard let state = devices[d] else { return .error(.noEntry) }
    guard state.isOpen else { return .error(.badFD) }
    hit(state.powerState == 0 ? .powerD0 : .powerLow)
    return .number(Int64(state.powerState))
  }
}
