import Foundation
import Glibc
import Subprocess
import Synchronization
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

  /// How QEMU reads the snapshot drive: `io_uring` where the host kernel offers it, else
  /// `threads` (QEMU's default). `loadvm` reads the saved state in 32 KiB pieces; with the thread
  /// pool each piece is a hand-off between threads, and an idle `mf` guest's `loadvm` took 130 ms
  /// instead of 40 ms with io_uring. QEMU refuses to start with `aio=io_uring` where io_uring does
  /// not work, so this asks `qemu-io` first, once per process, on a drive made for that.
  /// `HARNESS_SNAPSHOT_AIO=threads|io_uring` overrides the probe (for comparisons).
  static func snapshotAIO(probing drive: String) async -> String {
    if let forced = ProcessInfo.processInfo.environment["HARNESS_SNAPSHOT_AIO"], !forced.isEmpty { return forced }
    if let known = probedAIO.withLock({ $0 }) { return known }
    var aio = "threads"
    if let io = find("qemu-io"),
      let r = try? await Subprocess.run(
        .path(FilePath(io)), arguments: ["-f", "qcow2", "--aio", "io_uring", "-c", "read 0 4k", drive],
        output: .discarded, error: .discarded),
      case .exited(0) = r.terminationStatus
    {
      aio = "io_uring"
    }
    probedAIO.withLock { $0 = aio }
    return aio
  }
  /// Guest suites boot guests concurrently: the probe's result is shared under a lock (two
  /// first callers may both probe; they find the same answer).
  private static let probedAIO = Mutex<String?>(nil)

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
