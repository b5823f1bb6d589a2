/// What a member is believed to be, by the member holding the belief.
public enum MemberStatus: UInt8, Hashable, Sendable, CustomStringConvertible {
    /// Answering probes (or not yet found otherwise).
    case alive = 0
    /// Missed a probe, direct and indirect; declared dead unless it refutes
    /// before its suspicion times out.
    case suspect = 1
    /// Declared failed. Kept for ``SWIMConfiguration/deadMemberRetention``
    /// and retried, so it can come back with a higher incarnation.
    case dead = 2
    /// Left gracefully (said so before going): never taken for a failure.
    case left = 3

    /// Alive or suspect: still counted as a member.
    public var isActive: Bool { self == .alive || self == .suspect }

    /// `alive`, `suspect`, `dead` or `left`.
    public var description: String {
        switch self {
        case .alive: "alive"
        case .suspect: "suspect"
        case .dead: "dead"
        case .left: "left"
        }
    }
}
