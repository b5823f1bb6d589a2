import EventCore
import Foundation

/// Something that happened in a demo, at an instant of its loop's clock.
struct DemoEvent: Sendable {
    var at: Instant
    var text: String
}

/// A demo's timeline as it prints: each line stamped with the seconds since
/// the demo's start. ``follow(for:every:poll:afterPoll:)`` polls the demo's
/// cluster (on its loop, through `poll`) and prints the events it has not
/// printed yet. Used by one task.
final class DemoTimeline {
    private let start: Instant
    /// Events printed so far: `poll` is given this, to return the rest.
    private var printed = 0

    init(start: Instant) {
        self.start = start
    }

    /// Prints `text`, stamped with `instant`.
    func say(_ instant: Instant, _ text: String) {
        print(String(format: "  %7.3f s  ", Double((instant - start).nanoseconds) / 1e9) + text)
    }

    /// Polls every `interval`, for at most `limit`, until the condition
    /// holds: `poll` gets how many events were printed and returns the
    /// events after them and whether the condition holds; they are printed,
    /// then `afterPoll` runs (a progress line, say). Returns whether the
    /// condition held.
    func follow(
        for limit: Duration, every interval: Duration,
        poll: (_ printed: Int) async throws -> (events: [DemoEvent], held: Bool),
        afterPoll: () -> Void = {}
    ) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while true {
            let (events, held) = try await poll(printed)
            printed += events.count
            for event in events { say(event.at, event.text) }
            afterPoll()
            if held { return true }
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: interval)
        }
    }
}
