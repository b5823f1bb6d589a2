import EventCore

/// The broadcasts a node keeps to answer grafts and anti-entropy pulls:
/// at most `capacity` messages, the oldest going first; those older than
/// `period` are forgotten at the next expiry (each anti-entropy round), so
/// one may outlive the period by up to a round.
struct RetentionBuffer {
    private struct Entry {
        var data: GossipData
        var retainedAt: Instant
    }

    /// Entries in arrival order, as a ring: `head` is the oldest.
    private var ring: [Entry?]
    private var head = 0
    private(set) var count = 0
    private var slotByID: [MessageID: Int] = [:]
    private let period: Duration
    /// Where the next digest starts, in the sorted runs (rotates so that
    /// successive digests cover everything retained).
    private var digestCursor = 0

    init(capacity: Int, period: Duration) {
        ring = Array(repeating: nil, count: capacity)
        self.period = period
    }

    var isEmpty: Bool { count == 0 }

    /// The retained message with `id`, if any.
    func message(_ id: MessageID) -> GossipData? {
        guard let slot = slotByID[id] else { return nil }
        return ring[slot]?.data
    }

    /// Retains `data` (evicting the oldest if full); a retained ID is
    /// ignored.
    mutating func insert(_ data: GossipData, now: Instant) {
        guard slotByID[data.id] == nil else { return }
        if count == ring.count { removeOldest() }
        let slot = (head + count) % ring.count
        ring[slot] = Entry(data: data, retainedAt: now)
        slotByID[data.id] = slot
        count += 1
    }

    /// Forgets the messages retained for longer than the period.
    mutating func expire(now: Instant) {
        while count > 0, let entry = ring[head], now - entry.retainedAt > period {
            removeOldest()
        }
    }

    private mutating func removeOldest() {
        if let entry = ring[head] { slotByID[entry.data.id] = nil }
        ring[head] = nil
        head = (head + 1) % ring.count
        count -= 1
    }

    /// Up to `limit` runs describing the retained IDs, starting where the
    /// previous digest stopped; all of them if they fit.
    mutating func digest(limit: Int) -> [DigestRun] {
        guard count > 0, limit > 0 else { return [] }
        let ids = slotByID.keys.sorted { ($0.origin, $0.sequence) < ($1.origin, $1.sequence) }
        var runs: [DigestRun] = []
        for id in ids {
            if let last = runs.last, last.origin == id.origin, last.first &+ last.count == id.sequence {
                runs[runs.count - 1].count += 1
            } else {
                runs.append(DigestRun(origin: id.origin, first: id.sequence, count: 1))
            }
        }
        guard runs.count > limit else {
            digestCursor = 0
            return runs
        }
        let start = digestCursor % runs.count
        let chosen = (0..<limit).map { runs[(start + $0) % runs.count] }
        digestCursor = (start + limit) % runs.count
        return chosen
    }
}
