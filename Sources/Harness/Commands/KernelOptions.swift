import ArgumentParser
import Foundation
import Glibc

/// The kernel under test, the same on every command that builds or boots a guest (`fuzz`,
/// `replay`, `minimize`, `record`, `bench guest`, `bench build`, `vm build`, `vm shell`).
struct KernelOptions: ParsableArguments {
  @Option(
    name: .customLong("kernel-src"),
    help: ArgumentHelp(
      """
      Test this kernel tree instead of Debian's linux-source-7.3 (default: $HARNESS_KERNEL_SRC). \
      Any tree: a git checkout, dirty or with an in-tree build. Its files (tracked and untracked \
      but not ignored, as in the working tree) are synced by content into a snapshot in the \
      harness's cache and built there; the tree is only read. After an edit only what changed \
      is rebuilt.
      """, valueName: "DIR"))
  var kernelSrc: String?

  @Option(
    name: .customLong("kernel-config"),
    help: ArgumentHelp(
      """
      Start the kernel's configuration from this .config; VM/harness.config is merged on top of \
      it, so the fragment wins where both set a symbol, and a symbol set in neither is off.
      """, valueName: "FILE"))
  var kernelConfig: String?

  @Option(
    name: .customLong("series"),
    help: ArgumentHelp(
      """
      Test this patch series on --base: an mbox (git format-patch --stdout, or the .mbx file of \
      `b4 am MSGID`), one patch, or a directory of git format-patch files. Applied with \
      `git am -3` in a tree the harness owns; a patch that does not apply stops with the patch \
      and the conflicting files named (exit 2), nothing half-applied.
      """, valueName: "PATH"))
  var series: String?

  @Option(
    name: .customLong("base"),
    help: ArgumentHelp(
      """
      What --series applies to: a tree (a directory; a git repository's committed HEAD), or a \
      git ref of the --kernel-src repository. Default: the --kernel-src tree, else Debian's \
      linux-source-7.3.
      """, valueName: "DIR|REF"))
  var base: String?

  /// The tree: `--kernel-src`, else `HARNESS_KERNEL_SRC` when set and not empty.
  var source: String? {
    if let kernelSrc { return kernelSrc }
    if let env = ProcessInfo.processInfo.environment["HARNESS_KERNEL_SRC"], !env.isEmpty { return env }
    return nil
  }

  func validate() throws {
    var isDir: ObjCBool = false
    if let source, !FileManager.default.fileExists(atPath: source, isDirectory: &isDir) || !isDir.boolValue {
      let flag = kernelSrc != nil ? "--kernel-src" : "HARNESS_KERNEL_SRC"
      throw ValidationError("\(flag) \(source): no such directory; give the top of a Linux source tree")
    }
    if base != nil && series == nil {
      throw ValidationError("--base names what --series applies to: give --series PATH too")
    }
    if let base, !FileManager.default.fileExists(atPath: base), source == nil {
      throw ValidationError("--base \(base): no such directory; a git ref needs --kernel-src naming its repository")
    }
    if let kernelConfig {
      if let what = Self.notA(regularFile: true, kernelConfig) {
        throw ValidationError("--kernel-config \(kernelConfig): \(what); give a kernel .config")
      }
      guard FileManager.default.isReadableFile(atPath: kernelConfig) else {
        throw ValidationError("--kernel-config \(kernelConfig): not readable; give a kernel .config")
      }
    }
    // A FIFO or a device would be read for ever.
    if let series, let what = Self.notA(regularFile: false, series) {
      throw ValidationError("--series \(series): \(what); give an mbox, a patch or a directory of patches")
    }
  }

  /// What `path` is when it is not a regular file (nor, unless `regularFile`, a directory):
  /// `nil` when it is one.
  static func notA(regularFile: Bool, _ path: String) -> String? {
    var st = stat()
    guard stat(path, &st) == 0 else { return "no such file" }
    switch st.st_mode & S_IFMT {
    case S_IFREG: return nil
    case S_IFDIR: return regularFile ? "is a directory" : nil
    case S_IFIFO: return "is a FIFO, not a file"
    case S_IFCHR, S_IFBLK: return "is a device, not a file"
    default: return "is not a regular file"
    }
  }

  var request: GuestBuild.Request { GuestBuild.Request(source: source, config: kernelConfig) }

  /// Builds (or finds in the cache) the guest for this kernel: with --series, the series applied
  /// on its base first. `coverage`: the coverage flavour of it.
  /// `HARNESS_GUEST=DIR` instead: a guest built once and shipped to where this runs (deploy/); a
  /// coverage campaign needs it to be a coverage build (`VM/build.sh --coverage`).
  func build(coverage: Bool = false) async throws -> GuestArtifacts {
    if let guest = ProcessInfo.processInfo.environment["HARNESS_GUEST"], !guest.isEmpty {
      guard source == nil, series == nil, kernelConfig == nil else {
        throw HarnessError.usage(
          "HARNESS_GUEST=\(guest) names a built guest: not with --kernel-src, --series or --kernel-config (unset one)")
      }
      return try GuestBuild.prebuilt(guest)
    }
    var request = request
    request.coverage = coverage
    guard let series else { return try await GuestBuild.build(request) }
    let applied = try await KernelSeries(path: series, base: base ?? source, repository: source).apply(
      cache: GuestBuild.cacheDirectory,
      debianSource: {
        // Debian's source is extracted by the default build (a no-op once it is cached).
        _ = try await GuestBuild.build(GuestBuild.Request())
        return GuestBuild.cacheDirectory + "/src/linux-source-7.3"
      })
    var artifacts = try await GuestBuild.build(GuestBuild.Request(source: applied.tree, config: kernelConfig, coverage: coverage))
    artifacts.identity.fields += applied.fields
    return artifacts
  }
}
