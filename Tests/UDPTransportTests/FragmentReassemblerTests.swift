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

    static let floodLimits = FragmentReassembler.Limits(
        maximumMessageSize: 1 << 20, maximumPartialBytesPerSender: 1 << 20,
        maximumPartialMessages: 64, maximumPartialBytes: 4 << 20)

    /// Before messages were charged by the pages written, each first
    /// fragment here booked its whole claimed megabyte: four of them
    /// evicted the honest message, and a flood of them kept every large
    /// message from completing.
    @Test("a flood of first fragments claiming large messages evicts its own messages, not honest ones under way or starting")
    func floodFromManySenders() throws {
        let reassembler = try FragmentReassembler(limits: Self.floodLimits)
        let megabyte = 1 << 20
        let first = try fragmentDatagram(of: pseudoRandomBytes(megabyte, seed: 3), index: 0, count: 763)
        let messages = [pseudoRandomBytes(megabyte, seed: 4), pseudoRandomBytes(megabyte, seed: 5)]
        let honest = try messages.indices.map { try fragments(of: messages[$0], messageID: UInt32(7 + $0)) }
        let honestSenders = [Endpoint.loopbackV4(port: 9_998), .loopbackV4(port: 9_999)]
        for piece in honest[0].prefix(20) { #expect(feed(reassembler, piece, from: honestSenders[0]).isPending) }
        let honestCharge = reassembler.partialByteCount
        #expect(honestCharge == 7 * FragmentReassembler.pageSize, "20 chunks of 1,375 bytes touch 7 pages")
        var port: UInt16 = 1
        func flood() -> FragmentReassembler.Outcome {
            defer { port += 1 }
            return feed(reassembler, first, from: .loopbackV4(port: port))
        }
        for _ in 0..<200 { #expect(flood().isPending) }
        // Each claim is charged a page; what binds is the memory the claims
        // reserve (four times the byte cap: 16 messages of 1 MiB).
        let held = reassembler.reservationLimit / megabyte
        #expect(reassembler.partialMessageCount == held)
        #expect(reassembler.partialByteCount == honestCharge + (held - 1) * FragmentReassembler.pageSize)
        #expect(reassembler.reservedByteCount == held * megabyte)
        #expect(reassembler.counters.evicted == UInt64(200 - (held - 1)))
        // The flood goes on, a claim from a new sender after each honest
        // fragment: the message under way completes, and so does one that
        // starts in the middle of it.
        var completed: [Int] = []
        for step in 0..<max(honest[0].count - 20, honest[1].count) {
            for (which, pieces) in honest.enumerated() {
                let index = which == 0 ? 20 + step : step
                guard index < pieces.count else { continue }
                if let bytes = feed(reassembler, pieces[index], from: honestSenders[which]).completedBytes {
                    #expect(bytes == messages[which])
                    completed.append(which)
                }
                _ = flood()
            }
            #expect(reassembler.partialByteCount <= Self.floodLimits.maximumPartialBytes)
            #expect(reassembler.reservedByteCount <= reassembler.reservationLimit)
        }
        #expect(Set(completed) == [0, 1])
        reassembler.removeAll()
        #expect(reassembler.partialByteCount == 0 && reassembler.reservedByteCount == 0)
    }

    @Test("with 60,000-byte datagrams too, a flood of first fragments evicts its own messages, not one under way")
    func floodOfLargeDatagrams() throws {
        let limits = FragmentReassembler.Limits(
            maximumMessageSize: 1 << 20, maximumPartialBytesPerSender: 1 << 20,
            maximumPartialMessages: 16, maximumPartialBytes: 4 << 20)
        let reassembler = try FragmentReassembler(limits: limits)
        let size = 60_000
        let claim = try fragmentDatagram(of: pseudoRandomBytes(1 << 20, seed: 8), index: 0, count: 18, datagramSize: size)
        let message = pseudoRandomBytes(1 << 20, seed: 9)
        let pieces = try fragments(of: message, messageID: 3, datagramSize: size)
        let honest = Endpoint.loopbackV4(port: 9_999)
        for piece in pieces.prefix(5) { #expect(feed(reassembler, piece, from: honest).isPending) }
        // Each claim is charged 15 pages: by bytes, as far along as the
        // honest message's first fragments.
        var completed: [UInt8]?
        for (port, piece) in zip(UInt16(1)..., pieces.dropFirst(5)) {
            for offset in 0..<10 { _ = feed(reassembler, claim, from: .loopbackV4(port: port * 10 + UInt16(offset))) }
            if let bytes = feed(reassembler, piece, from: honest).completedBytes { completed = bytes }
        }
        #expect(completed.map { $0 == message } == true)
    }

    @Test("of two messages that outgrow the byte cap together, the one further along completes; the other gives way")
    func growthHeldToByteCap() throws {
        let limits = FragmentReassembler.Limits(
            maximumMessageSize: 1 << 20, maximumPartialBytesPerSender: 1 << 20, maximumPartialBytes: 1 << 20)
        let reassembler = try FragmentReassembler(limits: limits)
        let messages = [pseudoRandomBytes(1 << 20, seed: 5), pseudoRandomBytes(1 << 20, seed: 6)]
        let pieces = try messages.enumerated().map { try fragments(of: $1, messageID: UInt32($0)) }
        var completed: [Int] = []
        for index in pieces[0].indices {
            for (sender, message) in pieces.enumerated() {
                let outcome = feed(reassembler, message[index], from: .loopbackV4(port: UInt16(100 + sender)))
                if let bytes = outcome.completedBytes {
                    #expect(bytes == messages[sender])
                    completed.append(sender)
                }
                #expect(reassembler.partialByteCount <= limits.maximumPartialBytes)
            }
        }
        // Together they pass the cap: the second, never further along
        // than the first, gives way each time (evicted, or its later
        // fragments finding no room); the first completes.
        #expect(completed == [0])
        #expect(reassembler.counters.evicted >= 1)
        #expect(reassembler.counters.noRoom > 0)
        // The charges add up: dropping what is left leaves nothing charged.
        reassembler.removeAll()
        #expect(reassembler.partialByteCount == 0)
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
