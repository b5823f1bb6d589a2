import EventCore

/// Waiting for an outcome on a real event loop, in tests: the condition is
/// checked on the loop every 10 ms until it holds or the time is up; no
/// test depends on a fixed sleep.
public enum LoopPolling {
    /// Polls `condition` on `loop` until it holds or `timeout` passes,
    /// counted in 10 ms polls (``CountedPolling``); returns whether it held.
    public static func eventually(
        on loop: EventLoop, within timeout: Duration, _ condition: @escaping @Sendable () -> Bool
    ) async throws -> Bool {
        try await CountedPolling.first(every: .milliseconds(10), within: timeout) {
            try await loop.submit(condition) ? true : nil
        } ?? false
    }
}
