import CustomDump
import Foundation
import Testing

@testable import Harness

/// A gcda file as gcov-kernel writes it with GCC 12 (kernel/gcov/gcc_4_7.c): header with the
/// checksum word, lengths in bytes; one function record and one arc record per function.
private func gcda(stamp: UInt32 = 0x1234, functions: [(ident: UInt32, arcs: [UInt64])]) -> Data {
  var w: [UInt32] = [GCDA.magic, 0x4232_322a, stamp, 0]
  for f in functions {
    w += [GCDA.functionTag, 12, f.ident, 0xaaaa, 0xbbbb]
    w += [GCDA.arcsTag, UInt32(f.arcs.count * 8)]
    for a in f.arcs { w += [UInt32(truncatingIfNeeded: a), UInt32(truncatingIfNeeded: a >> 32)] }
  }
  return w.withUnsafeBytes { Data($0) }
}

@Suite struct GCDATests {
  @Test func parsesAndWritesTheSameBytes() throws {
    let data = gcda(functions: [(1, [3, 0, 1 << 33]), (2, [])])
    let g = try GCDA(data)
    #expect(g.header.count == 4)
    #expect(g.records.count == 4)
    #expect(g.arcCounts == [3, 0, 1 << 33])
    #expect(g.data == data)
  }

  @Test func theHeaderBeforeGCC12HasThreeWords() throws {
    // GCC < 12: no checksum word, lengths in words.
    let w: [UInt32] = [
      GCDA.magic, 0x4231_312a, 7, GCDA.functionTag, 3, 1, 2, 3, GCDA.arcsTag, 2, 5, 0,
    ]
    let g = try GCDA(w.withUnsafeBytes { Data($0) })
    #expect(g.header.count == 3)
    #expect(g.arcCounts == [5])
  }

  @Test func addingSumsArcCountersOnly() throws {
    let a = try GCDA(gcda(functions: [(1, [1, 2]), (2, [0xffff_ffff])]))
    let b = try GCDA(gcda(functions: [(1, [10, 0]), (2, [1])]))
    let sum = try a.adding(b)
    #expect(sum.arcCounts == [11, 2, 0x1_0000_0000])
    #expect(sum.header == a.header)
  }

  @Test func refusesCountsOfAnotherCompilation() throws {
    let a = try GCDA(gcda(stamp: 1, functions: [(1, [1])]))
    #expect(throws: GCDA.FormatError.self) {
      try a.adding(try GCDA(gcda(stamp: 2, functions: [(1, [1])])))
    }
    #expect(throws: GCDA.FormatError.self) {
      try a.adding(try GCDA(gcda(stamp: 1, functions: [(1, [1, 2])])))
    }
    #expect(throws: GCDA.FormatError.self) {
      try a.adding(try GCDA(gcda(stamp: 1, functions: [(9, [1])])))
    }
  }

  @Test func refusesWhatIsNotAGcdaFile() {
    #expect(throws: GCDA.FormatError.self) { try GCDA(Data("not gcda at all!".utf8)) }
    var cut = gcda(functions: [(1, [1, 2])])
    cut.removeLast(8)
    #expect(throws: GCDA.FormatError.self) { try GCDA(cut) }
    // A value-profile counter (not additive) is refused rather than summed.
    let w: [UInt32] = [
      GCDA.magic, 0x4232_322a, 1, 0, GCDA.functionTag, 12, 1, 2, 3, GCDA.arcsTag + (2 << 17), 8, 1,
      0,
    ]
    #expect(throws: GCDA.FormatError.self) { try GCDA(w.withUnsafeBytes { Data($0) }) }
  }
}

@Suite struct LCOVInfoTests {
  static let a = """
    TN:
    SF:/src/mm/memory-failure.c
    FN:10,register_pfn_address_space
    FN:30,unregister_pfn_address_space
    FNDA:2,register_pfn_address_space
    FNDA:0,unregister_pfn_address_space
    FNF:2
    FNH:1
    BRDA:12,0,0,2
    BRDA:12,0,1,0
    BRDA:32,0,0,-
    BRDA:32,0,1,-
    BRF:4
    BRH:1
    DA:11,2
    DA:12,2
    DA:13,0
    DA:31,0
    DA:32,0
    LF:5
    LH:2
    end_of_record

    """

  @Test func parsesMergesAndPrints() throws {
    var info = try LCOVInfo(parsing: Self.a)
    let f = try #require(info.files["/src/mm/memory-failure.c"])
    #expect(f.linesHit == 2 && f.lines.count == 5)
    #expect(f.branchesHit == 1 && f.branches.count == 4)
    #expect(f.functionsHit == 1)
    // The same counts again, and a run of the unregister path.
    let b = Self.a.replacingOccurrences(of: "BRDA:32,0,0,-", with: "BRDA:32,0,0,1")
      .replacingOccurrences(of: "DA:31,0", with: "DA:31,4")
      .replacingOccurrences(of: "FNDA:0,", with: "FNDA:4,")
    info.add(try LCOVInfo(parsing: b))
    let m = try #require(info.files["/src/mm/memory-failure.c"])
    #expect(m.lines[11] == 4 && m.lines[31] == 4 && m.lines[13] == 0)
    #expect(m.branches[.init(line: 32, block: 0, branch: 0)] == .some(1))
    #expect(m.branches[.init(line: 32, block: 0, branch: 1)] == .some(nil))  // still never reached
    #expect(m.functionHits["unregister_pfn_address_space"] == 4)
    // Printing and parsing again gives the same data.
    expectNoDifference(try LCOVInfo(parsing: info.text), info)
    #expect(info.text.contains("BRDA:32,0,1,-\n"))
    #expect(info.text.contains("LF:5\nLH:3\n"))
  }

  @Test func keepsAndRenamesTheSeriesFiles() throws {
    let text =
      Self.a
      + Self.a.replacingOccurrences(of: "/src/mm/memory-failure.c", with: "/src/include/linux/mm.h")
    let info = try LCOVInfo(parsing: text).mapFiles {
      $0.hasSuffix("/mm/memory-failure.c") ? "mm/memory-failure.c" : nil
    }
    #expect(Array(info.files.keys) == ["mm/memory-failure.c"])
  }

  @Test func saysWhereATracefileIsBroken() {
    #expect(throws: LCOVInfo.ParseError.self) {
      try LCOVInfo(parsing: "SF:x.c\nDA:1\nend_of_record\n", name: "t.info")
    }
    do {
      _ = try LCOVInfo(parsing: "SF:x.c\nDA:1,1\nBOGUS:1\nend_of_record\n", name: "t.info")
      Issue.record("a broken tracefile parsed")
    } catch {
      #expect(error.description.hasPrefix("t.info:3: unknown record BOGUS"))
    }
    #expect(throws: LCOVInfo.ParseError.self) { try LCOVInfo(parsing: "SF:x.c\nDA:1,1\n") }
  }
}

@Suite struct CoverageSummaryTests {
  @Test func perFileAndPerFunction() throws {
    let info = try LCOVInfo(parsing: LCOVInfoTests.a).mapFiles { _ in "mm/memory-failure.c" }
    let s = CoverageSummary(info, collections: 3)
    expectNoDifference(
      s.files,
      [
        .init(
          file: "mm/memory-failure.c", lines: .init(found: 5, hit: 2),
          branches: .init(found: 4, hit: 1),
          functions: .init(found: 2, hit: 1))
      ])
    #expect(s.files[0].lines.percent == 40)
    // Lines 11-13 and the branch at 12 belong to the function starting at 10; 31-32 to the next.
    expectNoDifference(
      s.functions,
      [
        .init(
          file: "mm/memory-failure.c", function: "register_pfn_address_space", line: 10, calls: 2,
          lines: .init(found: 3, hit: 2), branches: .init(found: 2, hit: 1)),
        .init(
          file: "mm/memory-failure.c", function: "unregister_pfn_address_space", line: 30, calls: 0,
          lines: .init(found: 2, hit: 0), branches: .init(found: 2, hit: 0)),
      ])
    #expect(s.functions[0].lines.percent == 66.7)
    #expect(
      s.lines[1]
        == "  mm/memory-failure.c: lines 40.0 % (2/5), branches 25.0 % (1/4), functions 50.0 % (1/2)"
    )
    #expect(s.markdown.contains("| `total` | 40.0 % (2/5) |"))
  }
}

@Suite struct CoverageCollectorTests {
  static let notes = CoverageNotes(
    directory: "/nowhere",
    entries: [
      .init(
        source: "mm/memory-failure.c",
        guestPath: "root/.cache/harness/kernel/k1/mm/memory-failure.gcda"),
      .init(
        source: "drivers/pci/p2pdma.c",
        guestPath: "root/.cache/harness/kernel/k1/drivers/pci/p2pdma.gcda"),
    ])

  static func line(_ path: String, _ data: Data) -> String {
    "gcda \(path) \(data.count) \(data.base64EncodedString())"
  }

  @Test func addsTheAgentsDumpsUp() throws {
    let c = CoverageCollector(notes: Self.notes)
    let mf = "root/.cache/harness/kernel/k1/mm/memory-failure.gcda"
    c.add(agentReply: [Self.line(mf, gcda(functions: [(1, [1, 0])]))])
    c.add(agentReply: [
      Self.line(mf, gcda(functions: [(1, [2, 5])])),
      // The same object built elsewhere: matched by the object's path in the tree.
      Self.line("home/u/obj/drivers/pci/p2pdma.gcda", gcda(functions: [(7, [9])])),
      // Instrumented but not a series file (a stem shared with another object): ignored.
      Self.line("root/x/lib/other.gcda", gcda(functions: [(1, [1])])),
    ])
    #expect(c.collections == 2)
    #expect(c.counts["mm/memory-failure.c"]?.arcCounts == [3, 5])
    #expect(c.counts["drivers/pci/p2pdma.c"]?.arcCounts == [9])
    #expect(c.counts.count == 2)
    #expect(c.failures.isEmpty)
  }

  @Test func recordsWhatItCannotUse() {
    let c = CoverageCollector(notes: Self.notes)
    let mf = "root/.cache/harness/kernel/k1/mm/memory-failure.gcda"
    c.add(agentReply: [
      "error no /sys/kernel/debug/gcov: No such file or directory",
      "gcda \(mf) 99 AAAA",
      Self.line(mf, gcda(functions: [(1, [1])])),
    ])
    c.add(agentReply: [Self.line(mf, gcda(stamp: 99, functions: [(1, [1])]))])
    #expect(c.failures.count == 3)
    #expect(c.failures[0].contains("no /sys/kernel/debug/gcov"))
    #expect(c.failures[2].contains("different compilations"))
    #expect(c.counts["mm/memory-failure.c"]?.arcCounts == [1])
  }
}

/// A sequence's lines (``SequenceLines``, ``GCNO``): the notes and one collection's counts
/// say which lines ran, as `gcov` says, here for a small program built with `gcc --coverage`
/// on the host (the same notes and counts format as the kernel's).
@Suite(.enabled(if: HostTools.find("gcov") != nil && HostTools.find("gcc") != nil))
struct SequenceLinesTests {
  static let header = """
    static inline int sq(int x)
    {
    \tif (x > 100)
    \t\treturn -1;
    \treturn x * x;
    }

    """
  static let source = """
    #include <stdlib.h>
    #include "t.h"

    static int f(int a)
    {
    \tint r = 0;

    \tif (a > 3)
    \t\tr = sq(a);
    \telse
    \t\tr = -a;
    \tfor (int i = 0; i < a; i++) {
    \t\tif (i == 7)
    \t\t\tgoto out;
    \t\tr += i;
    \t}
    \tswitch (a) {
    \tcase 1:
    \t\tr++;
    \t\tbreak;
    \tcase 5:
    \t\tr--;
    \t\tbreak;
    \tdefault:
    \t\tr *= 2;
    \t}
    out:
    \treturn r;
    }

    static int never(void)
    {
    \treturn 42;
    }

    int main(int argc, char **argv)
    {
    \tint s = 0;

    \tfor (int i = 1; i < argc; i++)
    \t\ts += f(atoi(argv[i]));
    \tif (argc > 10)
    \t\ts += never();
    \treturn s > 100 ? 1 : 0;
    }

    """

  /// Builds the program in `dir/obj/lib` (`-O`), runs it with `args`, returns the notes and
  /// the counts.
  static func build(_ dir: String, optimize: String, runs: [String]) throws -> (GCNO, GCDA) {
    let fm = FileManager.default
    for sub in ["/obj/lib", "/lib"] { try fm.createDirectory(atPath: dir + sub, withIntermediateDirectories: true) }
    try source.write(toFile: dir + "/lib/t.c", atomically: true, encoding: .utf8)
    try header.write(toFile: dir + "/lib/t.h", atomically: true, encoding: .utf8)
    let run = runs.map { "(./t \($0) || true)" }.joined(separator: " && ")
    try sh("cd obj/lib && gcc --coverage \(optimize) -c ../../lib/t.c -o t.o && gcc --coverage t.o -o t && \(run)", in: dir)
    let notes = try GCNO(Data(contentsOf: URL(fileURLWithPath: dir + "/obj/lib/t.gcno")))
    let counts = try GCDA(Data(contentsOf: URL(fileURLWithPath: dir + "/obj/lib/t.gcda")))
    return (notes, counts)
  }

  static func sh(_ command: String, in dir: String) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", command]
    p.currentDirectoryURL = URL(fileURLWithPath: dir)
    try p.run()
    p.waitUntilExit()
    #expect(p.terminationStatus == 0, "\(command)")
  }

  /// What `gcov --json-format` says ran (count > 0), per file name as in the notes.
  static func gcovLines(_ dir: String) throws -> [String: Set<Int>] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: HostTools.find("gcov")!)
    p.arguments = ["--json-format", "--stdout", "t.gcda"]
    p.currentDirectoryURL = URL(fileURLWithPath: dir + "/obj/lib")
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let bytes = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let doc = try JSONSerialization.jsonObject(with: bytes) as? [String: Any]
    var run: [String: Set<Int>] = [:]
    for f in doc?["files"] as? [[String: Any]] ?? [] {
      let name = f["file"] as? String ?? ""
      for l in f["lines"] as? [[String: Any]] ?? [] where (l["count"] as? Int ?? 0) > 0 {
        run[name, default: []].insert(l["line_number"] as? Int ?? 0)
      }
    }
    return run
  }

  /// The lines the notes and counts say ran are gcov's, in the file and in the header whose
  /// inline function it expands, at -O0 and -O2, for runs that take different branches.
  @Test(arguments: ["-O0", "-O2"])
  func linesAreGcovs(optimize: String) throws {
    for runs in [["5 5 2"], ["1", "9 2", "200"], ["3"]] {
      let dir = scratchDirectory("gcno")
      defer { try? FileManager.default.removeItem(atPath: dir) }
      let (notes, counts) = try Self.build(dir, optimize: optimize, runs: runs)
      let gcov = try Self.gcovLines(dir)
      #expect(gcov.values.reduce(0) { $0 + $1.count } > 8, "\(gcov)")
      #expect(try notes.linesRun(counts, source: "lib/t.c") == gcov.first { $0.key.hasSuffix("lib/t.c") }?.value ?? [], "\(optimize) \(runs)")
      #expect(try notes.linesRun(counts, source: "lib/t.h") == gcov.first { $0.key.hasSuffix("lib/t.h") }?.value ?? [], "\(optimize) \(runs)")
    }
  }

  /// ``SequenceLines`` names the lines of the series file only (not its headers'), and none
  /// for no counts.
  @Test func sequenceLinesNameTheSourcesLines() throws {
    let dir = scratchDirectory("sequence-lines")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let (_, counts) = try Self.build(dir, optimize: "-O0", runs: ["2"])
    let notes = CoverageNotes(directory: dir, entries: [.init(source: "lib/t.c", guestPath: "x/lib/t.gcda")])
    let lines = try SequenceLines(notes: notes).lines(of: ["lib/t.c": counts])
    // f(2): the else branch, the loop, the switch's default; never() did not run.
    #expect(lines.contains("lib/t.c:11") && lines.contains("lib/t.c:25") && !lines.contains("lib/t.c:9"), "\(lines.sorted())")
    #expect(!lines.contains("lib/t.c:33"), "\(lines.sorted())")
    #expect(!lines.contains { $0.hasPrefix("lib/t.h") })
    #expect(try SequenceLines(notes: notes).lines(of: [:]).isEmpty)
  }
}

@Suite(.enabled(if: HostTools.find("genhtml") != nil))
struct CoverageRenderTests {
  /// genhtml renders a folder's tracefile from its src/ (paths relative to the tree), and
  /// `coverage merge` adds two folders up.
  @Test func mergeRendersHTML() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cov-merge-\(getpid())")
      .path
    try? FileManager.default.removeItem(atPath: dir)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for name in ["a", "b"] {
      try FileManager.default.createDirectory(
        atPath: "\(dir)/\(name)/src/mm", withIntermediateDirectories: true)
      let source = (1...40).map { "line \($0);" }.joined(separator: "\n") + "\n"
      try source.write(
        toFile: "\(dir)/\(name)/src/mm/memory-failure.c", atomically: true, encoding: .utf8)
      var text = LCOVInfoTests.a.replacingOccurrences(
        of: "/src/mm/memory-failure.c", with: "mm/memory-failure.c")
      if name == "b" { text = text.replacingOccurrences(of: "DA:13,0", with: "DA:13,1") }
      try text.write(toFile: "\(dir)/\(name)/coverage.info", atomically: true, encoding: .utf8)
    }
    let r = try runHarness([
      "coverage", "merge", "\(dir)/a", "\(dir)/b/coverage.info", "-o", "\(dir)/c",
    ])
    #expect(r.status == 0, "\(r.out)\(r.err)")
    #expect(r.out.contains("mm/memory-failure.c: lines 60.0 % (3/5)"))
    let html = try String(contentsOfFile: "\(dir)/c/html/index.html", encoding: .utf8)
    // Directories as in the tree, not made absolute.
    #expect(html.contains("<a href=\"mm/index.html\">mm</a>"), "\(html)")
    #expect(FileManager.default.fileExists(atPath: "\(dir)/c/html/mm/memory-failure.c.gcov.html"))
    let info = try LCOVInfo(
      parsing: try String(contentsOfFile: "\(dir)/c/coverage.info", encoding: .utf8))
    #expect(info.files["mm/memory-failure.c"]?.lines[11] == 4)
    let json = try String(contentsOfFile: "\(dir)/c/summary.json", encoding: .utf8)
    #expect(json.contains("\"function\" : \"register_pfn_address_space\""))
  }

  @Test func mergeSaysWhatIsMissing() throws {
    let r = try runHarness(["coverage", "merge", "/nonexistent/cov", "-o", "/tmp/x"])
    #expect(r.status == 2)
    #expect(r.err.contains("/nonexistent/cov: no such file or folder"))
  }
}

@Suite struct CoverageCLITests {
  @Test func coverageNeedsAKernel() throws {
    let r = try runHarness(["fuzz", "--seed", "1", "--count", "1", "--target", "model", "--coverage", "/tmp/x"])
    #expect(r.status == 2)
    #expect(r.err.contains("--coverage measures the kernel: not with --target model"))
    let b = try runHarness(["bench", "guest", "--coverage"])
    #expect(b.status == 2)
    #expect(b.err.contains("--coverage compares campaign rates: give --campaign N"))
  }
}
