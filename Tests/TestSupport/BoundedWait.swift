import Synchronization

/// Awaiting a task that a regression could leave waiting for ever, in
/// tests: the test must fail, not hang. A `.timeLimit` alone does not
/// end such a test: it records an issue, cancels the test's task, and
/// then waits on for a wait that cancellation does not end.
public enum BoundedWait {
    /// The value `task` returns, or nil if it has not returned within
    /// `timeout` (the task is left running).
    ///
    /// The time is counted in 5 ms polls, not read from the clock: while
    /// other tests' synchronous work holds every thread of the
    /// cooperative pool, neither `task` nor this wait runs, and a wait
    /// timed by the clock ended at its first poll after such a stretch,
    /// before `task` had run at all (a run on 2 cores failed so, its
    /// 10 s wait resumed after 161 s). Counted in polls, the wait gives
    /// `task` `timeout` of its own turns, at least `timeout` in all.
    public static func value<Success: Sendable>(
        of task: Task<Success, Never>, within timeout: Duration = .seconds(10)
    ) async throws -> Success? {
        let outcome = Mutex<Success?>(nil)
        Task { () -> Void in
            let value = await task.value
            outcome.withLock { $0 = value }
        }
        let poll = Duration.milliseconds(5)
        for _ in 0..<Int((timeout / poll).rounded(.up)) {
            if let value = outcome.withLock({ $0 }) { return value }
            try await Task.sleep(for: poll)
        }
        return outcome.withLock { $0 }
    }
}
