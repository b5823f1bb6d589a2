import EventCore

/// The IDs of the broadcasts delivered lately, so each is delivered at most
/// once: a set with a FIFO bound (forgets the oldest first).
struct RecentBroadcasts {
    struct Key: Hashable {
        var origin: NodeID
        var sequence: UInt64
    }

    private var keys: Set<Key> = []
    private var order: [Key] = []
    private var oldest = 0
    let capacity: Int

    /// Remembers up to `capacity` IDs; the storage grows with use (most
    /// members of a large cluster never see a broadcast).
    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Records `key`; false if it was already recorded.
    mutating func insert(_ key: Key) -> Bool {
        guard keys.insert(key).inserted else { return false }
        if order.count < capacity {
            order.append(key)
        } else {
            keys.remove(order[oldest])
            order[oldest] = key
            oldest = (oldest + 1) % capacity
        }
        return true
    }
}
