import Foundation
import Subprocess
import SystemPackage

/// Builds the guest with `VM/build.sh` (kernel, shim, agent, initramfs; cached by content).
enum GuestBuild {
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
  static func build(kernelSource: String? = nil) async throws -> GuestArtifacts {
    let vm = try vmDirectory()
    var args = [vm + "/build.sh"]
    if let kernelSource { args += ["--kernel-src", kernelSource] }
    let config = Configuration(executable: .path("/bin/bash"), arguments: Arguments(args))
    let result = try await Subprocess.run(
      config, input: .none, output: .string(limit: 1 << 20),
      error: .fileDescriptor(.standardError, closeAfterSpawningProcess: false))
    let out = result.standardOutput
    guard case .exited(let code) = result.terminationStatus, code == 0 else {
      throw HarnessError(.environment, "the guest build failed (VM/build.sh, \(result.terminationStatus)); its messages are above")
    }
    guard let line = out.split(separator: "\n").last(where: { $0.hasPrefix("guest: ") }) else {
      throw HarnessError(.internal, "VM/build.sh did not print `guest: DIR`")
    }
    let artifacts = GuestArtifacts(directory: String(line.dropFirst(7)))
    try KernelImage.checkSeries(vmlinux: artifacts.vmlinux)
    return artifacts
  }
}
