/// How long a proposer's phases take to reach their quorum, smoothed as
/// TCP smooths its round-trip time: each sample moves the estimate an
/// eighth of the way to it. A ``Proposer`` sends an unanswered request
/// again no sooner than twice this (see
/// ``CASPaxosConfiguration/resendInterval``), so that on a slow link, or
/// with a loaded acceptor, copies do not go out before the answers could
/// have come.
struct RoundTripEstimate {
    /// The estimate, in nanoseconds; 0 before the first sample.
    private(set) var smoothed: UInt64 = 0

    /// Takes one phase's time to its quorum, in nanoseconds.
    mutating func record(_ sample: UInt64) {
        smoothed = smoothed == 0 ? sample : smoothed - smoothed / 8 + sample / 8
    }
}
