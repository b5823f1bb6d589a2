#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Something that tells the current monotonic time.
///
/// Only drivers read a time source; protocol state machines are handed `now`.
/// Use ``SystemClock`` in production and ``ManualClock`` in tests.
public protocol TimeSource: Sendable {
    /// The current instant.
    var now: Instant { get }
}

/// The machine's monotonic clock (`CLOCK_MONOTONIC`).
public struct SystemClock: TimeSource {
    /// Creates the system clock.
    public init() {}

    /// The current `CLOCK_MONOTONIC` reading, in nanoseconds since boot.
    public var now: Instant {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Instant(nanoseconds: UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec))
    }
}

/// A clock that moves only when told to: for tests that must not sleep.
public final class ManualClock: TimeSource {
    private let current: Mutex<Instant>

    /// Creates a manual clock reading `start`.
    public init(start: Instant = .zero) {
        current = Mutex(start)
    }

    /// The instant the clock was last set to.
    public var now: Instant {
        current.withLock { $0 }
    }

    /// Moves the clock forward by `duration` (a negative duration is ignored:
    /// monotonic time never goes back).
    public func advance(by duration: Duration) {
        guard duration > .zero else { return }
        current.withLock { $0 = $0 + duration }
    }

    /// Sets the clock to `instant`, if that is not earlier than now.
    public func advance(to instant: Instant) {
        current.withLock { $0 = max($0, instant) }
    }
}
