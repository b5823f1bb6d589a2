import EventCore

/// The members a SWIM instance knows, laid out for large clusters: one
/// array of ``Member`` records in a deterministic order (insertion, with
/// swap-removal) and a compact hash index from ID to slot, instead of a
/// dictionary of records beside an order array and a position dictionary.
///
/// Every member of a 10,000-member cluster holds the 9,999 others, so the
/// bytes per record decide whether a simulation of the whole cluster fits
/// in one process. A record takes 48 bytes; the array grows by a quarter
/// at a time rather than doubling (at most a fifth of it spare); the index
/// takes 4 bytes a bucket, 5 to 11 bytes a member.
///
/// The index is open addressing with linear probing over a power-of-two
/// array at most three quarters full. A bucket holds the slot plus one (0:
/// empty) in its low 21 bits and 11 bits of the ID's hash above them, so a
/// probe rarely reads a record that is not the one looked for. IDs hash
/// with Swift's per-process seeded hash, so a peer cannot choose IDs that
/// collide; nothing iterates the index, so its order, which the seed
/// changes, never shows.
struct MemberTable {
    /// The records, in slot order.
    private(set) var members: [Member] = []
    /// The hash index (see the type's comment); empty until the first
    /// member.
    private var buckets: [UInt32] = []

    /// The bits of a bucket that hold the slot plus one: slots go up to
    /// ``SWIMConfiguration/maximumMembers``' bound, 1,048,576.
    private static let slotBits: UInt32 = 21
    private static let slotMask: UInt32 = (1 << slotBits) - 1
    /// The most members the index can hold.
    static let maximumCount = Int(slotMask) - 1

    /// Members held.
    var count: Int { members.count }

    /// The slot of member `id`'s record, if known.
    func slot(of id: NodeID) -> Int? {
        bucket(of: id).map { Int(buckets[$0] & Self.slotMask) - 1 }
    }

    /// Member `id`'s record, if known.
    subscript(id: NodeID) -> Member? {
        slot(of: id).map { members[$0] }
    }

    /// The record in `slot` (less than ``count``), read or changed in place.
    /// Its ID must not change.
    subscript(slot slot: Int) -> Member {
        get { members[slot] }
        _modify { yield &members[slot] }
    }

    /// Adds `member`, whose ID must not be known yet, in the last slot.
    mutating func append(_ member: Member) {
        precondition(members.count < Self.maximumCount, "MemberTable holds at most \(Self.maximumCount) members")
        if members.count == members.capacity {
            members.reserveCapacity(members.count + max(16, members.count / 4))
        }
        if 4 * (members.count + 1) > 3 * buckets.count {
            rebuildIndex(buckets: max(16, 2 * buckets.count))
        }
        members.append(member)
        place(member.id, slot: members.count - 1)
    }

    /// Removes member `id`'s record, if known: the last record takes its
    /// slot.
    mutating func remove(_ id: NodeID) {
        guard let bucket = bucket(of: id) else { return }
        let removed = Int(buckets[bucket] & Self.slotMask) - 1
        vacate(bucket)
        let last = members.count - 1
        if removed != last {
            let moved = members[last].id
            if let movedBucket = self.bucket(of: moved) {
                buckets[movedBucket] = (buckets[movedBucket] & ~Self.slotMask) | UInt32(removed + 1)
            }
            members[removed] = members[last]
        }
        members.removeLast()
    }

    // MARK: The index

    private var mask: Int { buckets.count - 1 }

    /// Where `id` starts probing, and the hash bits its buckets carry.
    private func home(of id: NodeID) -> (bucket: Int, tag: UInt32) {
        let hash = id.hashValue
        return (hash & mask, UInt32(truncatingIfNeeded: UInt(bitPattern: hash) >> 53) << Self.slotBits)
    }

    /// The bucket that holds `id`, if known.
    private func bucket(of id: NodeID) -> Int? {
        guard !buckets.isEmpty else { return nil }
        let (start, tag) = home(of: id)
        var bucket = start
        while true {
            let entry = buckets[bucket]
            if entry == 0 { return nil }
            if entry & ~Self.slotMask == tag && members[Int(entry & Self.slotMask) - 1].id == id { return bucket }
            bucket = (bucket + 1) & mask
        }
    }

    /// Files `id` (not in the index) under `slot`.
    private mutating func place(_ id: NodeID, slot: Int) {
        let (start, tag) = home(of: id)
        var bucket = start
        while buckets[bucket] != 0 { bucket = (bucket + 1) & mask }
        buckets[bucket] = tag | UInt32(slot + 1)
    }

    /// Empties `bucket`, moving back the entries after it that probed past
    /// it (backward-shift deletion), so lookups need no tombstones.
    private mutating func vacate(_ bucket: Int) {
        var hole = bucket
        var next = (hole + 1) & mask
        while buckets[next] != 0 {
            let start = home(of: members[Int(buckets[next] & Self.slotMask) - 1].id).bucket
            // The entry may fill the hole unless its home bucket lies after
            // the hole (cyclically), up to where the entry is.
            if (next - start) & mask >= (next - hole) & mask {
                buckets[hole] = buckets[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        buckets[hole] = 0
    }

    /// Rebuilds the index with `count` buckets (a power of two).
    private mutating func rebuildIndex(buckets count: Int) {
        buckets = Array(repeating: 0, count: count)
        for (slot, member) in members.enumerated() { place(member.id, slot: slot) }
    }
}
