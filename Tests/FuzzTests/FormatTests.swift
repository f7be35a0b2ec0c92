
import Reference
import Testing

@testable import Fuzz

/// One of every op and observation, for round trips.
let everyOp: [Op] = {
  let p = ProcessName("p1")!
  let t = ThreadRef(p, 2)
  let x = DeviceName("x0")!
  let b = BufName("b1")!
  let a = AttachmentName("a1")!
  return [
    .spawn(p), .fork(t, child: ProcessName("p2")!), .threadCreate(t), .threadExit(t),
    .exit(p, code: 3), .mceKill(t, arg2: 1, arg3: 1), .mceKillGet(t), .sigbus(p, .handler),
    .sigbus(p, .ignore), .sigmask(t, blocked: true), .sigmask(t, blocked: false),
    .sysctlEarlyKill(-1), .mmap(p, addr: 0x1000_0000_0000, pages: 4, region: 2, pgoff: 0x10),
    .munmap(p, addr: 0x1000_0000_1000, pages: 1), .madviseDontFork(p, addr: 0x1000_0000_0000, pages: 2),
    .mprotect(p, addr: 0x1000_0000_0000, pages: 2, prot: .none), .mprotect(p, addr: 0x1000_0000_0000, pages: 2, prot: .rw),
    .mremap(p, addr: 0x1000_0000_0000, pages: 2, to: 0x1000_0010_0000),
    .madviseHWPoison(p, addr: 0x1000_0000_0000, pages: 2), .corruptPFN(pfn: 0xf8001), .mfLog, .hwCorrupted,
    .spaceCreate(SpaceName("s1")!, first: 0xf8000, last: 0xfbfff, callback: .strict),
    .spaceRegister(SpaceName("s1")!), .spaceUnregister(SpaceName("s1")!), .spaceDestroy(SpaceName("s1")!),
    .injectSysfs(t, pfn: 0xf8001), .injectShim(t, pfn: 0xf8001, flags: 0x20),
    .injectQueue(pfn: 0xf8001, flags: 0), .injectMCE(pfn: 0xf8002), .injectMCEAR(t, pfn: 0xf8003),
    .vfioOpen(x), .vfioClose(x),
    .vfioMemory(x, enabled: false), .vfioReset(x),
    .export(b, x, ExportRequest(region: 2, ranges: [DMARange(offset: 0, length: 0x1000)])),
    .export(
      b, x,
      ExportRequest(
        region: 7, ranges: [], feature: 0x4000b, argsz: 3, nrRanges: 9, flags: 2, openFlags: 0o4000)),
    .bufClose(b), .fdinfo(b), .attach(a, b, importer: ImporterName("i0")!, isDynamic: true),
    .attach(a, b, importer: ImporterName("i0")!, isDynamic: false), .map(a), .unmap(a), .detach(a),
    .vfioLowPowerEntry(x), .vfioLowPowerWakeup(x, wakeup: .eventfd), .vfioLowPowerWakeup(x, wakeup: .absent),
    .vfioLowPowerExit(x), .vfioConfig(x, offset: 0x44, width: 2, value: 0x3), .vfioHotReset(x), .vfioPower(x),
    .importerMode(a, .unmap), .importerMode(a, .remap), .importerMode(a, .delayed), .importerMode(a, .never),
    .ioasAlloc(IOASName("io1")!),
    .ioasMapFile(IOASMappingName("m1")!, IOASName("io1")!, b, start: 0, length: 0x1000, iova: nil),
    .ioasMapFile(IOASMappingName("m2")!, IOASName("io1")!, b, start: 0x1000, length: 0x2000, iova: 0x1_0000_0000),
    .ioasUnmap(IOASMappingName("m1")!), .ioasDevice(IOASName("io2")!, x),
    .mfRace(pfn: 0xf8001), .bufinfo(b), .dmabufTrace,
  ]
}()

let everyObservation: [Observation] = [
  .result(.zero), .result(.number(1234)), .result(.error(.invalid)), .result(.error(Errno(200))),
  .result(.symbol(Symbol("p1"))),
  .signal(ThreadRef(ProcessName("p1")!, 0), signo: 7, code: 4, addr: 0x1000_0000_1000, lsb: 12),
  .signal(ThreadRef(ProcessName("p1")!, 1), signo: 7, code: 5, addr: 0x1000, lsb: 12),
  .signal(ThreadRef(ProcessName("p1")!, 1), signo: 7, code: 128, addr: 0, lsb: 0),
  .optional(.signal(ThreadRef(ProcessName("p1")!, 0), signo: 7, code: 5, addr: 0x2000, lsb: 12)),
  .processEnd(ProcessName("p1")!, .exited(code: 0)), .processEnd(ProcessName("p2")!, .killed(signal: 7)),
  .memoryFailure(pfn: 0xf8001, type: 20, result: .recovered),
  .memoryFailure(pfn: 0xf8001, type: 20, result: .ignored), .notify(AttachmentName("a1")!),
  .importer(AttachmentName("a1")!, .remap(.error(.noDevice))), .importer(AttachmentName("a1")!, .remap(.zero)),
  .importer(AttachmentName("a1")!, .revoke(.waited)), .importer(AttachmentName("a1")!, .revoke(.blocked)),
  .importer(AttachmentName("a1")!, .revoke(.early)), .importer(AttachmentName("a2")!, .stale(0)),
  .importer(AttachmentName("a2")!, .stale(3)),
  .sgTable(
    AttachmentName("a1")!,
    SgTable(nents: 2, origNents: 0, entries: [
      SgEntry(.iova(Symbol("iova1"), offset: 0), 0xffff_f000), SgEntry(.concrete(0x8000), 0x1000),
    ])),
  .sgTable(AttachmentName("a2")!, SgTable(nents: 0, origNents: 0, entries: [])),
  .fdinfo(BufName("b1")!, size: 0x2000, exporter: "vfio_pci_core"),
  .bufinfo(BufName("b1")!, size: 0x2000, exporter: "vfio_pci_core", attached: []),
  .bufinfo(BufName("b1")!, size: 0x1000, exporter: "vfio_pci_core", attached: [ImporterName("i0")!, ImporterName("i1")!]),
  .dmabufTrace(.export(BufName("b1")!)), .dmabufTrace(.fd(BufName("b2")!)),
  .dmabufTrace(.attach(BufName("b1")!, ImporterName("i0")!, isDynamic: true)),
  .dmabufTrace(.detach(BufName("b1")!, ImporterName("i1")!, isDynamic: false)),
  .guestFailure(kind: "oops", detail: "BUG: \"x\"\\ at\nline"),
]

@Suite struct FormatTests {
  @Test(arguments: everyOp)
  func opRoundTrip(op: Op) throws {
    let text = SequenceFormat.print(op)
    #expect(try SequenceFormat.parseOp(text[...]) == op)
  }

  @Test(arguments: everyObservation)
  func observationRoundTrip(o: Observation) throws {
    let text = SequenceFormat.print(o)
    #expect(try SequenceFormat.parseObservation(text[...]) == o)
  }

  @Test func everyKindHasARoundTripCase() {
    #expect(Set(everyOp.map(\.kind)) == Set(OpKind.allCases))
  }

  /// An op's field values (what the parser, the printer and the input classes work on) make the
  /// same op again, one value per field of its spec.
  @Test(arguments: everyOp)
  func fieldValuesRoundTrip(op: Op) {
    #expect(op.fieldValues.count == op.kind.spec.fields.count)
    #expect(Op(op.kind, op.fieldValues) == op)
  }

  @Test func fileRoundTripIsExact() throws {
    let s = OpSequence(
      world: "mf", seed: 42,
      steps: everyOp.enumerated().map { i, op in
        OpSequence.Step(comments: i % 5 == 0 ? ["# step \(i)"] : [], op: op, expected: i % 2 == 0 ? [everyObservation[i % everyObservation.count]] : nil)
      },
      trailingComments: ["# the end"])
    let text = SequenceFormat.print(s)
    let parsed = try SequenceFormat.parse(text)
    #expect(parsed == s)
    #expect(SequenceFormat.print(parsed) == text)
  }

  @Test(arguments: 0..<200)
  func generatedSequencesRoundTrip(seed: Int) throws {
    let world = World.builtin[seed % World.builtin.count]
    let s = Generator.generate(world: world, seed: UInt64(seed), length: 40)
    let withObs = s.withExpectations(Machine.run(s.ops, in: world))
    let text = SequenceFormat.print(withObs)
    #expect(SequenceFormat.print(try SequenceFormat.parse(text)) == text)
  }

  /// Every error names line and column and says what was expected.
  @Test(arguments: [
    ("", 1, 1, "expected `harness-sequence 1`"),
    ("harness-sequence 2\nworld mf\n\n", 1, 18, "unsupported format version"),
    ("hello\n", 1, 1, "as the first line"),
    ("harness-sequence 1\n", 2, 1, "expected `world NAME`"),
    ("harness-sequence 1\nworld \n\n", 2, 7, "one world name"),
    ("harness-sequence 1\nworld mf\nseed x\n\n", 3, 6, "expected a seed"),
    ("harness-sequence 1\nworld mf\nspawn p1\n", 3, 1, "empty line ending the header"),
    ("harness-sequence 1\nworld mf\n\nfrobnicate p1\n", 4, 1, "unknown op `frobnicate`"),
    ("harness-sequence 1\nworld mf\n\nspawn P1\n", 4, 7, "expected a process name"),
    ("harness-sequence 1\nworld mf\n\nspawn\n", 4, 6, "expected a process name at the end"),
    ("harness-sequence 1\nworld mf\n\nspawn p1 p2\n", 4, 10, "unexpected `p2`"),
    ("harness-sequence 1\nworld mf\n\nspawn  p1\n", 4, 7, "one space"),
    ("harness-sequence 1\nworld mf\n\nmmap p1 addr=0x10 pages=x region=2 pgoff=0\n", 4, 25, "expected a non-negative number"),
    ("harness-sequence 1\nworld mf\n\nmmap p1 addr=0x10 region=2\n", 4, 19, "expected `pages=…`"),
    ("harness-sequence 1\nworld mf\n\nmmap p1 addr=0x10 pages=1 region=256 pgoff=0\n", 4, 34, "out of range"),
    ("harness-sequence 1\nworld mf\n\nprctl p1 mce-kill 1 1\n", 4, 7, "expected a thread"),
    ("harness-sequence 1\nworld mf\n\nprctl p1.t0 mce-kil 1 1\n", 4, 13, "expected `mce-kill` or `mce-kill-get`"),
    ("harness-sequence 1\nworld mf\n\nsigbus p1 maybe\n", 4, 11, "`handler`, `default` or `ignore`"),
    ("harness-sequence 1\nworld mf\n\nsigmask p1.t0 on\n", 4, 15, "`block` or `unblock`"),
    ("harness-sequence 1\nworld mf\n\nsysctl early-kill=abc\n", 4, 19, "expected an integer"),
    ("harness-sequence 1\nworld mf\n\nspace-create s1 first=1 last=2 callback=x\n", 4, 41, "`nvgrace`, `strict` or `none`"),
    ("harness-sequence 1\nworld mf\n\nexit p1 code=99999999999\n", 4, 14, "out of range for a 32-bit"),
    ("harness-sequence 1\nworld mf\n\nexport b1 x0 region=2 ranges=0x0+\n", 4, 30, "OFFSET+LENGTH"),
    ("harness-sequence 1\nworld mf\n\nexport b1 x0 region=2 ranges=none feature=0x10001\n", 4, 35, "feature index"),
    ("harness-sequence 1\nworld mf\n\n  = 0\n", 4, 1, "must follow an op line"),
    ("harness-sequence 1\nworld mf\n\nspawn p1\n   = 0\n", 5, 3, "one space"),
    ("harness-sequence 1\nworld mf\n\nspawn p1\n\n", 5, 1, "unexpected empty line"),
    ("harness-sequence 1\nworld mf\n\n spawn p1\n", 4, 1, "indented by exactly two spaces"),
    ("harness-sequence 1\nworld mf\n\nspawn p1\n  = maybe\n", 5, 5, "expected a number, an errno"),
    ("harness-sequence 1\nworld mf\n\nspawn p1\n  sig p1.t0 SIGFOO AO addr=0x0 lsb=12\n", 5, 13, "unknown signal"),
    ("harness-sequence 1\nworld mf\n\nspawn p1\n  mf pfn=0x1 type=20 result=fine\n", 5, 29, "`ignored`, `failed`"),
    ("harness-sequence 1\nworld mf\n\nspawn p1\n  sgt a1 nents=1 orig=0 0x1000\n", 5, 25, "ADDR/LEN"),
    ("harness-sequence 1\nworld mf\n\nspawn p1\n  failure oops unquoted\n", 5, 16, "double-quoted"),
    ("harness-sequence 1\nworld mf\n\nspawn p1\n  bogus\n", 5, 3, "unknown observation"),
    ("harness-sequence 1\nworld mf\n\nspawn p1\n  exit? p1 code=0\n", 5, 3, "only a signal or a notification can be optional"),
    ("harness-sequence 1\nworld mf\n\nspawn\tp1\n", 4, 6, "tab character"),
  ])
  func errors(text: String, line: Int, column: Int, message: String) {
    do {
      _ = try SequenceFormat.parse(text, file: "x.seq")
      Issue.record("parsed without error: \(text)")
    } catch {
      #expect(error.file == "x.seq")
      #expect(error.line == line, "\(error)")
      #expect(error.column == column, "\(error)")
      #expect(error.message.contains(message), "\(error)")
      #expect(error.description.hasPrefix("x.seq:\(line):\(column): error: "))
    }
  }
}
