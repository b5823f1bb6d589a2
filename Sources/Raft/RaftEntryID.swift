/// Where a proposal landed in the log: its index and the term of the leader
/// that appended it. The proposal took effect if and only if the entry
/// committed at ``index`` has this ``term``.
public struct RaftEntryID: Hashable, Sendable {
    /// The term of the entry.
    public var term: UInt64
    /// The log index of the entry.
    public var index: UInt64

    /// Creates an entry ID.
    public init(term: UInt64, index: UInt64) {
        self.term = term
        self.index = index
    }
}
