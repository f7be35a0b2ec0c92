import Foundation
import Fuzz
import Reference
import Testing

@testable import Harness

/// Reproducers of the ledger's entries compile as static C programs; out-of-scope sequences are
/// refused with the op that is out of scope.
@Suite struct ReproducerTests {
  static var findings: [String] {
    let dir = Paths.root + "/Corpora/findings"
    return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map { "\(dir)/\($0)/sequence.seq" }
  }

  @Test(arguments: findings)
  func compilesStatically(file: String) throws {
    let s = try Corpus.load(file)
    let header = try String(contentsOfFile: Paths.root + "/VM/shim/harness_shim.h", encoding: .utf8)
    let c = try Reproducer.generate(s, predicted: Machine.run(s.ops, in: .mf), shimHeader: header, source: file)
    #expect(c.contains("KTAP version 1"))
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("repro-\(UUID())").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try c.write(toFile: dir + "/repro.c", atomically: true, encoding: .utf8)
    let cc = Process()
    cc.executableURL = URL(fileURLWithPath: "/usr/bin/gcc")
    cc.arguments = ["-static", "-O2", "-Wall", "-Werror", "-o", dir + "/repro", dir + "/repro.c"]
    try cc.run()
    cc.waitUntilExit()
    #expect(cc.terminationStatus == 0, "\(file): repro.c does not compile")
  }

  @Test func refusesASecondProcess() throws {
    let s = try SequenceFormat.parse("harness-sequence 1\nworld mf\n\nspawn p1\nfork p1.t0 p2\n")
    #expect(throws: Reproducer.Unsupported.self) {
      _ = try Reproducer.generate(s, predicted: Machine.run(s.ops, in: .mf), shimHeader: "", source: "x")
    }
  }
}
