import Foundation

/// The seeds of a campaign handed out in order to the guests that run it.
final class SeedQueue: @unchecked Sendable {
  private let lock = NSLock()
  private let count: Int
  private var next = 0
  private var stopped = false
  private let shouldStop: @Sendable (Int) -> Bool
  /// How many seeds had been handed out when `shouldStop` said stop (`nil`: it never did).
  private(set) var stoppedAt: Int?

  init(count: Int, shouldStop: @escaping @Sendable (Int) -> Bool) {
    self.count = count
    self.shouldStop = shouldStop
  }

  /// The index of the next seed to run, `nil` when there is none or the campaign stopped.
  func take() -> Int? {
    lock.withLock {
      guard !stopped, next < count else { return nil }
      if shouldStop(next) {
        stopped = true
        stoppedAt = next
        return nil
      }
      next += 1
      return next - 1
    }
  }

  /// No seed is handed out after this.
  func stop() { lock.withLock { stopped = true } }
}

/// A guest's thread waiting until the campaign has taken the result it handed over.
final class Handoff: @unchecked Sendable {
  private let condition = NSCondition()
  private var pending = 0
  private var released = false

  /// Called by the guest's thread before it hands a result over.
  func willHand() { condition.withLock { pending += 1 } }

  /// Called by the guest's thread after handing a result over: returns once it is taken.
  func waitUntilTaken() {
    condition.withLock {
      while pending > 0 && !released { condition.wait() }
    }
  }

  /// The campaign took a result.
  func taken() {
    condition.withLock {
      pending = max(0, pending - 1)
      condition.broadcast()
    }
  }

  /// The campaign ended (an error): nobody waits any more.
  func release() {
    condition.withLock {
      released = true
      condition.broadcast()
    }
  }
}

/// A counter shared between threads.
final class Counter: @unchecked Sendable {
  private let lock = NSLock()
  private var value: Int

  init(_ value: Int) { self.value = value }

  func increment() -> Int { lock.withLock { value += 1; return value } }
  func decrement() -> Int { lock.withLock { value -= 1; return value } }
}

/// A task executor with a thread of its own: a guest's host side blocks on its sockets there,
/// not on one of the cooperative pool's threads (as many as cores), so any number of guests
/// make progress at once.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
  private let condition = NSCondition()
  private var jobs: [UnownedJob] = []
  private var stopped = false

  init(name: String) {
    let thread = Thread { [self] in loop() }
    thread.name = name
    thread.start()
  }

  func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    condition.withLock {
      jobs.append(job)
      condition.signal()
    }
  }

  /// Ends the thread once the jobs enqueued so far have run.
  func stop() {
    condition.withLock {
      stopped = true
      condition.signal()
    }
  }

  private func loop() {
    while true {
      condition.lock()
      while jobs.isEmpty && !stopped { condition.wait() }
      if jobs.isEmpty {
        condition.unlock()
        return
      }
      let job = jobs.removeFirst()
      condition.unlock()
      job.runSynchronously(on: asUnownedTaskExecutor())
    }
  }
}

/// Independent guest runs (a file each for `replay`, an entry each for `ledger check`) on up to
/// `jobs` threads at once, their results handed back in the items' order.
enum Parallel {
  /// Runs `body` on every item, up to `jobs` at a time, each on a thread of its own;
  /// `onResult(i, result)` is called in order of `i` as soon as the results before it are in.
  /// The first error thrown by `body` or `onResult` ends the run (items not started are not).
  static func forEach<Item: Sendable, Result: Sendable>(
    _ items: [Item], jobs: Int, _ body: @escaping @Sendable (Item) async throws -> Result,
    onResult: (Int, Result) throws -> Void
  ) async throws {
    let queue = SeedQueue(count: items.count) { _ in false }
    let (results, sink) = AsyncStream.makeStream(of: (Int, Result).self)
    let workers = max(1, min(jobs, items.count))
    let remaining = Counter(workers)
    try await withThrowingTaskGroup(of: Void.self) { group in
      for k in 0..<workers {
        group.addTask {
          let executor = ThreadExecutor(name: "guest-\(k)")
          defer {
            executor.stop()
            if remaining.decrement() == 0 { sink.finish() }
          }
          try await withTaskExecutorPreference(executor) {
            while !Task.isCancelled, let i = queue.take() {
              do {
                sink.yield((i, try await body(items[i])))
              } catch {
                queue.stop()
                throw error
              }
            }
          }
        }
      }
      var waiting: [Int: Result] = [:]
      var next = 0
      do {
        for await (i, r) in results {
          waiting[i] = r
          while let r = waiting.removeValue(forKey: next) {
            try onResult(next, r)
            next += 1
          }
        }
      } catch {
        queue.stop()
        group.cancelAll()
        throw error
      }
      try await group.waitForAll()
    }
  }
}
