import Fuzz
import Glibc

/// How the host injects an action-required machine check that a chosen thread consumes
/// (`inject-mce-ar`, C5.4): the thread spins in user mode in a loop whose addresses the guest
/// reports; the host stops the guest, reads the CPU's registers, and injects only when the CPU
/// is at CPL 3 with RIP inside that loop; then it lets the guest run on. The machine check is
/// the first thing the CPU takes when it resumes (it outranks every external interrupt), so it
/// interrupts exactly that thread in user mode, and the kernel grades it "Action required: data
/// load error in a user process": `kill_me_maybe()` then runs `memory_failure(pfn,
/// MF_ACTION_REQUIRED | MF_MUST_KILL)` in the thread's context before it returns to user space.
///
/// An injection that lands in kernel mode would panic the guest ("Data load in unrecoverable
/// area of kernel"), so a miss is retried, never injected blind (VM/agent/PROTOCOL.md).
enum ActionRequiredMCE {
  /// `MCi_STATUS`: VAL | UC | EN | MISCV | ADDRV | S | AR, MCACOD 0x134 (a data load): the
  /// kernel's severity table (arch/x86/kernel/cpu/mce/severity.c) matches it with
  /// `MCACOD_DATA` and the user context.
  static let status: UInt64 = 0xbd80_0000_0000_0134
  /// `MCG_STATUS`: MCIP | EIPV, RIPV clear (a data load cannot be restarted; RIPV with EIPV
  /// clear would be "Action required but unaffected thread is continuable", ignored).
  static let mcgStatus: UInt64 = 0x6
  /// `MCi_MISC`: physical address mode, the least significant valid bit 12 (a page).
  static let misc: UInt64 = 0x8c
  /// How many times the host stops the guest looking for the thread in its loop.
  static let attempts = 200

  /// The monitor command that injects at `addr` on CPU 0, bank 9.
  static func command(addr: UInt64) -> String {
    "mce 0 9 \(SequenceFormat.hex(status)) \(mcgStatus) \(SequenceFormat.hex(addr)) \(SequenceFormat.hex(misc))"
  }

  /// The loop's addresses from the guest's request (`mce-ar BEGIN END`), or `nil`.
  static func loop(fromRequest line: Substring) -> Range<UInt64>? {
    let words = line.split(separator: " ")
    guard words.count == 3, words[0] == "mce-ar", let lo = hexValue(words[1]),
      let hi = hexValue(words[2]), lo < hi
    else { return nil }
    return lo..<hi
  }

  /// Where a stop found the CPU.
  enum Place: String, Sendable {
    /// In the thread's loop at CPL 3: where the host injects.
    case loop
    /// At CPL 3 elsewhere (another task, or the thread outside the loop).
    case user
    /// At CPL 0: a machine check there would panic the guest.
    case kernel
    /// `info registers` said nothing readable.
    case unknown
  }

  /// Where the stopped CPU is, as `info registers` prints it.
  static func place(_ registers: String, _ loop: Range<UInt64>) -> Place {
    guard let rip = field(registers, "RIP="), let cpl = field(registers, "CPL=", radix: 10) else {
      return .unknown
    }
    return cpl != 3 ? .kernel : loop.contains(rip) ? .loop : .user
  }

  /// Whether the stopped CPU, as `info registers` prints it, runs user code inside `loop`.
  static func isInLoop(_ registers: String, _ loop: Range<UInt64>) -> Bool {
    place(registers, loop) == .loop
  }

  /// Stops the guest until its CPU is in `loop` at CPL 3 (at most ``attempts`` times, the
  /// guest running a little in between), injects there at `addr`, and resumes the guest.
  /// Returns the attempt that injected (from 1), or `nil` when none did. `hmp` runs one
  /// monitor command and returns its output.
  /// `missed` hears where each stop that did not inject found the CPU.
  static func inject(
    addr: UInt64, loop: Range<UInt64>, hmp: (String) -> String, missed: (Place) -> Void = { _ in }
  ) -> Int? {
    for attempt in 1...attempts {
      _ = hmp("stop")
      let place = place(hmp("info registers"), loop)
      if place != .loop { missed(place) }
      if place == .loop {
        _ = hmp(command(addr: addr))
        _ = hmp("cont")
        return attempt
      }
      _ = hmp("cont")
      usleep(UInt32(500 + 100 * min(attempt, 50)))
    }
    return nil
  }

  private static func hexValue(_ s: Substring) -> UInt64? {
    s.hasPrefix("0x") ? UInt64(s.dropFirst(2), radix: 16) : nil
  }

  private static func field(_ text: String, _ key: String, radix: Int = 16) -> UInt64? {
    guard let r = text.range(of: key) else { return nil }
    let digits = text[r.upperBound...].prefix { $0.isHexDigit }
    return UInt64(digits, radix: radix)
  }
}
