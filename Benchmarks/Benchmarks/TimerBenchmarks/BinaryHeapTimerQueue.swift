import EventCore

/// The baseline the timing wheel is justified against: a binary min-heap of
/// deadlines with O(log n) schedule and cancel, the textbook timer queue.
///
/// Built the same way as ``TimerWheel`` so only the data structure differs:
/// a slab of entries reused through a free list, handles carrying a
/// generation, and each entry remembering its heap position so cancel can
/// remove it from the middle of the heap.
struct BinaryHeapTimerQueue<Payload> {
    private var heap: [Int32] = []            // slab indices, heap-ordered by deadline
    private var deadlines: [UInt64] = []      // per slab entry, nanoseconds
    private var sequence: [UInt64] = []       // per slab entry: ties break in schedule order
    private var positions: [Int32] = []       // per slab entry: index in `heap`, or -1
    private var generations: [UInt32] = []
    private var payloads: [Payload?] = []
    private var freeList: [Int32] = []
    private var nextSequence: UInt64 = 0

    /// The number of pending timers.
    var count: Int { heap.count }

    /// Schedules `payload` for `deadline`.
    mutating func schedule(_ payload: Payload, at deadline: Instant) -> TimerHandle {
        let index: Int
        if let reused = freeList.popLast() {
            index = Int(reused)
            deadlines[index] = deadline.nanoseconds
            sequence[index] = nextSequence
            payloads[index] = payload
        } else {
            index = deadlines.count
            deadlines.append(deadline.nanoseconds)
            sequence.append(nextSequence)
            positions.append(-1)
            generations.append(0)
            payloads.append(payload)
        }
        nextSequence &+= 1
        positions[index] = Int32(heap.count)
        heap.append(Int32(index))
        siftUp(heap.count - 1)
        return TimerHandle(rawValue: UInt64(generations[index]) << 32 | UInt64(index))
    }

    /// Cancels a timer; nil if the handle is stale.
    @discardableResult
    mutating func cancel(_ handle: TimerHandle) -> Payload? {
        let index = Int(handle.rawValue & 0xFFFF_FFFF)
        guard index < generations.count,
            generations[index] == UInt32(truncatingIfNeeded: handle.rawValue >> 32),
            let payload = payloads[index]
        else { return nil }
        remove(at: Int(positions[index]))
        return payload
    }

    /// Removes every timer due at or before `now`, earliest first.
    mutating func expire(upTo now: Instant, into expired: inout [Payload]) {
        while let top = heap.first, deadlines[Int(top)] <= now.nanoseconds {
            if let payload = payloads[Int(top)] { expired.append(payload) }
            remove(at: 0)
        }
    }

    private func precedes(_ a: Int32, _ b: Int32) -> Bool {
        let (x, y) = (Int(a), Int(b))
        return (deadlines[x], sequence[x]) < (deadlines[y], sequence[y])
    }

    private mutating func remove(at position: Int) {
        let index = Int(heap[position])
        let last = heap.removeLast()
        if position < heap.count {
            heap[position] = last
            positions[Int(last)] = Int32(position)
            siftDown(position)
            siftUp(position)
        }
        positions[index] = -1
        payloads[index] = nil
        generations[index] &+= 1
        freeList.append(Int32(index))
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        let moving = heap[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(moving, heap[parent]) else { break }
            heap[child] = heap[parent]
            positions[Int(heap[child])] = Int32(child)
            child = parent
        }
        heap[child] = moving
        positions[Int(moving)] = Int32(child)
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let moving = heap[parent]
        let count = heap.count
        while true {
            let left = 2 * parent + 1
            guard left < count else { break }
            let right = left + 1
            let smaller = right < count && precedes(heap[right], heap[left]) ? right : left
            guard precedes(heap[smaller], moving) else { break }
            heap[parent] = heap[smaller]
            positions[Int(heap[parent])] = Int32(parent)
            parent = smaller
        }
        heap[parent] = moving
        positions[Int(moving)] = Int32(parent)
    }
}
