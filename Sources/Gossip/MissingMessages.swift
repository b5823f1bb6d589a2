import EventCore

/// Plumtree's record of messages announced (IHAVE) but not yet received:
/// for each, who announced it and when to stop waiting for the tree and
/// graft an announcer. Bounded: beyond `capacity` messages, announcements
/// are refused (and counted by the caller).
struct MissingMessages {
    /// Announcers remembered per message, of those not asked yet and of
    /// those asked each (the oldest asked is forgotten first); later ones
    /// are ignored.
    static let maximumAnnouncers = 4

    private struct Entry {
        /// Announcers not asked yet, in the order they announced.
        var announcers: [Endpoint]
        /// Announcers already grafted.
        var grafted: [Endpoint] = []
        var deadline: Instant
    }

    private var entries: [MessageID: Entry] = [:]
    /// Deadlines in the order they were set. Each is at most a graft
    /// timeout after it was set (the first is a random part of it), so one
    /// behind a later deadline waits for it, still no more than a graft
    /// timeout after it was set. Entries since received or re-armed leave
    /// stale items here, skipped when popped.
    private var timeouts: [(id: MessageID, deadline: Instant)] = []
    private var timeoutsHead = 0
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    var count: Int { entries.count }

    /// Records that `announcer` has `id`, to graft it at `deadline` if the
    /// message has not come by then. Returns false if the table is full.
    mutating func announce(_ id: MessageID, by announcer: Endpoint, deadline: Instant) -> Bool {
        if var entry = entries[id] {
            if entry.announcers.count < Self.maximumAnnouncers && !entry.announcers.contains(announcer)
                && !entry.grafted.contains(announcer)
            {
                entry.announcers.append(announcer)
                entries[id] = entry
            }
            return true
        }
        guard entries.count < capacity else { return false }
        entries[id] = Entry(announcers: [announcer], deadline: deadline)
        appendTimeout(id, deadline)
        return true
    }

    /// Forgets `id` (it arrived); returns the peers that announced it
    /// (they have it).
    @discardableResult
    mutating func remove(_ id: MessageID) -> [Endpoint] {
        guard let entry = entries.removeValue(forKey: id) else { return [] }
        skipStaleTimeouts()
        return entry.grafted + entry.announcers
    }

    /// Forgets `peer` as an announcer (it left the active view).
    mutating func removeAnnouncer(_ peer: Endpoint) {
        for (id, entry) in entries where entry.announcers.contains(peer) || entry.grafted.contains(peer) {
            entries[id]?.announcers.removeAll { $0 == peer }
            entries[id]?.grafted.removeAll { $0 == peer }
        }
    }

    /// When the first message in line is due, if any is missing (stale
    /// items are skipped as entries go, so this is the head's in
    /// practice).
    var nextDeadline: Instant? {
        timeouts[timeoutsHead...].first { entries[$0.id]?.deadline == $0.deadline }?.deadline
    }

    private mutating func skipStaleTimeouts() {
        while timeoutsHead < timeouts.count, entries[timeouts[timeoutsHead].id]?.deadline != timeouts[timeoutsHead].deadline {
            timeoutsHead += 1
        }
        compactIfSparse()
    }

    /// For each message whose deadline has passed: the announcer to graft.
    /// The message stays missing with its next announcer and a new
    /// deadline, `retry` later; with none left it is forgotten
    /// (anti-entropy is the last resort).
    mutating func takeExpired(now: Instant, retry: Duration) -> [(id: MessageID, announcer: Endpoint)] {
        var grafts: [(id: MessageID, announcer: Endpoint)] = []
        while timeoutsHead < timeouts.count, timeouts[timeoutsHead].deadline <= now {
            let item = timeouts[timeoutsHead]
            timeoutsHead += 1
            guard var entry = entries[item.id], entry.deadline == item.deadline else { continue }
            guard !entry.announcers.isEmpty else {
                entries[item.id] = nil
                continue
            }
            let announcer = entry.announcers.removeFirst()
            grafts.append((item.id, announcer))
            // Kept a retry longer even with no announcer left: when the
            // message comes, the peers that have it are not sent it.
            if entry.grafted.count == Self.maximumAnnouncers { entry.grafted.removeFirst() }
            entry.grafted.append(announcer)
            entry.deadline = now + retry
            entries[item.id] = entry
            appendTimeout(item.id, entry.deadline)
        }
        skipStaleTimeouts()
        return grafts
    }

    private mutating func appendTimeout(_ id: MessageID, _ deadline: Instant) {
        timeouts.append((id, deadline))
        // Stale items cannot pile up beyond a few times the live entries.
        if timeouts.count - timeoutsHead > 4 * capacity { compact() }
    }

    private mutating func compactIfSparse() {
        if timeoutsHead == timeouts.count {
            timeouts.removeAll(keepingCapacity: true)
            timeoutsHead = 0
        } else if timeoutsHead > 1_024 && timeoutsHead * 2 > timeouts.count { compact() }
    }

    private mutating func compact() {
        timeouts = timeouts[timeoutsHead...].filter { item in entries[item.id]?.deadline == item.deadline }
        timeoutsHead = 0
    }
}
