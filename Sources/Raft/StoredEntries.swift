/// The entries a ``RaftStorage`` holds in memory and the index and term of
/// the entry just before them: the reads of the storage protocol and the
/// edits its writes make, shared by ``InMemoryRaftStorage`` and
/// ``FileRaftStorage`` so that both answer alike.
struct StoredEntries {
    /// The index and term of the entry just before ``firstIndex``.
    private(set) var base: (index: UInt64, term: UInt64) = (0, 0)
    /// The entries held; `log[0]` is at ``firstIndex``.
    private(set) var log: [RaftEntry] = []

    /// The first entry held.
    var firstIndex: UInt64 { base.index + 1 }

    /// The index of the last entry (`firstIndex - 1` when empty).
    var lastIndex: UInt64 { base.index + UInt64(log.count) }

    /// The term at `index`, for `firstIndex - 1 ... lastIndex`.
    func term(at index: UInt64) -> UInt64? {
        if index == base.index { return base.term }
        guard index > base.index, index <= lastIndex else { return nil }
        return log[Int(index - firstIndex)].term
    }

    /// The entries `start ... end` clamped to what is held, at least one,
    /// then as many as fit in `maximumBytes`.
    func entries(from start: UInt64, through end: UInt64, maximumBytes: Int) -> [RaftEntry] {
        let low = max(start, firstIndex)
        let high = min(end, lastIndex)
        guard low <= high else { return [] }
        var result: [RaftEntry] = []
        result.reserveCapacity(min(Int(high - low + 1), 1_024))
        var bytes = 0
        for position in Int(low - firstIndex)...Int(high - firstIndex) {
            let entry = log[position]
            if !result.isEmpty && bytes + entry.payloadSize > maximumBytes { break }
            bytes += entry.payloadSize
            result.append(entry)
        }
        return result
    }

    /// Whether `entries` can replace the suffix: numbered `n`, `n + 1`, ...
    /// with `firstIndex <= n <= lastIndex + 1` (empty is acceptable).
    func accepts(_ entries: [RaftEntry]) -> Bool {
        guard let first = entries.first?.index else { return true }
        guard first > base.index, first <= lastIndex + 1 else { return false }
        return entries.indices.allSatisfy { entries[$0].index == first &+ UInt64($0) }
    }

    /// Replaces the entries from the first one's index on with `entries`,
    /// which ``accepts(_:)``.
    mutating func replaceSuffix(with entries: [RaftEntry]) {
        guard let first = entries.first else { return }
        log.removeSubrange(Int(first.index - firstIndex)...)
        log.append(contentsOf: entries)
    }

    /// Drops the entries after `index` (`firstIndex - 1 ... lastIndex`).
    mutating func removeSuffix(after index: UInt64) {
        guard index >= base.index, index < lastIndex else { return }
        log.removeSubrange(Int(index - base.index)...)
    }

    /// Drops the entries through `index` (`firstIndex - 1 ... lastIndex`).
    mutating func removePrefix(through index: UInt64) {
        guard index > base.index, let term = term(at: index) else { return }
        log.removeFirst(Int(index - base.index))
        base = (index, term)
    }

    /// Discards every entry; the log continues after `index`, of `term`.
    mutating func reset(after index: UInt64, term: UInt64) {
        log = []
        base = (index, term)
    }
}
