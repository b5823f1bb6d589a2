import EventCore

/// How long a message spends on a simulated link, drawn afresh for every
/// message (and for every duplicate) from the network's seeded generator.
public enum DelayDistribution: Hashable, Sendable {
    /// Every message takes exactly this long. Messages on one link then
    /// arrive in the order they were sent (unless reordering is configured).
    case constant(Duration)
    /// A delay drawn uniformly from `minimum ... maximum` (nanosecond
    /// resolution, both ends included). Messages on one link overtake each
    /// other when their draws differ by more than the gap between sends.
    case uniform(minimum: Duration, maximum: Duration)
    /// An exponentially distributed delay with the given mean, clamped to
    /// `maximum`: mostly short with a long tail, as on a congested path.
    case exponential(mean: Duration, maximum: Duration)

    /// Checks that every duration is zero or positive and that a uniform
    /// range is not inverted; `field` names this distribution in the error
    /// (`"delay"`, `"reorderDelay"`). Called by ``LinkConditions/validate()``.
    ///
    /// - Throws: ``ConfigurationError`` naming the first invalid
    ///   part (`"delay.minimum"`, ...) and its allowed range.
    func validate(field: String) throws(ConfigurationError) {
        switch self {
        case .constant(let delay):
            try Self.requireNonNegative(delay, field: field)
        case .uniform(let minimum, let maximum):
            try Self.requireNonNegative(minimum, field: field + ".minimum")
            guard maximum >= minimum else {
                throw ConfigurationError(
                    field: field + ".maximum", value: "\(maximum)",
                    allowedRange: "\(minimum) (the minimum) or more")
            }
        case .exponential(let mean, let maximum):
            try Self.requireNonNegative(mean, field: field + ".mean")
            try Self.requireNonNegative(maximum, field: field + ".maximum")
        }
    }

    private static func requireNonNegative(
        _ duration: Duration, field: String
    ) throws(ConfigurationError) {
        guard duration >= .zero else {
            throw ConfigurationError(
                field: field, value: "\(duration)", allowedRange: "0 seconds or more")
        }
    }
}
