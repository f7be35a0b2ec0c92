import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// The coverage flavour of Debian's kernel (a second kernel build: ~6-10 min cold, then cached).
enum CoverageFixture {
  private static let build = Task { try await GuestBuild.build(GuestBuild.Request(coverage: true)) }
  static func artifacts() async throws -> GuestArtifacts { try await build.value }
}

/// A real browser, headless, for the HTML report: Debian's chromium-headless-shell, installed
/// on first use when the tests run as root (as VM/build.sh installs what the build needs), else
/// the test says which command installs it.
enum HeadlessBrowser {
  static let package = "chromium-headless-shell"

  static func find() throws -> String {
    if let b = HostTools.find("chromium-headless-shell") ?? HostTools.find("chromium") { return b }
    let install = "apt-get update && apt-get install -y --no-install-recommends \(package)"
    guard geteuid() == 0 else {
      throw HarnessError.environment("no headless browser; run as root: \(install)")
    }
    let r = try runTool([
      "/bin/sh", "-c",
      "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \(package) || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \(package); }",
    ])
    guard r.status == 0, let b = HostTools.find("chromium-headless-shell") else {
      throw HarnessError.environment(
        "installing \(package) failed (\(r.status)): \(r.err.suffix(500)); run: \(install)")
    }
    return b
  }

  /// The page's DOM after the browser loaded and laid it out (`--dump-dom`).
  static func dom(of file: String) throws -> String {
    let browser = try find()
    // --no-sandbox: Chromium refuses to run as root with its sandbox.
    let r = try runTool([
      browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "file://" + file,
    ])
    guard r.status == 0 else {
      throw HarnessError.environment(
        "\(browser) --dump-dom \(file) failed (\(r.status)): \(r.err.suffix(500))")
    }
    return r.out
  }
}

@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(40)))
struct CoverageGuestTests {
  /// Counts survive snapshot restores and are not counted twice: three rounds each registering
  /// one PFN space, with a restore between them, give exactly three calls of
  /// register_pfn_address_space (one without the collection before each restore; more if the
  /// snapshot held counts).
  @Test func countsSurviveSnapshotRestoresExactly() async throws {
    var artifacts = try await CoverageFixture.artifacts()
    let coverage = try CampaignCoverage.start(&artifacts, directory: "")
    let ops = try SequenceFormat.parse(
      """
      harness-sequence 1
      world mf

      space-create s1 first=0xf8000 last=0xf80ff callback=nvgrace
      space-register s1

      """
    ).ops
    let results = try await GuestSession.with(try GuestWorld.named("mf"), artifacts: artifacts) {
      g in
      #expect(g.takeSnapshot())
      var results: [[Observation]] = []
      for round in 0..<3 {
        if round > 0 { #expect(g.restoreSnapshot()) }
        results += ops.map { g.apply($0) }
      }
      return results.map { $0.map(SequenceFormat.print) }
    }
    #expect(results.allSatisfy { $0 == ["= 0"] }, "\(results)")
    #expect(coverage.collector.failures.isEmpty, "\(coverage.collector.failures)")
    let info = try await CoverageReport.info(
      counts: coverage.collector.counts, notes: coverage.collector.notes)
    let mf = try #require(info.files["mm/memory-failure.c"])
    #expect(mf.functionHits["register_pfn_address_space"] == 3)
    // Every series file is in the data, measured or not.
    #expect(Set(info.files.keys) == Set(coverage.collector.notes.entries.map(\.source)))
    // The notes and counts alone (guided generation's kernel lines) say the lines lcov says.
    try Self.expectKernelLinesAreLcovs(coverage.collector, info, atLeast: 50)
  }

  /// Guided generation's kernel lines (the notes and counts alone, ``GCNO``) are the lines
  /// lcov's geninfo says ran, on the counts of a short campaign in each half's world.
  @Test(arguments: ["mf", "p2p-switch"])
  func kernelLinesAreLcovs(world name: String) async throws {
    var artifacts = try await CoverageFixture.artifacts()
    let coverage = try CampaignCoverage.start(&artifacts, directory: "")
    _ = try await GuestRun.campaign(
      try GuestWorld.named(name), artifacts: artifacts, seeds: Array(1...12), length: 30
    ) { _, _, _ in }
    #expect(coverage.collector.failures.isEmpty, "\(coverage.collector.failures)")
    let info = try await CoverageReport.info(counts: coverage.collector.counts, notes: coverage.collector.notes)
    try Self.expectKernelLinesAreLcovs(coverage.collector, info, atLeast: 200)
  }

  /// The lines ``SequenceLines`` reads from the collector's counts are those `info` (lcov's
  /// geninfo on the same counts) says ran, and there are at least `atLeast` of them.
  static func expectKernelLinesAreLcovs(_ collector: CoverageCollector, _ info: LCOVInfo, atLeast: Int) throws {
    let lines = try SequenceLines(notes: collector.notes).lines(of: collector.counts)
    var lcov: Set<String> = []
    for (source, f) in info.files { for (l, n) in f.lines where n > 0 { lcov.insert("\(source):\(l)") } }
    let ours = lines.subtracting(lcov).sorted(), theirs = lcov.subtracting(lines).sorted()
    #expect(lines.count >= atLeast, "\(lines.count) lines")
    #expect(ours.isEmpty && theirs.isEmpty, "of \(lines.count): only ours \(ours.prefix(10)), only lcov's \(theirs.prefix(10))")
  }

  /// `fuzz --guided --coverage`: each sequence's kernel lines are fed back; a sequence kept for
  /// them has its lines beside it (`kept/NAME.lines`), lines of the series' files only, the
  /// PFN-space registration among them, and the summary counts them.
  @Test func guidedKeepsKernelLines() async throws {
    _ = try await CoverageFixture.artifacts()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harness-cov-guided-\(getpid())").path
    try? FileManager.default.removeItem(atPath: dir)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let r = try runHarness([
      "fuzz", "--seed", "1", "--count", "4", "--world", "mf", "--minimize-budget", "0", "--jobs", "1",
      "--guided", "--corpus", dir + "/corpus", "--coverage", dir + "/cov", "--reports", dir + "/reports",
    ])
    #expect(r.status == 0 || r.status == 1, "\(r.out)\n\(r.err)")
    let kept = dir + "/corpus/mf/kept"
    let files = try FileManager.default.contentsOfDirectory(atPath: kept).filter { $0.hasSuffix(".lines") }
    let first = try #require(files.sorted().first, "no kept/*.lines in \(kept)")
    let lines = try String(contentsOfFile: kept + "/" + first, encoding: .utf8).split(separator: "\n")
    let series = Set(try #require(try CoverageNotes.load(guestDirectory: try await CoverageFixture.artifacts().directory)).entries.map(\.source))
    #expect(!lines.isEmpty)
    for l in lines { #expect(series.contains(String(l.split(separator: ":")[0])), "\(l)") }
    #expect(lines.contains { $0.hasPrefix("mm/memory-failure.c:") })
    let summary = try FileManager.default.contentsOfDirectory(atPath: dir + "/reports").first.map {
      try String(contentsOfFile: dir + "/reports/" + $0 + "/summary.txt", encoding: .utf8)
    }
    #expect(summary?.contains(" kernel lines)") == true, "\(summary ?? "")")
  }

  /// `harness fuzz --coverage DIR`: a short campaign's lcov data has hits in the PFN-space code,
  /// the HTML renders the series' files in a real (headless) browser, and the summaries carry
  /// per-file and per-function percentages.
  @Test func fuzzWritesCoverageThatABrowserRenders() async throws {
    _ = try await CoverageFixture.artifacts()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "harness-cov-\(getpid())"
    ).path
    try? FileManager.default.removeItem(atPath: dir)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let r = try runHarness([
      "fuzz", "--seed", "1", "--count", "6", "--world", "mf", "--minimize-budget", "0",
      "--coverage", dir + "/cov", "--reports", dir + "/reports",
    ])
    #expect(r.status == 0 || r.status == 1, "\(r.out)\n\(r.err)")
    #expect(r.out.contains("coverage: \(dir)/cov/html/index.html"), "\(r.out)")

    let info = try LCOVInfo(
      parsing: try String(contentsOfFile: dir + "/cov/coverage.info", encoding: .utf8))
    let mf = try #require(info.files["mm/memory-failure.c"])
    // memory_failure_work_func: the worker that inject-queue and the machine-check path hand
    // the failure to, a kernel thread's context (the counters are global).
    for f in ["register_pfn_address_space", "unregister_pfn_address_space", "memory_failure_pfn", "memory_failure_work_func"] {
      #expect(
        (mf.functionHits[f] ?? 0) > 0,
        "\(f) never ran: \(mf.functionHits.filter { $0.value > 0 }.keys.sorted())")
    }
    let first = try #require(mf.functions["register_pfn_address_space"])
    #expect(mf.lines.contains { $0.key > first && $0.key < first + 30 && $0.value > 0 })
    #expect(mf.branchesHit > 0)

    // The campaign's summary.json carries the coverage per file and per function.
    let reports = try FileManager.default.contentsOfDirectory(atPath: dir + "/reports")
    let summaryPath = dir + "/reports/" + (try #require(reports.first)) + "/summary.json"
    let json = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: summaryPath)))
        as? [String: Any])
    let cov = try #require(json["coverage"] as? [String: Any])
    let files = try #require(cov["files"] as? [[String: Any]])
    #expect(files.map { $0["file"] as? String }.contains("mm/memory-failure.c"))
    let functions = try #require(cov["functions"] as? [[String: Any]])
    let register = try #require(
      functions.first { $0["function"] as? String == "register_pfn_address_space" })
    #expect(((register["lines"] as? [String: Any])?["percent"] as? Double ?? 0) > 0)

    // The HTML, in a real browser: the index lists the series' directories, a directory page
    // its files, a file page its functions' lines.
    let index = try HeadlessBrowser.dom(of: dir + "/cov/html/index.html")
    for d in ["mm", "drivers/pci", "drivers/dma-buf", "drivers/vfio/pci"] {
      #expect(index.contains(">\(d)</a>"), "index.html does not list \(d)")
    }
    let mmPage = try HeadlessBrowser.dom(of: dir + "/cov/html/mm/index.html")
    #expect(mmPage.contains(">memory-failure.c</a>"))
    let vfioPage = try HeadlessBrowser.dom(of: dir + "/cov/html/drivers/vfio/pci/index.html")
    for f in ["vfio_pci_dmabuf.c", "vfio_pci_core.c", "vfio_pci_config.c"] {
      #expect(vfioPage.contains(">\(f)</a>"))
    }
    let source = try HeadlessBrowser.dom(of: dir + "/cov/html/mm/memory-failure.c.gcov.html")
    #expect(source.contains("register_pfn_address_space"))
    #expect(source.contains("lineCov"))  // lines with hits are marked
  }
}
