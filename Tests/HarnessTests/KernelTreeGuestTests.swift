import Foundation
import Testing

@testable import Harness

/// A user's tree as developers have it: a git checkout with an uncommitted edit, an untracked
/// file and the droppings of an in-tree build. Made from Debian's source (hard links, so it
/// costs no copy), at a stable path so that its object directory is reused from one run to the
/// next: only the first run of a machine builds it cold.
///
/// `HARNESS_TEST_TREES` (default /tmp/harness-kernel-tests) is where the tree goes (as `dirty-git-tree`),
/// `HARNESS_TEST_TREE_CACHE` (default: the harness's cache) where it is built.
enum DirtyTreeFixture {
  static let directory = KernelTestTree.root + "/dirty-git-tree"
  static let environment = KernelTestTree.environment

  /// The tree's listing (type, mode, size, mtime and the content hash of every file, .git
  /// included), before and after the build, and the build.
  static let build = Task { () throws -> (before: String, after: String, artifacts: GuestArtifacts, head: String) in
    let t = directory
    let out = try await KernelTestTree.make(
      "dirty-git-tree",
      script: """
        git init -q
        git add Makefile mm
        git add -f .gitignore  # (the kernel ignores dotfiles, its .gitignore included)
        git -c user.name=harness -c user.email=harness@invalid commit -q -m base
        # An uncommitted edit (a new file, never the hard-linked one), an untracked file and an
        # in-tree build's droppings.
        sed 's|^#include <linux/mm.h>$|&\\n/* harness test: an uncommitted edit */|' mm/memory-failure.c > mm/mf.new
        rm mm/memory-failure.c
        mv mm/mf.new mm/memory-failure.c
        echo 'an untracked file' > mm/harness-untracked.txt
        echo 'CONFIG_HARNESS_IN_TREE=y' > .config
        mkdir -p include/generated include/config
        echo '/* in-tree build */' > include/generated/autoconf.h
        echo 'not an object' > mm/memory-failure.o
        # The index as a developer's is: written after its files' last change. The commit above
        # and the edit below fall in one second, so git's index would otherwise hold "racily
        # clean" entries that the next git command anywhere refreshes and rewrites.
        sleep 1
        git update-index -q --refresh || true
        git rev-parse HEAD
        """)
    let head = out.trimmingCharacters(in: .whitespacesAndNewlines)
    let before = try listing(t)
    let artifacts = try await GuestBuild.build(GuestBuild.Request(source: t), environment: environment)
    return (before, try listing(t), artifacts, head)
  }

  static func listing(_ dir: String) throws -> String {
    let r = try runTool([
      "/bin/sh", "-c",
      "cd '\(dir)' && find . -printf '%y %m %s %T@ %p\\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum",
    ])
    guard r.status == 0 else { throw HarnessError.environment("listing \(dir) failed: \(r.err)") }
    return r.out
  }
}

@Suite(.serialized, .enabled(if: GuestFixture.enabled), .timeLimit(.minutes(40)))
struct KernelTreeGuestTests {
  /// The build reads the tree and nothing else: every file, directory, mode, time and byte,
  /// `.git` (its index too) included, is as before.
  @Test func aDirtyGitTreeIsLeftByteForByteUnchanged() async throws {
    let b = try await DirtyTreeFixture.build.value
    #expect(b.before.split(separator: "\n").count > 90_000)
    #expect(b.before.contains(" ./.git/index\n"))
    if b.before != b.after {
      let x = Set(b.before.split(separator: "\n")).symmetricDifference(Set(b.after.split(separator: "\n")))
      Issue.record("the tree changed: \(x.prefix(20))")
    }
  }

  /// git rewrites the index it reads where a tracked file's stat data changed but not its
  /// bytes (`git diff` does, whatever GIT_OPTIONAL_LOCKS says): a hard link made to a file of the
  /// tree (here, as Debian's source in the cache is linked into other trees) changes its ctime.
  /// The build reads a copy of the index; the tree's stays as it was (a fresh CI machine saw it
  /// rewritten during the first build).
  @Test func aChangedCtimeDoesNotMakeTheBuildWriteTheIndex() async throws {
    _ = try await DirtyTreeFixture.build.value
    let t = DirtyTreeFixture.directory
    let before = try DirtyTreeFixture.listing(t)
    let link = t + "/../ctime-bump-\(getpid())"
    try FileManager.default.linkItem(atPath: t + "/Makefile", toPath: link)
    try FileManager.default.removeItem(atPath: link)
    let r = try runHarness(["vm", "build", "--kernel-src", t], environment: DirtyTreeFixture.environment)
    #expect(r.status == 0, "\(r.err)")
    let after = try DirtyTreeFixture.listing(t)
    if before != after {
      let x = Set(before.split(separator: "\n")).symmetricDifference(Set(after.split(separator: "\n")))
      Issue.record("the tree changed: \(x.sorted().prefix(20))")
    }
  }

  /// The kernel is the tree's, edit included, and it says so.
  @Test func theTreesKernelNamesItself() async throws {
    let b = try await DirtyTreeFixture.build.value
    let debian = try await GuestFixture.artifacts()
    let id = b.artifacts.identity
    #expect(id["source_kind"] == "git")
    #expect(id["tree"] == DirtyTreeFixture.directory)
    #expect(id["git_commit"] == b.head)
    #expect(id["local_changes"] != "clean" && id["local_changes"]?.count == 16)
    #expect(debian.identity["source_kind"] == "debian")
    #expect(id.block != debian.identity.block)
    #expect(b.artifacts.directory != debian.directory)
    // The snapshot holds the edit and the untracked file, not the in-tree build's files.
    let snapshot = try #require(
      try String(contentsOfFile: b.artifacts.directory + "/manifest", encoding: .utf8)
        .split(separator: "\n").first { $0.hasPrefix("kernel_src=") }.map { String($0.dropFirst(11)) })
    #expect(try String(contentsOfFile: snapshot + "/mm/memory-failure.c", encoding: .utf8).contains("harness test: an uncommitted edit"))
    #expect(FileManager.default.fileExists(atPath: snapshot + "/mm/harness-untracked.txt"))
    for f in [".config", "include/generated/autoconf.h", "mm/memory-failure.o", ".git"] {
      #expect(!FileManager.default.fileExists(atPath: snapshot + "/" + f), "\(f) in the snapshot")
    }
  }

  /// A tree that is Debian's source with an edit starts from Debian's objects: its first build
  /// compiles what the edit reaches, not the whole kernel, and the edit is in the kernel even
  /// when the edited file is older than Debian's objects (the snapshot keeps a file of Debian's
  /// only where the tree's content is Debian's). Built once and removed again: a tree at a new
  /// path, so that every run builds it for the first time.
  @Test func aTreeOnDebiansSourceStartsFromDebiansObjects() async throws {
    let debian = try await GuestFixture.artifacts()
    let name = "seeded-tree-\(getpid())"
    let t = KernelTestTree.root + "/" + name
    _ = try await KernelTestTree.make(
      name,
      script: """
        sed 's/recovery action for %s: %s/harness-seeded recovery action for %s: %s/' mm/memory-failure.c > mm/mf.new
        rm mm/memory-failure.c
        mv mm/mf.new mm/memory-failure.c
        grep -q 'harness-seeded recovery action' mm/memory-failure.c
        touch -d 2001-01-01 mm/memory-failure.c
        """)
    defer { try? FileManager.default.removeItem(atPath: t) }
    let r = try runHarness(["vm", "build", "--kernel-src", t], environment: KernelTestTree.environment)
    #expect(r.status == 0, "\(r.err)")
    let manifest = try String(contentsOfFile: debian.directory + "/manifest", encoding: .utf8)
    let plainKernel = try #require(manifest.split(separator: "\n").first { $0.hasPrefix("kernel_key=") }?.dropFirst(11))
    #expect(r.err.contains("starts from Debian's objects (kernel \(plainKernel)"), "\(r.err)")
    let recompiled = r.err.split(separator: "\n").compactMap { line -> Int? in
      guard let m = line.firstMatch(of: /kernel: (\d+) C file\(s\) recompiled in/) else { return nil }
      return Int(m.1)
    }
    #expect(recompiled.count == 1 && recompiled[0] >= 1 && recompiled[0] < 50, "\(r.err)")
    let guest = try #require(r.out.split(separator: "\n").first { $0.hasPrefix("guest: ") }?.dropFirst(7))
    let vmlinux = try Data(contentsOf: URL(fileURLWithPath: String(guest) + "/vmlinux"))
    #expect(vmlinux.range(of: Data("harness-seeded recovery action".utf8)) != nil, "the edit is not in the kernel")
    // Its caches go too (a new path every run).
    let built = try String(contentsOfFile: String(guest) + "/manifest", encoding: .utf8)
    for line in built.split(separator: "\n") where line.hasPrefix("kernel_obj=") || line.hasPrefix("kernel_src=") {
      let dir = String(line.split(separator: "=", maxSplits: 1)[1])
      try? FileManager.default.removeItem(atPath: line.hasPrefix("kernel_src=") ? (dir as NSString).deletingLastPathComponent : dir)
    }
    try? FileManager.default.removeItem(atPath: String(guest))
  }

  /// summary.json of a campaign on Debian's source and of one on the tree differ in their
  /// identity; each campaign's own files are the same bytes when run again.
  @Test func campaignsOnTwoKernelsReportDifferentIdentities() async throws {
    _ = try await DirtyTreeFixture.build.value
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("harness-two-kernels-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    func campaign(_ extra: [String], _ env: [String: String], _ dir: String) throws -> [String: Any] {
      let r = try runHarness(
        ["fuzz", "--seed", "1", "--count", "3", "--world", "mf", "--reports", tmp + "/" + dir] + extra, environment: env)
      #expect(r.status == 0 || r.status == 1, "\(r.err)")
      let text = try String(contentsOfFile: tmp + "/\(dir)/fuzz-mf-1-3-l30-both/summary.json", encoding: .utf8)
      return try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
    }
    let debian = try #require(try campaign([], [:], "debian")["identity"] as? [String: String])
    let tree = try #require(
      try campaign(["--kernel-src", DirtyTreeFixture.directory], DirtyTreeFixture.environment, "tree")["identity"]
        as? [String: String])
    #expect(debian["source_kind"] == "debian" && tree["source_kind"] == "git")
    #expect(debian["source"] != tree["source"])
    #expect(debian["world"] == "mf" && tree["world"] == "mf")
    #expect(debian["qemu"] == tree["qemu"] && debian["harness"] == tree["harness"])
  }
}
