import ArgumentParser
import Foundation
import Reference

/// `harness spec`: what the op spec (``OpKind``) says, and the files written from it.
struct Spec: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show the op spec, or write the agent's op table from it.",
    discussion: """
      Every op is described once (Sources/Reference/Vocabulary/OpSpec.swift): keyword, half, \
      contract items, where it runs, whether it completes later, and its fields. `list` prints \
      that table; `agent-header` writes VM/agent/ops.h, the agent's dispatch table (checked \
      in; a test fails when it is stale).

      Examples:
        harness spec list
        harness spec agent-header --output VM/agent/ops.h
      """,
    subcommands: [List.self, AgentHeader.self])

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print one line per op kind.")

    func run() {
      for k in OpKind.allCases {
        let s = k.spec
        var facts = [s.half.rawValue, "runs in \(s.placement.rawValue)", s.items.joined(separator: ",")]
        if s.isAsynchronous { facts.append("asynchronous") }
        if s.collectsSignals { facts.append("collects signals") }
        let fields = s.fields.map(\.name).joined(separator: " ")
        print("\(k) (\(s.keyword)): \(facts.joined(separator: "; ")); fields: \(fields.isEmpty ? "none" : fields)")
      }
    }
  }

  struct AgentHeader: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "agent-header", abstract: "Write the agent's op table (VM/agent/ops.h).")
    @Option(help: "Where to write it (default: standard output).") var output: String?

    func run() throws {
      guard let output else { return print(AgentOpsHeader.text, terminator: "") }
      do {
        try AgentOpsHeader.text.write(toFile: output, atomically: true, encoding: .utf8)
      } catch {
        throw HarnessError.environment("cannot write \(output): \(error.localizedDescription)")
      }
    }
  }
}
