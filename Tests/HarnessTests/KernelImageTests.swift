import Foundation
import Testing

@testable import Harness

/// The libelf symbol check that guards against booting a kernel without the series.
@Suite struct KernelImageTests {
  @Test func findsDefinedSymbolsAndReportsMissingOnes() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("elf-\(UUID())").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try "int register_pfn_address_space(void) { return 0; }\nextern int undefined_here(void);\nint user(void) { return undefined_here(); }\n"
      .write(toFile: dir + "/k.c", atomically: true, encoding: .utf8)
    let cc = Process()
    cc.executableURL = URL(fileURLWithPath: "/usr/bin/gcc")
    cc.arguments = ["-c", dir + "/k.c", "-o", dir + "/k.o"]
    try cc.run()
    cc.waitUntilExit()
    try #require(cc.terminationStatus == 0)
    let found = try KernelImage.findSymbols(
      ["register_pfn_address_space", "dma_buf_phys_vec_to_sgt", "undefined_here"], in: dir + "/k.o")
    // Defined: found; absent: not; referenced but undefined (SHN_UNDEF): not.
    #expect(found == [true, false, false])
    #expect(throws: HarnessError.self) { try KernelImage.checkSeries(vmlinux: dir + "/k.o") }
    do {
      try KernelImage.checkSeries(vmlinux: dir + "/k.o")
    } catch {
      #expect(error.status == .environment)
      #expect(error.message.contains("lacks dma_buf_phys_vec_to_sgt"))
    }
    #expect(throws: HarnessError.self) { try KernelImage.findSymbols(["x"], in: dir + "/k.c") }
    #expect(throws: HarnessError.self) { try KernelImage.findSymbols(["x"], in: dir + "/missing") }
  }
}
