import Testing

@testable import Harness

/// The host's side of `inject-mce-ar` (VM/agent/PROTOCOL.md): the guest's request, the check
/// of the stopped CPU, and the monitor command.
@Suite struct ActionRequiredMCETests {
  /// `info registers` of a CPU at CPL 3 inside the loop, as QEMU prints it (shortened).
  static let user = """
    RAX=0000000000000000 RBX=00007ffd5d2a3c40 RCX=0000000000000000 RDX=0000000000000000
    RSI=0000000000000000 RDI=00000000004b1d24 RBP=00007ffd5d2a3d10 RSP=00007ffd5d2a3c18
    RIP=0000000000404772 RFL=00000246 [---Z-P-] CPL=3 II=0 A20=1 SMM=0 HLT=0
    CS =0033 0000000000000000 ffffffff 00a0fb00 DPL=3 CS64 [-RA]
    """

  @Test func requestIsParsed() {
    #expect(ActionRequiredMCE.loop(fromRequest: "mce-ar 0x404770 0x404777") == 0x404770..<0x404777)
    #expect(ActionRequiredMCE.loop(fromRequest: "mce-ar 0x404777 0x404770") == nil)
    #expect(ActionRequiredMCE.loop(fromRequest: "mce-ar 404770 0x404777") == nil)
    #expect(ActionRequiredMCE.loop(fromRequest: "mce-ar 0x404770") == nil)
  }

  @Test func injectsOnlyAtCPL3InsideTheLoop() {
    let loop: Range<UInt64> = 0x404770..<0x404777
    #expect(ActionRequiredMCE.isInLoop(Self.user, loop))
    #expect(!ActionRequiredMCE.isInLoop(Self.user, 0x404773..<0x404777))
    #expect(
      !ActionRequiredMCE.isInLoop(Self.user.replacingOccurrences(of: "CPL=3", with: "CPL=0"), loop))
    #expect(!ActionRequiredMCE.isInLoop("", loop))
  }

  /// Stops, looks, resumes until the CPU is in the loop; injects once, there, then resumes.
  @Test func retriesUntilInTheLoopThenInjectsOnce() {
    var sent: [String] = []
    var looks = 0
    let n = ActionRequiredMCE.inject(addr: 0xf800_1000, loop: 0x404770..<0x404777) { command in
      sent.append(command)
      guard command == "info registers" else { return "" }
      looks += 1
      return looks < 3 ? Self.user.replacingOccurrences(of: "CPL=3", with: "CPL=0") : Self.user
    }
    #expect(n == 3)
    #expect(
      sent.filter { $0.hasPrefix("mce ") } == ["mce 0 9 0xbd80000000000134 6 0xf8001000 0x8c"])
    #expect(sent.suffix(2) == ["mce 0 9 0xbd80000000000134 6 0xf8001000 0x8c", "cont"])
    #expect(sent.filter { $0 == "stop" }.count == 3 && sent.filter { $0 == "cont" }.count == 3)
  }
}
