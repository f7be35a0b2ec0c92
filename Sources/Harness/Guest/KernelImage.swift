import Glibc
import CLibELF

/// Checks on a built kernel before it boots.
enum KernelImage {
  /// Symbols that prove the kernel carries both series (DESIGN.md, "The guest").
  static let seriesSymbols = ["register_pfn_address_space", "dma_buf_phys_vec_to_sgt"]

  /// Throws an environment error naming what is missing unless `vmlinux` defines every symbol.
  static func checkSeries(vmlinux: String) throws(HarnessError) {
    let found = try findSymbols(seriesSymbols, in: vmlinux)
    let missing = zip(seriesSymbols, found).filter { !$0.1 }.map(\.0)
    guard missing.isEmpty else {
      throw .environment(
        "\(vmlinux) lacks \(missing.joined(separator: ", ")): this kernel does not carry the series under test (memory failure for PFNs without struct page: register_pfn_address_space; VFIO dma-buf export: dma_buf_phys_vec_to_sgt). Point --kernel-src at a tree with both series (Linux 7.3 or later).")
    }
  }

  /// Whether `path` defines each of `names`, read with libelf.
  static func findSymbols(_ names: [String], in path: String) throws(HarnessError) -> [Bool] {
    var found = [Int32](repeating: 0, count: names.count)
    let cNames = names.map { strdup($0) }
    defer { cNames.forEach { free($0) } }
    let ret = cNames.map { UnsafePointer($0) }.withUnsafeBufferPointer { namesBuf in
      found.withUnsafeMutableBufferPointer { foundBuf in
        harness_elf_find_symbols(path, namesBuf.baseAddress, Int32(names.count), foundBuf.baseAddress)
      }
    }
    switch ret {
    case 0: return found.map { $0 != 0 }
    case HARNESS_ELF_NO_LIBELF:
      throw .environment("libelf.so.1 not found (needed to read \(path)); install it: apt-get install libelf1")
    case HARNESS_ELF_NOT_ELF: throw .environment("\(path) is not an ELF file; rebuild the guest: harness vm build")
    case HARNESS_ELF_NO_SYMTAB:
      throw .environment("\(path) has no symbol table (stripped?); build the kernel with symbols")
    default:
      throw .environment("\(path): cannot open (\(String(cString: strerror(-ret)))); rebuild the guest: harness vm build")
    }
  }
}
