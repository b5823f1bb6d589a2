import EventCore

/// A ``Proposer``'s pending proposals by ID, with the instant each next
/// needs the proposer's attention (``Proposal/wakeUp``) kept in an indexed
/// binary min-heap: the earliest is read in O(1) for ``Proposer/nextDeadline``
/// and the due ones are found in O(due) for ``Proposer/tick(now:into:)``,
/// instead of walking every pending proposal on each call.
///
/// Proposals live in slots of one array, reused once free, found by ID
/// through an ``IdentifierIndex``; the heap records each entry's slot and
/// each slot its heap position, so no step of the hot path hashes.
/// ``update(_:_:)`` changes a proposal in place (no copy of it) and then
/// re-keys its one heap entry (O(log n), nothing when its wake-up instant
/// did not change), so the heap can never disagree with the proposals and
/// needs no lazy deletion. Entries are ordered by (instant, ID), which
/// keeps the heap's shape, and so the whole proposer, a function of its
/// inputs.
struct ProposalTable {
    private struct Entry {
        var wakeUp: Instant
        var id: UInt64
        var slot: Int

        func precedes(_ other: Entry) -> Bool {
            (wakeUp, id) < (other.wakeUp, other.id)
        }
    }

    /// The proposals; a free slot holds the last proposal it held, its
    /// references released (``Proposal/releaseReferences()``).
    private var slots: [Proposal] = []
    private var freeSlots: [Int] = []
    /// Each slot's position in ``heap``.
    private var heapPositions: [Int] = []
    private var heap: [Entry] = []
    private var slotByID = IdentifierIndex()

    /// How many proposals are pending.
    var count: Int { heap.count }

    /// The pending proposals' IDs in ascending order (the order proposals
    /// were made, unless the IDs wrapped past 2⁶⁴ − 1 meanwhile).
    var sortedIDs: [UInt64] { heap.map(\.id).sorted() }

    /// The earliest wake-up instant of any proposal, or nil if none is
    /// pending.
    var earliestWakeUp: Instant? { heap.first?.wakeUp }

    /// A copy of the proposal `id`, if pending.
    subscript(id: UInt64) -> Proposal? {
        slotByID[id].map { slots[$0] }
    }

    /// Adds `proposal`, whose ID (not 0) is not pending.
    mutating func insert(_ proposal: Proposal) {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = proposal
        } else {
            slot = slots.count
            slots.append(proposal)
            heapPositions.append(0)
        }
        slotByID.set(proposal.id, slot)
        heap.append(Entry(wakeUp: proposal.wakeUp, id: proposal.id, slot: slot))
        heapPositions[slot] = heap.count - 1
        siftUp(heap.count - 1)
    }

    /// Runs `body` on the proposal `id` in place, then re-keys it in the
    /// heap; nil if it is not pending. `body` must not change the ID.
    mutating func update<Result>(_ id: UInt64, _ body: (inout Proposal) -> Result) -> Result? {
        guard let slot = slotByID[id] else { return nil }
        let result = body(&slots[slot])
        let position = heapPositions[slot]
        let wakeUp = slots[slot].wakeUp
        if heap[position].wakeUp != wakeUp {
            heap[position].wakeUp = wakeUp
            siftUp(siftDown(position))
        }
        return result
    }

    /// Removes the proposal `id`, after `body` has read it in place;
    /// returns whether it was pending. Read in place, not returned: an
    /// optional `Proposal`, or any optional result of a generic function,
    /// is copied and destroyed through its type metadata, a cost on every
    /// write.
    @discardableResult
    mutating func remove(_ id: UInt64, reading body: (borrowing Proposal) -> Void = { _ in }) -> Bool {
        guard let slot = slotByID.remove(id) else { return false }
        body(slots[slot])
        slots[slot].releaseReferences()
        freeSlots.append(slot)
        let position = heapPositions[slot]
        let last = heap.removeLast()
        if position < heap.count {
            heap[position] = last
            heapPositions[last.slot] = position
            siftUp(siftDown(position))
        }
        return true
    }

    /// The IDs of the proposals whose wake-up instant is at or before `now`,
    /// in ascending order: a walk of the heap's subtree above `now`, O(k)
    /// for k due plus the sort.
    func due(at now: Instant) -> [UInt64] {
        var due: [UInt64] = []
        var stack = heap.isEmpty ? [] : [0]
        while let index = stack.popLast() {
            guard heap[index].wakeUp <= now else { continue }
            due.append(heap[index].id)
            if 2 * index + 1 < heap.count { stack.append(2 * index + 1) }
            if 2 * index + 2 < heap.count { stack.append(2 * index + 2) }
        }
        return due.sorted()
    }

    /// Moves the entry at `index` up while it precedes its parent.
    private mutating func siftUp(_ index: Int) {
        var index = index
        while index > 0 {
            let parent = (index - 1) / 2
            guard heap[index].precedes(heap[parent]) else { return }
            swapEntries(index, parent)
            index = parent
        }
    }

    /// Moves the entry at `index` down while a child precedes it; returns
    /// where it ended.
    private mutating func siftDown(_ index: Int) -> Int {
        var index = index
        while true {
            var smallest = index
            let left = 2 * index + 1
            let right = left + 1
            if left < heap.count && heap[left].precedes(heap[smallest]) { smallest = left }
            if right < heap.count && heap[right].precedes(heap[smallest]) { smallest = right }
            guard smallest != index else { return index }
            swapEntries(index, smallest)
            index = smallest
        }
    }

    private mutating func swapEntries(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        heapPositions[heap[a].slot] = a
        heapPositions[heap[b].slot] = b
    }
}
