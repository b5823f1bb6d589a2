import EventCore

/// What a leader knows of one follower's log (Raft §5.3's nextIndex and
/// matchIndex) and how it sends to it.
///
/// In the probe state the leader sends one AppendEntries at a time and
/// waits for the answer, moving `next` back on rejection; once an append is
/// accepted it switches to the replicate state and pipelines appends,
/// advancing `next` optimistically, up to the ``InflightWindow``'s bounds.
/// When the entries the follower needs were compacted away, the leader
/// sends its snapshot instead (the snapshot state, with a
/// ``SnapshotTransfer``) and replicates again once the follower
/// acknowledged it.
struct FollowerProgress {
    enum State: Equatable {
        case probe
        case replicate
        case snapshot
    }

    /// The highest index known to match the leader's log.
    var match: UInt64 = 0
    /// The index of the next entry to send.
    var next: UInt64
    var state: State = .probe
    /// In the probe state: an append was sent and is unanswered.
    var probeSent = false
    var inflight: InflightWindow
    /// Whether the follower was heard from since the last quorum check.
    var recentlyActive = false
    /// When the follower last answered this leader (nil: not yet).
    var lastHeard: Instant?
    /// The latest read round the follower answered (ReadIndex).
    var readRound: UInt64 = 0
    /// In the snapshot state: the snapshot being sent.
    var transfer: SnapshotTransfer?
    /// The follower refused a snapshot as too large for it, lately: larger
    /// ones are withheld from it (kept across states; forgotten when it
    /// expires or the follower acknowledges entries).
    var refusal: SnapshotRefusal?

    init(next: UInt64, window: InflightWindow) {
        self.next = next
        inflight = window
    }

    /// Whether the leader must wait before sending more entries.
    var isPaused: Bool {
        switch state {
        case .probe: probeSent
        case .replicate: inflight.isFull
        case .snapshot: true
        }
    }

    /// The follower answered at `now`.
    mutating func heard(at now: Instant) {
        recentlyActive = true
        lastHeard = now
    }

    mutating func becomeProbe() {
        state = .probe
        next = match + 1
        probeSent = false
        inflight.reset()
        transfer = nil
    }

    mutating func becomeReplicate() {
        state = .replicate
        next = match + 1
        probeSent = false
        inflight.reset()
        transfer = nil
    }

    mutating func becomeSnapshot(_ transfer: SnapshotTransfer) {
        state = .snapshot
        probeSent = false
        inflight.reset()
        self.transfer = transfer
    }

    /// Takes an acknowledgement through `index`; returns whether `match`
    /// moved (a stale or duplicated acknowledgement does not move it).
    mutating func acknowledge(through index: UInt64) -> Bool {
        let moved = index > match
        if moved {
            match = index
            probeSent = false
            refusal = nil
        }
        next = max(next, index + 1)
        return moved
    }

    /// Takes a rejection at `rejectedIndex`, moving `next` back to
    /// `hintedNext` (clamped above `match`). Returns false, changing
    /// nothing, for a stale rejection: one of an append older than the
    /// latest probe, or below what is known to match.
    mutating func reject(at rejectedIndex: UInt64, hintedNext: UInt64) -> Bool {
        switch state {
        case .replicate:
            guard rejectedIndex > match else { return false }
            becomeProbe()
            next = max(match + 1, min(hintedNext, rejectedIndex))
            return true
        case .probe:
            guard rejectedIndex == next - 1 else { return false }
            next = max(match + 1, min(hintedNext, rejectedIndex))
            probeSent = false
            return true
        case .snapshot:
            return false
        }
    }
}
