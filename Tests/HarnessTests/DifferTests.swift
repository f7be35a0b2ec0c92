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
}
