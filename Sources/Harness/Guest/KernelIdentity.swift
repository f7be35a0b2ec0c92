import Foundation
import Glibc

/// Which kernel a report is about: where its source came from, how it was configured and
/// compiled, which QEMU ran it in which world, and which harness judged it.
///
/// `VM/build.sh` writes the kernel's part into the guest's `identity` file (`key=value` lines);
/// the harness adds QEMU's version and its own commit when it reads it, and the world when a
/// report is written. Every field is a fact about the run's inputs, never a clock or a host name,
/// so two runs of the same seeds on the same kernel write the same bytes, and two kernels that
/// differ in any input never render alike.
package struct KernelIdentity: Sendable, Equatable {
  /// The build's fields, in the file's order (`source_kind`, `debian_package`, `debian_version`,
  /// `tree`, `git_commit`, `git_describe`, `local_changes`, `tree_content`, `version`, `release`,
  /// `fragment_sha256`, `user_config_sha256`, `compiler`, `kernel_image_sha256`).
  package var fields: [(key: String, value: String)]
  /// `QEMU emulator version …`, or `none` (model only).
  package var qemu: String
  /// `git describe --always --dirty` of the harness, or `unknown`.
  package var harness: String
  /// The world (or worlds) the report covers.
  package var world: String

  package init(fields: [(key: String, value: String)], qemu: String, harness: String, world: String = "") {
    self.fields = fields
    self.qemu = qemu
    self.harness = harness
    self.world = world
  }

  package static func == (a: KernelIdentity, b: KernelIdentity) -> Bool {
    a.fields.map { "\($0.key)=\($0.value)" } == b.fields.map { "\($0.key)=\($0.value)" }
      && a.qemu == b.qemu && a.harness == b.harness && a.world == b.world
  }

  package subscript(_ key: String) -> String? { fields.first { $0.key == key }?.value }

  /// A run on the reference model alone: no kernel.
  package static func modelOnly(world: String) -> KernelIdentity {
    KernelIdentity(fields: [("source_kind", "none (the reference model alone)")], qemu: "none", harness: harnessCommit, world: world)
  }

  /// Parses an `identity` file's text (`key=value` lines; blank lines and `#` comments skipped).
  package static func parse(_ text: String, qemu: String, harness: String, world: String = "") -> KernelIdentity {
    var fields: [(key: String, value: String)] = []
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
      guard let eq = line.firstIndex(of: "=") else { continue }
      fields.append((String(line[..<eq]), String(line[line.index(after: eq)...])))
    }
    return KernelIdentity(fields: fields, qemu: qemu, harness: harness, world: world)
  }

  /// The identity of the guest built in `directory` (a guest built before identities existed
  /// says so rather than pass for another kernel).
  static func load(directory: String) -> KernelIdentity {
    let text =
      (try? String(contentsOfFile: directory + "/identity", encoding: .utf8))
      ?? "source_kind=unknown (guest \(directory) has no identity file)\n"
    return parse(text, qemu: qemuVersion, harness: harnessCommit)
  }

  /// This identity for `world`.
  package func inWorld(_ world: String) -> KernelIdentity {
    var i = self
    i.world = world
    return i
  }

  // MARK: Renderings

  /// Where the source came from, in one phrase: `Debian linux-source-7.3 7.3.4-1~bpo13+1`,
  /// `git /src/linux at 1a2b3c… (v7.3-rc1-12-g1a2b3c) with local changes 83edc5e8…`, or
  /// `tree /src/linux (7.3.0, content 5f…)`.
  package var source: String {
    if let series = self["series"] {
      return "series \(series) on \(self["series_base"] ?? "?")"
    }
    switch self["source_kind"] ?? "unknown" {
    case "debian":
      return "Debian \(self["debian_package"] ?? "?") \(self["debian_version"] ?? "?")"
    case "git":
      let changes = self["local_changes"] ?? "?"
      let describe = self["git_describe"].map { " (\($0))" } ?? ""
      return "git \(self["tree"] ?? "?") at \(self["git_commit"] ?? "?")\(describe), "
        + (changes == "clean" ? "no local changes" : "local changes \(changes)")
    case "tree":
      return "tree \(self["tree"] ?? "?") (\(self["version"] ?? "?"), content \(String((self["tree_content"] ?? "?").prefix(16))))"
    case let other:
      return other
    }
  }

  /// The config in one phrase: the fragment's hash, and the user's .config's when there is one
  /// (`digits` hex digits of each).
  package func config(digits: Int = 64) -> String {
    let fragment = "VM/harness.config \(String((self["fragment_sha256"] ?? "?").prefix(digits)))"
    guard let user = self["user_config_sha256"], user != "none" else { return fragment }
    return "--kernel-config \(String(user.prefix(digits))) + " + fragment
  }

  /// One line, for `finding.txt`'s `kernel:` key and the reproducer's header.
  package var line: String {
    if self["release"] == nil { return "\(source); harness \(harness)" }
    return "\(source), release \(self["release"] ?? "?"), config \(config()), \(self["compiler"] ?? "?"), "
      + "bzImage \(self["kernel_image_sha256"] ?? "?"), \(qemu), world \(world.isEmpty ? "-" : world), harness \(harness)"
  }

  /// The block of `summary.txt` and `diff.txt`: one `key: value` line each, under a heading.
  package var block: String {
    var out = "kernel under test:\n"
    out += "  source: \(source)\n"
    if let r = self["release"] { out += "  release: \(r)\n" }
    if self["fragment_sha256"] != nil { out += "  config: \(config())\n" }
    if let c = self["compiler"] { out += "  compiler: \(c)\n" }
    if let k = self["kernel_image_sha256"] { out += "  bzImage sha256: \(k)\n" }
    out += "  qemu: \(qemu)\n"
    if !world.isEmpty { out += "  world: \(world)\n" }
    out += "  harness: \(harness)\n"
    return out
  }

  /// A paragraph a reviewer can paste into a mail (the reproducer's header uses it).
  package var paragraph: String {
    if self["release"] == nil {
      return "This was seen on the harness's reference model alone (no kernel), harness \(harness)."
    }
    var p = "Kernel: \(source), release \(self["release"] ?? "?"), configured with \(config(digits: 16))"
    p += " and built with \(self["compiler"] ?? "?") (bzImage sha256 \(String((self["kernel_image_sha256"] ?? "?").prefix(16)))),"
    p += " run under \(qemu)"
    if !world.isEmpty { p += " in the harness world \(world)" }
    p += "; harness \(harness)."
    return p
  }

  /// The `identity` object of `summary.json`: every field, plus `qemu`, `harness`, `world` and
  /// the `source` phrase.
  package var json: [String: String] {
    var d = Dictionary(fields.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b })
    d["qemu"] = qemu
    d["harness"] = harness
    d["world"] = world
    d["source"] = source
    return d
  }

  // MARK: Host facts (read once per process)

  /// The first line of `qemu-system-x86_64 --version`, or `none` when QEMU is not installed.
  static let qemuVersion: String = {
    guard let q = HostTools.find("qemu-system-x86_64") else { return "none" }
    return firstLine(of: [q, "--version"]) ?? "unknown"
  }()

  /// `git describe --always --dirty` of the harness's own checkout, or `unknown`.
  static let harnessCommit: String = {
    guard let vm = try? GuestBuild.vmDirectory(), let git = HostTools.find("git") else { return "unknown" }
    let root = URL(fileURLWithPath: vm).deletingLastPathComponent().path
    return firstLine(of: [git, "-c", "safe.directory=*", "-C", root, "describe", "--always", "--dirty", "--abbrev=12"])
      ?? "unknown"
  }()

  private static func firstLine(of argv: [String]) -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: argv[0])
    p.arguments = Array(argv.dropFirst())
    var env = ProcessInfo.processInfo.environment
    env["GIT_OPTIONAL_LOCKS"] = "0"
    p.environment = env
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { return nil }
    let line = String(decoding: data, as: UTF8.self).split(separator: "\n").first.map(String.init)
    return line?.trimmingCharacters(in: .whitespaces)
  }
}
