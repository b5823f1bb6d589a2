/// Where a replica's log and hard state are kept durably. The driver writes
/// to it (``append(_:)`` and ``setHardState(_:)``, from each
/// ``RaftReady``) before the ready's messages leave; the replica reads
/// from it.
///
/// The log is the entries ``firstIndex`` ... ``lastIndex``. Entries before
/// ``firstIndex`` were compacted away (into a snapshot, later); the term of
/// the entry just before ``firstIndex`` stays known, so that the entry after
/// it can still be checked (Raft §5.3, §7). A new storage has
/// `firstIndex == 1` and `lastIndex == 0`.
///
/// Reads do not throw: a store that cannot read what it has made durable
/// cannot take part in consensus, and should stop the process. Writes
/// throw, and a driver stops its node when one fails.
public protocol RaftStorage: AnyObject {
    /// The hard state last written (a new storage: term 0, no vote,
    /// commit index 0).
    var hardState: RaftHardState { get }
    /// The index of the first entry still held (1 until compaction).
    var firstIndex: UInt64 { get }
    /// The index of the last entry held (`firstIndex - 1` when the log is
    /// empty).
    var lastIndex: UInt64 { get }
    /// The term of the entry at `index`, for `firstIndex - 1 ... lastIndex`
    /// (0 for index 0); nil outside that range.
    func term(at index: UInt64) -> UInt64?
    /// The entries from `start` through `end` (inclusive), in order, within
    /// `firstIndex ... lastIndex`: as many as fit in `maximumBytes` of
    /// commands, but always at least one when the range is not empty.
    func entries(from start: UInt64, through end: UInt64, maximumBytes: Int) -> [RaftEntry]
    /// Makes `entries` durable. They are contiguous; the first one's index
    /// is at most `lastIndex + 1`, and every entry held from that index on
    /// is replaced (a leader overwrote a divergent suffix, Raft §5.3).
    ///
    /// - Throws: whatever the store's I/O throws; the driver then stops.
    func append(_ entries: [RaftEntry]) throws
    /// Makes `state` durable.
    ///
    /// - Throws: whatever the store's I/O throws; the driver then stops.
    func setHardState(_ state: RaftHardState) throws
}
