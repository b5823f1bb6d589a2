import EventCore
import Testing

@testable import SWIM

/// The transmit-limited queue behind piggybacking: an update goes in a
/// packet at most once, however many takes fill that packet.
@Suite("TransmitQueue")
struct TransmitQueueTests {
    typealias Queue = TransmitQueue<Int, [UInt8]>

    static func broadcast(_ key: Int, _ payload: [UInt8]) -> SWIMUpdate? {
        .broadcast(SWIMBroadcast(origin: NodeID(1), sequence: UInt64(key), payload: payload))
    }

    static func keys(_ updates: [SWIMUpdate]) -> [UInt64] {
        updates.compactMap { if case .broadcast(let broadcast) = $0 { broadcast.sequence } else { nil } }
    }

    @Test("a second take for the same packet never takes again what the first took; after putBack the next packet does")
    func secondTakeSkipsTaken() {
        var queue = Queue(capacity: 16)
        for key in 0..<3 { queue.enqueue([UInt8](repeating: UInt8(key), count: 10), key: key) }
        var updates: [SWIMUpdate] = []
        var budget = 1_000
        queue.take(budget: &budget, limit: 5, into: &updates, update: Self.broadcast)
        #expect(Self.keys(updates) == [2, 1, 0])
        queue.take(budget: &budget, limit: 5, into: &updates, update: Self.broadcast)
        #expect(Self.keys(updates) == [2, 1, 0], "an update went in the packet twice")
        queue.putBack()
        var next: [SWIMUpdate] = []
        budget = 1_000
        queue.take(budget: &budget, limit: 5, into: &next, update: Self.broadcast)
        queue.putBack()
        #expect(Self.keys(next).sorted() == [0, 1, 2])
        #expect(queue.count == 3)
    }

    @Test("piggybacking with both membership news and a broadcast queued carries the broadcast once")
    func piggybackCarriesBroadcastOnce() throws {
        var instance = try HostileInputTests.instance()
        _ = try instance.broadcast([7, 7, 7], now: HostileInputTests.start)
        #expect(!instance.membershipQueue.isEmpty)
        let updates = instance.piggyback()
        #expect(Self.keys(updates).count == 1, "updates: \(updates)")
    }

    @Test("a second take may take what the first passed over for want of room")
    func passedOverStaysAvailable() {
        var queue = Queue(capacity: 16)
        queue.enqueue([UInt8](repeating: 1, count: 100), key: 1)
        var updates: [SWIMUpdate] = []
        var small = 50
        queue.take(budget: &small, limit: 5, into: &updates, update: Self.broadcast)
        #expect(updates.isEmpty)
        var large = 500
        queue.take(budget: &large, limit: 5, into: &updates, update: Self.broadcast)
        queue.putBack()
        #expect(Self.keys(updates) == [1])
    }

    /// Queued, a broadcast longer than this member's packets carry could
    /// never leave; it would sit in the queue for ever.
    @Test("a broadcast longer than this member's packets carry is delivered, not relayed (counted)")
    func oversizedForPacketNotRelayed() throws {
        var configuration = SWIMConfiguration()
        configuration.maximumPacketSize = 300  // carries 221 bytes of broadcast; 256 allowed
        var effects: [SWIMEffect] = []
        var instance = try HostileInputTests.alone(configuration, into: &effects)
        let long = SWIMBroadcast(origin: NodeID(9), sequence: 1, payload: [UInt8](repeating: 1, count: 256))
        let short = SWIMBroadcast(origin: NodeID(9), sequence: 2, payload: [UInt8](repeating: 2, count: 200))
        effects.removeAll()
        instance.receive(
            SWIMMessage(sender: NodeID(2), body: .gossip, updates: [.broadcast(long), .broadcast(short)]),
            from: HostileInputTests.peer, now: HostileInputTests.start, into: &effects)
        let delivered = effects.compactMap { if case .deliver(let broadcast) = $0 { broadcast.sequence } else { nil } }
        #expect(delivered == [1, 2])
        #expect(instance.broadcastQueue.count == 1)
        #expect(instance.broadcastQueue.contains(BroadcastKey(origin: NodeID(9), sequence: 2)))
        #expect(instance.counters.broadcastsDropped == 1)
    }
}
