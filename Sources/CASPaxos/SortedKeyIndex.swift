import WireCodec

/// An acceptor's keys in byte order, kept up to date as keys come and go,
/// so that a key listing (membership change's re-scan) costs one page's
/// work instead of a sort of every key per page.
///
/// Three parts: `base`, sorted, built by one sort and rebuilt by merges;
/// `recent`, sorted, the keys added since the last merge (at most about
/// √n, so an insertion moves few elements); and `removed`, keys of either
/// that are gone (skipped by pages until the next rebuild, and taken back
/// if the key returns). `recent` is merged into `base` when it passes its
/// bound, and `removed` is dropped by a rebuild when it holds more than half
/// of the entries, so insertions and removals cost O(√n) amortized, a page
/// of p keys O(log n + p + skipped removals), and listing n keys in pages
/// of p costs O(n log n) in all, with keys added and removed meanwhile.
///
/// The acceptor builds it at its first listing and keeps it from then on:
/// a cluster that never lists pays nothing.
struct SortedKeyIndex {
    private var base: [[UInt8]]
    private var recent: [[UInt8]] = []
    private var removed: Set<[UInt8]> = []

    /// An index of `keys`, which must be distinct.
    init(_ keys: some Sequence<[UInt8]>) {
        base = keys.sorted(by: Self.precedes)
    }

    /// Keys listed (present).
    var count: Int { base.count + recent.count - removed.count }

    /// Adds `key`, which must be absent.
    mutating func insert(_ key: [UInt8]) {
        if removed.remove(key) != nil { return }
        recent.insert(key, at: Self.firstIndex(in: recent, after: key))
        if recent.count > max(64, Int(Double(base.count).squareRoot())) { rebuild() }
    }

    /// Removes `key`, which must be present.
    mutating func remove(_ key: [UInt8]) {
        removed.insert(key)
        if removed.count * 2 > base.count + recent.count { rebuild() }
    }

    /// Up to `limit` keys after `after` (from the first if nil), in byte
    /// order, taking at most `bytes` encoded (each key with its length
    /// prefix; the first key is taken whatever its size), and whether no
    /// key follows them.
    func page(after: [UInt8]?, limit: Int, bytes: Int) -> (keys: [[UInt8]], isComplete: Bool) {
        var budget = bytes
        var b = after.map { Self.firstIndex(in: base, after: $0) } ?? 0
        var r = after.map { Self.firstIndex(in: recent, after: $0) } ?? 0
        var keys: [[UInt8]] = []
        while b < base.count || r < recent.count {
            let next: [UInt8]
            if r == recent.count || (b < base.count && Self.precedes(base[b], recent[r])) {
                next = base[b]
                b += 1
            } else {
                next = recent[r]
                r += 1
            }
            if removed.contains(next) { continue }
            let size = WireWriter.varintSize(UInt64(next.count)) + next.count
            if keys.count == limit || (!keys.isEmpty && size > budget) { return (keys, false) }
            budget -= size
            keys.append(next)
        }
        return (keys, true)
    }

    /// Merges `recent` into `base` and drops the removed keys.
    private mutating func rebuild() {
        var merged: [[UInt8]] = []
        merged.reserveCapacity(count)
        var r = 0
        for key in base {
            while r < recent.count && Self.precedes(recent[r], key) {
                if !removed.contains(recent[r]) { merged.append(recent[r]) }
                r += 1
            }
            if !removed.contains(key) { merged.append(key) }
        }
        for key in recent[r...] where !removed.contains(key) { merged.append(key) }
        base = merged
        recent = []
        removed = []
    }

    private static func precedes(_ a: [UInt8], _ b: [UInt8]) -> Bool { a.lexicographicallyPrecedes(b) }

    /// The index of the first key of `sorted` after `key` (binary search).
    private static func firstIndex(in sorted: [[UInt8]], after key: [UInt8]) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if precedes(key, sorted[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
