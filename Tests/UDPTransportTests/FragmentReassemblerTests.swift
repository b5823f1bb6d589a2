import EventCore
import Testing
import UDPTransport

@Suite("FragmentReassembler")
struct FragmentReassemblerTests {
    let message = pseudoRandomBytes(10_000, seed: 42)

    @Test("fragments fed out of order complete the message once, intact")
    func outOfOrder() throws {
        let reassembler = try FragmentReassembler()
        let pieces = try fragments(of: message)
        #expect(pieces.count == 8)
        let order = [5, 0, 7, 2, 6, 1, 3, 4]
        for (step, index) in order.enumerated() {
            let outcome = feed(reassembler, pieces[index])
            if step < order.count - 1 {
                #expect(outcome.isPending)
                #expect(reassembler.partialMessageCount == 1)
            } else {
                #expect(outcome.completedBytes == message)
            }
        }
        #expect(reassembler.partialMessageCount == 0)
        #expect(reassembler.partialByteCount == 0)
        #expect(reassembler.nextDeadline == nil)
        #expect(reassembler.counters.messagesCompleted == 1)
        #expect(reassembler.counters.fragmentsAccepted == 8)
    }

    @Test("a duplicate fragment is dropped and counted; the message still completes")
    func duplicate() throws {
        let reassembler = try FragmentReassembler()
        let pieces = try fragments(of: message)
        #expect(feed(reassembler, pieces[3]).isPending)
        #expect(feed(reassembler, pieces[3]).dropReason == .duplicate)
        var completed: [UInt8]?
        for piece in pieces where piece != pieces[3] {
            if let bytes = feed(reassembler, piece).completedBytes { completed = bytes }
        }
        #expect(completed == message)
        #expect(reassembler.counters.duplicate == 1)
        #expect(reassembler.counters.droppedFragments == 1)
    }

    @Test("messages with the same id from different senders do not mix")
    func sendersAreSeparate() throws {
        let reassembler = try FragmentReassembler()
        let other = pseudoRandomBytes(message.count, seed: 43)
        let first = Endpoint.loopbackV4(port: 1)
        let second = Endpoint.loopbackV4(port: 2)
        var results: [Endpoint: [UInt8]] = [:]
        for (mine, theirs) in zip(try fragments(of: message), try fragments(of: other)) {
            if let bytes = feed(reassembler, mine, from: first).completedBytes { results[first] = bytes }
            if let bytes = feed(reassembler, theirs, from: second).completedBytes { results[second] = bytes }
        }
        #expect(results == [first: message, second: other])
    }

    @Test("a message with a lost fragment is dropped at its timeout, not before")
    func timeout() throws {
        let limits = FragmentReassembler.Limits(reassemblyTimeout: .seconds(2))
        let reassembler = try FragmentReassembler(limits: limits)
        let pieces = try fragments(of: message)
        let start = Instant(nanoseconds: 1_000_000_000)
        for piece in pieces.dropLast() {
            #expect(feed(reassembler, piece, now: start).isPending)
        }
        #expect(reassembler.nextDeadline == start + .seconds(2))
        reassembler.expire(now: start + .seconds(2) - .nanoseconds(1))
        #expect(reassembler.partialMessageCount == 1)
        reassembler.expire(now: start + .seconds(2))
        #expect(reassembler.partialMessageCount == 0)
        #expect(reassembler.partialByteCount == 0)
        #expect(reassembler.counters.timedOut == 1)
        // The late fragment starts a new incomplete message, which times out too.
        let late = start + .seconds(3)
        #expect(feed(reassembler, pieces[pieces.count - 1], now: late).isPending)
        #expect(feed(reassembler, [UInt8](), now: late + .seconds(2)).dropReason == .truncated)
        #expect(reassembler.counters.timedOut == 2)
        #expect(reassembler.counters.messagesCompleted == 0)
    }

    @Test("a flood of incomplete messages from one sender is held to the per-sender caps")
    func floodFromOneSender() throws {
        let limits = FragmentReassembler.Limits(
            maximumPartialMessagesPerSender: 4, maximumPartialMessages: 10)
        let reassembler = try FragmentReassembler(limits: limits)
        let bystander = Endpoint.loopbackV4(port: 7)
        #expect(feed(reassembler, try fragments(of: message, messageID: 999)[0], from: bystander).isPending)
        for id in 0..<1_000 as Range<UInt32> {
            _ = feed(reassembler, try fragments(of: message, messageID: id)[0])
            #expect(reassembler.partialMessageCount <= 5)
        }
        #expect(reassembler.partialMessageCount == 5)
        #expect(reassembler.counters.evicted == 996)
        // The bystander's message was not evicted by the flood.
        var completed: [UInt8]?
        for piece in try fragments(of: message, messageID: 999).dropFirst() {
            if let bytes = feed(reassembler, piece, from: bystander).completedBytes { completed = bytes }
        }
        #expect(completed == message)
    }

    @Test("a flood from many senders is held to the global caps, oldest evicted first")
    func floodFromManySenders() throws {
        let limits = FragmentReassembler.Limits(
            maximumMessageSize: 1 << 20, maximumPartialBytesPerSender: 1 << 20,
            maximumPartialMessages: 64, maximumPartialBytes: 4 << 20)
        let reassembler = try FragmentReassembler(limits: limits)
        // Each first fragment claims a 1 MiB message: the byte cap binds
        // (4 messages) before the count cap (64).
        let large = pseudoRandomBytes(1 << 20, seed: 3)
        let first = try fragmentDatagram(of: large, index: 0, count: 763)
        for port in 1...200 as ClosedRange<UInt16> {
            #expect(feed(reassembler, first, from: .loopbackV4(port: port)).isPending)
            #expect(reassembler.partialByteCount <= 4 << 20)
        }
        #expect(reassembler.partialMessageCount == 4)
        #expect(reassembler.counters.evicted == 196)
        // The survivors are the newest: a second fragment from port 200 is accepted.
        let second = try fragmentDatagram(of: large, index: 1, count: 763)
        #expect(feed(reassembler, second, from: .loopbackV4(port: 200)).isPending)
        #expect(feed(reassembler, second, from: .loopbackV4(port: 1)).isPending)
        #expect(reassembler.counters.evicted == 197)
    }

    @Test("a single-fragment message completes at once")
    func singleFragment() throws {
        let reassembler = try FragmentReassembler()
        let short = Array(message[..<100])
        let pieces = try fragments(of: short)
        #expect(pieces.count == 1)
        #expect(feed(reassembler, pieces[0]).completedBytes == short)
        #expect(reassembler.partialMessageCount == 0)
    }

    @Test("invalid limits are refused")
    func invalidLimits() {
        #expect(throws: ConfigurationError.self) {
            _ = try FragmentReassembler(limits: .init(maximumPartialMessagesPerSender: 0))
        }
        #expect(throws: ConfigurationError.self) {
            _ = try FragmentReassembler(limits: .init(maximumMessageSize: 1 << 20, maximumPartialBytesPerSender: 1_000))
        }
    }
}
