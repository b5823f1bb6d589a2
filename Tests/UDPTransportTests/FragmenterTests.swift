import EventCore
import Testing
import UDPTransport
import WireCodec

@Suite("Fragmenter and FragmentHeader")
struct FragmenterTests {
    @Test("chunk ranges tile the message exactly: non-empty, all but the last of one size")
    func chunkRangesTile() {
        for length in [1, 2, 3, 7, 100, 1_375, 1_376, 10_000, 65_537] {
            for count in [1, 2, 3, 5, 64, 1_000] where count <= length {
                let ranges = (0..<count).compactMap {
                    FragmentHeader.chunkRange(index: $0, count: count, messageLength: length)
                }
                // Fewer ranges only when even chunks would leave the last empty.
                if ranges.count == count {
                    #expect(ranges.first?.lowerBound == 0)
                    #expect(ranges.last?.upperBound == length)
                    #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
                    #expect(ranges.allSatisfy { !$0.isEmpty })
                    #expect(ranges.dropLast().allSatisfy { $0.count == ranges[0].count })
                    #expect((ranges.last?.count ?? 0) <= ranges[0].count)
                } else {
                    #expect(ranges.isEmpty)
                }
            }
        }
        #expect(FragmentHeader.chunkRange(index: 0, count: 0, messageLength: 10) == nil)
        #expect(FragmentHeader.chunkRange(index: 3, count: 3, messageLength: 10) == nil)
        #expect(FragmentHeader.chunkRange(index: 0, count: 4, messageLength: 3) == nil)
        // chunk × (count - 1) overflows: nil, not a trap.
        #expect(FragmentHeader.chunkRange(index: 0, count: Int.max / 2, messageLength: Int.max) == nil)
        #expect(FragmentHeader.chunkRange(index: 0, count: 1, messageLength: 0) == nil)
    }

    @Test("every count the fragmenter chooses gives valid ranges that fit a datagram")
    func fragmenterCounts() throws {
        let fragmenter = try Fragmenter(maximumDatagramSize: 1_400)
        #expect(fragmenter.maximumChunkSize == 1_375)
        for length in [1, 1_374, 1_375, 1_376, 2_750, 2_751, 1 << 20, (4 << 20) + 13] {
            let count = fragmenter.fragmentCount(messageLength: length)
            #expect(count == (length + 1_374) / 1_375)
            for index in [0, count - 1] {
                let range = FragmentHeader.chunkRange(index: index, count: count, messageLength: length)
                #expect(range != nil)
                #expect((range?.count ?? .max) <= fragmenter.maximumChunkSize)
            }
        }
    }

    @Test("fragment datagrams are valid frames with the fragment flag, no larger than the limit")
    func datagramsAreFrames() throws {
        let message = [0xC4, 0x05, 1, 2] + pseudoRandomBytes(5_000, seed: 1)
        let pieces = try fragments(of: message, messageID: 77, datagramSize: 1_000)
        #expect(pieces.count == 6)
        for piece in pieces {
            #expect(piece.count <= 1_000)
            try piece.withUnsafeBytes { bytes in
                #expect(FragmentHeader.isFragment(bytes))
                let (header, body) = try Frame.decode(bytes)
                #expect(header.flags.contains(.fragment))
                #expect(header.protocolID == .swim)  // the message's byte 3
                #expect(body.count == piece.count - FrameHeader.size)
            }
        }
    }

    @Test("a datagram size that cannot hold a fragment header and one byte is a configuration error", arguments: [
        Int.min, -1, 0, 25, 65_508, Int.max,
    ])
    func invalidDatagramSize(size: Int) {
        #expect(throws: ConfigurationError.self) { try Fragmenter(maximumDatagramSize: size) }
    }
}
