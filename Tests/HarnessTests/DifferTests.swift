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

  /// A new fd or pid is named by its kind in signatures, not by the number the kernel chose:
  /// the same divergence after a different history has the same signature.
  @Test(arguments: [Int64(5), 8, 117])
  func createdValuesAreNamedByKind(fd: Int64) {
    let request = ExportRequest(region: 2, ranges: [DMARange(offset: 0, length: 0x1000)], argsz: 24)
    let op = Op.export(BufName(index: 3), DeviceName(index: 0), request)
    var d = Differ()
    let div = d.compare(step: 0, op: op, expected: [.result(.error(.invalid))], observed: [.result(.number(fd))])
    #expect(div?.signature.description == "result:-EINVAL:$b/C7.1/export")
    // The model's symbol on the expected side, too.
    var d2 = Differ()
    let other = d2.compare(
      step: 0, op: op, expected: [.result(.symbol(Symbol("b3")))], observed: [.result(.error(.noMemory))])
    #expect(other?.signature.description == "result:$b:-ENOMEM/C7.1/export")
    // A PROBE's 0 and a prctl's answer stay numbers.
    let probe = Op.export(BufName(index: 3), DeviceName(index: 0), {
      var r = request
      r.feature = ExportRequest.probe | ExportRequest.get | 11
      return r
    }())
    var d3 = Differ()
    let p = d3.compare(step: 0, op: probe, expected: [.result(.error(.invalid))], observed: [.result(.number(1))])
    #expect(p?.signature.description == "result:-EINVAL:1/C7.1/export")
  }

  /// An export whose open flags the contract refuses diverges under C7.2, not C7.1.
  @Test func refusedOpenFlagsCiteC72() {
    let request = ExportRequest(region: 2, ranges: [DMARange(offset: 0, length: 0x1000)], openFlags: 0o100)
    let op = Op.export(BufName(index: 1), DeviceName(index: 0), request)
    var d = Differ()
    let div = d.compare(step: 0, op: op, expected: [.result(.error(.invalid))], observed: [.result(.number(9))])
    #expect(div?.signature.description == "result:-EINVAL:$b/C7.2/export")
  }
  /// C2.1 can fail: two callbacks at once (a fabricated overlap of 2, as two unserialised
  /// memory_failure() calls would give) diverge from the model's 1 under C2.1.
  @Test func raceOverlapOfTwoDivergesUnderC21() {
    let op = Op.mfRace(pfn: 0xf8001)
    let event = Observation.memoryFailure(pfn: 0xf8001, type: 20, result: .recovered)
    let expected: [Observation] = [.result(.number(1)), event, event]
    var same = Differ()
    #expect(same.compare(step: 0, op: op, expected: expected, observed: expected) == nil)
    var d = Differ()
    let div = d.compare(step: 0, op: op, expected: expected, observed: [.result(.number(2)), event, event])
    #expect(div?.signature.description == "result:1:2/C2.1/mf-race")
  }

  /// C7.8: a bufinfo entry that lists a device the model does not (an attachment a detach
  /// should have removed) diverges under C7.8.
  @Test func bufinfoAttachedDevicesCount() {
    let b = BufName("b1")!
    let i0 = ImporterName("i0")!
    let expected: [Observation] = [.result(.zero), .bufinfo(b, size: 0x1000, exporter: "vfio_pci_core", attached: [i0])]
    let observed: [Observation] = [.result(.zero), .bufinfo(b, size: 0x1000, exporter: "vfio_pci_core", attached: [i0, i0])]
    var d = Differ()
    let div = d.compare(step: 0, op: .bufinfo(b), expected: expected, observed: observed)
    #expect(div?.signature.description.hasSuffix("/C7.8/bufinfo") == true, "\(String(describing: div))")
  }

  /// C7.8: a dma_buf trace record the model does not predict (an attach record for an attach
  /// that failed) diverges under C7.8 as a `trace` observation.
  @Test func dmabufTraceExtraRecord() {
    let b = BufName("b1")!
    let i0 = ImporterName("i0")!
    let expected: [Observation] = [.result(.zero), .dmabufTrace(.export(b)), .dmabufTrace(.fd(b))]
    let observed = expected + [.dmabufTrace(.attach(b, i0, isDynamic: false))]
    var d = Differ()
    let div = d.compare(step: 0, op: .dmabufTrace, expected: expected, observed: observed)
    #expect(div?.signature.description.hasSuffix("/C7.8/dmabuf-trace") == true, "\(String(describing: div))")
  }
}

extension DifferTests {
  /// C7.5 can fail: a revocation that returns before an importer in `never` mode has unmapped
  /// (`revoke=early`, what a kernel that does not wait would show) diverges from the model's
  /// `blocked` under C7.5. Debian's 7.3 waits, so no guest run has shown it.
  @Test func earlyRevocationDivergesUnderC75() throws {
    let text = """
      harness-sequence 1
      world p2p-switch

      vfio-open x0
      export b1 x0 region=2 ranges=0x0+0x1000
      attach a1 b1 importer=i0
      map a1
      importer-mode a1 never
      vfio-memory x0 off

      """
    let s = try SequenceFormat.parse(text)
    let predicted = Machine.run(s.ops, in: World.named("p2p-switch")!)
    let a1 = AttachmentName("a1")!
    let last = predicted.count - 1
    #expect(predicted[last].contains(.importer(a1, .revoke(.blocked))), "\(predicted[last])")
    var observed = predicted
    observed[last] = predicted[last].map { $0 == .importer(a1, .revoke(.blocked)) ? .importer(a1, .revoke(.early)) : $0 }
    #expect(Differ.firstDivergence(ops: s.ops, expected: predicted, observed: predicted) == nil)
    let div = Differ.firstDivergence(ops: s.ops, expected: predicted, observed: observed)
    #expect(div?.step == last)
    #expect(div?.signature.description.hasSuffix("/C7.5/vfio-memory") == true, "\(String(describing: div))")
  }
}
