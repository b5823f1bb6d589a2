/// A map from the nonzero 64-bit IDs a ``Proposer`` issues (proposal IDs
/// and request IDs, each counted up from a start of the proposer's own,
/// skipping 0) to small integers, in an open-addressing
/// table: linear probing, Fibonacci hashing, deletion by backward shift,
/// at most half full.
///
/// What it replaces, a `Dictionary<UInt64, _>`, hashes every ID with
/// seeded SipHash; the proposer looks IDs up several times per proposal,
/// and that hashing was a large share of its cost. Only IDs the proposer
/// issued (consecutive numbers, which Fibonacci hashing spreads evenly)
/// are inserted; IDs from the network are only looked up, so a hostile
/// peer cannot lengthen the probe sequences.
struct IdentifierIndex {
    private struct Bucket {
        /// 0 marks an empty bucket.
        var id: UInt64
        var value: Int
    }

    private var buckets: [Bucket]
    /// 64 − log2(buckets.count): the hash is the top bits of id × 2⁶⁴/φ.
    private var shift: UInt64
    /// IDs held.
    private(set) var count = 0

    /// Creates an empty index.
    init() {
        buckets = Array(repeating: Bucket(id: 0, value: 0), count: 16)
        shift = 60
    }

    /// The value of `id`, or nil if it is not held (0 never is).
    subscript(id: UInt64) -> Int? {
        guard id != 0 else { return nil }
        let mask = buckets.count &- 1
        var index = home(of: id)
        while true {
            let bucket = buckets[index]
            if bucket.id == id { return bucket.value }
            if bucket.id == 0 { return nil }
            index = (index &+ 1) & mask
        }
    }

    /// Maps `id` (not 0) to `value`, replacing the value it had.
    mutating func set(_ id: UInt64, _ value: Int) {
        guard id != 0 else { return }
        if (count &+ 1) &* 2 > buckets.count { grow() }
        let mask = buckets.count &- 1
        var index = home(of: id)
        while buckets[index].id != 0 && buckets[index].id != id { index = (index &+ 1) & mask }
        if buckets[index].id == 0 { count &+= 1 }
        buckets[index] = Bucket(id: id, value: value)
    }

    /// Removes `id` and returns its value, if it was held.
    @discardableResult
    mutating func remove(_ id: UInt64) -> Int? {
        guard id != 0 else { return nil }
        let mask = buckets.count &- 1
        var index = home(of: id)
        while buckets[index].id != id {
            if buckets[index].id == 0 { return nil }
            index = (index &+ 1) & mask
        }
        let removed = buckets[index].value
        count &-= 1
        // Backward shift: move later members of the probe run into the
        // hole when their home is not between the hole and them.
        var hole = index
        var next = (hole &+ 1) & mask
        while buckets[next].id != 0 {
            let home = home(of: buckets[next].id)
            if (next &- home) & mask >= (next &- hole) & mask {
                buckets[hole] = buckets[next]
                hole = next
            }
            next = (next &+ 1) & mask
        }
        buckets[hole] = Bucket(id: 0, value: 0)
        return removed
    }

    private func home(of id: UInt64) -> Int {
        Int(truncatingIfNeeded: (id &* 0x9E37_79B9_7F4A_7C15) &>> shift)
    }

    private mutating func grow() {
        let old = buckets
        buckets = Array(repeating: Bucket(id: 0, value: 0), count: old.count * 2)
        shift -= 1
        count = 0
        for bucket in old where bucket.id != 0 { set(bucket.id, bucket.value) }
    }
}
