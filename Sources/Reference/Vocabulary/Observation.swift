/// The value an op returns.
package enum ResultValue: Hashable, Sendable {
  /// A non-negative return (0, a `prctl` answer, a pid or fd from the guest).
  case number(Int64)
  /// A failure: the op returned `-errno`.
  case error(Errno)
  /// A value the kernel chooses, named by the model (`$p1`, `$b2`).
  case symbol(Symbol)

  package static let zero = ResultValue.number(0)

  /// Whether the op succeeded (did not return `-errno`).
  package var isSuccess: Bool {
    if case .error = self { false } else { true }
  }
}

/// How a logical process ended.
package enum ProcessEnd: Hashable, Sendable {
  case exited(code: Int32)
  case killed(signal: Int32)
}

/// A DMA address in an sg table: concrete, or an offset from a symbolic IOVA base (C6.3).
package enum DMAAddress: Hashable, Sendable {
  case concrete(UInt64)
  case iova(Symbol, offset: UInt64)
}

/// One entry of an sg table: `dma_address` and `dma_length` (C6.5).
package struct SgEntry: Hashable, Sendable {
  package var address: DMAAddress
  package var length: UInt64
  package init(_ address: DMAAddress, _ length: UInt64) {
    self.address = address
    self.length = length
  }
}

/// A DMA scatter-gather table as the importer received it (C6.5, C7.7).
package struct SgTable: Hashable, Sendable {
  package var nents: Int
  package var origNents: Int
  package var entries: [SgEntry]
  package init(nents: Int, origNents: Int, entries: [SgEntry]) {
    self.nents = nents
    self.origNents = origNents
    self.entries = entries
  }
}

/// One thing the model predicts or the guest reports after an op (docs/contract.md section 8).
///
/// Both sides emit observations in canonical order (Corpora/README.md, "Observations"):
/// result, signals, process ends, memory-failure events, notifications, sg tables, fdinfo,
/// bufinfo, dma-buf trace records, guest failures.
package enum Observation: Hashable, Sendable {
  case result(ResultValue)
  /// A signal a thread received (its handler ran): signo, `si_code`, `si_addr`, `si_addr_lsb`.
  case signal(ThreadRef, signo: Int32, code: Int32, addr: UInt64, lsb: Int32)
  case processEnd(ProcessName, ProcessEnd)
  /// A `ras:memory_failure_event` record (C2.7).
  case memoryFailure(pfn: UInt64, type: Int, result: MFResult)
  /// Importer attachment's `invalidate_mappings` ran (C7.5).
  case notify(AttachmentName)
  /// What the importer saw of a notification or an unmap (``ImporterEvent``: C7.5, C6.7).
  case importer(AttachmentName, ImporterEvent)
  case sgTable(AttachmentName, SgTable)
  case fdinfo(BufName, size: UInt64, exporter: String)
  /// The buf's entry in debugfs `dma_buf/bufinfo` (C7.8): its size, exporter name and the
  /// importers of its attachments, by name, sorted (printed `-` for none).
  case bufinfo(BufName, size: UInt64, exporter: String, attached: [ImporterName])
  /// A `dma_buf:*` tracepoint record read by `dmabuf-trace` (C7.8), bufs and importers by name.
  case dmabufTrace(DmaBufTraceEvent)
  /// The guest failed: an oops, WARN, panic, hang, or an agent protocol error.
  case guestFailure(kind: String, detail: String)
  /// An observation the contract permits without requiring it (printed `sig? …`): the guest
  /// may or may not show it, and the differ accepts both. Only signals use it (C3.5: a
  /// later SIGBUS of the same walk arrives only if the thread handled the earlier one first).
  indirect case optional(Observation)

  /// The process a `processEnd` is about.
  package var endedProcess: ProcessName? {
    if case .processEnd(let p, _) = self { p } else { nil }
  }

  /// The observation itself, whether required or optional.
  package var required: Observation {
    if case .optional(let o) = self { o.required } else { self }
  }

  /// Rank of the observation's category in the canonical order.
  package var categoryRank: Int {
    switch self {
    case .result: 0
    case .signal: 1
    case .processEnd: 2
    case .memoryFailure: 3
    case .notify: 4
    case .importer: 4
    case .sgTable: 5
    case .fdinfo: 6
    case .bufinfo: 7
    case .dmabufTrace: 8
    case .guestFailure: 9
    case .optional(let o): o.categoryRank
    }
  }
}

/// What the shim's importer reports beside its notifications (printed `importer A …`, after the
/// attachment's `notify` lines).
package enum ImporterEvent: Hashable, Sendable {
  /// Mode `remap`: what mapping again inside the notification returned (`remap=-ENODEV`).
  case remap(ResultValue)
  /// Modes `delayed` and `never`: when the revoking op completed relative to the importer's
  /// unmap (`revoke=waited|blocked|early`).
  case revoke(RevokeCompletion)
  /// After an unmap whose table the shim could check through the importer's IOMMU domain: how
  /// many of its addresses still translate (`stale=N`, C6.7).
  case stale(Int)
}

/// When a revoking op completed, relative to an importer that unmaps late (C7.5), as symbols.
package enum RevokeCompletion: String, Hashable, Sendable, CaseIterable {
  /// After the importer unmapped (mode `delayed`).
  case waited
  /// After the importer unmapped, and still running at the deadline D, which the window W of mode
  /// `never` exceeds.
  case blocked
  /// Before the importer unmapped: the op did not wait.
  case early
}

/// A `dma_buf:*` tracepoint record (C7.8: export, fd, attach, detach), printed
/// `trace export B`, `trace fd B`, `trace attach B I dynamic=0|1`, `trace detach B I dynamic=0|1`.
/// The buf is named by its inode, the importer by its device; pointers, inodes, fds and pids
/// are not compared.
package enum DmaBufTraceEvent: Hashable, Sendable {
  case export(BufName)
  case fd(BufName)
  case attach(BufName, ImporterName, isDynamic: Bool)
  case detach(BufName, ImporterName, isDynamic: Bool)
}
