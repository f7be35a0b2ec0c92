import ArgumentParser
import Foundation
import Glibc

/// `bench guest --baseline DIR`: the campaign rate of another build of the harness (a checkout
/// of the previous commit), measured side by side with this one's on the same host.
extension Bench.Guest {
  /// Another harness checkout, built, whose campaign runs as its own process (from its own
  /// directory, so that it builds and boots its own guest: its agent, its initramfs).
  struct Baseline {
    /// The checkout (its `VM/` is the one the baseline's guest is built from).
    var directory: String
    /// Its `harness` binary: `.build/release/harness`, else `.build/debug/harness`.
    var binary: String

    /// The checkout at `directory`, refused with the commands that make one when it has no
    /// built harness.
    init(_ directory: String) throws {
      let dir = URL(fileURLWithPath: directory).standardizedFileURL.path
      let fm = FileManager.default
      guard fm.fileExists(atPath: dir + "/VM/build.sh") else {
        throw ValidationError(
          "--baseline \(directory): no VM/build.sh there; give a checkout of the harness, e.g. "
            + "git worktree add --detach /tmp/harness-base main && (cd /tmp/harness-base && swift build -c release)")
      }
      guard let bin = [".build/release/harness", ".build/debug/harness"].map({ dir + "/" + $0 })
        .first(where: { fm.isExecutableFile(atPath: $0) })
      else {
        throw ValidationError("--baseline \(directory): no .build/release/harness; build it: (cd \(dir) && swift build -c release)")
      }
      self.directory = dir
      binary = bin
    }

    /// Runs the baseline's `bench guest` campaign (one boot and one op timed before it, as
    /// little as its options allow) with `arguments` (world, seeds, reset, jobs, kernel) and
    /// returns its rate in sequences per minute, read from the line it prints.
    func campaignRate(world: String, jobs: Int, arguments: [String]) throws -> Double {
      let p = Process()
      p.executableURL = URL(fileURLWithPath: binary)
      p.currentDirectoryURL = URL(fileURLWithPath: directory)
      p.arguments = ["bench", "guest", "--world", world, "--boots", "1", "--ops", "1", "--jobs", "\(jobs)"] + arguments
      // Its own guest: a guest shipped to this process (HARNESS_GUEST) was built from this
      // checkout's VM/, not the baseline's.
      var env = ProcessInfo.processInfo.environment
      env["HARNESS_GUEST"] = nil
      p.environment = env
      let out = Pipe()
      p.standardOutput = out
      try p.run()
      let data = out.fileHandleForReading.readDataToEndOfFile()
      p.waitUntilExit()
      let text = String(decoding: data, as: UTF8.self)
      let prefix = "\(world): campaign --jobs \(jobs) (--reset"
      guard p.terminationStatus == 0,
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) && $0.hasSuffix(" sequences/min") }),
        let rate = line.split(separator: " ").dropLast().last.flatMap({ Double($0) })
      else {
        throw HarnessError.environment(
          "--baseline: \(binary) bench guest exited with \(p.terminationStatus) and no line `\(prefix) …: N sequences/min`; its output:\n\(text)")
      }
      return rate
    }
  }

  /// The campaign of `world` on `jobs` guests, `pairs` times on the baseline and on this
  /// build, alternating (baseline first in odd pairs, this build first in even ones, so that a
  /// host whose load drifts weighs on both alike); prints each pair and the ratio of the sums.
  /// Returns this build's rates.
  func compareWithBaseline(
    _ baseline: Baseline, _ world: GuestWorld, _ artifacts: GuestArtifacts, jobs: Int, pairs: Int
  ) async throws -> [Double] {
    var arguments = ["--campaign", "\(campaign)", "--seed", "\(seed)", "--reset", reset.rawValue]
    if let s = kernel.kernelSrc { arguments += ["--kernel-src", s] }
    if let c = kernel.kernelConfig { arguments += ["--kernel-config", c] }
    if let s = kernel.series { arguments += ["--series", s] }
    if let b = kernel.base { arguments += ["--base", b] }
    var mine: [Double] = []
    var theirs: [Double] = []
    for pair in 1...pairs {
      let baselineFirst = pair % 2 == 1
      if baselineFirst { theirs.append(try baseline.campaignRate(world: world.name, jobs: jobs, arguments: arguments)) }
      mine.append(try await measureCampaign(world, artifacts, jobs: jobs))
      if !baselineFirst { theirs.append(try baseline.campaignRate(world: world.name, jobs: jobs, arguments: arguments)) }
      print(
        "\(world.name): campaign --jobs \(jobs) pair \(pair) of \(pairs) (\(baselineFirst ? "baseline first" : "this build first")): "
          + "baseline \(Int(theirs[pair - 1])), this build \(Int(mine[pair - 1])) sequences/min: "
          + String(format: "%.2fx", mine[pair - 1] / max(theirs[pair - 1], 1e-9)) + "; load \(Self.loadAverage)")
    }
    // Rates of equal campaigns: the mean rate is the sequences over the summed time only
    // through the harmonic mean.
    func harmonic(_ r: [Double]) -> Double { Double(r.count) / r.reduce(0) { $0 + 1 / max($1, 1e-9) } }
    print(
      "\(world.name): campaign --jobs \(jobs) against the baseline \(baseline.directory): "
        + "baseline \(Int(harmonic(theirs))), this build \(Int(harmonic(mine))) sequences/min over \(pairs) pair(s) "
        + "(all seeds over all time): " + String(format: "%.2fx", harmonic(mine) / max(harmonic(theirs), 1e-9))
        + "; pair by pair " + zip(mine, theirs).map { String(format: "%.2fx", $0 / max($1, 1e-9)) }.joined(separator: ", "))
    return mine
  }

  /// The host's load averages over 1, 5 and 15 minutes (`/proc/loadavg`).
  static var loadAverage: String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
    return text.split(separator: " ").prefix(3).joined(separator: " ")
  }
}
