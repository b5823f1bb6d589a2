/// The keys of an ``Acceptor``'s registers that hold a promise and have
/// accepted nothing, oldest first (by when each became so, or was last
/// promised again): what a full acceptor folds into its removal floor to
/// make room for a new key.
///
/// Such a register is what a prepare leaves when its accept never comes
/// (the proposer failed or gave up between its phases). Nothing else
/// removes it: garbage collection removes tombstones.
///
/// A dictionary of keys to their place in line, and the line itself as an
/// array read from `head`; a key removed or queued again leaves a stale
/// entry behind, skipped when it comes up and dropped when stale entries
/// outnumber live ones (so the line stays within twice the keys, plus a
/// constant, at amortized O(1) per change).
struct PromiseOnlyRegisters {
    private var places: [RegisterKey: UInt64] = [:]
    private var line: [(key: RegisterKey, place: UInt64)] = []
    private var head = 0
    private var nextPlace: UInt64 = 0

    /// Starts with `keys`, in byte order (the order of a recovered
    /// acceptor's oldest, which it no longer knows, chosen so that it is a
    /// function of the snapshot).
    init(_ keys: some Sequence<[UInt8]>) {
        for key in keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) { append(RegisterKey(key)) }
    }

    /// How many registers are listed (for tests, as ``storedEntries``).
    var count: Int { places.count }

    /// The entries the line holds, stale and read ones included: at most
    /// twice ``count`` plus 64 (for the tests of that bound).
    var storedEntries: Int { line.count }

    /// Lists `key` last (again, if listed).
    mutating func append(_ key: [UInt8]) {
        append(RegisterKey(key))
    }

    /// Takes `key` off the list, if listed.
    mutating func remove(_ key: [UInt8]) {
        places[RegisterKey(key)] = nil
        compactIfStale()
    }

    /// The oldest key listed; nil if none. (Mutating: the stale entries
    /// in front of it are passed for good.)
    mutating func oldest() -> RegisterKey? {
        while head < line.count {
            let (key, place) = line[head]
            if places[key] == place { return key }
            head += 1
        }
        return nil
    }

    /// Takes the oldest key off the list and returns it; nil if none.
    mutating func removeOldest() -> [UInt8]? {
        guard let key = oldest() else { return nil }
        head += 1
        places[key] = nil
        compactIfStale()
        return key.bytes
    }

    private mutating func append(_ key: RegisterKey) {
        places[key] = nextPlace
        line.append((key, nextPlace))
        nextPlace += 1
        compactIfStale()
    }

    /// Drops the stale entries (and those already read) once they
    /// outnumber the live ones.
    private mutating func compactIfStale() {
        guard line.count > 2 * places.count + 64 else { return }
        line = line[head...].filter { places[$0.key] == $0.place }
        head = 0
    }
}
