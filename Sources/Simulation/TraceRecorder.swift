/// A ring buffer keeping the most recent ``TraceEvent``s, up to a capacity
/// (0 records nothing).
struct TraceRecorder {
    private var storage: [TraceEvent] = []
    /// Index in `storage` of the oldest event once the ring is full.
    private var oldest = 0

    /// The most events kept; recording more overwrites the oldest.
    private(set) var capacity: Int

    /// Creates a recorder keeping up to `capacity` events (negative counts
    /// as 0).
    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    /// Whether events are being recorded.
    var isEnabled: Bool { capacity > 0 }

    /// The recorded events, oldest first.
    var events: [TraceEvent] {
        Array(storage[oldest...] + storage[..<oldest])
    }

    /// Records `event`, overwriting the oldest one when full.
    mutating func record(_ event: TraceEvent) {
        guard capacity > 0 else { return }
        if storage.count < capacity {
            storage.append(event)
        } else {
            storage[oldest] = event
            oldest = oldest + 1 == capacity ? 0 : oldest + 1
        }
    }

    /// Changes the capacity (negative counts as 0), keeping the most recent
    /// events that fit.
    mutating func resize(to newCapacity: Int) {
        let kept = events.suffix(max(0, newCapacity))
        capacity = max(0, newCapacity)
        storage = Array(kept)
        oldest = 0
    }
}
