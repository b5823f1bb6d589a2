#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EventCore

/// ``LinkConditions`` compiled for the send path: delays in nanoseconds and
/// probabilities as integer thresholds, so a send costs a few integer
/// operations and no draw at all for a feature that is off.
struct LinkModel {
    /// The conditions this model was compiled from (already validated).
    let conditions: LinkConditions
    private let delay: DelaySampler
    private let reorderDelay: DelaySampler
    private let lossThreshold: UInt64
    private let duplicateThreshold: UInt64
    private let reorderThreshold: UInt64

    /// Compiles `conditions`, which the caller has validated.
    init(_ conditions: LinkConditions) {
        self.conditions = conditions
        delay = DelaySampler(conditions.delay)
        reorderDelay = DelaySampler(conditions.reorderDelay)
        lossThreshold = Self.threshold(conditions.lossProbability)
        duplicateThreshold = Self.threshold(conditions.duplicateProbability)
        reorderThreshold = Self.threshold(conditions.reorderProbability)
    }

    /// Whether the next message is lost.
    func drawLoss(_ random: inout SeededRandomGenerator) -> Bool {
        Self.draw(lossThreshold, &random)
    }

    /// Whether the next message (not lost) is also delivered a second time.
    func drawDuplicate(_ random: inout SeededRandomGenerator) -> Bool {
        Self.draw(duplicateThreshold, &random)
    }

    /// The time, in nanoseconds, one copy of a message spends on the link,
    /// including any reordering hold-back.
    func drawDelay(_ random: inout SeededRandomGenerator) -> UInt64 {
        let base = delay.draw(&random)
        guard Self.draw(reorderThreshold, &random) else { return base }
        let (sum, overflow) = base.addingReportingOverflow(reorderDelay.draw(&random))
        return overflow ? UInt64.max : sum
    }

    /// A probability as a threshold for 53-bit draws: `p` of the draws in
    /// `0 ..< 2^53` fall below it (1 gives 2^53: every draw).
    private static func threshold(_ probability: Double) -> UInt64 {
        UInt64((probability * 0x1p53).rounded())
    }

    private static func draw(_ threshold: UInt64, _ random: inout SeededRandomGenerator) -> Bool {
        threshold != 0 && random.next() >> 11 < threshold
    }
}

/// A ``DelayDistribution`` with its durations converted to nanoseconds.
private enum DelaySampler {
    case constant(UInt64)
    case uniform(minimum: UInt64, span: UInt64)
    case exponential(mean: Double, maximum: UInt64)

    init(_ distribution: DelayDistribution) {
        switch distribution {
        case .constant(let delay):
            self = .constant(UInt64(delay.nanoseconds))
        case .uniform(let minimum, let maximum):
            let low = UInt64(minimum.nanoseconds)
            self = .uniform(minimum: low, span: UInt64(maximum.nanoseconds) - low)
        case .exponential(let mean, let maximum):
            self = .exponential(mean: Double(mean.nanoseconds), maximum: UInt64(maximum.nanoseconds))
        }
    }

    func draw(_ random: inout SeededRandomGenerator) -> UInt64 {
        switch self {
        case .constant(let delay):
            return delay
        case .uniform(let minimum, let span):
            return span == 0 ? minimum : minimum + UInt64.random(in: 0...span, using: &random)
        case .exponential(let mean, let maximum):
            // u in (0, 1], so log(u) is finite and the sample is >= 0.
            let u = (Double(random.next() >> 11) + 1) * 0x1p-53
            let sample = -mean * log(u)
            return sample >= Double(maximum) ? maximum : UInt64(sample)
        }
    }
}
