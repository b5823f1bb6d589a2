import EventCore

/// What the closed-loop clients of one run have seen so far: the
/// operations that ended, the latencies of those that succeeded, and the
/// longest of all.
/// Shared by ``ClosedLoopClients`` (CASPaxos) and ``RaftLoopbackClients``.
struct ClosedLoopTally {
    private(set) var outcome = CASPaxosRunOutcome()
    private var latencies: [Int64] = []
    private let operations: Int
    private let startedAt: Instant

    /// A tally of `operations` operations, the first issued at `start`.
    init(operations: Int, startingAt start: Instant) {
        self.operations = operations
        startedAt = start
        latencies.reserveCapacity(operations)
    }

    /// Counts an operation issued at `began` that ended at `now`; returns
    /// whether it was the last one, the outcome then complete but for the
    /// figures only the caller knows.
    mutating func end(succeeded: Bool, began: Instant, now: Instant) -> Bool {
        let latency = (now - began).nanoseconds
        outcome.maxNanoseconds = max(outcome.maxNanoseconds, Double(latency))
        if succeeded {
            outcome.succeeded += 1
            latencies.append(latency)
        } else {
            outcome.failed += 1
        }
        guard outcome.succeeded + outcome.failed == operations else { return false }
        outcome.seconds = Double((now - startedAt).nanoseconds) / 1e9
        latencies.sort()
        if !latencies.isEmpty { outcome.p99Nanoseconds = Double(latencies[(latencies.count - 1) * 99 / 100]) }
        return true
    }

    /// Counts a proposal that ended more than the allowed slack after its
    /// deadline.
    mutating func countOverrun() {
        outcome.overran += 1
    }
}
