/// Polling in tests with the time counted in polls, not read from the
/// clock. While other tests' synchronous work holds every thread of the
/// cooperative pool, a waiting task does not run, and a wait timed by the
/// clock ended at its first poll after such a stretch, before what it
/// waited for had run (a run on 2 cores failed so: a 10 s wait resumed
/// after 161 s). Counted in polls, a wait gives what it waits for
/// `timeout` of its own turns, at least `timeout` in all.
public enum CountedPolling {
    /// The first value `check` returns, asked every `interval`,
    /// `timeout` / `interval` times, then once more; nil if it never
    /// returned one.
    public static func first<Value>(
        every interval: Duration, within timeout: Duration, _ check: () async throws -> Value?
    ) async throws -> Value? {
        for _ in 0..<Int((timeout / interval).rounded(.up)) {
            if let value = try await check() { return value }
            try await Task.sleep(for: interval)
        }
        return try await check()
    }
}
