import EventCore

/// What one phase of the CASPaxos demo did.
struct CASPaxosDemoPhase: Sendable {
    var oneRoundTrip: Bool
    var startedAt: Instant
    var issuingEndedAt: Instant?
    var endedAt: Instant?
    var increments = 0
    /// Per proposer: the increments its clients made.
    var incrementsByProposer: [Int]
    var latencies: [Duration] = []
    /// Increments that ended with an indeterminate error and were retried.
    var indeterminate = 0
    /// Increments that failed for certain (not applied: a conflict or
    /// timeout before any accept, no quorum, a value too large); the
    /// client moves on to its next increment.
    var definiteFailures = 0
    /// Increments still unresolved when the phase ended.
    var unresolved = 0
    var attempts = 0
    var oneRoundTripAttempts = 0
    var failedAttempts = 0
    var requestsSent = 0
    /// Datagrams the proposers sent and received (every CASPaxos message
    /// has a proposer at one end; a datagram carries every message of a
    /// loop turn to one destination).
    var datagrams = 0

    var name: String { oneRoundTrip ? "1RTT on" : "1RTT off" }
    /// Increments per second of issuing time.
    var rate: Double {
        let end = issuingEndedAt ?? endedAt ?? startedAt
        let seconds = Double((end - startedAt).nanoseconds) / 1e9
        return seconds > 0 ? Double(increments) / seconds : 0
    }
    /// The share of the increments that the busiest proposer's clients
    /// made (1 / proposers when they go through alike; on hot keys one
    /// proposer can starve the others).
    var busiestProposerShare: Double {
        increments == 0 ? 0 : Double(incrementsByProposer.max() ?? 0) / Double(increments)
    }
    var datagramsPerIncrement: Double { increments == 0 ? 0 : Double(datagrams) / Double(increments) }
    /// Request rounds (one request to each of the three acceptors) per
    /// increment.
    var roundTripsPerIncrement: Double { increments == 0 ? 0 : Double(requestsSent) / 3 / Double(increments) }
}

extension CASPaxosDemoPhase {
    /// Proposals started: every increment and every retry of one.
    var proposals: Int { increments + indeterminate + definiteFailures }
    /// Attempts beyond each proposal's first (after a conflict, a lost
    /// message or a stale cached ballot).
    var retries: Int { max(0, attempts - proposals) }
}
