import EventCore

/// The floor for the simulator benchmark: the same traffic (1,000 nodes
/// forwarding 32-byte messages to random peers, uniform 1-5 ms delays) run
/// by the least a discrete-event loop needs: a binary min-heap of
/// (time, sequence) events, a pool of payload buffers, a seeded generator.
/// No endpoints, no link model, no handlers, no fault checks.
struct BareHeapLoop {
    private struct Event {
        var time: UInt64
        var sequence: UInt64
        var destination: Int32
        var payload: Int32

        func precedes(_ other: Event) -> Bool {
            (time, sequence) < (other.time, other.sequence)
        }
    }

    private var heap: [Event] = []
    private var payloads: [[UInt8]] = []
    private var freePayloads: [Int32] = []
    private var random: SeededRandomGenerator
    private var now: UInt64 = 0
    private var sequence: UInt64 = 0
    private let minimumNanos = UInt64(minimumDelay.nanoseconds)
    private let maximumNanos = UInt64(maximumDelay.nanoseconds)

    init(seed: UInt64) {
        random = SeededRandomGenerator(seed: seed)
        heap.reserveCapacity(nodeCount)
        let message = [UInt8](repeating: 0x5A, count: messageSize)
        for node in 0..<nodeCount {
            message.withUnsafeBytes { send($0, from: node) }
        }
    }

    /// Runs until `messagesPerRun` messages are delivered; returns how many were.
    mutating func run() -> Int {
        var delivered = 0
        while delivered < messagesPerRun, let event = popFirst() {
            now = event.time
            delivered += 1
            // "Deliver": the destination forwards the bytes, then the slot is freed.
            let bytes = payloads[Int(event.payload)]
            bytes.withUnsafeBytes { send($0, from: Int(event.destination)) }
            freePayloads.append(event.payload)
        }
        return delivered
    }

    private mutating func send(_ message: UnsafeRawBufferPointer, from source: Int) {
        var target = Int.random(in: 0..<(nodeCount - 1), using: &random)
        if target >= source { target += 1 }
        let delay = UInt64.random(in: minimumNanos...maximumNanos, using: &random)
        let slot: Int32
        if let free = freePayloads.popLast() {
            slot = free
            payloads[Int(slot)].removeAll(keepingCapacity: true)
            payloads[Int(slot)].append(contentsOf: message)
        } else {
            slot = Int32(payloads.count)
            payloads.append(Array(message))
        }
        sequence += 1
        push(Event(time: now + delay, sequence: sequence, destination: Int32(target), payload: slot))
    }

    private mutating func push(_ event: Event) {
        heap.append(event)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func popFirst() -> Event? {
        guard let first = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                guard left < heap.count else { break }
                let right = left + 1
                let smaller = right < heap.count && heap[right].precedes(heap[left]) ? right : left
                guard heap[smaller].precedes(heap[parent]) else { break }
                heap.swapAt(parent, smaller)
                parent = smaller
            }
        }
        return first
    }
}
