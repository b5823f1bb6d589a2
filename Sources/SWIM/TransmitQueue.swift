/// Updates waiting to be piggybacked, each sent a limited number of times,
/// fewest-sent first (memberlist's transmit-limited queue).
///
/// A newer update with the same key replaces the queued one (a member's
/// latest state supersedes its older states). Entries live in buckets by
/// transmission count, newest last; replaced entries are skipped lazily and
/// swept when they outnumber the live ones, so enqueue and take stay cheap
/// however many members churn.
struct TransmitQueue<Key: Hashable> {
    private struct Entry {
        var key: Key
        var generation: UInt64
        var update: SWIMUpdate
        var size: Int
        var transmissions: Int
    }

    /// Entries by transmission count.
    private var buckets: [[Entry]] = [[]]
    /// The generation of each key's live entry.
    private var live: [Key: UInt64] = [:]
    private var nextGeneration: UInt64 = 0
    private var storedCount = 0
    /// Scratch for ``take(budget:limit:into:)``: entries taken or skipped,
    /// put back once the packet is full.
    private var held: [Entry] = []

    /// Live entries.
    var count: Int { live.count }
    var isEmpty: Bool { live.isEmpty }

    /// Whether an update with `key` is queued.
    func contains(_ key: Key) -> Bool { live[key] != nil }

    /// Queues `update`, replacing any queued update with the same key; it
    /// starts at `transmissions` (0: it will be sent the full number of
    /// times; more, for news that others mostly have already).
    mutating func enqueue(_ update: SWIMUpdate, key: Key, transmissions: Int = 0) {
        nextGeneration &+= 1
        live[key] = nextGeneration
        while buckets.count <= transmissions { buckets.append([]) }
        buckets[transmissions].append(Entry(key: key, generation: nextGeneration, update: update,
                                            size: update.encodedSize, transmissions: transmissions))
        storedCount += 1
        if storedCount > 2 * live.count + 64 { sweep() }
    }

    /// Drops the queued update with `key`, if any.
    mutating func remove(_ key: Key) {
        live[key] = nil
    }

    /// Appends updates to `updates` while they fit `budget` bytes (which it
    /// lowers), fewest transmissions first and newest first among equals.
    /// Each taken update counts one transmission; one that reaches `limit`
    /// leaves the queue.
    mutating func take(budget: inout Int, limit: Int, into updates: inout [SWIMUpdate]) {
        guard !live.isEmpty else { return }
        var misses = 0
        var bucket = 0
        scan: while bucket < buckets.count {
            while let entry = buckets[bucket].popLast() {
                storedCount -= 1
                guard live[entry.key] == entry.generation else { continue }
                if entry.transmissions >= limit {
                    live[entry.key] = nil
                    continue
                }
                if entry.size > budget {
                    held.append(entry)
                    misses += 1
                    if misses >= 8 || budget < 16 { break scan }
                    continue
                }
                updates.append(entry.update)
                budget -= entry.size
                var sent = entry
                sent.transmissions += 1
                if sent.transmissions >= limit {
                    live[entry.key] = nil
                } else {
                    held.append(sent)
                }
                if budget < 16 { break scan }
            }
            // A join storm leaves large buckets behind: free an emptied one.
            if buckets[bucket].capacity > 64 { buckets[bucket] = [] }
            bucket += 1
        }
        for entry in held {
            while buckets.count <= entry.transmissions { buckets.append([]) }
            buckets[entry.transmissions].append(entry)
        }
        storedCount += held.count
        held.removeAll(keepingCapacity: true)
    }

    /// Removes replaced and dropped entries.
    private mutating func sweep() {
        for index in buckets.indices {
            buckets[index].removeAll { live[$0.key] != $0.generation }
        }
        storedCount = buckets.reduce(0) { $0 + $1.count }
    }
}
