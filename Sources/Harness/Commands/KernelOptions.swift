import ArgumentParser
import Foundation

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
    if let kernelConfig, !FileManager.default.isReadableFile(atPath: kernelConfig) {
      throw ValidationError("--kernel-config \(kernelConfig): no such file; give a kernel .config")
    }
  }

  var request: GuestBuild.Request { GuestBuild.Request(source: source, config: kernelConfig) }

  /// Builds (or finds in the cache) the guest for this kernel.
  func build() async throws -> GuestArtifacts { try await GuestBuild.build(request) }
}
