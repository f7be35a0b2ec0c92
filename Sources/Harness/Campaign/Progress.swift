import Foundation
import Glibc

/// Progress on standard error: a rewritten line on a terminal, a plain line every 10% otherwise.
/// Never on standard output, so output stays byte-identical across runs.
final class Progress {
  private let total: Int
  private var done = 0
  private var ops = 0
  private let start = ContinuousClock.now
  private let isTTY = isatty(STDERR_FILENO) == 1
  private var lastPlain = -1

  init(total: Int) { self.total = total }

  func step(ops n: Int, verdicts: Int) {
    done += 1
    ops += n
    let elapsed = ContinuousClock.now - start
    let secs = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let rate = secs > 0 ? Int(Double(ops) / secs) : 0
    let line = "\(done)/\(total) sequences, \(rate) ops/s, \(verdicts) verdicts"
    if isTTY {
      FileHandle.standardError.write(Data(("\r" + line + "   ").utf8))
    } else if total >= 10, done * 10 / total != lastPlain {
      lastPlain = done * 10 / total
      FileHandle.standardError.write(Data((line + "\n").utf8))
    }
  }

  func finish() {
    if isTTY { FileHandle.standardError.write(Data("\n".utf8)) }
  }
}
