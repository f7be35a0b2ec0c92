import Foundation
import Subprocess
import SystemPackage

/// Builds the guest with `VM/build.sh` (kernel, shim, agent, initramfs; cached by content).
enum GuestBuild {
  /// The kernel to build: Debian's source (`source == nil`) or a tree, and a base .config.
  struct Request: Sendable, Equatable {
    var source: String? = nil
    var config: String? = nil
    /// The coverage flavour (`VM/build.sh --coverage`): gcov on the series' files only, its own
    /// object directory and guest.
    var coverage = false

    var arguments: [String] {
      (source.map { ["--kernel-src", $0] } ?? []) + (config.map { ["--kernel-config", $0] } ?? [])
        + (coverage ? ["--coverage"] : [])
    }
  }

  /// Where `VM/build.sh` keeps its cache (`HARNESS_CACHE`, default `~/.cache/harness`).
  static var cacheDirectory: String {
    if let c = ProcessInfo.processInfo.environment["HARNESS_CACHE"], !c.isEmpty { return c }
    return NSHomeDirectory() + "/.cache/harness"
  }

  /// The project's `VM` directory: from the current directory, else next to the sources.
  static func vmDirectory() throws(HarnessError) -> String {
    let cwd = FileManager.default.currentDirectoryPath + "/VM"
    if FileManager.default.fileExists(atPath: cwd + "/build.sh") { return cwd }
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<4 { url.deleteLastPathComponent() }
    let src = url.path + "/VM"
    if FileManager.default.fileExists(atPath: src + "/build.sh") { return src }
    throw .environment("VM/build.sh not found: run harness from the project's top directory")
  }

  /// Runs the build (a no-op in seconds when nothing changed) and returns the artifacts,
  /// after checking that the kernel carries the series. Progress goes to standard error.
  /// `VM/build.sh` checks the host's packages first (QEMU included) and installs what is
  /// missing, or stops at once with the command that does (exit 3).
  static func build(kernelSource: String? = nil) async throws -> GuestArtifacts {
    try await build(Request(source: kernelSource))
  }

  static func build(_ request: Request, extraArguments: [String] = [], environment: [String: String] = [:]) async throws
    -> GuestArtifacts
  {
    let vm = try vmDirectory()
    let args = [vm + "/build.sh"] + request.arguments + extraArguments
    var env: Environment = .inherit
    if !environment.isEmpty {
      env = .inherit.updating(Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) }))
    }
    let config = Configuration(executable: .path("/bin/bash"), arguments: Arguments(args), environment: env)
    let result = try await Subprocess.run(
      config, input: .none, output: .string(limit: 1 << 20),
      error: .fileDescriptor(.standardError, closeAfterSpawningProcess: false))
    let out = result.standardOutput
    switch result.terminationStatus {
    case .exited(0): break
    case .exited(2):
      throw HarnessError(.usage, "the guest build refused its input (VM/build.sh exit 2); its message is above")
    case .exited(3):
      throw HarnessError(.environment, "the host lacks what the guest needs (VM/build.sh exit 3); the command that fixes it is above")
    default:
      throw HarnessError(.environment, "the guest build failed (VM/build.sh, \(result.terminationStatus)); its messages are above")
    }
    guard let line = out.split(separator: "\n").last(where: { $0.hasPrefix("guest: ") }) else {
      throw HarnessError(.internal, "VM/build.sh did not print `guest: DIR`")
    }
    let dir = String(line.dropFirst(7))
    let artifacts = GuestArtifacts(directory: dir, identity: KernelIdentity.load(directory: dir))
    try KernelImage.checkSeries(vmlinux: artifacts.vmlinux)
    return artifacts
  }

  /// A guest built elsewhere and shipped as it is (`HARNESS_GUEST=DIR`: a directory `VM/build.sh`
  /// printed as `guest: DIR`, copied whole): no build, no source, no cache. Its `identity` file
  /// names the kernel in every report, as when it was built here.
  static func prebuilt(_ dir: String) throws(HarnessError) -> GuestArtifacts {
    let artifacts = GuestArtifacts(directory: dir, identity: KernelIdentity.load(directory: dir))
    for file in [artifacts.bootKernel, artifacts.initramfs, artifacts.vmlinux, dir + "/identity"]
    where !FileManager.default.fileExists(atPath: file) {
      throw .usage("HARNESS_GUEST=\(dir): no \(URL(fileURLWithPath: file).lastPathComponent) there; give a directory VM/build.sh built (its last line, `guest: DIR`)")
    }
    try KernelImage.checkSeries(vmlinux: artifacts.vmlinux)
    return artifacts
  }
}
