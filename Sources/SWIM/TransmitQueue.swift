/// Updates waiting to be piggybacked, each sent a limited number of times,
/// fewest-sent first (memberlist's transmit-limited queue), at most
/// `capacity` of them.
///
/// An entry is a key and a small payload; the update itself is built when
/// it is sent (a membership update from its subject's current record), so
/// an entry takes 32 bytes however large the update. A newer entry
/// with the same key replaces the queued one (a member's latest state
/// supersedes its older states). Entries live in buckets by transmission
/// count, newest last; replaced entries are skipped lazily and swept when
/// they outnumber the live ones, so enqueue and take stay cheap however
/// many members churn.
///
/// Past `capacity` live entries, the entry sent the most times is dropped,
/// the oldest among equals (Serf prunes memberlist's queue the same way):
/// it is the one its receivers most likely have already, and news still
/// unsent is kept.
struct TransmitQueue<Key: Hashable, Payload> {
    private struct Entry {
        var key: Key
        var payload: Payload
        /// Tells the live entry of a key (``live``) from replaced ones.
        /// Generations are renumbered before they wrap, so 32 bits do.
        var generation: UInt32
        var transmissions: UInt16
    }

    /// The most live entries.
    let capacity: Int
    /// Entries by transmission count.
    private var buckets: [[Entry]] = [[]]
    /// How many entries at the front of each bucket were dropped (they stay
    /// until enough of them are to close the gap in one move).
    private var heads: [Int] = [0]
    /// The generation of each key's live entry.
    private var live: [Key: UInt32] = [:]
    private var nextGeneration: UInt32 = 0
    /// Entries in the buckets past their heads, live or replaced.
    private var storedCount = 0
    /// Entries ``take(budget:limit:into:update:)`` took for the packet
    /// being filled, out of the queue until ``putBack()``.
    private var held: [Entry] = []
    /// Scratch for ``take(budget:limit:into:update:)``: entries it passed
    /// over for want of room, back in the queue when it returns.
    private var passedOver: [Entry] = []

    /// Creates an empty queue holding at most `capacity` (at least 1) live
    /// entries.
    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Live entries.
    var count: Int { live.count }
    var isEmpty: Bool { live.isEmpty }

    /// Whether an entry with `key` is queued.
    func contains(_ key: Key) -> Bool { live[key] != nil }

    /// Queues `payload` under `key`, replacing any entry with the same key;
    /// it starts at `transmissions` (0: it will be sent the full number of
    /// times; more, for news that others mostly have already). Returns
    /// false if the queue was full and an entry was dropped for it (perhaps
    /// this one).
    @discardableResult
    mutating func enqueue(_ payload: Payload, key: Key, transmissions: Int = 0) -> Bool {
        if nextGeneration == UInt32.max { renumber() }
        nextGeneration += 1
        live[key] = nextGeneration
        let transmissions = min(max(0, transmissions), Int(UInt16.max))
        while buckets.count <= transmissions {
            buckets.append([])
            heads.append(0)
        }
        buckets[transmissions].append(Entry(key: key, payload: payload, generation: nextGeneration,
                                            transmissions: UInt16(transmissions)))
        storedCount += 1
        if storedCount > 2 * live.count + 64 { sweep() }
        guard live.count > capacity else { return true }
        dropMostTransmitted()
        return false
    }

    /// Drops the entry with `key`, if any.
    mutating func remove(_ key: Key) {
        live[key] = nil
        releaseIfEmpty()
    }

    /// Appends updates to `updates` while they fit `budget` bytes (which it
    /// lowers), fewest transmissions first and newest first among equals;
    /// `update` builds each from its key and payload (nil: drop the entry).
    /// Each taken update counts one transmission; one that reaches `limit`
    /// leaves the queue.
    ///
    /// What it took stays out of the queue until ``putBack()``: a second
    /// call for the same packet (with the room another queue left) never
    /// puts an update in it twice, and may take one the first passed over
    /// for want of room. Call ``putBack()`` once the packet is full.
    mutating func take(
        budget: inout Int, limit: Int, into updates: inout [SWIMUpdate], update: (Key, Payload) -> SWIMUpdate?
    ) {
        guard !live.isEmpty else { return }
        var misses = 0
        var bucket = 0
        // Past the last stored entry the buckets are empty: stop there
        // rather than visit every bucket up to `limit` for each packet.
        scan: while bucket < buckets.count && storedCount > 0 {
            // The bucket is worked on out of `buckets` (moved, not copied),
            // which spares a nested access per entry.
            var entries: [Entry] = []
            swap(&entries, &buckets[bucket])
            let head = heads[bucket]
            var isFull = false
            while !isFull, entries.count > head, let entry = entries.popLast() {
                storedCount -= 1
                guard live[entry.key] == entry.generation else { continue }
                guard Int(entry.transmissions) < limit, let built = update(entry.key, entry.payload) else {
                    live[entry.key] = nil
                    continue
                }
                let size = built.encodedSize
                if size > budget {
                    passedOver.append(entry)
                    misses += 1
                    isFull = misses >= 8 || budget < 16
                    continue
                }
                updates.append(built)
                budget -= size
                var sent = entry
                sent.transmissions += 1
                if Int(sent.transmissions) >= limit {
                    live[entry.key] = nil
                } else {
                    held.append(sent)
                }
                isFull = budget < 16
            }
            swap(&entries, &buckets[bucket])
            if isFull { break scan }
            closeGap(in: bucket)
            bucket += 1
        }
        restore(passedOver)
        passedOver.removeAll(keepingCapacity: true)
    }

    /// Returns what ``take(budget:limit:into:update:)`` took to the queue.
    mutating func putBack() {
        restore(held)
        held.removeAll(keepingCapacity: true)
        releaseIfEmpty()
    }

    /// Moves `entries` back into the queue, each to the end of the bucket
    /// of its transmission count.
    private mutating func restore(_ entries: [Entry]) {
        for entry in entries {
            let index = Int(entry.transmissions)
            while buckets.count <= index {
                buckets.append([])
                heads.append(0)
            }
            buckets[index].append(entry)
        }
        storedCount += entries.count
    }

    /// Drops the live entry with the most transmissions, the oldest among
    /// equals.
    private mutating func dropMostTransmitted() {
        var bucket = buckets.count - 1
        while bucket >= 0 {
            while heads[bucket] < buckets[bucket].count {
                let entry = buckets[bucket][heads[bucket]]
                heads[bucket] += 1
                storedCount -= 1
                if live[entry.key] == entry.generation {
                    live[entry.key] = nil
                    closeGap(in: bucket)
                    return
                }
            }
            closeGap(in: bucket)
            bucket -= 1
        }
    }

    /// Removes a bucket's dropped front entries once they are at least
    /// half of it (or all of it: an emptied bucket left large by a join
    /// storm is freed).
    private mutating func closeGap(in bucket: Int) {
        let head = heads[bucket]
        if head == buckets[bucket].count {
            if buckets[bucket].capacity > 64 {
                buckets[bucket] = []
            } else {
                buckets[bucket].removeAll(keepingCapacity: true)
            }
            heads[bucket] = 0
        } else if head >= 64 && 2 * head >= buckets[bucket].count {
            buckets[bucket].removeFirst(head)
            heads[bucket] = 0
        }
    }

    /// Frees the key index once the queue is empty, if it grew large (a
    /// join storm), since a dictionary never shrinks on removal.
    private mutating func releaseIfEmpty() {
        if live.isEmpty && live.capacity > 64 { live = [:] }
    }

    /// Removes replaced and dropped entries.
    private mutating func sweep() {
        for index in buckets.indices {
            buckets[index].removeFirst(heads[index])
            heads[index] = 0
            buckets[index].removeAll { live[$0.key] != $0.generation }
            closeGap(in: index)  // frees a bucket the sweep emptied
        }
        storedCount = buckets.reduce(0) { $0 + $1.count }
    }

    /// Numbers the live entries from 1 again (oldest first within each
    /// bucket), so generations never wrap onto an entry still queued.
    private mutating func renumber() {
        sweep()
        nextGeneration = 0
        for index in buckets.indices {
            for position in buckets[index].indices {
                nextGeneration += 1
                buckets[index][position].generation = nextGeneration
                live[buckets[index][position].key] = nextGeneration
            }
        }
    }
}
