import Foundation
import Testing

@testable import Harness

/// `bench guest --baseline`: another build's campaign runs beside this one's, pair by pair,
/// and both rates and their ratio are printed.
@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(15)))
struct GuestBenchTests {
  /// The project's own checkout as the baseline (its built harness, in a process of its own):
  /// two pairs, the baseline first in the first one, then the summary over both.
  @Test func baselineRunsPairByPair() async throws {
    _ = try await GuestFixture.artifacts()
    let r = try runHarness([
      "bench", "guest", "--world", "mf", "--boots", "1", "--ops", "1", "--campaign", "2", "--jobs", "1",
      "--baseline", Paths.root, "--pairs", "2",
    ])
    #expect(r.status == 0, "\(r.err)")
    let pairs = r.out.split(separator: "\n").filter { $0.hasPrefix("mf: campaign --jobs 1 pair ") }
    #expect(pairs.count == 2, "\(r.out)")
    #expect(pairs.first?.contains("pair 1 of 2 (baseline first)") == true, "\(pairs)")
    #expect(pairs.last?.contains("pair 2 of 2 (this build first)") == true, "\(pairs)")
    for p in pairs {
      #expect(p.contains(": baseline ") && p.contains(", this build ") && p.contains(" sequences/min: "), "\(p)")
    }
    #expect(r.out.contains("mf: campaign --jobs 1 against the baseline \(Paths.root): baseline "), "\(r.out)")
  }

  /// A baseline whose bench prints no campaign rate is an error that shows its output.
  @Test func baselineWithoutARateIsAnError() throws {
    let dir = scratchDirectory("baseline")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let fm = FileManager.default
    try fm.createDirectory(atPath: dir + "/VM", withIntermediateDirectories: true)
    try fm.createDirectory(atPath: dir + "/.build/release", withIntermediateDirectories: true)
    fm.createFile(atPath: dir + "/VM/build.sh", contents: Data())
    fm.createFile(
      atPath: dir + "/.build/release/harness", contents: Data("#!/bin/sh\necho 'not a bench'\n".utf8),
      attributes: [.posixPermissions: 0o755])
    let r = try runHarness([
      "bench", "guest", "--world", "mf", "--boots", "1", "--ops", "1", "--campaign", "1", "--jobs", "1",
      "--baseline", dir, "--pairs", "1",
    ])
    #expect(r.status != 0, "\(r.out)")
    #expect(r.err.contains("no line `mf: campaign --jobs 1 (--reset") && r.err.contains("not a bench"), "\(r.err)")
  }
}
