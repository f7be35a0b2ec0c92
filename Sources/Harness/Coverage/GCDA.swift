import Foundation

/// The counts of one instrumented object, as the guest kernel's gcov-kernel writes them
/// (`kernel/gcov/gcc_4_7.c`, `convert_to_gcda()`): a header, then per function a function
/// record and its arc counters.
///
/// Invariant: `header` is 3 or 4 words starting with the magic `gcda`; every record's payload
/// has the length its header word says; a counter record carries 64-bit values (two words,
/// low first). Two files merge when they come from the same compilation (same header, same
/// records apart from the counter values): the counters add. Only arc counters are produced by
/// `-fprofile-arcs` without value profiling (what CFLAGS_GCOV asks for), and only they are
/// additive; a file with another counter kind is refused rather than merged wrongly.
struct GCDA: Equatable, Sendable {
  /// One record: its tag, the length word as written (words or, since GCC 12, bytes), and the
  /// payload words.
  struct Record: Equatable, Sendable {
    var tag: UInt32
    var length: UInt32
    var payload: [UInt32]
  }

  /// The corresponding gcc constant is `GCOV_DATA_MAGIC` (`"gcda"`).
  static let magic: UInt32 = 0x6763_6461
  /// `GCOV_TAG_FUNCTION`.
  static let functionTag: UInt32 = 0x0100_0000
  /// `GCOV_TAG_FOR_COUNTER(GCOV_COUNTER_ARCS)`: arc execution counts.
  static let arcsTag: UInt32 = 0x01a1_0000
  /// `GCOV_TAG_OBJECT_SUMMARY` (runs and the largest counter), in a program's files only.
  static let summaryTag: UInt32 = 0xa100_0000
  /// Counter tags are `0x01a10000 + (kind << 17)`.
  static func isCounter(_ tag: UInt32) -> Bool {
    tag >= arcsTag && tag < arcsTag + (16 << 17) && (tag - arcsTag) % (1 << 17) == 0
  }

  var header: [UInt32]
  var records: [Record]

  /// Errors reading or merging counts.
  struct FormatError: Error, CustomStringConvertible, Equatable {
    var description: String
  }

  /// Parses the bytes of a `.gcda` file written by gcov-kernel (the host's byte order: the
  /// guest is x86_64 as the host).
  init(_ data: Data) throws(FormatError) {
    guard data.count % 4 == 0, data.count >= 12 else {
      throw FormatError(description: "not a gcda file: \(data.count) bytes")
    }
    var words = [UInt32](repeating: 0, count: data.count / 4)
    _ = words.withUnsafeMutableBytes { data.copyBytes(to: $0) }
    guard words[0] == Self.magic else {
      throw FormatError(description: "not a gcda file: magic \(String(words[0], radix: 16))")
    }
    // GCC 12 added a checksum word after the stamp (gcov-kernel writes 0); the first record
    // of a file with functions is a function record.
    let headerWords = words.count > 3 && words[3] != Self.functionTag ? 4 : 3
    header = Array(words[0..<headerWords])
    records = []
    var i = headerWords
    // The unit of the length word: bytes since GCC 12 (a function record is 12), else words.
    var unit: UInt32 = 0
    while i < words.count {
      // A program's file ends in a zero word (the kernel's does not).
      if i + 1 == words.count, words[i] == 0 { break }
      guard i + 2 <= words.count else {
        throw FormatError(description: "record header cut short at word \(i)")
      }
      let tag = words[i]
      var length = words[i + 1]
      // GCC 12 writes a counter record whose counters are all zero as its negated length and
      // no payload (a program's files; the kernel's gcov writes them out): read as zeros.
      if Self.isCounter(tag), Int32(bitPattern: length) < 0, unit == 4 {
        length = UInt32(-Int64(Int32(bitPattern: length)))
        records.append(Record(tag: tag, length: length, payload: [UInt32](repeating: 0, count: Int(length / 4))))
        i += 2
        continue
      }
      if unit == 0, tag == Self.functionTag { unit = length == 12 ? 4 : 1 }
      // A program's (not the kernel's) object summary comes first: 2 words, or 8 bytes.
      if unit == 0, tag == Self.summaryTag { unit = length == 8 ? 4 : 1 }
      let n = Int(length / max(unit, 1))
      guard i + 2 + n <= words.count else {
        throw FormatError(
          description: "record \(String(tag, radix: 16)) at word \(i) runs past the end")
      }
      if Self.isCounter(tag), tag != Self.arcsTag {
        throw FormatError(
          description: "counter kind \(String(tag, radix: 16)) is not additive; cannot merge")
      }
      if tag == Self.arcsTag, n % 2 != 0 {
        throw FormatError(description: "odd arc counter record at word \(i)")
      }
      records.append(Record(tag: tag, length: length, payload: Array(words[(i + 2)..<(i + 2 + n)])))
      i += 2 + n
    }
  }

  /// The file's bytes.
  var data: Data {
    var words = header
    for r in records {
      words.append(r.tag)
      words.append(r.length)
      words += r.payload
    }
    return words.withUnsafeBytes { Data($0) }
  }

  /// Every arc counter, in file order.
  var arcCounts: [UInt64] {
    records.filter { $0.tag == Self.arcsTag }.flatMap { r in
      stride(from: 0, to: r.payload.count, by: 2).map {
        UInt64(r.payload[$0]) | UInt64(r.payload[$0 + 1]) << 32
      }
    }
  }

  /// `self` with `other`'s counts added: both must come from the same compilation.
  func adding(_ other: GCDA) throws(FormatError) -> GCDA {
    guard header == other.header else {
      throw FormatError(
        description: "different compilations (header \(hex(header)) against \(hex(other.header)))")
    }
    guard records.count == other.records.count else {
      throw FormatError(
        description:
          "different compilations (\(records.count) against \(other.records.count) records)")
    }
    var sum = self
    for (k, (a, b)) in zip(records, other.records).enumerated() {
      guard a.tag == b.tag, a.length == b.length else {
        throw FormatError(
          description:
            "different compilations (record \(k): tag \(hex([a.tag])) against \(hex([b.tag])))")
      }
      if a.tag == Self.arcsTag {
        for j in stride(from: 0, to: a.payload.count, by: 2) {
          let x = UInt64(a.payload[j]) | UInt64(a.payload[j + 1]) << 32
          let y = UInt64(b.payload[j]) | UInt64(b.payload[j + 1]) << 32
          let (s, overflow) = x.addingReportingOverflow(y)
          let v = overflow ? UInt64.max : s
          sum.records[k].payload[j] = UInt32(truncatingIfNeeded: v)
          sum.records[k].payload[j + 1] = UInt32(truncatingIfNeeded: v >> 32)
        }
      } else if a.payload != b.payload {
        throw FormatError(
          description: "different compilations (record \(k), tag \(hex([a.tag])), differs)")
      }
    }
    return sum
  }

  private func hex(_ w: [UInt32]) -> String {
    w.map { String($0, radix: 16) }.joined(separator: " ")
  }
}
