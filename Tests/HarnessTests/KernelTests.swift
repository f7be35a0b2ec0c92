import Foundation
import Testing

@testable import Harness

/// The kernel as an input: the package list and the preflight, the shared kernel options, the
/// snapshot sync, and the identity reports carry.
@Suite struct KernelTests {
  static let buildScript = Paths.root + "/VM/build.sh"

  static func scratch(_ name: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harness-\(name)-\(UUID())").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
  }

  // MARK: Packages and preflight

  /// One list: VM/packages names QEMU (whose absence used to be found after the kernel build),
  /// build.sh prints exactly its packages, and .ci/run installs what build.sh prints.
  @Test func packageListIsTheOnePlace() throws {
    let r = try runTool(["/bin/bash", Self.buildScript, "--print-packages"])
    #expect(r.status == 0, "\(r.err)")
    let printed = Set(r.out.split(separator: "\n").map(String.init))
    let text = try String(contentsOfFile: Paths.root + "/VM/packages", encoding: .utf8)
    let listed = Set(
      text.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.allSatisfy(\.isWhitespace) }
        .compactMap { $0.split(whereSeparator: \.isWhitespace).last.map(String.init) })
    #expect(printed == listed)
    for p in ["qemu-system-x86", "qemu-utils", "busybox-static", "libelf-dev", "git", "gcc"] {
      #expect(printed.contains(p), "\(p) missing from VM/packages")
    }
    let ci = try String(contentsOfFile: Paths.root + "/.ci/run", encoding: .utf8)
    #expect(ci.contains("VM/build.sh --print-packages"))
    #expect(ci.contains("apt-get install -y --no-install-recommends \"${packages[@]}\""))
  }

  /// A missing package that cannot be installed stops the build at once (before any source is
  /// fetched or built) with the exact command and exit 3, and the harness says so with exit 3.
  @Test func missingPackageStopsBeforeAnyLongWork() throws {
    let dir = try Self.scratch("preflight")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try "harness-no-such-tool harness-test-package\n".write(toFile: dir + "/packages", atomically: true, encoding: .utf8)
    let env = ["HARNESS_PACKAGES": dir + "/packages", "HARNESS_APT_GET": "false", "HARNESS_CACHE": dir + "/cache"]
    let start = ContinuousClock.now
    let r = try runTool(["/bin/bash", Self.buildScript], environment: env)
    #expect(ContinuousClock.now - start < .seconds(10))
    #expect(r.status == 3, "\(r.err)")
    #expect(r.err.contains("apt-get update && apt-get install -y --no-install-recommends harness-test-package"), "\(r.err)")
    #expect(!r.err.contains("kernel"), "went on after the package check: \(r.err)")
    #expect(!FileManager.default.fileExists(atPath: dir + "/cache/src"), "created the cache before the check")
    // The harness passes build.sh's verdict on: environment missing, exit 3.
    let h = try runHarness(["vm", "build"], environment: env)
    #expect(h.status == 3, "\(h.err)")
    #expect(h.err.contains("apt-get install -y --no-install-recommends harness-test-package"), "\(h.err)")
  }

  /// Not root: nothing is tried, the command is printed at once (exit 3).
  @Test(.enabled(if: getuid() == 0 && HostTools.find("setpriv") != nil))
  func notRootPrintsTheCommand() throws {
    let dir = try Self.scratch("preflight-user")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try "harness-no-such-tool harness-test-package\n".write(toFile: dir + "/packages", atomically: true, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir)
    let env = ["HARNESS_PACKAGES": dir + "/packages", "HARNESS_CACHE": dir + "/cache", "HARNESS_APT_GET": "/nonexistent"]
    let r = try runTool(
      [HostTools.find("setpriv")!, "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/bash", Self.buildScript],
      cwd: "/", environment: env)
    #expect(r.status == 3, "\(r.err)")
    #expect(r.err.contains("run as root: apt-get update && apt-get install -y --no-install-recommends harness-test-package"), "\(r.err)")
  }

  // MARK: Kernel options

  /// Every command that builds or boots a guest takes the same kernel options.
  @Test(arguments: [
    ["fuzz"], ["replay"], ["minimize"], ["record"], ["bench", "guest"], ["bench", "build"], ["vm", "build"],
    ["vm", "shell"],
  ])
  func everyGuestCommandNamesTheKernelTheSameWay(command: [String]) throws {
    let r = try runHarness(command + ["--help"])
    #expect(r.status == 0)
    #expect(r.out.contains("--kernel-src <DIR>"), "\(command): \(r.out)")
    #expect(r.out.contains("--kernel-config <FILE>"), "\(command): \(r.out)")
    #expect(r.out.contains("HARNESS_KERNEL_SRC"), "\(command)")
  }

  @Test(arguments: [
    (["vm", "build", "--kernel-src", "/nonexistent-tree"], [String: String](), "--kernel-src /nonexistent-tree: no such directory"),
    (["fuzz", "--seed", "1", "--kernel-src", "/nonexistent-tree"], [:], "--kernel-src /nonexistent-tree: no such directory"),
    (["vm", "build"], ["HARNESS_KERNEL_SRC": "/nonexistent-env-tree"], "HARNESS_KERNEL_SRC /nonexistent-env-tree: no such directory"),
    (["vm", "build", "--kernel-config", "/nonexistent.config"], [:], "--kernel-config /nonexistent.config: no such file"),
  ])
  func badKernelOptionsExitTwo(args: [String], env: [String: String], message: String) throws {
    let r = try runHarness(args, environment: env)
    #expect(r.status == 2, "\(args): \(r.status) \(r.err)")
    #expect(r.err.contains(message), "\(r.err)")
  }

  /// build.sh refuses a directory that is not a kernel tree with exit 2 (and the harness with
  /// a usage error), before building anything.
  @Test func notAKernelTreeIsAUsageError() throws {
    let dir = try Self.scratch("not-a-tree")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let r = try runHarness(["vm", "build", "--kernel-src", dir], environment: ["HARNESS_CACHE": dir + "/cache"])
    #expect(r.status == 2, "\(r.err)")
    #expect(r.err.contains("does not look like a Linux source tree"), "\(r.err)")
  }

  // MARK: Snapshot sync

  /// VM/tree-sync.pl: a second sync rewrites only what changed (the others keep their times),
  /// deletes what left the list, and never touches the source.
  @Test func snapshotSyncsByContent() throws {
    let dir = try Self.scratch("sync")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let fm = FileManager.default
    try fm.createDirectory(atPath: dir + "/src/mm", withIntermediateDirectories: true)
    for (f, t) in [("mm/a.c", "a"), ("mm/b.c", "b"), ("Makefile", "m"), ("gone.c", "g")] {
      try t.write(toFile: dir + "/src/" + f, atomically: true, encoding: .utf8)
    }
    func sync(_ files: [String]) throws -> String {
      let list = dir + "/list"
      try Data(files.joined(separator: "\0").utf8).write(to: URL(fileURLWithPath: list))
      let r = try runTool(["/bin/sh", "-c", "perl \(Paths.root)/VM/tree-sync.pl \(dir)/src \(dir)/dst \(dir)/state < \(list)"])
      #expect(r.status == 0, "\(r.err)")
      return r.out
    }
    func mtime(_ p: String) throws -> Date { try fm.attributesOfItem(atPath: p)[.modificationDate] as! Date }
    let first = try sync(["Makefile", "mm/a.c", "mm/b.c", "gone.c"])
    let old = Date(timeIntervalSince1970: 1_000_000)
    for f in ["Makefile", "mm/a.c", "mm/b.c"] { try fm.setAttributes([.modificationDate: old], ofItemAtPath: dir + "/dst/" + f) }
    let srcBefore = try fm.attributesOfItem(atPath: dir + "/src/mm/a.c")[.modificationDate] as! Date
    // Touched without a change, changed, removed from the list.
    try fm.setAttributes([.modificationDate: Date()], ofItemAtPath: dir + "/src/Makefile")
    try "b2".write(toFile: dir + "/src/mm/b.c", atomically: true, encoding: .utf8)
    let second = try sync(["Makefile", "mm/a.c", "mm/b.c"])
    #expect(first != second)
    #expect(try mtime(dir + "/dst/Makefile") == old)
    #expect(try mtime(dir + "/dst/mm/a.c") == old)
    #expect(try mtime(dir + "/dst/mm/b.c") > old)
    #expect(try String(contentsOfFile: dir + "/dst/mm/b.c", encoding: .utf8) == "b2")
    #expect(!fm.fileExists(atPath: dir + "/dst/gone.c"))
    #expect(fm.fileExists(atPath: dir + "/src/gone.c"))
    #expect(try mtime(dir + "/src/mm/a.c") == srcBefore)
    // The same content hashes the same.
    #expect(try sync(["Makefile", "mm/a.c", "mm/b.c"]) == second)
  }

  // MARK: Identity

  static let debian = KernelIdentity.parse(
    """
    source_kind=debian
    debian_package=linux-source-7.3
    debian_version=7.3.4-1~bpo13+1
    release=7.3.4
    fragment_sha256=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    user_config_sha256=none
    compiler=gcc (Debian 12.2.0-14) 12.2.0
    kernel_image_sha256=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb

    """, qemu: "QEMU emulator version 7.2.15", harness: "abc123", world: "mf")

  static let tree = KernelIdentity.parse(
    """
    source_kind=git
    tree=/src/linux
    git_commit=8be29f733242cf32da5dbc78ffe87b9c7fab356d
    git_describe=v7.3-rc1
    local_changes=83edc5e8818fa4cb
    version=7.3.4
    tree_content=cccc
    release=7.3.4
    fragment_sha256=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    user_config_sha256=dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd
    compiler=gcc (Debian 12.2.0-14) 12.2.0
    kernel_image_sha256=eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee
    """, qemu: "QEMU emulator version 7.2.15", harness: "abc123", world: "mf")

  @Test func identityRendersItsSource() {
    #expect(Self.debian.source == "Debian linux-source-7.3 7.3.4-1~bpo13+1")
    #expect(Self.tree.source == "git /src/linux at 8be29f733242cf32da5dbc78ffe87b9c7fab356d (v7.3-rc1), local changes 83edc5e8818fa4cb")
    #expect(Self.tree.config(digits: 16) == "--kernel-config dddddddddddddddd + VM/harness.config aaaaaaaaaaaaaaaa")
    #expect(Self.debian.block.contains("  source: Debian linux-source-7.3 7.3.4-1~bpo13+1\n"))
    #expect(Self.debian.block.contains("  qemu: QEMU emulator version 7.2.15\n"))
    #expect(Self.debian.block.contains("  world: mf\n"))
    #expect(Self.debian.paragraph.hasPrefix("Kernel: Debian linux-source-7.3 7.3.4-1~bpo13+1, release 7.3.4"))
    #expect(Self.tree.paragraph.contains("local changes 83edc5e8818fa4cb"))
    #expect(!Self.debian.paragraph.contains("\n"))
    #expect(Self.debian.json["debian_version"] == "7.3.4-1~bpo13+1")
    #expect(Self.debian.json["qemu"] == "QEMU emulator version 7.2.15")
  }

  /// Any field that differs shows in every rendering: two kernels never look alike.
  @Test func identitiesOfDifferentKernelsNeverRenderAlike() {
    var variants = [Self.debian, Self.tree, Self.debian.inWorld("p2p-switch"), KernelIdentity.modelOnly(world: "mf")]
    for i in Self.debian.fields.indices {
      var v = Self.debian
      v.fields[i].value = String(v.fields[i].value.dropLast()) + "#"  // same length: hashes stay 64 digits
      variants.append(v)
    }
    var q = Self.debian
    q.qemu = "QEMU emulator version 8.0"
    variants.append(q)
    var h = Self.debian
    h.harness = "def456"
    variants.append(h)
    for (i, a) in variants.enumerated() {
      for b in variants[(i + 1)...] {
        #expect(a.block != b.block, "\(i) \(a.fields.map(\.value)) \(b.fields.map(\.value))")
        #expect(a.json != b.json)
        #expect(a.line != b.line, "\(a.line)")
      }
    }
  }

  /// summary.txt, summary.json and diff.txt carry the identity; the same kernel writes the same
  /// bytes, another kernel other bytes; known findings are XFAIL in KTAP.
  @Test func reportsNameTheirKernel() throws {
    let dir = try Self.scratch("identity-report")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    func write(_ id: KernelIdentity, _ sub: String) throws -> (txt: String, json: String, ktap: String) {
      let w = ReportWriter(directory: dir + "/" + sub, title: "t", identity: id)
      let sig = Signature(kind: "exit-unexpected:SIGKILL", item: "C3.2", op: "inject-shim")
      let lines = [
        VerdictLine(name: "seed-1", verdict: .match, known: nil),
        VerdictLine(name: "seed-2", verdict: .modelInvariant(step: 0, message: "m"), known: "0001-x"),
      ]
      _ = sig
      try w.writeSummary(results: lines, stats: CampaignStats())
      func read(_ f: String) throws -> String { try String(contentsOfFile: "\(dir)/\(sub)/\(f)", encoding: .utf8) }
      return (try read("summary.txt"), try read("summary.json"), try read("ktap.txt"))
    }
    let a = try write(Self.debian, "a")
    let a2 = try write(Self.debian, "a2")
    let b = try write(Self.tree, "b")
    #expect(a.txt == a2.txt && a.json == a2.json)
    #expect(a.txt != b.txt && a.json != b.json)
    #expect(a.txt.contains("kernel under test:\n  source: Debian linux-source-7.3 7.3.4-1~bpo13+1\n"))
    let json = try JSONSerialization.jsonObject(with: Data(b.json.utf8)) as! [String: Any]
    let identity = try #require(json["identity"] as? [String: String])
    #expect(identity["source_kind"] == "git")
    #expect(identity["git_commit"] == "8be29f733242cf32da5dbc78ffe87b9c7fab356d")
    #expect(a.ktap.contains("ok 2 seed-2 # XFAIL known 0001-x"))
    #expect(!a.ktap.contains("SKIP"))
  }

  /// finding.txt's `kernel:` key is accepted, and every ledger entry names its kernel.
  @Test func ledgerEntriesNameTheirKernel() throws {
    let ledger = try Ledger.load(Paths.root + "/Corpora/findings")
    #expect(!ledger.entries.isEmpty)
    for e in ledger.entries {
      #expect(e.kernel.hasPrefix("Debian linux-source-7.3 "), "\(e.id): kernel `\(e.kernel)`")
    }
  }
}
