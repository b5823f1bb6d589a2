/// The state machine's state as of one log position, standing in for every
/// entry up to and including it (Raft §7): a replica that holds a snapshot
/// needs no entry at or below ``index``.
///
/// Membership is fixed at group creation, so a snapshot carries only the
/// position and the user's bytes.
public struct RaftSnapshot: Hashable, Sendable {
    /// The last log index the state includes.
    public var index: UInt64
    /// The term of the entry at ``index``.
    public var term: UInt64
    /// The state machine's bytes (``RaftStateMachine/snapshot()``).
    public var data: [UInt8]

    /// Creates a snapshot.
    public init(index: UInt64, term: UInt64, data: [UInt8]) {
        self.index = index
        self.term = term
        self.data = data
    }
}
