import Synchronization

/// Awaiting a task that a regression could leave waiting for ever, in
/// tests: the test must fail, not hang. A `.timeLimit` alone does not
/// end such a test: it records an issue, cancels the test's task, and
/// then waits on for a wait that cancellation does not end.
public enum BoundedWait {
    /// The value `task` returns, or nil if it has not returned within
    /// `timeout` (the task is left running), counted in 5 ms polls
    /// (``CountedPolling``).
    public static func value<Success: Sendable>(
        of task: Task<Success, Never>, within timeout: Duration = .seconds(10)
    ) async throws -> Success? {
        let outcome = Mutex<Success?>(nil)
        Task { () -> Void in
            let value = await task.value
            outcome.withLock { $0 = value }
        }
        return try await CountedPolling.first(every: .milliseconds(5), within: timeout) { outcome.withLock { $0 } }
    }
}
