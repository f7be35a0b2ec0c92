import Foundation
import Glibc
import Subprocess
import SystemPackage

/// Host programs the guest needs, and how to get them.
enum HostTools {
  static func find(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
      let p = "\(dir)/\(name)"
      if access(p, X_OK) == 0 { return p }
    }
    return nil
  }

  /// The QEMU binary, or an environment error with the command that installs it.
  static func qemu() throws(HarnessError) -> String {
    guard let q = find("qemu-system-x86_64") else {
      throw .environment("qemu-system-x86_64 not found; install it: apt-get update && apt-get install -y qemu-system-x86 qemu-utils")
    }
    return q
  }

  /// Creates the small qcow2 drive that lets QEMU keep internal snapshots.
  static func createSnapshotDrive(at path: String) async throws {
    guard let img = find("qemu-img") else {
      throw HarnessError.environment("qemu-img not found; install it: apt-get update && apt-get install -y qemu-utils")
    }
    let r = try await Subprocess.run(
      .path(FilePath(img)), arguments: ["create", "-q", "-f", "qcow2", path, "64M"], output: .discarded,
      error: .string(limit: 4096))
    guard case .exited(0) = r.terminationStatus else {
      throw HarnessError.environment("qemu-img create \(path) failed: \(r.standardError)")
    }
  }
}
