/// A fault forced on one message of a ``SimulatedNetwork`` by a
/// ``FaultSchedule``, in place of its link's random draws: the systematic
/// counterpart of ``LinkConditions``' loss, duplication and reordering.
public enum MessageFault: Hashable, Sendable, CustomStringConvertible {
    /// The message is lost (counted in
    /// ``SimulationStatistics/droppedByLoss``).
    case drop
    /// The message takes exactly this long instead of its link's delay, so
    /// that messages sent after it may arrive first (or, long, it arrives
    /// after the exchange it belonged to is over).
    case delay(Duration)
    /// The message arrives on time and a second copy arrives this long
    /// after it was sent (counted in ``SimulationStatistics/duplicated``).
    case duplicate(after: Duration)
    /// The sender crashes instead of sending the message (which is
    /// counted in ``SimulationStatistics/droppedByCrash``), as
    /// ``SimulatedNetwork/crash(_:)`` crashes it, and restarts this long
    /// after (``SimulatedNetwork/restart(_:)``, which runs its
    /// ``SimulatedNode/onRestart`` hook): a crash point in the middle of
    /// whatever exchange the message belonged to, wherever the message was
    /// going (reachable or not). The node can send nothing more, but the
    /// code that sent the message runs to the end of its turn: writes to
    /// a store the test keeps outside the node still happen unless the
    /// test fences the store from ``SimulatedNode/onCrash``.
    case crashSender(restartAfter: Duration)

    public var description: String {
        switch self {
        case .drop: "drop"
        case .delay(let delay): "delay \(delay)"
        case .duplicate(let after): "duplicate after \(after)"
        case .crashSender(let restartAfter): "crash the sender, restart after \(restartAfter)"
        }
    }
}
