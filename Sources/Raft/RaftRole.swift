/// The role a replica plays in its current term (Raft §5.1, with the
/// pre-candidate of the Raft thesis §9.6).
public enum RaftRole: Hashable, Sendable, CustomStringConvertible {
    /// Follows a leader (or waits for one); starts an election when no
    /// leader is heard from within the election timeout.
    case follower
    /// Asks the others whether they would vote for it, without raising its
    /// term (PreVote).
    case preCandidate
    /// Asks for votes in a new term.
    case candidate
    /// Replicates the log and decides what is committed.
    case leader

    /// The role's name (`leader`).
    public var description: String {
        switch self {
        case .follower: "follower"
        case .preCandidate: "pre-candidate"
        case .candidate: "candidate"
        case .leader: "leader"
        }
    }
}
