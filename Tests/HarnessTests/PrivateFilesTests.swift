import Foundation
import Glibc
import Testing

@testable import Harness

/// Files the harness writes under a shared directory, and output paths the user gives: another
/// local user's directory or symbolic link in the way never redirects a write.
@Suite struct PrivateFilesTests {
  /// A shared directory like /tmp (sticky, world-writable) with a victim file elsewhere.
  private struct SharedDirectory {
    let base: String
    let victim: String
    init() throws {
      let root = try PrivateFiles.makeDirectory(in: NSTemporaryDirectory(), prefix: "harness-test-shared")
      base = root + "/tmp"
      mkdir(base, 0o777)
      chmod(base, 0o1777)
      victim = root + "/victim"
      try Data("precious\n".utf8).write(to: URL(fileURLWithPath: victim))
    }
    var victimText: String { (try? String(contentsOfFile: victim, encoding: .utf8)) ?? "<gone>" }
    func remove() { PrivateFiles.remove((base as NSString).deletingLastPathComponent) }
  }

  private static func mode(_ path: String) -> (type: mode_t, permissions: mode_t) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return (0, 0) }
    return (st.st_mode & S_IFMT, st.st_mode & 0o7777)
  }

  /// The attack of issue 17: the run directory's predictable names pre-created, as directories
  /// holding links to the victim under the names of the run's files, and as a link to a
  /// directory the attacker owns. A run directory is made, its files written as QEMU would:
  /// the victim is untouched, the run directory is new, 0700, and its files 0600.
  @Test func runDirectoryIgnoresWhatIsInItsPlace() throws {
    let shared = try SharedDirectory()
    defer { shared.remove() }
    let names = ["console.log", "qemu.stderr", "snap.qcow2", "ctl.sock", "mon.sock"]
    let attacker = shared.base + "/attacker"
    mkdir(attacker, 0o777)
    var planted: [String] = []
    for n in 1...4 {
      // Old scheme: harness-<pid>-<n>; and the prefix alone.
      for name in ["harness-\(getpid())-\(n)", "harness-\(n)", "harness"] {
        let dir = shared.base + "/" + name
        planted.append(dir)
        if n % 2 == 0 {
          symlink(attacker, dir)
        } else {
          mkdir(dir, 0o777)
          for f in names { symlink(shared.victim, dir + "/" + f) }
        }
      }
    }
    let old = umask(0)
    defer { umask(old) }
    var made: [String] = []
    for _ in 0..<8 {
      let run = try RunDirectory.create(in: shared.base)
      made.append(run.path)
      #expect(!planted.contains(run.path))
      #expect(Self.mode(run.path) == (S_IFDIR, 0o700))
      for f in [run.consolePath, run.qemuErrorPath, run.snapshotPath] {
        #expect(Self.mode(f) == (S_IFREG, 0o600), "\(f)")
        // Written the way QEMU writes them: opened, truncated.
        let fd = open(f, O_WRONLY | O_TRUNC)
        #expect(fd >= 0)
        _ = "guest memory".withCString { write(fd, $0, 12) }
        close(fd)
      }
    }
    #expect(Set(made).count == made.count, "a run directory was reused")
    #expect(shared.victimText == "precious\n")
    #expect(((try? FileManager.default.contentsOfDirectory(atPath: attacker)) ?? ["?"]).isEmpty)
    for m in made { RunDirectory(path: m).remove() }
  }

  /// A file of the run directory is never created through something already there.
  @Test func createFileRefusesALinkOrAFile() throws {
    let shared = try SharedDirectory()
    defer { shared.remove() }
    let link = shared.base + "/console.log"
    symlink(shared.victim, link)
    #expect(throws: HarnessError.self) { try PrivateFiles.createFile(link) }
    let dangling = shared.base + "/qemu.stderr"
    symlink(shared.base + "/nothing-yet", dangling)
    #expect(throws: HarnessError.self) { try PrivateFiles.createFile(dangling) }
    #expect(!FileManager.default.fileExists(atPath: shared.base + "/nothing-yet"))
    #expect(shared.victimText == "precious\n")
  }

  /// Output paths (`repro -o`, `minimize --output`, reports): a new or regular file is written,
  /// a device is written through and stays a device, anything else is refused and unchanged.
  @Test func outputPathsAreWrittenNotReplaced() throws {
    let shared = try SharedDirectory()
    defer { shared.remove() }
    // New, with parents; then replaced, keeping its mode.
    let new = shared.base + "/a/b/out.c"
    try Corpus.writeAtomically("one\n", to: new)
    #expect(try String(contentsOfFile: new, encoding: .utf8) == "one\n")
    chmod(new, 0o640)
    try Corpus.writeAtomically("two\n", to: new)
    #expect(try String(contentsOfFile: new, encoding: .utf8) == "two\n")
    #expect(Self.mode(new) == (S_IFREG, 0o640))
    // A character device: written through, still a device.
    try Corpus.writeAtomically("nothing\n", to: "/dev/null")
    #expect(Self.mode("/dev/null").type == S_IFCHR)
    // A FIFO: written through to its reader.
    let fifo = shared.base + "/fifo"
    mkfifo(fifo, 0o600)
    let reader = open(fifo, O_RDONLY | O_NONBLOCK)
    defer { close(reader) }
    try Corpus.writeAtomically("through\n", to: fifo)
    var buffer = [UInt8](repeating: 0, count: 64)
    let n = read(reader, &buffer, 64)
    #expect(n == 8 && Self.mode(fifo).type == S_IFIFO)
    // A directory, a link to a file, a dangling link: refused, each left as it was.
    let link = shared.base + "/link"
    symlink(shared.victim, link)
    let dangling = shared.base + "/dangling"
    symlink(shared.base + "/made-through-link", dangling)
    for (path, message) in [(shared.base + "/a", "is a directory"), (link, "is a symbolic link"), (dangling, "symbolic link")] {
      let before = Self.mode(path)
      #expect {
        try Corpus.writeAtomically("x\n", to: path)
      } throws: { error in
        (error as? HarnessError).map { $0.status == .usage && $0.message.contains(message) && $0.message.hasPrefix(path) } ?? false
      }
      #expect(Self.mode(path) == before)
    }
    #expect(shared.victimText == "precious\n")
    #expect(!FileManager.default.fileExists(atPath: shared.base + "/made-through-link"))
    // No temporary file is left beside the outputs.
    let left = (try? FileManager.default.contentsOfDirectory(atPath: shared.base + "/a/b")) ?? []
    #expect(left == ["out.c"])
  }

  /// The command line: `repro --output /dev/null` leaves /dev/null a device; a directory is
  /// refused with exit status 2 and a message naming it.
  @Test func reproOutputToADeviceOrADirectory() throws {
    let file = "Corpora/regression/" + (Paths.regressionFiles.first! as NSString).lastPathComponent
    let ok = try runHarness(["repro", file, "--output", "/dev/null"])
    #expect(ok.status == 0, "\(ok.err)")
    #expect(Self.mode("/dev/null").type == S_IFCHR)
    let dir = try PrivateFiles.makeDirectory(in: NSTemporaryDirectory(), prefix: "harness-test-out")
    defer { PrivateFiles.remove(dir) }
    let refused = try runHarness(["repro", file, "--output", dir])
    #expect(refused.status == 2, "\(refused.err)")
    #expect(refused.err.contains("\(dir): is a directory"), "\(refused.err)")
  }
}
