/// A ``RaftStorage`` in memory: for tests and the simulator, where keeping
/// the same instance across a simulated crash and restart stands for a
/// durable store. Nothing survives the process.
///
/// Confined to one thread, as its node is; its hot fields skip the dynamic
/// exclusivity checks (no method of the store calls out while it accesses
/// them, so no access can overlap another).
public final class InMemoryRaftStorage: RaftStorage {
    /// The hard state last written.
    @exclusivity(unchecked) public private(set) var hardState = RaftHardState()
    /// The latest snapshot saved.
    public private(set) var snapshot: RaftSnapshot?
    @exclusivity(unchecked) private var stored = StoredEntries()

    /// Creates an empty storage.
    public init() {}

    /// The first entry held (1 until a compaction).
    public var firstIndex: UInt64 { stored.firstIndex }

    /// The index of the last entry (`firstIndex - 1` when empty).
    public var lastIndex: UInt64 { stored.lastIndex }

    /// The term at `index`, for `firstIndex - 1 ... lastIndex`.
    public func term(at index: UInt64) -> UInt64? { stored.term(at: index) }

    /// The entries `start ... end` clamped to what is held, at least one,
    /// then as many as fit in `maximumBytes`.
    public func entries(from start: UInt64, through end: UInt64, maximumBytes: Int) -> [RaftEntry] {
        stored.entries(from: start, through: end, maximumBytes: maximumBytes)
    }

    /// Replaces the entries from the first one's index on with `entries`
    /// and stores `hardState`. Cannot fail. Entries not numbered one after
    /// another, or appended past `lastIndex + 1` (a gap) or into the
    /// compacted part, are a programming error of the caller and trap.
    public func persist(_ entries: [RaftEntry], hardState: RaftHardState?) throws {
        precondition(stored.accepts(entries),
                     "append at \(entries.first?.index ?? 0) outside \(firstIndex) ... \(lastIndex + 1) or not contiguous")
        stored.replaceSuffix(with: entries)
        if let hardState { self.hardState = hardState }
    }

    /// Keeps `snapshot`; discards the log if it does not hold the
    /// snapshot's last entry. Throws ``RaftStorageError`` `.invalidArgument`
    /// for a snapshot not above the one held, and nothing else.
    public func saveSnapshot(_ snapshot: RaftSnapshot) throws {
        try RaftStorageError.checkFollows(snapshot, self.snapshot, file: "(in memory)")
        self.snapshot = snapshot
        if term(at: snapshot.index) != snapshot.term {
            stored.reset(after: snapshot.index, term: snapshot.term)
        }
    }

    /// Drops the entries through `index` (at most the snapshot's index).
    public func compact(through index: UInt64) throws {
        stored.removePrefix(through: min(index, snapshot?.index ?? 0, lastIndex))
    }

    /// Every entry held, oldest first (for tests and inspection).
    public var allEntries: [RaftEntry] { stored.log }
}
