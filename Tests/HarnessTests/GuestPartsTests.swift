import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// The host-side pieces of the guest that need no QEMU: console scan, world report, ledger.
@Suite struct GuestPartsTests {
  @Test(arguments: [
    ("[    1.0] Kernel panic - not syncing: Fatal machine check\r\n", "panic"),
    ("x\r\n[    0.8] WARNING: arch/x86/mm/pat/set_memory.c:1867 at __cpa_process_fault\r\n", "warn"),
    ("[   35.2] watchdog: BUG: soft lockup - CPU#0 stuck for 32s!\r\n", "bug"),
    ("[    2.0] Oops: 0000 [#1] SMP\n", "oops"),
    ("[  120.0] INFO: task agent:47 blocked for more than 120 seconds. hung task\n", "hang"),
  ])
  func consoleFailures(text: String, kind: String) {
    let f = ConsoleLog.failure(in: text)
    #expect(f?.kind == kind)
    #expect(f.map { !$0.line.contains("\n") && !$0.line.contains("\r") } == true)
  }

  @Test func quietConsoleIsNoFailure() {
    #expect(ConsoleLog.failure(in: "Memory failure: 0xf8001: recovery action for non struct page pfn: Recovered\r\n") == nil)
  }

  @Test func worldReportOverridesTheBuiltinFacts() {
    let w = WorldReport.apply(
      [
        "fact kernel release=7.3.4", "fact cpu vendor=AuthenticAMD family=23 model=1",
        "fact devmem bdf=0000:00:02.0 phys=0x1000000000 size=0x8000000",
        "fact ram first=0x1000 last=0x9fbff", "fact ram first=0x100000 last=0x3ffdffff", "fact iommu dma",
      ], to: .mf)
    #expect(w.cpu == CPU(vendor: "AuthenticAMD", family: 23, model: 1))
    #expect(w.deviceMemory == DeviceMemory(firstPFN: 0x1000000, pages: 0x8000))
    #expect(w.ram == [0x1...0x9f, 0x100...0x3ffdf])
    #expect(w.iommu == .dma)
    #expect(!w.isInjectable(0x3ffdf) && w.isInjectable(0x1000000))
  }

  /// The dma-buf facts: the exporter's BARs and reset, and the topology from the PCI paths, on
  /// which the map type depends (C6.6).
  @Test func worldReportRebuildsTopologyAndExporter() throws {
    let switchFacts = [
      "fact exporter x0 bdf=0000:03:00.0 bar=0 phys=0xfe800000 size=0x100 reset=bus",
      "fact exporter x0 bdf=0000:03:00.0 bar=2 phys=0x200000000 size=0x200000000 reset=bus",
      "fact importer i0 bdf=0000:04:00.0",
      "fact pcipath x0 0000:00:04.0/0000:01:00.0/0000:02:00.0/0000:03:00.0",
      "fact pcipath i0 0000:00:04.0/0000:01:00.0/0000:02:01.0/0000:04:00.0",
    ]
    let w = WorldReport.apply(switchFacts, to: .p2pHostBridgeIntel)
    #expect(w.invariantViolation() == nil)
    #expect(w.pci.count == 6 && w.pci.filter(\.isBridge).count == 4)
    let x0 = try #require(w.exporters.first)
    #expect(x0.node == "0000:03:00.0" && w.importers.first?.node == "0000:04:00.0")
    #expect(x0.bars.map(\.index) == [0, 2] && x0.bar(2)?.phys == 0x2_0000_0000 && x0.resetWorks)
    // Behind one switch: bus addresses, whatever the built-in world said.
    #expect(DmaBufModel.mapType(exporter: x0, importer: w.importers[0], in: w) == .busAddress)

    let root = WorldReport.apply(
      ["fact exporter x0 bdf=0000:00:05.0 bar=2 phys=0x200000000 size=0x200000000 reset=none",
       "fact pcipath x0 0000:00:05.0", "fact pcipath i0 0000:00:06.0"], to: .p2pSwitch)
    #expect(root.pci.allSatisfy { $0.parent == nil && !$0.isBridge } && !root.exporters[0].resetWorks)
    #expect(DmaBufModel.mapType(exporter: root.exporters[0], importer: root.importers[0], in: root) != .busAddress)
    // A path missing for one device: the built-in topology stays.
    #expect(WorldReport.apply(["fact pcipath x0 0000:00:05.0"], to: .p2pSwitch).pci == World.p2pSwitch.pci)
  }

  /// A ledger in a scratch directory, whose entries a test writes (`finding.txt` text by id).
  struct ScratchLedger: ~Copyable {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(UUID())").path

    /// Writes each entry's `finding.txt` (creating its folder), then loads the whole ledger.
    func load(_ entries: [String: String]) throws -> Ledger {
      for (id, text) in entries {
        try FileManager.default.createDirectory(atPath: "\(dir)/\(id)", withIntermediateDirectories: true)
        try text.write(toFile: "\(dir)/\(id)/finding.txt", atomically: true, encoding: .utf8)
      }
      return try Ledger.load(dir)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }
  }

  @Test func ledgerEntriesAreParsedAndBadOnesNamed() throws {
    let scratch = ScratchLedger()
    let l = try scratch.load(["0001-x": "# a\nsignature: result:0:-EBUSY/C5.1/inject-sysfs\nstatus: kernel-bug\ncontract: C1.2\nsummary: s\n"])
    #expect(l.known(Signature(kind: "result:0:-EBUSY", item: "C5.1", op: "inject-sysfs"))?.id == "0001-x")
    #expect(l.known(Signature(kind: "result:0:-EBUSY", item: "C5.3", op: "inject-shim")) == nil)
    let error = #expect(throws: HarnessError.self) { try scratch.load(["0001-x": "signature: nope\n"]) }
    #expect(error?.status == .usage)
    #expect(error?.message.contains("finding.txt:1:12: error: expected a signature") == true, "\(String(describing: error))")
  }

  /// A signature with `when TOKEN` is known only at an op whose line has that token.
  @Test func ledgerSignatureQualifiedByAnOpToken() throws {
    let scratch = ScratchLedger()
    let l = try scratch.load(["0004-q": "signature: exit-missing:SIGBUS/C3.2/inject-queue when flags=0x8\nstatus: doc-mismatch\n"])
    let sig = Signature(kind: "exit-missing:SIGBUS", item: "C3.2", op: "inject-queue")
    #expect(l.known(sig, op: .injectQueue(pfn: 0xfa013, flags: 0x8))?.id == "0004-q")
    #expect(l.known(sig, op: .injectQueue(pfn: 0xfa013, flags: 0x28)) == nil)
    #expect(l.known(sig, op: .injectQueue(pfn: 0xfa013, flags: 0)) == nil)
    #expect(l.known(sig) == nil)
    #expect(throws: HarnessError.self) {
      try scratch.load(["0004-q": "signature: exit-missing:SIGBUS/C3.2/inject-queue if flags=0x8\nstatus: doc-mismatch\n"])
    }
  }

  /// A signature with `when short-argsz` is known only at an export whose argsz does not cover
  /// its range array (C7.1): not at any other export the kernel accepts against the contract.
  @Test func ledgerSignatureQualifiedByAnOpClass() throws {
    let scratch = ScratchLedger()
    let l = try scratch.load(["0011-a": "signature: result:-EINVAL:$b/C7.1/export when short-argsz\nstatus: kernel-bug\n"])
    let sig = Signature(kind: "result:-EINVAL:$b", item: "C7.1", op: "export")
    func export(argsz: UInt32?, nr: UInt32? = nil, ranges: Int = 1) -> Op {
      let r = ExportRequest(
        region: 2, ranges: Array(repeating: DMARange(offset: 0, length: 0x1000), count: ranges),
        argsz: argsz, nrRanges: nr)
      return .export(BufName(index: 1), DeviceName(index: 0), r)
    }
    #expect(l.known(sig, op: export(argsz: 39))?.id == "0011-a")
    #expect(l.known(sig, op: export(argsz: 40, ranges: 2))?.id == "0011-a")
    #expect(l.known(sig, op: export(argsz: nil, nr: UInt32.max))?.id == "0011-a")
    #expect(l.known(sig, op: export(argsz: 40)) == nil)
    #expect(l.known(sig, op: export(argsz: nil, ranges: 3)) == nil)
    #expect(l.known(sig, op: .vfioOpen(DeviceName(index: 0))) == nil)
    #expect(l.known(sig) == nil)
  }

  /// A signature with `with event:X:Y` is known only where the same step's events also differ
  /// that way: a kill missing because the kernel ignored the failure (0002's dropped space), not
  /// a kill missing while the event says recovered.
  @Test func ledgerSignatureQualifiedByAnEventDifference() throws {
    let scratch = ScratchLedger()
    let l = try scratch.load(["0002-d": "signature: exit-missing:SIGBUS/C3.2/inject-queue with event:recovered:ignored\nstatus: kernel-bug\n"])
    let op = Op.injectQueue(pfn: 0xf8009, flags: 0)
    let p1 = ProcessName("p1")!
    let expected: [Observation] = [
      .result(.number(0)), .processEnd(p1, .killed(signal: 7)), .memoryFailure(pfn: 0xf8009, type: 20, result: .recovered),
    ]
    func divergence(_ observed: [Observation]) throws -> Divergence {
      var differ = Differ()
      let d = differ.compare(step: 0, op: op, expected: expected, observed: observed)
      return try #require(d)
    }
    let ignored = try divergence([.result(.number(0)), .memoryFailure(pfn: 0xf8009, type: 20, result: .ignored)])
    #expect(ignored.signature.description == "exit-missing:SIGBUS/C3.2/inject-queue")
    #expect(l.known(ignored)?.id == "0002-d")
    let recovered = try divergence([.result(.number(0)), .memoryFailure(pfn: 0xf8009, type: 20, result: .recovered)])
    #expect(recovered.signature == ignored.signature)
    #expect(l.known(recovered) == nil)
    #expect(l.known(ignored.signature, op: op) == nil)
    for bad in ["with event:recovered:ignored when", "with result:0:-EBUSY", "with a with b"] {
      #expect(throws: HarnessError.self, "\(bad)") {
        try scratch.load(["0002-d": "signature: exit-missing:SIGBUS/C3.2/inject-queue \(bad)\nstatus: kernel-bug\n"])
      }
    }
  }

  /// A signature with `after inverted-range` is known only in a sequence that created a space
  /// with first > last before the diverging op (0005's stale node blocking a registration), not
  /// for the same -EBUSY in a sequence of ordinary ranges, nor when the sequence is unknown.
  @Test func ledgerSignatureQualifiedByAnEarlierInvertedRange() throws {
    let scratch = ScratchLedger()
    let l = try scratch.load(["0005-i": "signature: result:0:-EBUSY/C1.1/space-register after inverted-range\nstatus: kernel-bug\n"])
    let s2 = SpaceName("s2")!
    let s3 = SpaceName("s3")!
    func ops(first: UInt64, last: UInt64) -> [Op] {
      [.spaceCreate(s2, first: first, last: last, callback: .nvgrace), .spaceRegister(s2), .spaceUnregister(s2),
       .spaceCreate(s3, first: 0xf8000, last: 0xfbfff, callback: .nvgrace), .spaceRegister(s3)]
    }
    let d = Divergence(
      step: 4, op: .spaceRegister(s3), expected: [.result(.number(0))], observed: [.result(.number(-16))],
      signature: Signature(kind: "result:0:-EBUSY", item: "C1.1", op: "space-register"))
    #expect(l.known(d, ops: ops(first: 0xfa0db, last: 0xf81da))?.id == "0005-i")
    #expect(l.known(d, ops: ops(first: 0xf81da, last: 0xfa0db)) == nil)
    #expect(l.known(d) == nil)
    // Created after the diverging op: does not count.
    #expect(l.known(d, ops: ops(first: 0xf81da, last: 0xfa0db) + [.spaceCreate(s2, first: 2, last: 1, callback: .strict)]) == nil)
    #expect(throws: HarnessError.self) {
      try scratch.load(["0005-i": "signature: result:0:-EBUSY/C1.1/space-register after anything\nstatus: kernel-bug\n"])
    }
  }

  /// A signature with `after bad-mce-kill-set` is known only in a sequence where a thread ran
  /// `prctl(PR_MCE_KILL, PR_MCE_KILL_SET, X)` with X not 0, 1 or 2 before the diverging op
  /// (0006's policy left behind by the -EINVAL), not after a valid one or a bad CLEAR.
  @Test func ledgerSignatureQualifiedByAnEarlierBadMceKillSet() throws {
    let scratch = ScratchLedger()
    let l = try scratch.load(["0006-p": "signature: exit-missing:SIGBUS/C3.2/inject-shim after bad-mce-kill-set\nstatus: kernel-bug\n"])
    let p2 = ProcessName("p2")!
    let t = ThreadRef(p2, 0)
    let inject = Op.injectShim(ThreadRef(ProcessName("p4")!, 0), pfn: 0xfa008, flags: 0)
    let d = Divergence(
      step: 2, op: inject, expected: [.result(.number(0)), .processEnd(p2, .killed(signal: 7))],
      observed: [.result(.number(0))],
      signature: Signature(kind: "exit-missing:SIGBUS", item: "C3.2", op: "inject-shim"))
    func ops(_ arg2: UInt64, _ arg3: UInt64) -> [Op] { [.mceKill(t, arg2: arg2, arg3: arg3), .spawn(p2), inject] }
    #expect(l.known(d, ops: ops(1, 3))?.id == "0006-p")
    #expect(l.known(d, ops: ops(1, 1)) == nil)
    #expect(l.known(d, ops: ops(0, 3)) == nil)
    #expect(l.known(d) == nil)
  }

  /// `reset: restore` in a ledger entry, and which sequences a clean reset may follow: a match,
  /// or a known finding without `reset: restore` that showed nothing worse than a WARN.
  @Test func cleanResetFollowsOnlyHarmlessKnownFindings() throws {
    let scratch = ScratchLedger()
    let l = try scratch.load([
      "0001-a": "signature: exit-unexpected:SIGKILL/C3.2/inject-shim\nstatus: kernel-bug\n",
      "0002-b": "signature: result:-EBUSY:0/C1.1/space-register\nstatus: kernel-bug\nreset: restore\n",
    ])
    #expect(l.entries.map(\.needsRestore) == [false, true])
    let p = ProcessName("p1")!
    func result(_ kind: String, item: String, op: Op, _ extra: [Observation] = []) -> SequenceResult {
      let d = Divergence(
        step: 0, op: op, expected: [], observed: extra,
        signature: Signature(kind: kind, item: item, op: op.keyword))
      return SequenceResult(sequence: OpSequence(world: "mf", ops: [op]), observed: [extra], verdict: .divergence(d))
    }
    let shim = Op.injectShim(ThreadRef(p, 0), pfn: 0xf8001, flags: 0x20)
    #expect(GuestRun.isCleanable(result("exit-unexpected:SIGKILL", item: "C3.2", op: shim), ledger: l))
    #expect(GuestRun.isCleanable(
      result("exit-unexpected:SIGKILL", item: "C3.2", op: shim, [.guestFailure(kind: "warn", detail: "WARNING: x")]), ledger: l))
    #expect(!GuestRun.isCleanable(
      result("exit-unexpected:SIGKILL", item: "C3.2", op: shim, [.guestFailure(kind: "oops", detail: "Oops: x")]), ledger: l))
    #expect(!GuestRun.isCleanable(result("result:-EBUSY:0", item: "C1.1", op: .spaceRegister(SpaceName("s1")!)), ledger: l))
    #expect(!GuestRun.isCleanable(result("result:0:-EBUSY", item: "C5.3", op: shim), ledger: l))
    #expect(throws: HarnessError.self) { try scratch.load(["0001-a": "signature: a/b/c\nstatus: kernel-bug\nreset: clean\n"]) }
  }

  /// The project's own ledger parses, and every entry carries its evidence.
  @Test func projectLedgerIsWellFormed() throws {
    let l = try Ledger.load(Paths.root + "/Corpora/findings")
    #expect(l.entries.count >= 6)
    for e in l.entries {
      for f in ["sequence.seq", "observed.seq", "diff.txt"] {
        #expect(FileManager.default.fileExists(atPath: "\(Paths.root)/Corpora/findings/\(e.id)/\(f)"), "\(e.id) lacks \(f)")
      }
    }
  }
}
