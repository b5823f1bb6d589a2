#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EventCore

/// Lifeguard's dynamic suspicion timeout for one suspected member: it
/// starts long and shrinks, on a logarithmic curve, towards its minimum
/// as independent confirmations (other members suspecting the same
/// incarnation) arrive.
struct Suspicion {
    /// When the suspicion started here.
    let startedAt: Instant
    let minimum: Duration
    let maximum: Duration
    /// Confirmations that bring the timeout down to `minimum`.
    let neededConfirmations: Int
    /// The members that suspect it (the first included), at most
    /// `neededConfirmations + 1`.
    private(set) var suspecters: [NodeID]
    /// When the member is declared dead unless it refutes.
    private(set) var deadline: Instant

    init(by suspecter: NodeID, at now: Instant, minimum: Duration, maximum: Duration, neededConfirmations: Int) {
        startedAt = now
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
        self.neededConfirmations = neededConfirmations
        suspecters = [suspecter]
        deadline = now
        deadline = now + timeout
    }

    /// Independent confirmations so far.
    var confirmations: Int { suspecters.count - 1 }

    /// The timeout for the confirmations so far:
    /// `max(min, max − (max − min) · log(C + 1) / log(K + 1))`.
    var timeout: Duration {
        guard neededConfirmations > 0 else { return minimum }
        let fraction = log(Double(confirmations + 1)) / log(Double(neededConfirmations + 1))
        let span = Double((maximum - minimum).nanoseconds)
        let nanoseconds = Double(maximum.nanoseconds) - span * min(1, fraction)
        return max(minimum, .nanoseconds(Int64(nanoseconds)))
    }

    /// Records `suspecter`'s confirmation; false if it had already
    /// suspected, or enough confirmations are in.
    mutating func confirm(by suspecter: NodeID) -> Bool {
        guard suspecters.count <= neededConfirmations, !suspecters.contains(suspecter) else { return false }
        suspecters.append(suspecter)
        deadline = startedAt + timeout
        return true
    }
}
