/// A point in monotonic time, in nanoseconds since an arbitrary origin
/// (the boot of the machine for ``SystemClock``, zero for ``ManualClock`` and
/// the simulator).
///
/// Protocol state machines never read a clock: every input carries the
/// `now: Instant` it happened at, and every machine reports the `Instant` at
/// which it next needs a tick.
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Nanoseconds since the clock's origin.
    public var nanoseconds: UInt64

    /// The clock's origin.
    public static let zero = Instant(nanoseconds: 0)

    /// The latest representable instant: "never".
    public static let distantFuture = Instant(nanoseconds: UInt64.max)

    /// Creates an instant `nanoseconds` after the clock's origin.
    public init(nanoseconds: UInt64) {
        self.nanoseconds = nanoseconds
    }

    /// Whether `lhs` is earlier than `rhs`.
    public static func < (lhs: Instant, rhs: Instant) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }

    /// The instant `duration` later (or earlier, for a negative duration),
    /// saturating at ``zero`` and ``distantFuture`` instead of overflowing.
    public static func + (lhs: Instant, rhs: Duration) -> Instant {
        let delta = rhs.nanoseconds
        if delta >= 0 {
            let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(UInt64(delta))
            return Instant(nanoseconds: overflow ? UInt64.max : sum)
        }
        let magnitude = delta.magnitude
        return Instant(nanoseconds: lhs.nanoseconds > magnitude ? lhs.nanoseconds - magnitude : 0)
    }

    /// The instant `duration` earlier, saturating at ``zero``.
    public static func - (lhs: Instant, rhs: Duration) -> Instant {
        lhs + (.zero - rhs)
    }

    /// The signed time from `rhs` to `lhs`.
    public static func - (lhs: Instant, rhs: Instant) -> Duration {
        if lhs >= rhs {
            return .nanoseconds(Int64(clamping: lhs.nanoseconds - rhs.nanoseconds))
        }
        return .zero - .nanoseconds(Int64(clamping: rhs.nanoseconds - lhs.nanoseconds))
    }

    /// The instant in seconds since the origin (`1.5s`).
    public var description: String {
        let seconds = Double(nanoseconds) / 1e9
        return "\(seconds)s"
    }
}

extension Duration {
    /// This duration as whole nanoseconds, clamped to the range of `Int64`
    /// (about ±292 years).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? Int64.min : Int64.max }
        let (total, overflow2) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds < 0 ? Int64.min : Int64.max }
        return total
    }
}
