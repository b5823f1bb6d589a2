import EventCore

/// The deadlines of the current suspicions, by member, in an indexed binary
/// min-heap: the earliest is read in O(1), and a suspicion made, moved
/// forward by a confirmation or ended (refuted, or the member declared
/// dead) costs O(log n).
///
/// Suspicions made together (a push-pull listing thousands of suspects)
/// share a deadline; keeping only the earliest and visiting every
/// suspicion again when it ended made refuting them one by one quadratic,
/// which a forged pair of push-pulls could use to hold the loop for
/// seconds. Ties go in the order the suspicions were made, so expiry
/// declares deaths in a deterministic order.
struct SuspicionDeadlines {
    private struct Entry {
        var deadline: Instant
        /// When the suspicion was made, among all: breaks ties.
        var order: UInt64
        var member: NodeID

        func precedes(_ other: Entry) -> Bool {
            (deadline, order) < (other.deadline, other.order)
        }
    }

    private var heap: [Entry] = []
    private var positions: [NodeID: Int] = [:]
    private var made: UInt64 = 0

    /// The earliest deadline, `.distantFuture` if there is no suspicion.
    var earliest: Instant { heap.first?.deadline ?? .distantFuture }

    /// The member whose suspicion is due first, if it is due at `now`.
    func firstDue(at now: Instant) -> NodeID? {
        guard let first = heap.first, first.deadline <= now else { return nil }
        return first.member
    }

    /// Sets the deadline of `member`'s suspicion, adding it if it is new
    /// (a replaced suspicion keeps its place among ties).
    mutating func set(_ member: NodeID, to deadline: Instant) {
        if let position = positions[member] {
            heap[position].deadline = deadline
            siftUp(siftDown(position))
            return
        }
        made &+= 1
        heap.append(Entry(deadline: deadline, order: made, member: member))
        positions[member] = heap.count - 1
        siftUp(heap.count - 1)
    }

    /// Removes `member`'s suspicion, if any.
    mutating func remove(_ member: NodeID) {
        guard let position = positions.removeValue(forKey: member) else { return }
        let last = heap.removeLast()
        guard position < heap.count else { return }
        heap[position] = last
        positions[last.member] = position
        siftUp(siftDown(position))
    }

    private mutating func siftUp(_ index: Int) {
        var index = index
        while index > 0 {
            let parent = (index - 1) / 2
            guard heap[index].precedes(heap[parent]) else { return }
            swapEntries(index, parent)
            index = parent
        }
    }

    /// Returns where the entry ended.
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
        positions[heap[a].member] = a
        positions[heap[b].member] = b
    }
}
