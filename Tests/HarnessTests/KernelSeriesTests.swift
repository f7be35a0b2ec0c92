import Foundation
import Testing

@testable import Harness

/// `--series` on `--base`: applied with `git am -3` in a tree the harness owns; a patch that does
/// not apply names itself and its files, and leaves nothing half-applied; the base is only read.
@Suite struct KernelSeriesTests {
  static func patch(_ subject: String, old: String, new: String) -> String {
    """
    From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
    From: Dev <dev@example.org>
    Date: Thu, 3 Dec 2026 12:00:00 +0000
    Subject: [PATCH] \(subject)

    ---
     f.c | 2 +-
     1 file changed, 1 insertion(+), 1 deletion(-)

    diff --git a/f.c b/f.c
    --- a/f.c
    +++ b/f.c
    @@ -1,3 +1,3 @@
     a
    -\(old)
    +\(new)
     c
    --\u{20}
    2.39.5

    """
  }

  /// A scratch base tree (no repository), a cache, and a series directory.
  static func scratch() throws -> (base: String, cache: String, series: String) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("series-\(UUID())").path
    for d in ["base", "cache", "series"] {
      try FileManager.default.createDirectory(atPath: dir + "/" + d, withIntermediateDirectories: true)
    }
    try "a\nb\nc\n".write(toFile: dir + "/base/f.c", atomically: true, encoding: .utf8)
    return (dir + "/base", dir + "/cache", dir + "/series")
  }

  @Test func appliesASeriesOnATree() async throws {
    let (base, cache, series) = try Self.scratch()
    try Self.patch("f: b becomes B", old: "b", new: "B").write(toFile: series + "/0001-b.patch", atomically: true, encoding: .utf8)
    try Self.patch("f: B becomes 2", old: "B", new: "2").write(toFile: series + "/0002-2.patch", atomically: true, encoding: .utf8)
    let applied = try await KernelSeries(path: series, base: base).apply(cache: cache) { fatalError("no Debian base here") }
    #expect(try String(contentsOfFile: applied.tree + "/f.c", encoding: .utf8) == "a\n2\nc\n")
    #expect(applied.fields.contains { $0.key == "series" && $0.value.contains("2 patches") })
    // The base was only read.
    #expect(try String(contentsOfFile: base + "/f.c", encoding: .utf8) == "a\nb\nc\n")
    #expect(!FileManager.default.fileExists(atPath: base + "/.git"))
  }

  @Test func aPatchThatDoesNotApplyNamesItselfAndLeavesTheBase() async throws {
    let (base, cache, series) = try Self.scratch()
    try Self.patch("f: b becomes B", old: "b", new: "B").write(toFile: series + "/0001-b.patch", atomically: true, encoding: .utf8)
    try Self.patch("f: x becomes y", old: "x", new: "y").write(toFile: series + "/0002-x.patch", atomically: true, encoding: .utf8)
    let s = KernelSeries(path: series, base: base)
    do {
      _ = try await s.apply(cache: cache) { fatalError("no Debian base here") }
      Issue.record("a series that does not apply was applied")
    } catch let e as HarnessError {
      #expect(e.status == .usage)
      #expect(e.message.contains("0002-x.patch"), "\(e.message)")
      #expect(e.message.contains("f.c"), "\(e.message)")
      #expect(e.message.contains("nothing was applied"))
    }
    // Not half-applied: the owned tree is back at its base (the first patch undone too).
    let tree = cache + "/series/" + (try FileManager.default.contentsOfDirectory(atPath: cache + "/series").first { $0 != "bases" }!) + "/tree"
    #expect(try String(contentsOfFile: tree + "/f.c", encoding: .utf8) == "a\nb\nc\n")
    #expect(!FileManager.default.fileExists(atPath: tree + "/.git/rebase-apply"))
  }

  @Test func aMissingSeriesIsAUsageError() {
    #expect(throws: HarnessError.self) { _ = try KernelSeries(path: "/nonexistent/series").patches() }
  }
}
