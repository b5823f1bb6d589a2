import EventCore
import Testing
import WireCodec

@Suite("Frame header and checks")
struct FrameTests {
    private let body: [UInt8] = Array("hello, frame".utf8)

    @Test func headerLayout() throws {
        let bytes = try frame(.raft, flags: .fragment, body: body)
        #expect(bytes.count == FrameHeader.size + body.count)
        #expect(Array(bytes[0..<5]) == [0xC4, 0x05, 1, 3, 1])
        #expect(Array(bytes[5..<9]) == [UInt8(body.count), 0, 0, 0])
        var crc = CRC32C()
        crc.update(Array(bytes[..<9]))
        crc.update(body)
        #expect(Array(bytes[9..<13]) == withUnsafeBytes(of: crc.value.littleEndian, Array.init))
        #expect(Array(bytes[13...]) == body)
    }

    @Test func decodeReturnsHeaderAndBody() throws {
        let bytes = try frame(.casPaxos, flags: [.fragment, FrameFlags(rawValue: 0x80)], body: body)
        let (header, decodedBody) = try decodeFrame(bytes).get()
        #expect(header.protocolID == .casPaxos)
        #expect(header.flags == [.fragment, FrameFlags(rawValue: 0x80)])
        #expect(header.bodyLength == body.count)
        #expect(header.frameLength == bytes.count)
        #expect(decodedBody == body)
        let peeked = try bytes.withUnsafeBytes { raw throws(WireError) in try FrameHeader.peek(raw) }
        #expect(peeked == header)
    }

    @Test func emptyBody() throws {
        let bytes = try frame(.client, body: [])
        #expect(bytes.count == FrameHeader.size)
        #expect(decodeFrame(bytes).value?.1 == [])
    }

    @Test func badMagic() throws {
        var bytes = try frame(body: body)
        bytes[0] ^= 0x01
        #expect(decodeFrame(resealed(bytes)).errorCode == .badMagic)
        bytes = try frame(body: body)
        bytes[1] = 0
        #expect(decodeFrame(resealed(bytes)).errorCode == .badMagic)
    }

    @Test func unsupportedVersion() throws {
        for version: UInt8 in [0, 2, 255] {
            var bytes = try frame(body: body)
            bytes[2] = version
            #expect(decodeFrame(resealed(bytes)).errorCode == .unsupportedVersion, "version \(version)")
            #expect(bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try FrameHeader.peek(raw) } }.errorCode == .unsupportedVersion)
        }
    }

    @Test func unknownProtocol() throws {
        for id: UInt8 in [0, 6, 200, 255] {
            var bytes = try frame(body: body)
            bytes[3] = id
            #expect(decodeFrame(resealed(bytes)).errorCode == .unknownProtocol, "id \(id)")
            #expect(bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try FrameHeader.peek(raw) } }.errorCode == .unknownProtocol)
            // Without a valid checksum the same frame is a bad checksum: the id is read only once the header is known intact.
            #expect(decodeFrame(bytes).errorCode == .badChecksum)
        }
    }

    @Test func badChecksum() throws {
        var bytes = try frame(body: body)
        bytes[9] ^= 0xFF
        #expect(decodeFrame(bytes).errorCode == .badChecksum)
        bytes = try frame(body: body)
        bytes[bytes.count - 1] ^= 0x10
        #expect(decodeFrame(bytes).errorCode == .badChecksum)
    }

    @Test func everySingleBitFlipIsRefused() throws {
        var rng = SeededRandomGenerator(seed: 0xB17)
        let message = SampleMessage.random(using: &rng)
        var writer = WireWriter()
        try Frame.encode(protocol: .gossip, into: &writer) { $0.write(message) }
        let valid = writer.takeBytes()
        #expect(decodeFrame(valid).errorCode == nil)
        for bit in 0..<(valid.count * 8) {
            var flipped = valid
            flipped[bit / 8] ^= 1 << UInt8(bit % 8)
            let code = decodeFrame(flipped).errorCode
            #expect(code != nil, "bit \(bit) flipped was accepted")
            #expect([.badMagic, .unsupportedVersion, .lengthMismatch, .lengthExceedsLimit, .badChecksum].contains(code),
                    "bit \(bit): \(String(describing: code))")
        }
    }

    @Test func bodyLengthDisagreeingWithTheDatagram() throws {
        let bytes = try frame(body: body)
        #expect(decodeFrame(bytes + [0]).errorCode == .lengthMismatch)
        #expect(decodeFrame(Array(bytes.dropLast())).errorCode == .lengthMismatch)
    }

    @Test func frameOverTheLimit() throws {
        let bytes = try frame(body: body)
        let exact = WireLimits(maximumFrameLength: bytes.count)
        #expect(decodeFrame(bytes, limits: exact).errorCode == nil)
        let tight = WireLimits(maximumFrameLength: bytes.count - 1)
        #expect(decodeFrame(bytes, limits: tight).errorCode == .lengthExceedsLimit)
        // A header claiming 4 GiB is refused by the limit before anything else.
        var claim = bytes
        claim.replaceSubrange(5..<9, with: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(decodeFrame(resealed(claim)).errorCode == .lengthExceedsLimit)
        let unlimited = WireLimits(maximumFrameLength: .max)
        #expect(decodeFrame(resealed(claim), limits: unlimited).errorCode == .lengthMismatch)
        #expect(decodeFrame(bytes, limits: WireLimits(maximumFrameLength: .min)).errorCode == .lengthExceedsLimit)
    }

    @Test func encodingOverTheLimitThrowsAndRollsBack() {
        var writer = WireWriter()
        writer.writeUInt8(42)
        let limits = WireLimits(maximumFrameLength: FrameHeader.size + 3)
        let result = Result { () throws(WireError) in
            try Frame.encode(protocol: .swim, limits: limits, into: &writer) { $0.writeBytes([1, 2, 3]) }
        }
        #expect(result.errorCode == .lengthExceedsLimit)
        #expect(writer.bytes == [42])
        let fits = Result { () throws(WireError) in
            try Frame.encode(protocol: .swim, limits: limits, into: &writer) {
                $0.writeUInt16(7)
                $0.writeUInt8(1)
            }
        }
        #expect(fits.errorCode == nil)
        #expect(writer.count == 1 + FrameHeader.size + 3)
    }

    @Test func bodyThatRemovesEarlierBytesIsRefused() {
        var writer = WireWriter()
        let result = Result { () throws(WireError) in
            try Frame.encode(protocol: .swim, into: &writer) { $0.removeAll() }
        }
        #expect(result.errorCode == .lengthMismatch)
    }

    @Test func shortInputIsTruncated() {
        #expect(decodeFrame([]).errorCode == .truncated)
        #expect(decodeFrame([0xC4, 0x05, 1]).errorCode == .truncated)
    }
}
