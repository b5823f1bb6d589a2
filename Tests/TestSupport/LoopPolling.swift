import EventCore

/// Waiting for an outcome on a real event loop, in tests: the condition is
/// checked on the loop every 10 ms until it holds or the time is up; no
/// test depends on a fixed sleep.
public enum LoopPolling {
    /// Polls `condition` on `loop` until it holds or `timeout` passes;
    /// returns whether it held.
    public static func eventually(
        on loop: EventLoop, within timeout: Duration, _ condition: @escaping @Sendable () -> Bool
    ) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await loop.submit(condition) { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return try await loop.submit(condition)
    }
}
