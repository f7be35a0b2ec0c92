import Foundation

@testable import Harness

/// Paths of the package, for tests that read the corpus or run the built `harness`.
enum Paths {
  /// The package root (this file is Tests/HarnessTests/Support.swift).
  static let root: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
  }()

  /// The `harness` executable built next to the test bundle.
  static let harness: String = {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    return dir.appendingPathComponent("harness").path
  }()

  static var regressionFiles: [String] {
    let dir = root + "/Corpora/regression"
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    return names.filter { $0.hasSuffix(".seq") }.sorted().map { "Corpora/regression/" + $0 }
  }
}

/// Runs the built `harness` with `arguments` in `cwd`; returns status, stdout, stderr.
func runHarness(_ arguments: [String], cwd: String = Paths.root, environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: Paths.harness)
  p.arguments = arguments
  if !environment.isEmpty {
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
  }
  p.currentDirectoryURL = URL(fileURLWithPath: cwd)
  let out = Pipe()
  let err = Pipe()
  p.standardOutput = out
  p.standardError = err
  try p.run()
  let o = out.fileHandleForReading.readDataToEndOfFile()
  let e = err.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// Runs `argv` (a program and its arguments) with `environment` added; status, stdout, stderr.
func runTool(_ argv: [String], cwd: String = Paths.root, environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: argv[0])
  p.arguments = Array(argv.dropFirst())
  p.currentDirectoryURL = URL(fileURLWithPath: cwd)
  p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
  let out = Pipe()
  let err = Pipe()
  p.standardOutput = out
  p.standardError = err
  try p.run()
  let o = out.fileHandleForReading.readDataToEndOfFile()
  let e = err.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// Scratch kernel trees of the guest suites: git repositories made from Debian's extracted
/// source (hard-linked: a file a test changes is copied first), under `HARNESS_TEST_TREES`
/// (default `/tmp/harness-kernel-tests`), built in `HARNESS_TEST_TREE_CACHE` when set. Their
/// paths are stable, so a machine builds each cold once and later runs rebuild what changed.
enum KernelTestTree {
  static let root =
    ProcessInfo.processInfo.environment["HARNESS_TEST_TREES"].flatMap { $0.isEmpty ? nil : $0 }
    ?? "/tmp/harness-kernel-tests"

  static let environment: [String: String] =
    ProcessInfo.processInfo.environment["HARNESS_TEST_TREE_CACHE"].flatMap { $0.isEmpty ? nil : ["HARNESS_CACHE": $0] }
    ?? [:]

  /// Makes `root/name` from Debian's source, then runs `script` (sh) in it; its output.
  static func make(_ name: String, script: String) async throws -> String {
    _ = try await GuestFixture.artifacts()  // Debian's source, extracted
    let cache = ProcessInfo.processInfo.environment["HARNESS_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
      ?? NSHomeDirectory() + "/.cache/harness"
    let t = root + "/" + name
    let prefix = """
      set -e
      rm -rf '\(t)'
      mkdir -p "$(dirname '\(t)')"
      cp -al '\(cache)/src/linux-source-7.3' '\(t)'
      cd '\(t)'
      rm -f .harness-extracted
      # Debian's packaging .gitignore ignores the whole top level; upstream's does not.
      sed '/^# Debian packaging: ignore everything/,$d' .gitignore > .gitignore.new
      mv .gitignore.new .gitignore

      """
    let r = try runTool(["/bin/sh", "-c", prefix + script])
    guard r.status == 0 else { throw HarnessError.environment("making the test tree \(t) failed: \(r.err)") }
    return r.out
  }
}

/// A value shared with closures that may run on other threads (a campaign's guests).
final class Locked<Value>: @unchecked Sendable {
  private let lock = NSLock()
  private var stored: Value

  init(_ value: Value) { stored = value }

  var value: Value { lock.withLock { stored } }
  func update(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}

/// Starts the harness with `arguments` in the background, guests' run directories in `runDir`,
/// standard output to `out` and standard error to `err` (files; nothing when `nil`).
/// `guest`: a built guest to run as it is (`HARNESS_GUEST`), so that the harness does not wait
/// for the build lock another suite's kernel build may hold.
func startHarness(_ arguments: [String], runDir: String, guest: GuestArtifacts, out: String, err: String? = nil) throws -> Process {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: Paths.harness)
  p.arguments = arguments
  p.environment = ProcessInfo.processInfo.environment.merging(["HARNESS_RUN_DIR": runDir, "HARNESS_GUEST": guest.directory]) { $1 }
  p.currentDirectoryURL = URL(fileURLWithPath: Paths.root)
  FileManager.default.createFile(atPath: out, contents: nil)
  p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
  if let err {
    FileManager.default.createFile(atPath: err, contents: nil)
    p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
  } else {
    p.standardError = FileHandle.nullDevice
  }
  try p.run()
  return p
}

/// Waits `duration` without suspending the test. A test that watches a harness it started (to
/// stop or kill its QEMU at a moment) must keep its thread: other suites block the cooperative
/// pool's threads (two on a 2-core host) in `waitUntilExit` for minutes, and a watcher
/// suspended in `Task.sleep` resumes only when one frees up, often after the watched harness
/// has ended.
func hold(_ duration: Duration) {
  let (s, atto) = duration.components
  usleep(useconds_t(s * 1_000_000 + atto / 1_000_000_000_000))
}

/// The pid of a QEMU the harness process `harness` runs (its child; 0 when none runs).
func qemuPID(childOf harness: Int32) -> Int32 {
  let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
  for pid in entries.compactMap(Int32.init).sorted() {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")")
    else { continue }
    let command = stat[stat.index(after: open)..<close]
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    if command.hasPrefix("qemu-system"), fields.count > 1, fields[0] != "Z", Int32(fields[1]) == harness { return pid }
  }
  return 0
}
