import EventCore

/// The behaviour of a directed link of a ``SimulatedNetwork``: how long
/// messages take, and how often they are lost, duplicated or held back so
/// that later messages overtake them.
///
/// Every random choice is drawn from the network's seeded generator, so a
/// run replays exactly from its seed. Install conditions with
/// ``SimulatedNetwork/setDefaultConditions(_:)`` or
/// ``SimulatedNetwork/setConditions(_:from:to:)``, which validate them.
public struct LinkConditions: Hashable, Sendable {
    /// The time each message spends on the link. Default: a constant
    /// 1 millisecond.
    public var delay: DelayDistribution
    /// The probability, from 0 to 1, that a message is lost. Default 0.
    public var lossProbability: Double
    /// The probability, from 0 to 1, that a message that was not lost is
    /// delivered twice; the copy draws its own delay. Default 0.
    public var duplicateProbability: Double
    /// The probability, from 0 to 1, that a message is held back by an extra
    /// delay drawn from ``reorderDelay``, so that messages sent after it may
    /// arrive first. Default 0.
    public var reorderProbability: Double
    /// The extra delay of a held-back message (see ``reorderProbability``).
    /// Default: uniform from 0 to 10 milliseconds.
    public var reorderDelay: DelayDistribution

    /// Creates link conditions; the defaults describe a perfect link with a
    /// constant 1 ms delay.
    public init(
        delay: DelayDistribution = .constant(.milliseconds(1)),
        lossProbability: Double = 0,
        duplicateProbability: Double = 0,
        reorderProbability: Double = 0,
        reorderDelay: DelayDistribution = .uniform(minimum: .zero, maximum: .milliseconds(10))
    ) {
        self.delay = delay
        self.lossProbability = lossProbability
        self.duplicateProbability = duplicateProbability
        self.reorderProbability = reorderProbability
        self.reorderDelay = reorderDelay
    }

    /// Checks that the probabilities lie in `0 ... 1` and that the delays
    /// are valid: zero or more, with a uniform range's maximum not below its
    /// minimum.
    ///
    /// - Throws: ``ConfigurationError`` naming the first invalid
    ///   field (`"lossProbability"`, `"delay.maximum"`, ...) and its allowed
    ///   range.
    public func validate() throws(ConfigurationError) {
        try delay.validate(field: "delay")
        try Self.requireProbability(lossProbability, field: "lossProbability")
        try Self.requireProbability(duplicateProbability, field: "duplicateProbability")
        try Self.requireProbability(reorderProbability, field: "reorderProbability")
        try reorderDelay.validate(field: "reorderDelay")
    }

    private static func requireProbability(
        _ value: Double, field: String
    ) throws(ConfigurationError) {
        guard value >= 0, value <= 1 else {  // also rejects NaN
            throw ConfigurationError(
                field: field, value: "\(value)", allowedRange: "0 ... 1")
        }
    }
}
