import EventCore
import Testing
import UDPTransport

@Suite("FragmentReassembler: hostile fragments")
struct HostileFragmentTests {
    let message = pseudoRandomBytes(3_000, seed: 9)

    /// Fragment `index` of the 3 fragments of `message`.
    private func piece(_ index: Int, id: UInt32 = 1) throws -> [UInt8] {
        try fragmentDatagram(of: message, index: index, count: 3, messageID: id)
    }

    /// Feeds `datagram` to a fresh reassembler (with `prefix` fed first) and
    /// checks it is dropped for `reason`, counted once, and nothing else is.
    private func expectDropped(
        _ datagram: [UInt8], for reason: FragmentReassembler.DropReason, after prefix: [[UInt8]] = [],
        limits: FragmentReassembler.Limits = .init(), sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let reassembler = try FragmentReassembler(limits: limits)
        for datagram in prefix { _ = feed(reassembler, datagram) }
        #expect(feed(reassembler, datagram).dropReason == reason, sourceLocation: sourceLocation)
        #expect(reassembler.counters[reason] == 1, sourceLocation: sourceLocation)
        #expect(reassembler.counters.droppedFragments == 1, sourceLocation: sourceLocation)
        #expect(reassembler.partialMessageCount == prefix.count, sourceLocation: sourceLocation)
    }

    @Test("a truncated header is dropped as truncated")
    func truncatedHeader() throws {
        let whole = try piece(0)
        for length in [0, 5, 12, 13, 24] {
            var cut = Array(whole[..<length])
            if length > 4 { cut[4] = 1 }
            try expectDropped(cut, for: .truncated)
        }
        // A frame whose body length says more than the bytes present.
        try expectDropped(Array(whole.dropLast()), for: .truncated)
    }

    @Test("a wrong magic or version is dropped as badFrame")
    func badFrame() throws {
        var magic = try piece(0)
        magic[0] ^= 0xFF
        try expectDropped(magic, for: .badFrame)
        var version = try piece(0)
        version[2] = 99
        try expectDropped(version, for: .badFrame)
    }

    @Test("a corrupted byte is dropped as badChecksum")
    func badChecksum() throws {
        for offset in [3, 14, 30, 500] {
            var corrupted = try piece(1)
            corrupted[offset] ^= 0x10
            try expectDropped(corrupted, for: .badChecksum)
        }
    }

    @Test("index not below count is dropped as indexOutOfRange")
    func indexOutOfRange() throws {
        try expectDropped(withRewrittenHeader(piece(2)) { $0.index = 3 }, for: .indexOutOfRange)
        try expectDropped(withRewrittenHeader(piece(2)) { $0.index = .max }, for: .indexOutOfRange)
    }

    @Test("a count of zero or over the limit is dropped as countOutOfRange")
    func countOutOfRange() throws {
        try expectDropped(withRewrittenHeader(piece(0)) { $0.count = 0 }, for: .countOutOfRange)
        try expectDropped(withRewrittenHeader(piece(0)) { $0.count = 8_193 }, for: .countOutOfRange)
        let limits = FragmentReassembler.Limits(maximumFragmentCount: 2)
        try expectDropped(piece(0), for: .countOutOfRange, limits: limits)
    }

    @Test("a message length over the limit is dropped as messageTooLarge")
    func messageTooLarge() throws {
        let limits = FragmentReassembler.Limits(maximumMessageSize: 2_999)
        try expectDropped(piece(0), for: .messageTooLarge, limits: limits)
        try expectDropped(withRewrittenHeader(piece(0)) { $0.messageLength = .max }, for: .messageTooLarge)
    }

    @Test("a chunk of the wrong length is dropped as badLength")
    func badLength() throws {
        // The chunk is 1,000 bytes, but a 3,000-byte message in 2 fragments has 1,500-byte chunks.
        try expectDropped(withRewrittenHeader(piece(0)) { $0.count = 2 }, for: .badLength)
        // An empty message, and more fragments than bytes.
        try expectDropped(withRewrittenHeader(piece(0)) { $0.messageLength = 0 }, for: .badLength)
        let tiny = craftedFragment(.init(messageID: 1, index: 0, count: 5, messageLength: 3), chunk: [1])
        try expectDropped(tiny, for: .badLength)
        // A chunk cut short, with a consistent frame.
        let short = craftedFragment(
            .init(messageID: 1, index: 0, count: 3, messageLength: 3_000), chunk: Array(message[..<999]))
        try expectDropped(short, for: .badLength)
    }

    @Test("a count or length that contradicts earlier fragments is dropped as inconsistent")
    func inconsistent() throws {
        // Same id, different count (6 fragments of a 6,000-byte message: also 1,000-byte chunks).
        let otherCount = try withRewrittenHeader(piece(1)) {
            $0.count = 6
            $0.messageLength = 6_000
        }
        try expectDropped(otherCount, for: .inconsistent, after: [piece(0)])
        // Same id and count, different length (3 fragments of 2,998 bytes: last chunk 998).
        let shorter = craftedFragment(
            .init(messageID: 1, index: 2, count: 3, messageLength: 2_998), chunk: Array(message[2_000..<2_998]))
        try expectDropped(shorter, for: .inconsistent, after: [piece(0)])
    }

    @Test("a repeated fragment is dropped as duplicate")
    func duplicate() throws {
        try expectDropped(piece(1), for: .duplicate, after: [piece(1)])
    }

    @Test("random garbage with the fragment flag never traps, never completes a message, and is counted")
    func garbage() throws {
        let seed: UInt64 = 0x9E37_79B9
        var random = SeededRandomGenerator(seed: seed)
        let reassembler = try FragmentReassembler()
        for round in 0..<2_000 {
            var datagram = pseudoRandomBytes(Int.random(in: 0..<1_024, using: &random), seed: random.next())
            if datagram.count > 4 { datagram[4] |= 1 }
            if round % 2 == 0 && datagram.count >= 25 {
                // Valid frame and checksum, random fragment fields.
                let header = FragmentHeader(
                    messageID: .random(in: .min ... .max, using: &random),
                    index: .random(in: .min ... .max, using: &random),
                    count: .random(in: 2 ... .max, using: &random),
                    messageLength: .random(in: .min ... .max, using: &random))
                datagram = craftedFragment(header, chunk: Array(datagram[25...]))
            }
            if case .completed = feed(reassembler, datagram) {
                Issue.record("garbage completed a message (seed \(seed), round \(round))")
            }
        }
        #expect(reassembler.partialByteCount <= reassembler.limits.maximumPartialBytes)
        // Every datagram counted once, as a drop or a stored fragment of a
        // message that never completes.
        let counters = reassembler.counters
        #expect(counters.fragmentsAccepted + counters.droppedFragments == 2_000)
        #expect(counters.messagesCompleted == 0)
        #expect(counters.droppedFragments > 1_900)
    }

    @Test("honest and hostile fragments mixed: caps hold at every step, every datagram is counted once, honest messages complete intact")
    func mixedTraffic() throws {
        let seed: UInt64 = 0xF7A6
        var random = SeededRandomGenerator(seed: seed)
        let limits = FragmentReassembler.Limits(
            maximumMessageSize: 20_000, reassemblyTimeout: .seconds(1), maximumPartialMessagesPerSender: 3,
            maximumPartialBytesPerSender: 40_000, maximumPartialMessages: 8, maximumPartialBytes: 100_000)
        let reassembler = try FragmentReassembler(limits: limits)
        let messages = (0..<5).map { pseudoRandomBytes(2_000 + 4_000 * $0, seed: UInt64($0)) }
        // Honest fragments use message ids 0..<5 (the message's index); hostile ones 1,000 and up.
        let honest = try messages.indices.map { try fragments(of: messages[$0], messageID: UInt32($0)) }
        let senders = (1...6).map { Endpoint.loopbackV4(port: UInt16($0)) }
        var now = Instant.zero
        var fed: UInt64 = 0
        var completed = 0
        for step in 0..<20_000 {
            now = now + .milliseconds(Int64.random(in: 0...20, using: &random))
            let sender = senders.randomElement(using: &random)!
            let which = Int.random(in: 0..<messages.count, using: &random)
            var datagram = honest[which].randomElement(using: &random)!
            let isHostile = Int.random(in: 0..<10, using: &random) < 3
            if isHostile {
                datagram = withRewrittenHeader(datagram) { header in
                    header.messageID = 1_000 + UInt32.random(in: 0..<4, using: &random)
                    switch Int.random(in: 0..<3, using: &random) {
                    case 0: header.count = .random(in: .min ... .max, using: &random)
                    case 1: header.index = .random(in: 0..<header.count, using: &random)
                    default: header.messageLength = .random(in: 0...30_000, using: &random)
                    }
                }
                if Bool.random(using: &random) {
                    datagram[Int.random(in: 0..<datagram.count, using: &random)] ^= 0x40
                }
            }
            let outcome = feed(reassembler, datagram, from: sender, now: now)
            fed += 1
            if let bytes = outcome.completedBytes, !isHostile {
                completed += 1
                #expect(bytes == messages[which], "seed \(seed), step \(step)")
            }
            #expect(reassembler.partialByteCount <= limits.maximumPartialBytes, "seed \(seed), step \(step)")
            #expect(reassembler.partialMessageCount <= limits.maximumPartialMessages, "seed \(seed), step \(step)")
            let counters = reassembler.counters
            #expect(counters.fragmentsAccepted + counters.droppedFragments == fed, "seed \(seed), step \(step)")
        }
        #expect(completed > 0, "seed \(seed): no honest message completed")
        // The charges add up: dropping what is left leaves nothing charged.
        reassembler.removeAll()
        #expect(reassembler.partialByteCount == 0, "seed \(seed)")
    }
}
