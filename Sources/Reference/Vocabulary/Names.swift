/// The kinds of objects a sequence names.
///
/// Every object in a sequence is named by the sequence (`p1`, `s1`, `b1`…), never by the
/// kernel; values the kernel chooses are ``Symbol``s.
package protocol NameKind: Sendable {
  /// The prefix the generator uses for fresh names of this kind (`p` gives `p1`, `p2`…).
  static var prefix: String { get }
}

package enum ProcessKind: NameKind { package static let prefix = "p" }
package enum SpaceKind: NameKind { package static let prefix = "s" }
package enum DeviceKind: NameKind { package static let prefix = "x" }
package enum ImporterKind: NameKind { package static let prefix = "i" }
package enum BufKind: NameKind { package static let prefix = "b" }
package enum AttachmentKind: NameKind { package static let prefix = "a" }
/// An IOAS of its own iommufd context (`ioas-alloc`).
package enum IOASKind: NameKind { package static let prefix = "io" }
/// A mapping of a dma-buf in an IOAS (`ioas-map-file`).
package enum IOASMappingKind: NameKind { package static let prefix = "m" }

/// A name of one kind of object: `p1` for a process, `s2` for a PFN-space object.
///
/// Invariant: `raw` is a non-empty run of lower-case letters, digits, `_` and `-`, starting with
/// a letter (so it never collides with numbers, symbols or the `.` of thread references).
package struct Name<Kind: NameKind>: Hashable, Comparable, Sendable, CustomStringConvertible {
  package let raw: String

  /// Creates a name; `nil` if `raw` is not a valid name.
  package init?(_ raw: String) {
    guard Self.isValid(raw) else { return nil }
    self.raw = raw
  }

  /// The generator's `n`-th name of this kind (`p1`, `p2`…).
  package init(index n: Int) { self.raw = Kind.prefix + String(n) }

  package var description: String { raw }

  package static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }

  package static func isValid(_ s: String) -> Bool {
    guard let first = s.utf8.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) else {
      return false
    }
    return s.utf8.allSatisfy { c in
      (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c)
        || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || c == UInt8(ascii: "_")
        || c == UInt8(ascii: "-")
    }
  }
}

package typealias ProcessName = Name<ProcessKind>
package typealias SpaceName = Name<SpaceKind>
package typealias DeviceName = Name<DeviceKind>
package typealias ImporterName = Name<ImporterKind>
package typealias BufName = Name<BufKind>
package typealias AttachmentName = Name<AttachmentKind>
package typealias IOASName = Name<IOASKind>
package typealias IOASMappingName = Name<IOASMappingKind>

/// A thread of a logical process: `p1.t0` is p1's first thread.
package struct ThreadRef: Hashable, Sendable, CustomStringConvertible {
  package var process: ProcessName
  /// The thread's index in its process; `t0` is the thread the process started with.
  package var index: Int

  package init(_ process: ProcessName, _ index: Int) {
    self.process = process
    self.index = index
  }

  package var description: String { "\(process).t\(index)" }
}

/// A value the kernel chooses (a pid, an fd, an IOVA base), named by the model.
///
/// The differ binds a symbol to the guest's value on first sight and requires every later use to
/// match (DESIGN.md, "Observations and the differ").
package struct Symbol: Hashable, Sendable, CustomStringConvertible {
  /// The name without the `$`: `p1`, `b2`, `iova3`.
  package var name: String
  package init(_ name: String) { self.name = name }
  package var description: String { "$" + name }
}
