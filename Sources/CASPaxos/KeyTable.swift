/// A ``Proposer``'s state per key, in one table, so that a proposal looks
/// its key up once when it starts and once when it ends: the proposal
/// running on the key, those queued behind it (proposals on one key run
/// one at a time), and the ballot cached for the one-round-trip path.
///
/// At most `maximumCached` ballots are cached; past it, the one cached
/// longest ago is dropped. The cached keys form a doubly linked list in
/// the order they were cached (nodes in one array, linked by index, each
/// entry knowing its node), so caching, taking and evicting are O(1) and
/// only an eviction hashes a key (the evicted one).
struct KeyTable {
    struct Entry {
        /// The running proposal, or 0.
        var running: UInt64 = 0
        var queued: [UInt64] = []
        var cached: CachedBallot?
        /// This key's node in the list of cached keys, while it has a
        /// cached ballot.
        var node: Int?

        var isIdle: Bool { running == 0 && queued.isEmpty && cached == nil }

        /// Runs `proposal` if none runs (returning true), or queues it.
        mutating func start(_ proposal: UInt64) -> Bool {
            guard running == 0 else {
                queued.append(proposal)
                return false
            }
            running = proposal
            return true
        }

        /// Takes the cached ballot out, with the node it had.
        mutating func takeCached() -> (cached: CachedBallot, node: Int?)? {
            guard let taken = cached else { return nil }
            cached = nil
            defer { node = nil }
            return (taken, node)
        }

        /// Caches `ballot`; returns the node the key had in the list.
        mutating func cache(_ ballot: CachedBallot) -> Int? {
            cached = ballot
            return node
        }

        /// `proposal` ended: returns the queued proposal that runs next.
        mutating func end(_ proposal: UInt64) -> UInt64? {
            guard running == proposal else {
                queued.removeAll { $0 == proposal }
                return nil
            }
            running = queued.isEmpty ? 0 : queued.removeFirst()
            return running == 0 ? nil : running
        }
    }

    /// A node of the list of cached keys.
    private struct Node {
        var key: RegisterKey
        var previous: Int?
        var next: Int?
    }

    private var entries: [RegisterKey: Entry] = [:]
    private var nodes: [Node] = []
    private var freeNodes: [Int] = []
    /// The least and the most recently cached keys' nodes.
    private var oldest: Int?
    private var newest: Int?
    private let maximumCached: Int
    /// Keys with a cached ballot.
    private(set) var cachedCount = 0

    init(maximumCached: Int) {
        self.maximumCached = maximumCached
    }

    /// Adds `proposal` on `key`: it runs if no proposal runs on the key
    /// (and takes the key's cached ballot, if any), or else waits behind
    /// the others.
    mutating func add(_ proposal: UInt64, key: [UInt8]) -> (runs: Bool, cached: CachedBallot?) {
        let key = RegisterKey(key)
        guard let index = entries.index(forKey: key) else {
            entries[key] = Entry(running: proposal)
            return (true, nil)
        }
        guard entries.values[index].start(proposal) else { return (false, nil) }
        return (true, take(at: index))
    }

    /// Takes the cached ballot of `key` out of the cache.
    mutating func takeCached(_ key: [UInt8]) -> CachedBallot? {
        guard let index = entries.index(forKey: RegisterKey(key)) else { return nil }
        return take(at: index)
    }

    /// Forgets the cached ballot of `key`.
    mutating func dropCached(_ key: [UInt8]) {
        guard let index = entries.index(forKey: RegisterKey(key)) else { return }
        _ = take(at: index)
        removeIfIdle(at: index)
    }

    /// `proposal` on `key` ended; with `caching`, the ballot and value it
    /// left promised are cached. Returns the proposal to run next on the
    /// key, if one was queued, with the cached ballot it takes.
    mutating func finish(
        _ proposal: UInt64, key: [UInt8], caching: CachedBallot?
    ) -> (next: UInt64, cached: CachedBallot?)? {
        let key = RegisterKey(key)
        guard let index = entries.index(forKey: key) else { return nil }
        if let caching {
            if let node = entries.values[index].cache(caching) {
                unlink(node)
                append(node)
            } else {
                let node = newNode(key)
                append(node)
                entries.values[index].node = node
            }
        }
        var next: (next: UInt64, cached: CachedBallot?)?
        if let queued = entries.values[index].end(proposal) { next = (queued, take(at: index)) }
        removeIfIdle(at: index)
        if cachedCount > maximumCached, let oldest, let evicted = entries.index(forKey: nodes[oldest].key) {
            _ = take(at: evicted)
            removeIfIdle(at: evicted)
        }
        return next
    }

    /// Forgets every cached ballot.
    mutating func removeAllCached() {
        entries = entries.filter { $0.value.running != 0 || !$0.value.queued.isEmpty }
        for index in entries.indices {
            entries.values[index].cached = nil
            entries.values[index].node = nil
        }
        nodes.removeAll()
        freeNodes.removeAll()
        oldest = nil
        newest = nil
        cachedCount = 0
    }

    private mutating func take(at index: Dictionary<RegisterKey, Entry>.Index) -> CachedBallot? {
        guard let (cached, node) = entries.values[index].takeCached() else { return nil }
        if let node {
            unlink(node)
            nodes[node].key = RegisterKey([])
            freeNodes.append(node)
        }
        return cached
    }

    private mutating func removeIfIdle(at index: Dictionary<RegisterKey, Entry>.Index) {
        if entries.values[index].isIdle { entries.remove(at: index) }
    }

    // MARK: The list of cached keys

    private mutating func newNode(_ key: RegisterKey) -> Int {
        let node = Node(key: key, previous: nil, next: nil)
        if let free = freeNodes.popLast() {
            nodes[free] = node
            return free
        }
        nodes.append(node)
        return nodes.count - 1
    }

    /// Links `node` in as the newest.
    private mutating func append(_ node: Int) {
        nodes[node].previous = newest
        nodes[node].next = nil
        if let newest { nodes[newest].next = node } else { oldest = node }
        newest = node
        cachedCount += 1
    }

    private mutating func unlink(_ node: Int) {
        let (previous, next) = (nodes[node].previous, nodes[node].next)
        if let previous { nodes[previous].next = next } else { oldest = next }
        if let next { nodes[next].previous = previous } else { newest = previous }
        cachedCount -= 1
    }
}
