import Foundation
import Glibc

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
}
