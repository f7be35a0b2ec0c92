/// An error number as the kernel returns it (positive value; `-EINVAL` is `Errno.invalid`).
///
/// Printed with its C name (`-EINVAL`); numbers without a known name print as `-N`.
package struct Errno: Hashable, Sendable, CustomStringConvertible {
  package var rawValue: Int32
  package init(_ rawValue: Int32) { self.rawValue = rawValue }

  /// `EPERM`
  package static let notPermitted = Errno(1)
  /// `ENOENT`
  package static let noEntry = Errno(2)
  /// `ESRCH`
  package static let noProcess = Errno(3)
  /// `EBADF`
  package static let badFD = Errno(9)
  /// `ENOMEM`
  package static let noMemory = Errno(12)
  /// `EFAULT`
  package static let fault = Errno(14)
  /// `EBUSY`
  package static let busy = Errno(16)
  /// `EEXIST`
  package static let exists = Errno(17)
  /// `ENODEV`
  package static let noDevice = Errno(19)
  /// `EINVAL`
  package static let invalid = Errno(22)
  /// `ENOSYS`
  package static let notImplemented = Errno(38)
  /// `EOVERFLOW`
  package static let overflow = Errno(75)
  /// `EOPNOTSUPP`
  package static let notSupported = Errno(95)
  /// `ENXIO`
  package static let noDeviceOrAddress = Errno(6)

  /// C names of the errnos the harness meets (x86_64 numbering).
  package static let names: [Int32: String] = [
    1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG",
    9: "EBADF", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY",
    17: "EEXIST", 19: "ENODEV", 22: "EINVAL", 24: "EMFILE", 25: "ENOTTY", 28: "ENOSPC",
    34: "ERANGE", 38: "ENOSYS", 75: "EOVERFLOW", 95: "EOPNOTSUPP", 98: "EADDRINUSE",
    110: "ETIMEDOUT", 125: "ECANCELED",
  ]
  package static let numbers: [String: Int32] = Dictionary(
    uniqueKeysWithValues: names.map { ($0.value, $0.key) })

  /// `-EINVAL`, or `-N` for a number without a known name.
  package var description: String {
    if let n = Self.names[rawValue] { return "-" + n }
    return "-" + String(rawValue)
  }
}

/// Signal numbers the harness observes (x86_64).
package enum Signal {
  /// The corresponding kernel constant is `SIGBUS`.
  package static let bus: Int32 = 7
  /// The corresponding kernel constant is `SIGKILL`.
  package static let kill: Int32 = 9
  /// The corresponding kernel constant is `SIGSEGV`.
  package static let segv: Int32 = 11

  package static let names: [Int32: String] = [
    1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
    8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
    14: "SIGALRM", 15: "SIGTERM",
  ]
  package static let numbers: [String: Int32] = Dictionary(
    uniqueKeysWithValues: names.map { ($0.value, $0.key) })
}

/// `si_code` values of a memory-error SIGBUS.
package enum SignalCode {
  /// Action required: the corresponding kernel constant is `BUS_MCEERR_AR`.
  package static let actionRequired: Int32 = 4
  /// Action optional: the corresponding kernel constant is `BUS_MCEERR_AO`.
  package static let actionOptional: Int32 = 5
  /// Sent by the kernel without further detail: the corresponding kernel constant is
  /// `SI_KERNEL` (0x80), a plain `force_sig()` (C5.4).
  package static let kernel: Int32 = 0x80
}

/// Flags of `memory_failure()` (`enum mf_flags`, docs/contract.md section 2).
package enum MFFlags {
  /// `MF_ACTION_REQUIRED`
  package static let actionRequired: UInt32 = 0x2
  /// `MF_MUST_KILL`
  package static let mustKill: UInt32 = 0x4
  /// `MF_SW_SIMULATED`
  package static let softwareSimulated: UInt32 = 0x20
}

/// `enum mf_result`, as the `ras:memory_failure_event` tracepoint reports it.
package enum MFResult: Int, Hashable, Sendable, CaseIterable {
  case ignored = 0
  case failed = 1
  case delayed = 2
  case recovered = 3

  package var name: String {
    switch self {
    case .ignored: "ignored"
    case .failed: "failed"
    case .delayed: "delayed"
    case .recovered: "recovered"
    }
  }
}

/// `MF_MSG_PFN_MAP`: the page type of a failure on a PFN without struct page.
package let mfMessagePFNMap = 20

/// x86_64 constants the contract is written for.
package enum Arch {
  package static let pageShift: UInt64 = 12
  package static let pageSize: UInt64 = 4096
  /// A memory section is 128 MiB: `pfn >> sectionPFNShift` is its section.
  package static let sectionPFNShift: UInt64 = 15
}
