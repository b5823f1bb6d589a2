import EventCore

/// A ``Proposer``'s pending proposals by ID, with the instant each next
/// needs the proposer's attention (``Proposal/wakeUp``) kept in an indexed
/// binary min-heap: the earliest is read in O(1) for ``Proposer/nextDeadline``
/// and the due ones are found in O(due) for ``Proposer/tick(now:into:)``,
/// instead of walking every pending proposal on each call.
///
/// Every write through the subscript re-keys the proposal's one heap entry
/// (O(log n), nothing when its wake-up instant did not change), so the heap
/// can never disagree with the proposals and needs no lazy deletion.
/// Entries are ordered by (instant, ID), which keeps the heap's shape, and
/// so the whole proposer, a function of its inputs.
struct ProposalTable {
    private struct Entry {
        var wakeUp: Instant
        var id: UInt64

        func precedes(_ other: Entry) -> Bool {
            (wakeUp, id) < (other.wakeUp, other.id)
        }
    }

    private var proposals: [UInt64: Proposal] = [:]
    private var heap: [Entry] = []
    /// Each proposal's index in ``heap``.
    private var position: [UInt64: Int] = [:]

    /// How many proposals are pending.
    var count: Int { proposals.count }

    /// The pending proposals' IDs in ascending order (the order proposals
    /// were made).
    var sortedIDs: [UInt64] { proposals.keys.sorted() }

    /// The earliest wake-up instant of any proposal, or nil if none is
    /// pending.
    var earliestWakeUp: Instant? { heap.first?.wakeUp }

    /// The proposal `id`, if pending; setting nil removes it.
    subscript(id: UInt64) -> Proposal? {
        get { proposals[id] }
        set {
            guard let newValue else {
                removeValue(forKey: id)
                return
            }
            proposals[id] = newValue
            let entry = Entry(wakeUp: newValue.wakeUp, id: id)
            if let index = position[id] {
                guard heap[index].wakeUp != entry.wakeUp else { return }
                heap[index] = entry
                siftUp(siftDown(index))
            } else {
                heap.append(entry)
                position[id] = heap.count - 1
                siftUp(heap.count - 1)
            }
        }
    }

    /// Removes the proposal `id` and returns it (nil if it was not pending).
    @discardableResult
    mutating func removeValue(forKey id: UInt64) -> Proposal? {
        guard let removed = proposals.removeValue(forKey: id), let index = position.removeValue(forKey: id) else {
            return nil
        }
        let last = heap.removeLast()
        if index < heap.count {
            heap[index] = last
            position[last.id] = index
            siftUp(siftDown(index))
        }
        return removed
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
        position[heap[a].id] = a
        position[heap[b].id] = b
    }
}
