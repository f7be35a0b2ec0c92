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
