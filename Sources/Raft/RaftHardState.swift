import EventCore

/// What a replica must have on durable storage before the messages of the
/// same ``RaftReady`` leave (Raft §5, Figure 2: currentTerm and votedFor,
/// plus the commit index so that a restart applies what was committed).
public struct RaftHardState: Hashable, Sendable {
    /// The latest term the replica has seen (0 before any election).
    public var term: UInt64
    /// The candidate the replica voted for in ``term``, if any.
    public var votedFor: NodeID?
    /// The highest log index known committed.
    public var commitIndex: UInt64

    /// Creates a hard state; the defaults are those of a new replica.
    public init(term: UInt64 = 0, votedFor: NodeID? = nil, commitIndex: UInt64 = 0) {
        self.term = term
        self.votedFor = votedFor
        self.commitIndex = commitIndex
    }
}
