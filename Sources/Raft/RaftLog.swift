/// A replica's view of its log: the durable entries in ``RaftStorage``,
/// then the unstable ones (appended here, not yet written by the driver),
/// with the commit and apply positions.
///
/// Unstable entries start at `unstableOffset`; where they overlap the
/// storage's entries (a follower's log was cut back by a new leader), they
/// take precedence until the driver's append replaces the stored ones.
/// Likewise a snapshot received from the leader (``pendingSnapshot``)
/// replaces the whole log at once, ahead of the driver saving it.
struct RaftLog {
    let storage: any RaftStorage
    private(set) var unstable: [RaftEntry] = []
    private(set) var unstableOffset: UInt64
    private(set) var committed: UInt64
    private(set) var applied: UInt64
    /// The last index handed out for applying (in a ready not yet
    /// advanced).
    private(set) var applying: UInt64
    /// A snapshot from the leader that replaced this log and that the
    /// driver has not yet saved: the log's base until it is.
    private(set) var pendingSnapshot: RaftSnapshot?

    init(storage: any RaftStorage, applied: UInt64) {
        self.storage = storage
        unstableOffset = storage.lastIndex + 1
        committed = max(min(storage.hardState.commitIndex, storage.lastIndex), storage.snapshot?.index ?? 0)
        self.applied = min(applied, committed)
        applying = self.applied
    }

    var firstIndex: UInt64 { pendingSnapshot.map { $0.index + 1 } ?? storage.firstIndex }

    var lastIndex: UInt64 { unstableOffset + UInt64(unstable.count) - 1 }

    var lastTerm: UInt64 { term(at: lastIndex) ?? 0 }

    /// The term at `index`, or nil if it is compacted or beyond the end.
    func term(at index: UInt64) -> UInt64? {
        if let snapshot = pendingSnapshot, index <= snapshot.index {
            return index == snapshot.index ? snapshot.term : nil
        }
        if index >= unstableOffset {
            let position = index - unstableOffset
            return position < UInt64(unstable.count) ? unstable[Int(position)].term : nil
        }
        return storage.term(at: index)
    }

    func matches(index: UInt64, term: UInt64) -> Bool {
        self.term(at: index) == term
    }

    /// Whether a log ending at (`index`, `term`) is at least as up to date
    /// as this one (Raft §5.4.1).
    func isUpToDate(lastIndex index: UInt64, lastTerm term: UInt64) -> Bool {
        term > lastTerm || (term == lastTerm && index >= lastIndex)
    }

    /// The entries `start ... end`, stopping once `maximumBytes` of
    /// commands or `maximumCount` entries are reached (but at least one).
    func entries(
        from start: UInt64, through end: UInt64, maximumBytes: Int, maximumCount: Int = .max
    ) -> [RaftEntry] {
        let end = min(end, lastIndex)
        guard start <= end, start >= firstIndex else { return [] }
        var result: [RaftEntry] = []
        var bytes = 0
        if start < unstableOffset {
            // The count bounds the read, not only its result: bounded by
            // bytes alone, a storage copied every entry of a run of empty
            // commands (a follower far behind: quadratic catch-up).
            let (countEnd, overflow) = start.addingReportingOverflow(UInt64(max(1, maximumCount)) - 1)
            let storedEnd = min(end, unstableOffset - 1, overflow ? .max : countEnd)
            result = storage.entries(from: start, through: storedEnd, maximumBytes: maximumBytes)
            bytes = result.reduce(0) { $0 + $1.payloadSize }
            guard let last = result.last, last.index == unstableOffset - 1 else { return result }
        }
        var index = max(start, unstableOffset)
        if index <= end { result.reserveCapacity(min(maximumCount, result.count + Int(end - index + 1))) }
        while index <= end && result.count < maximumCount {
            let entry = unstable[Int(index - unstableOffset)]
            if !result.isEmpty && bytes + entry.payloadSize > maximumBytes { break }
            bytes += entry.payloadSize
            result.append(entry)
            index += 1
        }
        return result
    }

    /// Appends `entry`, which follows on from the last entry (a leader's
    /// append: one proposal, no array to build).
    mutating func append(_ entry: RaftEntry) {
        precondition(entry.index == lastIndex + 1, "entry \(entry.index) does not follow \(lastIndex)")
        unstable.append(entry)
    }

    /// Appends entries that follow on from `entries[0].index - 1`,
    /// replacing whatever this log holds from that index on.
    mutating func append(_ entries: [RaftEntry]) {
        guard let first = entries.first else { return }
        let end = unstableOffset + UInt64(unstable.count)
        if first.index == end {
            unstable.append(contentsOf: entries)
        } else if first.index <= unstableOffset {
            unstableOffset = first.index
            unstable = entries
        } else {
            unstable.removeSubrange(Int(first.index - unstableOffset)...)
            unstable.append(contentsOf: entries)
        }
    }

    /// The index of the first of `entries` whose term differs from this
    /// log's (or that this log lacks), or nil if all are already here.
    func firstConflict(in entries: [RaftEntry]) -> Int? {
        entries.firstIndex { !matches(index: $0.index, term: $0.term) }
    }

    /// The first index of the run of entries of `term` that ends at `index`
    /// (for the rejection hint), going no lower than the commit index + 1.
    func firstIndex(ofTermAt index: UInt64) -> UInt64 {
        guard let term = term(at: index) else { return index }
        var first = index
        while first > committed + 1, first > firstIndex, self.term(at: first - 1) == term {
            first -= 1
        }
        return first
    }

    /// The last index at or below `index` whose term is `term`, if any
    /// (the leader's side of fast backtracking).
    func lastIndex(ofTerm term: UInt64, atOrBelow index: UInt64) -> UInt64? {
        var candidate = min(index, lastIndex)
        while candidate >= firstIndex, let found = self.term(at: candidate), found >= term {
            if found == term { return candidate }
            if candidate == 0 { break }
            candidate -= 1
        }
        return nil
    }

    mutating func commit(to index: UInt64) {
        if index > committed { committed = min(index, lastIndex) }
    }

    /// The committed entries not yet handed out for applying; marks them
    /// handed out.
    mutating func takeEntriesToApply() -> [RaftEntry] {
        guard committed > applying else { return [] }
        let entries = self.entries(from: applying + 1, through: committed, maximumBytes: .max)
        if let last = entries.last { applying = last.index }
        return entries
    }

    var hasEntriesToApply: Bool { committed > applying }

    /// The driver applied everything through `index`.
    mutating func applied(through index: UInt64) {
        applied = max(applied, min(index, applying))
    }

    /// Replaces the whole log with `snapshot` (from the leader; its index
    /// is above the commit index): everything through it is committed and,
    /// once the driver restored it, applied.
    mutating func restore(_ snapshot: RaftSnapshot) {
        pendingSnapshot = snapshot
        unstable = []
        unstableOffset = snapshot.index + 1
        committed = snapshot.index
        applying = snapshot.index
    }

    /// The driver saved `snapshot` to storage and restored the state
    /// machine from it.
    mutating func snapshotSaved(_ snapshot: RaftSnapshot) {
        applied = max(applied, snapshot.index)
        if pendingSnapshot?.index == snapshot.index { pendingSnapshot = nil }
    }

    /// The driver made the entries through (`index`, `term`) durable: drop
    /// them from the unstable part, unless they were replaced since.
    mutating func stable(through index: UInt64, term: UInt64) {
        guard index >= unstableOffset, matches(index: index, term: term) else { return }
        let count = Int(index - unstableOffset + 1)
        if count == unstable.count {
            // Usually all of them. The ready still shares the array: start
            // a new one of the same capacity rather than copy this one to
            // remove its elements.
            unstable.removeAll(keepingCapacity: true)
        } else {
            unstable.removeFirst(count)
        }
        unstableOffset = index + 1
    }
}
