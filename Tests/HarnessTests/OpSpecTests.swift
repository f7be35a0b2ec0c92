import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// What is written from the op spec (Sources/Reference/Vocabulary/OpSpec.swift) is current, and
/// the places a new op still needs by hand (docs/adding-an-op.md) are not forgotten.
@Suite struct OpSpecTests {
  /// VM/agent/ops.h is what `harness spec agent-header` writes today.
  @Test func agentHeaderIsCurrent() throws {
    let onDisk = try String(contentsOfFile: Paths.root + "/" + AgentOpsHeader.path, encoding: .utf8)
    #expect(
      onDisk == AgentOpsHeader.text,
      "VM/agent/ops.h is stale: run `swift run harness spec agent-header --output VM/agent/ops.h`")
  }

  /// The agent knows one map window, the one VM/agent/ops.h defines from
  /// `World.agentMapWindow`: every world the guest runs places its mappings there, and no other
  /// agent file defines the window again.
  @Test func agentMapWindowIsEveryGuestWorlds() throws {
    let header = try String(contentsOfFile: Paths.root + "/" + AgentOpsHeader.path, encoding: .utf8)
    let first = "#define MAP_WINDOW_FIRST\t0x\(String(World.agentMapWindow.lowerBound, radix: 16))ULL\n"
    let last = "#define MAP_WINDOW_LAST\t\t0x\(String(World.agentMapWindow.upperBound, radix: 16))ULL\n"
    #expect(header.contains(first) && header.contains(last), "VM/agent/ops.h: the map window is not \(World.agentMapWindow)")
    for w in GuestWorld.all {
      #expect(w.model.mapWindow == World.agentMapWindow, "world \(w.name): map window \(w.model.mapWindow)")
    }
    let dir = Paths.root + "/VM/agent"
    let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter {
      ($0.hasSuffix(".c") || $0.hasSuffix(".h")) && $0 != "ops.h"
    }
    #expect(files.contains("agent.c"))
    for file in files {
      let text = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
      #expect(!text.contains("#define MAP_WINDOW"), "VM/agent/\(file) defines the map window again")
    }
  }

  /// Every keyword's handler is defined, not static, in its half's file.
  @Test(arguments: AgentOpsHeader.entries.map(\.keyword))
  func agentDefinesTheHandler(keyword: String) throws {
    let spec = AgentOpsHeader.entries.first { $0.keyword == keyword }!.spec
    let file = spec.half == .dmaBuf ? "VM/agent/dmabuf.c" : "VM/agent/agent.c"
    let source = try String(contentsOfFile: Paths.root + "/" + file, encoding: .utf8)
    let definition = "\nlong \(AgentOpsHeader.handler(keyword))(struct agent *a, struct tokens *t)\n{"
    #expect(source.contains(definition), "\(file) does not define \(AgentOpsHeader.handler(keyword))()")
  }

  /// Kinds that share a keyword (`prctl`) share the facts the agent's table carries and differ
  /// by a word at the same place, which is how the parser tells them apart.
  @Test func kindsSharingAKeywordAgree() {
    let groups = Dictionary(grouping: OpKind.allCases, by: { $0.spec.keyword }).values.filter { $0.count > 1 }
    #expect(!groups.isEmpty)
    for group in groups {
      let specs = group.map(\.spec)
      #expect(Set(specs.map { AgentOpsHeader.flags($0) }).count == 1, "\(group)")
      #expect(Set(specs.map(\.placement)).count == 1, "\(group)")
      let firstWord = specs.map { s in
        s.syntax.enumerated().first { if case .word = $0.element { true } else { false } }
      }
      let positions = Set(firstWord.map { $0?.offset ?? -1 })
      #expect(positions.count == 1 && !positions.contains(-1), "\(group): no word at one place")
      let words = firstWord.compactMap { w -> String? in
        if case .word(let s)? = w?.element { s } else { nil }
      }
      #expect(Set(words).count == group.count, "\(group): the same word")
    }
  }

  /// Every keyword has a row in the format's op tables (Corpora/README.md).
  @Test func formatDocumentsEveryKeyword() throws {
    let readme = try String(contentsOfFile: Paths.root + "/Corpora/README.md", encoding: .utf8)
    for k in Op.allKeywords {
      #expect(readme.contains("| `\(k) ") || readme.contains("| `\(k)`"), "Corpora/README.md has no row for `\(k)`")
    }
  }

  /// The contract item of a divergence on each op's result is what it was before the spec
  /// (ledger signatures depend on it).
  @Test func resultItemsAreStable() {
    let p = ProcessName("p1")!
    let t = ThreadRef(p, 0)
    let s = SpaceName("s1")!
    let x = DeviceName("x0")!
    let b = BufName("b1")!
    let a = AttachmentName("a1")!
    let export = ExportRequest(region: 2, ranges: [DMARange(offset: 0, length: 0x1000)])
    var badOpen = export
    badOpen.openFlags = 0o100
    let cases: [(Op, String)] = [
      (.spawn(p), "C3.8"), (.fork(t, child: p), "C3.8"), (.threadCreate(t), "C3.8"), (.threadExit(t), "C3.8"),
      (.exit(p, code: 0), "C3.8"), (.mceKill(t, arg2: 1, arg3: 1), "C3.7"), (.mceKillGet(t), "C3.7"),
      (.sigbus(p, .handler), "C3.3"), (.sigmask(t, blocked: true), "C3.3"), (.sysctlEarlyKill(1), "C3.9"),
      (.mmap(p, addr: 0, pages: 1, region: 2, pgoff: 0), "C3.8"), (.munmap(p, addr: 0, pages: 1), "C3.8"),
      (.madviseDontFork(p, addr: 0, pages: 1), "C3.8"), (.mprotect(p, addr: 0, pages: 1, prot: .none), "C3.8"),
      (.mremap(p, addr: 0, pages: 1, to: 0x1000), "C3.8"), (.madviseHWPoison(p, addr: 0, pages: 1), "C5.2"),
      (.corruptPFN(pfn: 1), "C5.2"), (.mfLog, "C2.7"), (.hwCorrupted, "C2.8"),
      (.spaceCreate(s, first: 1, last: 2, callback: .nvgrace), "harness"), (.spaceRegister(s), "C1.1"),
      (.spaceUnregister(s), "C1.2"), (.spaceDestroy(s), "harness"), (.injectSysfs(t, pfn: 1), "C5.1"),
      (.injectShim(t, pfn: 1, flags: 0), "C5.3"), (.injectQueue(pfn: 1, flags: 0), "C5.3"), (.injectMCE(pfn: 1), "C5.4"),
      (.vfioOpen(x), "C7.6"), (.vfioClose(x), "C7.6"), (.vfioMemory(x, enabled: true), "C7.6"), (.vfioReset(x), "C7.6"),
      (.export(b, x, export), "C7.1"), (.export(b, x, badOpen), "C7.2"), (.bufClose(b), "C7.2"), (.fdinfo(b), "C7.2"),
      (.attach(a, b, importer: ImporterName("i0")!, isDynamic: true), "C7.3"), (.map(a), "C7.4"), (.unmap(a), "C7.7"),
      (.detach(a), "C7.7"), (.vfioLowPowerEntry(x), "C7.4"), (.vfioLowPowerWakeup(x, wakeup: .file), "C7.4"),
      (.vfioLowPowerExit(x), "C7.4"), (.vfioConfig(x, offset: 4, width: 2, value: 0), "C7.6"), (.vfioHotReset(x), "C7.5"),
      (.vfioPower(x), "C7.4"), (.importerMode(a, .never), "harness"),
      (.ioasAlloc(IOASName("io1")!), "harness"),
      (.ioasMapFile(IOASMappingName("m1")!, IOASName("io1")!, b, start: 0, length: 0x1000, iova: nil), "C7.4"),
      (.ioasUnmap(IOASMappingName("m1")!), "C7.5"), (.ioasDevice(IOASName("io1")!, x), "harness"),
      (.injectMCEAR(t, pfn: 1), "C5.4"),
      (.mfRace(pfn: 1), "C2.1"), (.bufinfo(b), "C7.8"), (.dmabufTrace, "C7.8"),
    ]
    #expect(Set(cases.map(\.0.kind)) == Set(OpKind.allCases))
    for (op, item) in cases {
      #expect(Differ.contractItem(op: op, category: "result", nil) == item, "\(op)")
    }
  }
}

/// `harness fuzz --target model` writes the input classes' shares per op field.
@Suite struct InputClassSummaryTests {
  @Test func summaryHasTheSharesOfEveryClass() throws {
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("harness-classes-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    // 100 seeds: every class of every field listed below is drawn (30 left prctl.arg2 without a
    // boundary value once the generator weighed armed states higher).
    let r = try runHarness(["fuzz", "--seed", "1", "--count", "100", "--world", "all", "--target", "model", "--reports", tmp])
    #expect(r.status == 0, "\(r.err)")
    let text = try String(contentsOfFile: tmp + "/fuzz-all-1-100-l30-model/summary.json", encoding: .utf8)
    let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    let stats = try #require(json["stats"] as? [String: Any])
    let classes = try #require(stats["inputClasses"] as? [String: Any])
    let shares = try #require(classes["shares"] as? [String: [String: Double]])
    let draws = try #require(classes["draws"] as? [String: [String: Int]])
    for key in ["mmap.addr", "export.argsz", "export.offset", "inject-shim.pfn", "prctl.arg2"] {
      #expect(Set(shares[key]?.keys.map { $0 } ?? []) == ["valid", "boundary", "invalid"], "\(key): \(String(describing: shares[key]))")
      #expect(abs((shares[key]?.values.reduce(0, +) ?? 0) - 1) < 0.01, "\(key)")
      #expect((draws[key]?.values.reduce(0, +) ?? 0) > 0, "\(key)")
    }
    #expect((classes["combinations"] as? [String: Int])?["export", default: 0] ?? 0 > 0)
  }
}
