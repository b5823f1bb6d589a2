/// A ``RaftStorage`` in memory: for tests and the simulator, where keeping
/// the same instance across a simulated crash and restart stands for a
/// durable store. Nothing survives the process.
public final class InMemoryRaftStorage: RaftStorage {
    /// The hard state last written.
    public private(set) var hardState = RaftHardState()
    /// The latest snapshot saved.
    public private(set) var snapshot: RaftSnapshot?
    /// The entries held; `log[0]` is at ``firstIndex``.
    private var log: [RaftEntry] = []
    /// The index and term of the entry just before ``firstIndex``.
    private var base: (index: UInt64, term: UInt64) = (0, 0)

    /// Creates an empty storage.
    public init() {}

    /// The first entry held (1 until a compaction).
    public var firstIndex: UInt64 { base.index + 1 }

    /// The index of the last entry (`firstIndex - 1` when empty).
    public var lastIndex: UInt64 { base.index + UInt64(log.count) }

    /// The term at `index`, for `firstIndex - 1 ... lastIndex`.
    public func term(at index: UInt64) -> UInt64? {
        if index == base.index { return base.term }
        guard index > base.index, index <= lastIndex else { return nil }
        return log[Int(index - firstIndex)].term
    }

    /// The entries `start ... end` clamped to what is held, at least one,
    /// then as many as fit in `maximumBytes`.
    public func entries(from start: UInt64, through end: UInt64, maximumBytes: Int) -> [RaftEntry] {
        let low = max(start, firstIndex)
        let high = min(end, lastIndex)
        guard low <= high else { return [] }
        var result: [RaftEntry] = []
        var bytes = 0
        for position in Int(low - firstIndex)...Int(high - firstIndex) {
            let entry = log[position]
            if !result.isEmpty && bytes + entry.payloadSize > maximumBytes { break }
            bytes += entry.payloadSize
            result.append(entry)
        }
        return result
    }

    /// Replaces the entries from the first one's index on with `entries`
    /// and stores `hardState`. Cannot fail. Appending past `lastIndex + 1`
    /// (a gap) or into the compacted part is a programming error of the
    /// caller and traps.
    public func persist(_ entries: [RaftEntry], hardState: RaftHardState?) throws {
        if let first = entries.first {
            precondition(first.index > base.index && first.index <= lastIndex + 1,
                         "append at \(first.index) outside \(firstIndex) ... \(lastIndex + 1)")
            log.removeSubrange(Int(first.index - firstIndex)...)
            log.append(contentsOf: entries)
        }
        if let hardState { self.hardState = hardState }
    }

    /// Keeps `snapshot`; discards the log if it does not hold the
    /// snapshot's last entry. Cannot fail.
    public func saveSnapshot(_ snapshot: RaftSnapshot) throws {
        self.snapshot = snapshot
        if term(at: snapshot.index) != snapshot.term {
            log = []
            base = (snapshot.index, snapshot.term)
        }
    }

    /// Drops the entries through `index` (at most the snapshot's index).
    public func compact(through index: UInt64) throws {
        let limit = min(index, snapshot?.index ?? 0, lastIndex)
        guard limit > base.index, let limitTerm = term(at: limit) else { return }
        log.removeFirst(Int(limit - base.index))
        base = (limit, limitTerm)
    }

    /// Every entry held, oldest first (for tests and inspection).
    public var allEntries: [RaftEntry] { log }
}
