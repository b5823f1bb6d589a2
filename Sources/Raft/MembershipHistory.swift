/// A replica's view of its group's membership along its log: the
/// membership as of the log's start (a snapshot's, or the group's first),
/// then each membership entry of the log above it. The current membership
/// is the latest, committed or not (Raft dissertation §4.1); an entry cut
/// from the log takes its membership with it.
struct MembershipHistory {
    /// The group's first membership, as the replica was created with it.
    let initial: RaftMembership
    /// The membership as of the snapshot the log starts from; nil: none
    /// changed before it (``initial`` holds).
    private(set) var base: RaftMembership?
    /// The membership entries above the base, in log order.
    private(set) var changes: [(index: UInt64, membership: RaftMembership)] = []

    init(initial: RaftMembership, base: RaftMembership?) {
        self.initial = initial
        self.base = base
    }

    /// The membership now: the latest entry's, else the base.
    var current: RaftMembership { changes.last?.membership ?? base ?? initial }

    /// The index of the latest membership entry (0 if none is in the log).
    var latestIndex: UInt64 { changes.last?.index ?? 0 }

    /// The membership as of `index` (at or above the base), or nil if no
    /// change is at or below it: what a snapshot through `index` carries.
    func membership(asOf index: UInt64) -> RaftMembership? {
        changes.last { $0.index <= index }?.membership ?? base
    }

    /// Entries from `first` on were appended (replacing any the log held
    /// there). Returns whether the current membership changed.
    mutating func appended(_ entries: some Collection<RaftEntry>, from first: UInt64) -> Bool {
        let before = changes.last?.index
        while let last = changes.last, last.index >= first { changes.removeLast() }
        var added = false
        for entry in entries where entry.kind == .membership {
            // A message's membership entries were checked as it was
            // decoded (`RaftMessage.isWellFormed`); one in storage that
            // does not decode is passed over.
            guard let membership = RaftMembership(entry: entry) else { continue }
            changes.append((entry.index, membership))
            added = true
        }
        return added || changes.last?.index != before
    }

    /// The log was replaced by a snapshot carrying `membership`.
    mutating func restored(_ membership: RaftMembership?) {
        base = membership
        changes = []
    }

    /// A snapshot through `index` was saved and the log before it may be
    /// compacted: the entries at or below it fold into the base.
    mutating func snapshotted(through index: UInt64) {
        base = membership(asOf: index)
        changes.removeAll { $0.index <= index }
    }
}
