import EventCore

/// Waiting for an outcome on a real event loop, in tests: the condition is
/// checked on the loop every 10 ms until it holds or the time is up; no
/// test depends on a fixed sleep.
public enum LoopPolling {
    /// Polls `condition` on `loop` until it holds or `timeout` passes;
    /// returns whether it held.
    ///
    /// The time is counted in 10 ms polls, not read from the clock, as
    /// ``BoundedWait`` counts its own: while other tests' synchronous work
    /// holds every thread of the cooperative pool, this wait does not run,
    /// and a wait timed by the clock could end after a few polls of its
    /// window. Counted in polls, it checks `condition` `timeout` / 10 ms
    /// times, over at least `timeout` in all.
    public static func eventually(
        on loop: EventLoop, within timeout: Duration, _ condition: @escaping @Sendable () -> Bool
    ) async throws -> Bool {
        let poll = Duration.milliseconds(10)
        for _ in 0..<Int((timeout / poll).rounded(.up)) {
            if try await loop.submit(condition) { return true }
            try await Task.sleep(for: poll)
        }
        return try await loop.submit(condition)
    }
}
