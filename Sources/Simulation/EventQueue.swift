/// Something the simulator does at a point of virtual time. Plain values
/// only, so queue entries are trivially copyable and a message delivery
/// allocates nothing.
enum SimulationEvent {
    /// One copy of message `messageID` reaches node `destination` from node
    /// `source`; its bytes are in payload slot `payload`.
    case delivery(source: Int32, destination: Int32, payload: Int32, messageID: UInt64)
    /// The timer (or scripted network action) in timer slot `slot` fires,
    /// unless the slot's generation has moved on (it was cancelled).
    case timer(slot: Int32, generation: UInt32)
}

/// An event with the instant it is due and its insertion number.
struct QueuedEvent {
    /// When the event is due, in nanoseconds of virtual time.
    var time: UInt64
    /// Insertion order: breaks ties between events due at the same instant.
    var sequence: UInt64
    /// What happens.
    var event: SimulationEvent

    /// Whether `self` comes before `other`: earlier, or as early and
    /// inserted first.
    func precedes(_ other: QueuedEvent) -> Bool {
        time < other.time || (time == other.time && sequence < other.sequence)
    }
}

/// The simulator's agenda: a binary min-heap of events ordered by
/// (time, insertion sequence), so events due at the same instant come out
/// in the order they were scheduled.
struct EventQueue {
    private var heap: [QueuedEvent] = []
    private var nextSequence: UInt64 = 0

    /// Whether no event is queued.
    var isEmpty: Bool { heap.isEmpty }

    /// The next event to come out, if any.
    var first: QueuedEvent? { heap.first }

    /// Queues `event` due at `time` (nanoseconds), after every event already
    /// queued for the same time.
    mutating func push(_ event: SimulationEvent, at time: UInt64) {
        let entry = QueuedEvent(time: time, sequence: nextSequence, event: event)
        nextSequence &+= 1
        heap.append(entry)
        heap.withUnsafeMutableBufferPointer { slots in
            var hole = slots.count - 1
            while hole > 0 {
                let parent = (hole - 1) / 2
                guard entry.precedes(slots[parent]) else { break }
                slots[hole] = slots[parent]
                hole = parent
            }
            slots[hole] = entry
        }
    }

    /// Removes and returns the earliest event, or nil if none is queued.
    mutating func popFirst() -> QueuedEvent? {
        guard let last = heap.popLast() else { return nil }
        guard let first = heap.first else { return last }
        heap.withUnsafeMutableBufferPointer { slots in
            let count = slots.count
            var hole = 0
            while true {
                var child = 2 * hole + 1
                if child >= count { break }
                if child + 1 < count, slots[child + 1].precedes(slots[child]) { child += 1 }
                guard slots[child].precedes(last) else { break }
                slots[hole] = slots[child]
                hole = child
            }
            slots[hole] = last
        }
        return first
    }
}
