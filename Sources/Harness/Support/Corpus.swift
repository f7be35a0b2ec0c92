import Foundation
import Fuzz
import Reference

/// Reading and writing sequence files, with errors that name the file, line and fix.
package enum Corpus {
  /// Reads and parses a sequence file; a missing file or a parse error is a usage error.
  package static func load(_ path: String) throws(HarnessError) -> OpSequence {
    let text: String
    do {
      text = try String(contentsOfFile: path, encoding: .utf8)
    } catch {
      throw .usage("\(path): cannot read the sequence file (\(Self.reason(error))); check the path")
    }
    do {
      return try SequenceFormat.parse(text, file: path)
    } catch {
      throw .usage(error.description)
    }
  }

  /// The world a sequence names, or a usage error pointing at its `world` line.
  package static func world(of s: OpSequence, file: String) throws(HarnessError) -> World {
    guard let w = World.named(s.world) else {
      throw .usage(
        "\(file):2:7: error: unknown world `\(s.world)`; known worlds: \(World.builtin.map(\.name).joined(separator: ", "))"
      )
    }
    return w
  }

  /// Every `.seq` file under `directory`, sorted by path (deterministic order).
  package static func files(under directory: String) -> [String] {
    guard let e = FileManager.default.enumerator(atPath: directory) else { return [] }
    var out: [String] = []
    while let f = e.nextObject() as? String {
      if f.hasSuffix(".seq") { out.append(directory + "/" + f) }
    }
    return out.sorted()
  }

  /// Writes `contents` to `path` atomically (a temporary file renamed into place), creating
  /// parent directories.
  package static func writeAtomically(_ contents: String, to path: String) throws(HarnessError) {
    let url = URL(fileURLWithPath: path)
    do {
      try FileManager.default.createDirectory(
        at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try Data(contents.utf8).write(to: url, options: .atomic)
    } catch {
      throw .environment("\(path): cannot write (\(Self.reason(error))); check the directory's permissions and free space")
    }
  }

  static func reason(_ error: any Error) -> String {
    (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
  }
}
