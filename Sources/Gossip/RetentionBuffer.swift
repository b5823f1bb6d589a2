import EventCore

/// The broadcasts a node keeps to answer grafts and anti-entropy pulls:
/// at most `capacity` messages, the first retained going first.
///
/// A message's age counts from its broadcast, not from its arrival here:
/// it arrives with the age its sender had kept it (``GossipData/age``),
/// and is served with that age plus the time kept here. Once its age is
/// past `period` it is served no more, nor listed in digests, and it is
/// forgotten at the next expiry (each anti-entropy round). Counted from
/// each node's own receipt, as before, a message pulled by a node that
/// lacked it (new, restarted, or one that forgot its origin) was kept a
/// whole period more there, and anti-entropy could keep it alive in the
/// cluster for ever.
struct RetentionBuffer {
    private struct Entry {
        var data: GossipData
        var retainedAt: Instant

        func age(at now: Instant) -> Duration { data.age + (now - retainedAt) }
    }

    /// Entries in arrival order, as a ring: `head` is the oldest.
    private var ring: [Entry?]
    private var head = 0
    private(set) var count = 0
    private var slotByID: [MessageID: Int] = [:]
    private let period: Duration
    /// The last ID the previous digest listed, when it could not list
    /// every run: the next starts with the first run after it (by origin,
    /// then sequence), so that successive digests cover everything
    /// retained. A position in the runs instead skipped or repeated runs
    /// whenever one came or went before it between two digests.
    private var digestListedThrough: MessageID?

    init(capacity: Int, period: Duration) {
        ring = Array(repeating: nil, count: capacity)
        self.period = period
    }

    var isEmpty: Bool { count == 0 }

    /// Whether a message with `id` is retained.
    func contains(_ id: MessageID) -> Bool { slotByID[id] != nil }

    /// The retained message with `id`, with its age at `now`, if any and
    /// not past the period.
    func message(_ id: MessageID, now: Instant) -> GossipData? {
        guard let slot = slotByID[id], let entry = ring[slot] else { return nil }
        let age = entry.age(at: now)
        guard age <= period else { return nil }
        var data = entry.data
        data.age = age
        return data
    }

    /// Whether `entry`'s age at `now` is within the period: listed, not
    /// yet to be forgotten (and served, by ``message(_:now:)``).
    private func isLive(_ entry: Entry, at now: Instant) -> Bool { entry.age(at: now) <= period }

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

    /// Forgets the messages past the period at the front (those retained
    /// first; one behind them that arrived older is passed over when
    /// served, and forgotten when it comes to the front).
    mutating func expire(now: Instant) {
        while count > 0, let entry = ring[head], !isLive(entry, at: now) {
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
    /// previous digest stopped; all of them if they fit. Only messages
    /// retained here for `settling` at least are listed: younger ones are
    /// likely still on their way to the peer.
    mutating func digest(limit: Int, settling: Duration, now: Instant) -> [DigestRun] {
        guard count > 0, limit > 0 else { return [] }
        let ids = slotByID.filter { slot in
            guard let entry = ring[slot.value] else { return false }
            return isLive(entry, at: now) && now - entry.retainedAt >= settling
        }.keys
            .sorted { ($0.origin, $0.sequence) < ($1.origin, $1.sequence) }
        var runs: [DigestRun] = []
        for id in ids {
            if let last = runs.last, last.origin == id.origin, last.first &+ last.count == id.sequence {
                runs[runs.count - 1].count += 1
            } else {
                runs.append(DigestRun(origin: id.origin, first: id.sequence, count: 1))
            }
        }
        guard runs.count > limit else {
            digestListedThrough = nil
            return runs
        }
        let start =
            digestListedThrough.flatMap { listed in
                runs.firstIndex { ($0.origin, $0.first) > (listed.origin, listed.sequence) }
            } ?? 0
        let chosen = (0..<limit).map { runs[(start + $0) % runs.count] }
        if let last = chosen.last {
            digestListedThrough = MessageID(origin: last.origin, sequence: last.first &+ last.count &- 1)
        }
        return chosen
    }
}
