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
        "fact kernel release=7.3.4", "fact cpu vendor=AuthenticAMD family=23 model=1 physbits=44",
        "fact devmem bdf=0000:00:02.0 phys=0x1000000000 size=0x8000000",
        "fact ram first=0x1000 last=0x9fbff", "fact ram first=0x100000 last=0x3ffdffff", "fact iommu dma",
      ], to: .mf)
    #expect(w.cpu == CPU(vendor: "AuthenticAMD", family: 23, model: 1, physicalAddressBits: 44))
    #expect(w.deviceMemory == DeviceMemory(firstPFN: 0x1000000, pages: 0x8000))
    // A machine check's address has the CPU's width (44 bits: PFNs below 2^32).
    #expect(w.isInjectableByMachineCheck(0xffff_ffff) && !w.isInjectableByMachineCheck(0x1_0000_0000))
    #expect(w.isInjectable(0x1_0000_0000))
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
    // The power ops' facts: a bus reset (hot reset works), config space size, PM capability.
    #expect(x0.hotResetWorks && x0.configSize == 256 && x0.pmCapability == nil)
    let pm = WorldReport.apply(
      ["fact exporter x0 bdf=0000:03:00.0 bar=2 phys=0x200000000 size=0x200000000 reset=flr cfgsize=4096 pm=0x40"],
      to: .p2pSwitch)
    #expect(pm.exporters[0].resetWorks && !pm.exporters[0].hotResetWorks)
    #expect(pm.exporters[0].configSize == 4096 && pm.exporters[0].pmCapability == 0x40)
    // Behind one switch: bus addresses, whatever the built-in world said.
    #expect(DmaBufModel.mapType(exporter: x0, importer: w.importers[0], in: w) == .busAddress)

    let root = WorldReport.apply(
      ["fact exporter x0 bdf=0000:00:05.0 bar=2 phys=0x200000000 size=0x200000000 reset=none",
       "fact pcipath x0 0000:00:05.0", "fact pcipath i0 0000:00:06.0"], to: .p2pSwitch)
    #expect(root.pci.allSatisfy { $0.parent == nil && !$0.isBridge } && !root.exporters[0].resetWorks)
    #expect(!root.exporters[0].hotResetWorks)
    #expect(DmaBufModel.mapType(exporter: root.exporters[0], importer: root.importers[0], in: root) != .busAddress)
    // A path missing for one device: the built-in topology stays.
    #expect(WorldReport.apply(["fact pcipath x0 0000:00:05.0"], to: .p2pSwitch).pci == World.p2pSwitch.pci)
  }

  /// The ACS facts (C6.6) and the importers' DMA mask, as the guests of p2p-switch (the root
  /// port's ACS only, above the common bridge) and p2p-switch-acs (downstream ports with ACS
  /// redirect) reported them on 2026-12-04.
  @Test func worldReportReadsACSAndDMAMask() {
    let paths = [
      "fact exporter x0 bdf=0000:03:00.0 bar=2 phys=0x200000000 size=0x200000000 reset=bus",
      "fact importer i0 bdf=0000:04:00.0 dmabits=32",
      "fact pcipath x0 0000:00:04.0/0000:01:00.0/0000:02:00.0/0000:03:00.0",
      "fact acs 0000:00:04.0 ctrl=0x1d",
      "fact pcipath i0 0000:00:04.0/0000:01:00.0/0000:02:01.0/0000:04:00.0",
    ]
    let plain = WorldReport.apply(paths, to: .p2pSwitchACS)
    #expect(plain.pci.filter(\.acsRedirect).map(\.name) == ["0000:00:04.0"])
    #expect(plain.importers[0].dmaMaskBits == 32)
    #expect(DmaBufModel.mapType(exporter: plain.exporters[0], importer: plain.importers[0], in: plain) == .busAddress)
    let redirected = WorldReport.apply(
      paths + ["fact acs 0000:02:00.0 ctrl=0x1d", "fact acs 0000:02:01.0 ctrl=0x10"], to: .p2pSwitch)
    // Upstream forwarding alone (0x10) is no redirect; RR, CR or EC is.
    #expect(redirected.pci.filter(\.acsRedirect).map(\.name) == ["0000:00:04.0", "0000:02:00.0"])
    #expect(
      DmaBufModel.mapType(exporter: redirected.exporters[0], importer: redirected.importers[0], in: redirected)
        == .notSupported)
    // A mask the shim would not set (it clamps to 24...64) leaves the built-in one.
    let narrow = paths.map { $0.replacingOccurrences(of: "dmabits=32", with: "dmabits=8") }
    #expect(WorldReport.apply(narrow, to: .p2pSwitch).importers[0].dmaMaskBits == 64)
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
    let l = try scratch.load([
      "0001-x": "# a\nsignature: result:0:-EBUSY/C5.1/inject-sysfs\nstatus: kernel-bug\ndeviation: kill-outside-vma, queue-soft-offline\ncontract: C1.2\nsummary: s\n"
    ])
    #expect(l.entries[0].deviations == [.killOutsideVMA, .queueSoftOffline])
    #expect(l.deviations == [.killOutsideVMA, .queueSoftOffline])
    func error(_ text: String) -> String {
      let e = #expect(throws: HarnessError.self) { try scratch.load(["0001-x": text]) }
      #expect(e?.status == .usage)
      return e?.message ?? ""
    }
    #expect(error("signature: nope\n").contains("finding.txt:1:12: error: expected a signature"))
    // The qualifiers that used to decide known from new are refused with what replaces them.
    let q = error("signature: exit-missing:SIGBUS/C3.2/inject-queue when flags=0x8\nstatus: doc-mismatch\ndeviation: queue-soft-offline\n")
    #expect(q.contains("finding.txt:1:12: error: `when` qualifiers are gone") && q.contains("`deviation:`"), "\(q)")
    #expect(error("signature: a/b/c\nstatus: kernel-bug\ndeviation: nope\n").contains("finding.txt:3:12: error: unknown deviation `nope`; known: kill-outside-vma"))
    #expect(error("signature: a/b/c\nstatus: kernel-bug\n").contains("a kernel-bug entry needs a `deviation:` line"))
    #expect(error("signature: a/b/c\nstatus: model-bug-fixed\ndeviation: kill-outside-vma\n").contains("has no deviation"))
  }

  /// `reset: restore` in a ledger entry, and which sequences a clean reset may follow: a known
  /// divergence whose entries do not say `reset: restore`, left defined, that showed nothing
  /// worse than a WARN.
  @Test func cleanResetFollowsOnlyHarmlessKnownFindings() throws {
    let scratch = ScratchLedger()
    let l = try scratch.load([
      "0001-a": "signature: exit-unexpected:SIGKILL/C3.2/inject-shim\nstatus: kernel-bug\ndeviation: kill-outside-vma\n",
      "0002-b": "signature: result:-EBUSY:0/C1.1/space-register\nstatus: kernel-bug\nreset: restore\ndeviation: unregister-by-overlap\n",
    ])
    #expect(l.entries.map(\.needsRestore) == [false, true])
    let p = ProcessName("p1")!
    func result(_ deviations: [Deviation], explained: Bool = true, undefinedAt: Int? = nil, _ extra: [Observation] = []) -> SequenceResult {
      let op = Op.injectShim(ThreadRef(p, 0), pfn: 0xf8001, flags: 0x20)
      let d = Divergence(
        step: 0, op: op, expected: [], observed: extra, signature: Signature(kind: "k", item: "C3.2", op: op.keyword))
      var r = SequenceResult(sequence: OpSequence(world: "mf", ops: [op]), observed: [extra], verdict: .divergence(d))
      r.explanation = Explanation(deviations: deviations, unexplained: explained ? nil : d, undefinedAt: undefinedAt, comparedOps: 1)
      return r
    }
    #expect(GuestRun.isCleanable(result([.killOutsideVMA]), ledger: l))
    #expect(GuestRun.isCleanable(result([.killOutsideVMA], [.guestFailure(kind: "warn", detail: "WARNING: x")]), ledger: l))
    #expect(!GuestRun.isCleanable(result([.killOutsideVMA], [.guestFailure(kind: "oops", detail: "Oops: x")]), ledger: l))
    #expect(!GuestRun.isCleanable(result([.unregisterByOverlap]), ledger: l))
    #expect(!GuestRun.isCleanable(result([.killOutsideVMA], undefinedAt: 0), ledger: l))
    #expect(!GuestRun.isCleanable(result([.killOutsideVMA], explained: false), ledger: l))
    #expect(!GuestRun.isCleanable(result([.queueSoftOffline]), ledger: l))  // no entry of this ledger names it
    #expect(throws: HarnessError.self) {
      try scratch.load(["0001-a": "signature: a/b/c\nstatus: kernel-bug\ndeviation: kill-outside-vma\nreset: clean\n"])
    }
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
