/// The state machine's state as of one log position, standing in for every
/// entry up to and including it (Raft §7): a replica that holds a snapshot
/// needs no entry at or below ``index``.
///
/// It carries the group's membership as of ``index`` once a membership
/// change is at or below it (the log that held the change is compacted
/// away); nil while the group has the members it was created with.
public struct RaftSnapshot: Hashable, Sendable {
    /// The last log index the state includes.
    public var index: UInt64
    /// The term of the entry at ``index``.
    public var term: UInt64
    /// The group's members as of ``index``; nil for the members the group
    /// was created with (no change at or below ``index``).
    public var membership: RaftMembership?
    /// The state machine's bytes (``RaftStateMachine/snapshot()``).
    public var data: [UInt8]

    /// Creates a snapshot.
    public init(index: UInt64, term: UInt64, membership: RaftMembership? = nil, data: [UInt8]) {
        self.index = index
        self.term = term
        self.membership = membership
        self.data = data
    }
}
