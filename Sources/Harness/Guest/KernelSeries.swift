import Foundation
import Subprocess
import SystemPackage

/// A patch series applied on a base, in a git tree the harness owns (`--series`, `--base`):
/// the kernel a reviewer wants to test is "this series on that base".
///
/// The base is Debian's source (by default), a tree (`--base DIR`), or a ref of the
/// `--kernel-src` repository (`--base REF`); its committed content becomes the owned tree's
/// base commit, and `git am -3` applies the series there. The user's repository is only read
/// (`git clone --shared`: no worktree metadata, no index, nothing written to it). A series that
/// does not apply leaves no half-applied tree: the owned tree goes back to its base and the
/// error names the patch and the files that conflict (exit 2).
///
/// One owned tree per base (`$HARNESS_CACHE/series/<base key>/tree`), reset to the base and
/// re-applied for each series: the kernel's object directory is keyed by the tree's path, so a
/// new revision of a series rebuilds only what it changes.
struct KernelSeries: Sendable {
  /// The series: an mbox (`git format-patch --stdout`, `b4 am`'s `.mbx`), a single patch, or a
  /// directory of `git format-patch` files (`*.patch`, `*.mbx`, in name order).
  var path: String
  /// `nil`: Debian's source; a directory; or a ref of `repository`.
  var base: String?
  /// `--kernel-src`, where `base` is a ref.
  var repository: String?

  struct Applied: Sendable {
    /// The owned tree with the series committed on its base.
    var tree: String
    /// `identity` fields: what the base and the series were.
    var fields: [(key: String, value: String)]
  }

  /// The patch files of the series, in order.
  func patches() throws(HarnessError) -> [String] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw .usage("--series \(path): no such file or directory; give an mbox, a patch or a directory of git format-patch files")
    }
    guard isDirectory.boolValue else { return [path] }
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
      .filter { $0.hasSuffix(".patch") || $0.hasSuffix(".mbx") || $0.hasSuffix(".mbox") || $0.hasSuffix(".eml") }
      .sorted()
    guard !names.isEmpty else {
      throw .usage("--series \(path): no *.patch, *.mbx or *.mbox files in this directory")
    }
    return names.map { path + "/" + $0 }
  }

  /// Applies the series in the owned tree under `cache`; `debianSource` is Debian's extracted
  /// source (for the default base).
  func apply(cache: String, debianSource: () async throws -> String) async throws -> Applied {
    let files = try patches()
    let (baseRepo, baseRef, baseLabel) = try await resolveBase(cache: cache, debianSource: debianSource)
    let key = Self.sha256(baseLabel).prefix(16)
    let root = cache + "/series/\(key)"
    let tree = root + "/tree"
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    if !FileManager.default.fileExists(atPath: tree + "/.git") {
      try? FileManager.default.removeItem(atPath: tree)
      try await Self.git(["clone", "--quiet", "--shared", "--no-checkout", baseRepo, tree], in: root)
    } else {
      try await Self.git(["fetch", "--quiet", baseRepo, baseRef], in: tree)
    }
    let commit = try await Self.git(["rev-parse", "--verify", baseRef + "^{commit}"], in: tree)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    try await reset(tree, to: commit)
    let am = try await Self.run(
      "/usr/bin/git",
      ["-C", tree, "-c", "gc.auto=0", "-c", "user.name=harness", "-c", "user.email=harness@localhost", "am", "-3", "--quiet"]
        + files)
    if am.status != 0 {
      _ = try? await Self.run("/usr/bin/git", ["-C", tree, "am", "--abort"])
      try await reset(tree, to: commit)
      throw HarnessError.usage(Self.describeFailure(am.output, series: path, files: files, base: baseLabel))
    }
    let digest = Self.sha256(try files.map { f throws(HarnessError) -> String in
      do { return try String(contentsOfFile: f, encoding: .utf8) } catch {
        throw .usage("--series \(f): cannot read it (\(Corpus.reason(error)))")
      }
    }.joined())
    let head = try await Self.git(["rev-parse", "HEAD"], in: tree).trimmingCharacters(in: .whitespacesAndNewlines)
    return Applied(
      tree: tree,
      fields: [
        ("series_base", "\(baseLabel) (\(commit.prefix(12)))"),
        ("series", "\(path), \(files.count) patch\(files.count == 1 ? "" : "es"), sha256 \(digest), applied as \(head.prefix(12))"),
      ])
  }

  /// The base as a repository, a ref in it, and a label for reports.
  private func resolveBase(cache: String, debianSource: () async throws -> String) async throws
    -> (String, String, String)
  {
    if let base, FileManager.default.fileExists(atPath: base) {
      let dir = URL(fileURLWithPath: base).standardizedFileURL.path
      if FileManager.default.fileExists(atPath: dir + "/.git") {
        return (dir, "HEAD", "git \(dir) (HEAD, committed content)")
      }
      return (try await Self.committed(tree: dir, cache: cache), "HEAD", "tree \(dir)")
    }
    if let base {
      guard let repository else {
        throw HarnessError.usage("--base \(base): no such directory; a git ref needs --kernel-src naming its repository")
      }
      let dir = URL(fileURLWithPath: repository).standardizedFileURL.path
      return (dir, base, "git \(dir) at \(base)")
    }
    let debian = try await debianSource()
    return (try await Self.committed(tree: debian, cache: cache), "HEAD", "Debian \((debian as NSString).lastPathComponent)")
  }

  /// A git repository holding `tree`'s files as one commit (made once per tree and content
  /// stamp), for a base that is no repository.
  private static func committed(tree: String, cache: String) async throws -> String {
    let stamp = (try? String(contentsOfFile: tree + "/.harness-extracted", encoding: .utf8)) ?? tree
    let repo = cache + "/series/bases/\(sha256(tree + "\n" + stamp).prefix(16))"
    if FileManager.default.fileExists(atPath: repo + "/.harness-base") { return repo }
    try? FileManager.default.removeItem(atPath: repo)
    try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
    FileHandle.standardError.write(Data("series: committing \(tree) as the base (once)\n".utf8))
    try await git(["init", "--quiet", "--bare", "."], in: repo)
    // The tree's own files, build products and dotfiles excluded, indexed from where they are.
    let env = ["GIT_DIR": repo, "GIT_WORK_TREE": tree, "GIT_INDEX_FILE": repo + "/harness-index"]
    try await git(["add", "--all", "--force", "--", ".", ":!*.o", ":!*.ko", ":!*.cmd", ":!.harness-*"], in: repo, environment: env)
    try await git(
      ["-c", "user.name=harness", "-c", "user.email=harness@localhost", "commit", "--quiet", "-m", "base: \(tree)"],
      in: repo, environment: env)
    try Data(stamp.utf8).write(to: URL(fileURLWithPath: repo + "/.harness-base"))
    return repo
  }

  /// The owned tree back at `commit`: changed files rewritten, unchanged ones left alone (their
  /// times too), everything else removed.
  private func reset(_ tree: String, to commit: String) async throws {
    try await Self.git(["reset", "--quiet", "--hard", commit], in: tree)
    try await Self.git(["clean", "--quiet", "-fdx"], in: tree)
  }

  /// "patch 2/3 `subject` does not apply …: conflict in mm/memory-failure.c".
  static func describeFailure(_ output: String, series: String, files: [String], base: String) -> String {
    let lines = output.split(separator: "\n").map(String.init)
    let failedAt = lines.first { $0.contains("Patch failed at ") }
      .map { String($0[$0.range(of: "Patch failed at ")!.upperBound...]) } ?? "?"
    var conflicts: [String] = []
    for l in lines {
      if let r = l.range(of: "Merge conflict in ") { conflicts.append(String(l[r.upperBound...])) }
      if l.hasPrefix("error: patch failed: "), let colon = l.dropFirst(21).lastIndex(of: ":") {
        conflicts.append(String(l.dropFirst(21)[..<colon]))
      }
      if l.hasPrefix("error: "), l.hasSuffix(": does not exist in index") {
        conflicts.append(String(l.dropFirst(7).dropLast(25)))
      }
      if let r = l.range(of: "information is lacking or useless ("), l.hasSuffix(").") {
        conflicts.append(String(l[r.upperBound...].dropLast(2)))
      }
    }
    var unique: [String] = []
    for c in conflicts where !unique.contains(c) { unique.append(c) }
    let number = Int(failedAt.prefix { $0.isNumber }) ?? 0
    let subject = failedAt.drop { $0.isNumber }.trimmingCharacters(in: .whitespaces)
    let which = number > 0 && number <= files.count ? " (\(files.count == 1 ? files[0] : files[number - 1]))" : ""
    let advice = ["When you have resolved", "If you prefer to skip", "To restore the original", "hint:"]
    return "--series \(series): patch \(number) \"\(subject)\"\(which) does not apply to \(base)"
      + (unique.isEmpty ? "" : ": conflict in \(unique.joined(separator: ", "))")
      + "; nothing was applied. Rebase the series on that base, or name another with --base. git am said:\n"
      + lines.filter { l in !l.isEmpty && !advice.contains { l.hasPrefix($0) } }.prefix(12).map { "  " + $0 }
      .joined(separator: "\n")
  }

  @discardableResult
  static func git(_ arguments: [String], in directory: String, environment: [String: String] = [:]) async throws -> String {
    // No automatic gc: a repack of a whole kernel's objects in the middle of a build is minutes.
    let r = try await run("/usr/bin/git", ["-C", directory, "-c", "gc.auto=0"] + arguments, environment: environment)
    guard r.status == 0 else {
      throw HarnessError.environment("git \(arguments.joined(separator: " ")) in \(directory) failed: \(r.output)")
    }
    return r.output
  }

  static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws
    -> (status: Int32, output: String)
  {
    var env: Environment = .inherit
    if !environment.isEmpty {
      env = .inherit.updating(Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) }))
    }
    let r = try await Subprocess.run(
      .path(FilePath(executable)), arguments: Arguments(arguments), environment: env,
      output: .string(limit: 1 << 22), error: .string(limit: 1 << 20))
    let status: Int32 = if case .exited(let c) = r.terminationStatus { c } else { -1 }
    return (status, r.standardOutput + r.standardError)
  }

  static func sha256(_ text: String) -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    let input = Pipe()
    let output = Pipe()
    p.standardInput = input
    p.standardOutput = output
    try? p.run()
    input.fileHandleForWriting.write(Data(text.utf8))
    try? input.fileHandleForWriting.close()
    let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return String(out.prefix(64))
  }
}
