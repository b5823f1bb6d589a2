import EventCore
import Testing
import UDPTransport

@Suite("FragmentReassembler: hostile fragments")
struct HostileFragmentTests {
    let message = pseudoRandomBytes(3_000, seed: 9)

    /// Fragment `index` of the 3 fragments of `message`.
    private func piece(_ index: Int, id: UInt32 = 1) -> [UInt8] {
        fragmentDatagram(of: message, index: index, count: 3, messageID: id)
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
        let whole = piece(0)
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
        var magic = piece(0)
        magic[0] ^= 0xFF
        try expectDropped(magic, for: .badFrame)
        var version = piece(0)
        version[2] = 99
        try expectDropped(version, for: .badFrame)
    }

    @Test("a corrupted byte is dropped as badChecksum")
    func badChecksum() throws {
        for offset in [3, 14, 30, 500] {
            var corrupted = piece(1)
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
        let otherCount = withRewrittenHeader(piece(1)) {
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

    @Test("random garbage with the fragment flag never traps and is always dropped")
    func garbage() throws {
        let reassembler = try FragmentReassembler()
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for round in 0..<2_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            var datagram = pseudoRandomBytes(Int(state >> 54), seed: state)
            if datagram.count > 4 { datagram[4] |= 1 }
            if round % 2 == 0 && datagram.count >= 25 {
                // Valid frame and checksum, random fragment fields.
                let header = FragmentHeader(
                    messageID: UInt32(truncatingIfNeeded: state), index: UInt16(truncatingIfNeeded: state >> 8),
                    count: UInt16(truncatingIfNeeded: state >> 24),
                    messageLength: UInt32(truncatingIfNeeded: state >> 32))
                datagram = craftedFragment(header, chunk: Array(datagram[25...]))
            }
            if case .completed = feed(reassembler, datagram) {
                Issue.record("garbage completed a message (round \(round))")
            }
        }
        #expect(reassembler.partialByteCount <= reassembler.limits.maximumPartialBytes)
    }
}
