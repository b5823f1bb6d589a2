/// A ``RaftStorage`` in memory: for tests and the simulator, where keeping
/// the same instance across a simulated crash and restart stands for a
/// durable store. Nothing survives the process.
public final class InMemoryRaftStorage: RaftStorage {
    /// The hard state last written.
    public private(set) var hardState = RaftHardState()
    private var log: [RaftEntry] = []

    /// Creates an empty storage.
    public init() {}

    /// Always 1: this storage does not compact.
    public var firstIndex: UInt64 { 1 }

    /// The index of the last entry (0 when empty).
    public var lastIndex: UInt64 { UInt64(log.count) }

    /// The term at `index` (0 for index 0); nil past the last entry.
    public func term(at index: UInt64) -> UInt64? {
        if index == 0 { return 0 }
        guard index <= lastIndex else { return nil }
        return log[Int(index - 1)].term
    }

    /// The entries `start ... end` clamped to what is held, at least one,
    /// then as many as fit in `maximumBytes`.
    public func entries(from start: UInt64, through end: UInt64, maximumBytes: Int) -> [RaftEntry] {
        let low = max(start, 1)
        let high = min(end, lastIndex)
        guard low <= high else { return [] }
        var result: [RaftEntry] = []
        var bytes = 0
        for position in Int(low - 1)...Int(high - 1) {
            let entry = log[position]
            if !result.isEmpty && bytes + entry.payloadSize > maximumBytes { break }
            bytes += entry.payloadSize
            result.append(entry)
        }
        return result
    }

    /// Replaces the entries from the first one's index on with `entries`.
    /// Cannot fail. Appending past `lastIndex + 1` (a gap) is a programming
    /// error of the caller and traps.
    public func append(_ entries: [RaftEntry]) throws {
        guard let first = entries.first else { return }
        precondition(first.index >= 1 && first.index <= lastIndex + 1,
                     "append at \(first.index) would leave a gap after \(lastIndex)")
        log.removeSubrange(Int(first.index - 1)...)
        log.append(contentsOf: entries)
    }

    /// Stores `state`. Cannot fail.
    public func setHardState(_ state: RaftHardState) throws {
        hardState = state
    }

    /// Every entry held, oldest first (for tests and inspection).
    public var allEntries: [RaftEntry] { log }
}
