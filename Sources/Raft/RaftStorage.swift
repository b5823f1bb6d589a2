/// Where a replica's log, hard state and latest snapshot are kept durably.
/// The driver writes to it (``persist(_:hardState:)`` from each
/// ``RaftReady``, before the ready's messages leave; ``saveSnapshot(_:)``
/// and ``compact(through:)`` when it snapshots or receives a snapshot);
/// the replica reads from it.
///
/// The log is the entries ``firstIndex`` ... ``lastIndex``. Entries before
/// ``firstIndex`` were compacted away into ``snapshot``; the term of the
/// entry just before ``firstIndex`` stays known, so that the entry after
/// it can still be checked (Raft §5.3, §7). A new storage has
/// `firstIndex == 1` and `lastIndex == 0`.
///
/// Reads do not throw: a store that cannot read what it has made durable
/// cannot take part in consensus, and should stop the process (a file
/// store reads everything it needs when it opens, and reports bad data
/// then). Writes throw, and a driver stops its node when one fails.
public protocol RaftStorage: AnyObject {
    /// The latest hard state persisted, its term and vote durable (a store
    /// may keep a change of the commit index alone for its next write; a
    /// new storage: term 0, no vote,
    /// commit index 0).
    var hardState: RaftHardState { get }
    /// The index of the first entry still held (1 until compaction).
    var firstIndex: UInt64 { get }
    /// The index of the last entry held (`firstIndex - 1` when the log is
    /// empty).
    var lastIndex: UInt64 { get }
    /// The latest snapshot saved, if any.
    var snapshot: RaftSnapshot? { get }
    /// The term of the entry at `index`, for `firstIndex - 1 ... lastIndex`
    /// (0 for index 0); nil outside that range.
    func term(at index: UInt64) -> UInt64?
    /// The entries from `start` through `end` (inclusive), in order, within
    /// `firstIndex ... lastIndex`: as many as fit in `maximumBytes` of
    /// commands, but always at least one when the range is not empty.
    func entries(from start: UInt64, through end: UInt64, maximumBytes: Int) -> [RaftEntry]
    /// Makes `entries` and `hardState` durable together (a file store: one
    /// write and one data sync, which is how many proposals share one
    /// fsync; a persist that starts a new segment syncs the new file and
    /// the directory). A store may keep a change of the commit index alone
    /// for its next write (the commit index can be learnt again; its term
    /// and vote never wait). The entries are contiguous; the first one's
    /// index is at most `lastIndex + 1`, and every entry held from that
    /// index on is replaced (a leader overwrote a divergent suffix, Raft
    /// §5.3). Either may be empty or nil.
    ///
    /// - Throws: whatever the store's I/O throws; the driver then stops.
    func persist(_ entries: [RaftEntry], hardState: RaftHardState?) throws
    /// Makes `snapshot` durable, replacing the previous one (its index is
    /// above the previous one's). If the log holds the entry at
    /// `snapshot.index` with `snapshot.term`, the entries stay (drop them
    /// with ``compact(through:)``); otherwise the log no longer matches the
    /// snapshot and is discarded whole: afterwards `firstIndex` is
    /// `snapshot.index + 1` and `lastIndex` is `snapshot.index`.
    ///
    /// - Throws: ``RaftStorageError`` `.invalidArgument` for a snapshot not
    ///   above the previous one (it would discard committed entries above
    ///   it); whatever the store's I/O throws; the driver then stops.
    func saveSnapshot(_ snapshot: RaftSnapshot) throws
    /// Lets the store drop the entries through `index`, which is at most the
    /// saved snapshot's index. A store may keep some of them (a file store
    /// deletes whole segments), so afterwards `firstIndex <= index + 1`.
    ///
    /// - Throws: whatever the store's I/O throws; the driver then stops.
    func compact(through index: UInt64) throws
}

extension RaftStorage {
    /// Saves a snapshot received from the leader, with the ready's term and
    /// vote (`hardState`: a new leader's term when the snapshot came with
    /// it) made durable first. Saved after, a crash between the two would
    /// leave a log holding the snapshot's term under an older current term,
    /// which a replica must never have. The commit index stays as stored.
    ///
    /// What ``RaftNode`` does with a ready's snapshot (the fuzz target's
    /// driver too).
    ///
    /// - Throws: as ``persist(_:hardState:)`` and ``saveSnapshot(_:)``.
    package func saveReceivedSnapshot(_ snapshot: RaftSnapshot, hardState: RaftHardState?) throws {
        let durable = self.hardState
        if let hardState, hardState.term != durable.term || hardState.votedFor != durable.votedFor {
            try persist(
                [], hardState: RaftHardState(term: hardState.term, votedFor: hardState.votedFor,
                                             commitIndex: durable.commitIndex))
        }
        try saveSnapshot(snapshot)
    }
}
