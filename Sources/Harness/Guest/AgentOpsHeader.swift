import Reference

/// `VM/agent/ops.h`: the agent's op table, written from the op spec (``OpKind``).
///
/// One entry per op keyword: the keyword, its handler (`op_` and the keyword with `_` for `-`,
/// defined in `agent.c` for the memory-failure half and `dmabuf.c` for the dma-buf half), and
/// the flags the agent acts on. The file is checked in (the guest build needs no Swift);
/// `harness spec agent-header --output VM/agent/ops.h` rewrites it and a test fails when it is
/// stale. A keyword without a handler fails the agent's link.
enum AgentOpsHeader {
  /// Where the header lives, relative to the project's top directory.
  static let path = "VM/agent/ops.h"

  /// The C name of a keyword's handler: `inject-shim` gives `op_inject_shim`.
  static func handler(_ keyword: String) -> String {
    "op_" + keyword.replacingOccurrences(of: "-", with: "_")
  }

  /// One spec per keyword (the first kind of a shared keyword; the test checks that the kinds
  /// sharing one agree on every fact the table carries).
  static var entries: [(keyword: String, spec: OpSpec)] {
    var out: [(String, OpSpec)] = []
    for k in OpKind.allCases where !out.contains(where: { $0.0 == k.spec.keyword }) {
      out.append((k.spec.keyword, k.spec))
    }
    return out
  }

  static func flags(_ s: OpSpec) -> String {
    var f: [String] = []
    if s.collectsSignals { f.append("OP_COLLECT") }
    if s.isAsynchronous { f.append("OP_ASYNC") }
    if s.half == .dmaBuf { f.append("OP_DMABUF") }
    return f.isEmpty ? "0" : f.joined(separator: " | ")
  }

  static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

  /// The header's text.
  static var text: String {
    let entries = entries
    var out = """
      /* SPDX-License-Identifier: GPL-2.0-only */
      /*
       * The agent's op table: one entry per op keyword.
       *
       * Generated from the op spec (Sources/Reference/Vocabulary/OpSpec.swift) by
       * "harness spec agent-header --output" and this file's path: do not edit.
       * The harness's tests fail when this file is stale.  Each entry's comment says
       * where the op runs: host (QEMU's monitor, then the agent waits),
       * coordinator (the agent), process (the process's t0) or thread.
       */
      #ifndef HARNESS_AGENT_OPS_H
      #define HARNESS_AGENT_OPS_H

      struct agent;
      struct tokens;

      /* After the op every live thread reports its signal log (proc_sync). */
      #define OP_COLLECT\t(1U << 0)
      /* The op's effect comes later, from a kernel worker or a machine check. */
      #define OP_ASYNC\t(1U << 1)
      /* The dma-buf half (dmabuf.c); the others are in agent.c. */
      #define OP_DMABUF\t(1U << 2)

      /*
       * The map window (World.agentMapWindow, Sources/Reference/World): mremap
       * moves only inside it, so that it never replaces a process's own memory,
       * and madvise(MADV_HWPOISON) starts in it (harness rules: -EPERM).
       */
      #define MAP_WINDOW_FIRST\t\(hex(World.agentMapWindow.lowerBound))ULL
      #define MAP_WINDOW_LAST\t\t\(hex(World.agentMapWindow.upperBound))ULL

      struct agent_op {
      \tconst char *name;
      \tlong (*run)(struct agent *a, struct tokens *t);
      \tunsigned int flags;
      };


      """
    for half in [OpHalf.memoryFailure, .dmaBuf] {
      out += "/* The \(half.rawValue) half (\(half == .dmaBuf ? "dmabuf.c" : "agent.c")) */\n"
      for (keyword, spec) in entries where spec.half == half {
        out += "long \(handler(keyword))(struct agent *a, struct tokens *t);\n"
      }
      out += "\n"
    }
    out += "/* Only agent.c, which dispatches with it, uses the table. */\n"
    out += "static const struct agent_op agent_ops[] = {\n"
    for (keyword, spec) in entries {
      out += "\t/* \(keyword): \(spec.placement.rawValue) */\n"
      out += "\t{ \"\(keyword)\", \(handler(keyword)), \(flags(spec)) },\n"
    }
    out += "};\n\n#endif /* HARNESS_AGENT_OPS_H */\n"
    return out
  }
}
