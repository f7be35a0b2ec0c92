import Fuzz
import Reference
import Testing

@testable import Harness

/// The differ's handling of optional observations (C3.5's `sig?`).
@Suite struct DifferTests {
  static let t0 = ThreadRef(ProcessName("p1")!, 0)
  static func sig(_ addr: UInt64) -> Observation {
    .signal(t0, signo: Signal.bus, code: SignalCode.actionOptional, addr: addr, lsb: 12)
  }
  static let event = Observation.memoryFailure(pfn: 0xf8001, type: 20, result: .recovered)
  static let expected: [Observation] = [.result(.zero), sig(0x1000), .optional(sig(0x2000)), event]
  static let op = Op.injectQueue(pfn: 0xf8001, flags: 0)

  @Test(arguments: [
    [Observation.result(.zero), sig(0x1000), event],
    [.result(.zero), sig(0x1000), sig(0x2000), event],
  ])
  func optionalSignalMayOrMayNotArrive(observed: [Observation]) {
    var d = Differ()
    #expect(d.compare(step: 0, op: Self.op, expected: Self.expected, observed: observed) == nil)
  }

  @Test(arguments: [
    ([Observation.result(.zero), sig(0x2000), event], "signal-different"),
    ([.result(.zero), sig(0x2000), sig(0x1000), event], "signal-different"),
    ([.result(.zero), sig(0x1000), sig(0x2000), sig(0x2000), event], "signal-unexpected"),
    ([.result(.zero), event], "signal-missing"),
  ])
  func requiredSignalsAndOrderStillCount(observed: [Observation], kind: String) {
    var d = Differ()
    let div = d.compare(step: 0, op: Self.op, expected: Self.expected, observed: observed)
    #expect(div?.signature.kind.hasPrefix(kind) == true, "\(String(describing: div))")
  }

  @Test func modelAgainstItsOwnPredictionKeepsOptional() {
    #expect(Differ.resolve(Self.expected, against: Self.expected) == Self.expected)
  }

  /// The kernel's failure names the verdict, not the agent error it caused (an oops killed the
  /// process the agent was waiting for): seed 256 of `mf`, finding 0009.
  @Test func kernelFailureBeforeAgentFailure() {
    let op = Op.injectSysfs(ThreadRef(ProcessName("p1")!, 0), pfn: 0xfa187)
    let expected: [Observation] = [.result(.error(.busy)), .memoryFailure(pfn: 0xfa187, type: 20, result: .ignored)]
    let observed: [Observation] = [
      .result(.error(.noProcess)), .guestFailure(kind: "agent", detail: "p1 died before answering"),
      .guestFailure(kind: "bug", detail: "BUG: kernel NULL pointer dereference, address: 0000000000000029"),
    ]
    var d = Differ()
    let v = d.compare(step: 0, op: op, expected: expected, observed: observed)
    #expect(v?.signature.description == "guest-failure:bug/C5.1/inject-sysfs")
    var d2 = Differ()
    let agentOnly = d2.compare(step: 0, op: op, expected: expected, observed: Array(observed.prefix(2)))
    #expect(agentOnly?.signature.description == "guest-failure:agent/C5.1/inject-sysfs")
  }
}
