import EventCore
import Testing
import WireCodec

/// Checks in the spirit of SwiftNIO's ByteToMessageDecoderVerifier: frames
/// fed a byte at a time, cut short, buried in other bytes and back to back.
@Suite("Frame drip feed")
struct FrameDripFeedTests {
    private static func sampleFrame(seed: UInt64) throws -> [UInt8] {
        var rng = SeededRandomGenerator(seed: seed)
        let message = SampleMessage.random(using: &rng)
        var writer = WireWriter()
        try Frame.encode(protocol: .raft, into: &writer) { $0.write(message) }
        return writer.takeBytes()
    }

    @Test func growingByteByByteFailsUntilComplete() throws {
        let valid = try Self.sampleFrame(seed: 1)
        var fed: [UInt8] = []
        for byte in valid {
            let code = decodeFrame(fed).errorCode
            #expect(code == (fed.count < FrameHeader.size ? .truncated : .lengthMismatch), "\(fed.count) bytes fed")
            let peeked = fed.withUnsafeBytes { raw in Result { () throws(WireError) in try FrameHeader.peek(raw) } }
            #expect(peeked.errorCode == (fed.count < FrameHeader.size ? .truncated : nil), "\(fed.count) bytes fed")
            fed.append(byte)
        }
        #expect(decodeFrame(fed).errorCode == nil)
    }

    @Test func embeddedFrameDecodesWhenSlicedExactly() throws {
        var seeds = SeededRandomGenerator(seed: 0xE3BED)
        for _ in 0..<200 {
            let seed = seeds.next()
            var rng = SeededRandomGenerator(seed: seed)
            let valid = try Self.sampleFrame(seed: rng.next())
            let before = rng.bytes(count: Int.random(in: 0...32, using: &rng))
            let after = rng.bytes(count: Int.random(in: 1...32, using: &rng))
            let buffer = before + valid + after
            buffer.withUnsafeBytes { raw in
                let exact = UnsafeRawBufferPointer(rebasing: raw[before.count..<(before.count + valid.count)])
                let decoded = Result { () throws(WireError) in try SampleMessage(decoding: try Frame.decode(exact).body) }
                #expect(decoded.errorCode == nil, "seed \(seed)")
                let unsliced = UnsafeRawBufferPointer(rebasing: raw[before.count...])
                let tooLong = Result { () throws(WireError) in try Frame.decode(unsliced).header }
                #expect(tooLong.errorCode == .lengthMismatch, "seed \(seed)")
            }
        }
    }

    @Test func concatenatedFramesDecodeOneByOne() throws {
        var rng = SeededRandomGenerator(seed: 0xCA7)
        var messages: [SampleMessage] = []
        var writer = WireWriter()
        for _ in 0..<50 {
            let message = SampleMessage.random(using: &rng)
            messages.append(message)
            try Frame.encode(protocol: .gossip, into: &writer) { $0.write(message) }
        }
        let decoded = writer.withUnsafeBytes { raw in
            Result { () throws(WireError) -> [SampleMessage] in
                var rest = raw
                var out: [SampleMessage] = []
                while !rest.isEmpty {
                    let length = try FrameHeader.peek(rest).frameLength
                    guard length <= rest.count else {
                        throw WireError(.truncated, offset: 0, detail: "peeked length past the buffer")
                    }
                    let (_, body) = try Frame.decode(UnsafeRawBufferPointer(rebasing: rest[..<length]))
                    out.append(try SampleMessage(decoding: body))
                    rest = UnsafeRawBufferPointer(rebasing: rest[length...])
                }
                return out
            }
        }
        #expect(decoded.value == messages)
    }

    @Test func everyPrefixOfEveryFrameBodyIsTruncated() throws {
        // The body, cut inside a frame that declares the cut length, fails
        // as a message, never as a crash or a wrong value.
        var seeds = SeededRandomGenerator(seed: 0xD21B)
        for _ in 0..<20 {
            let seed = seeds.next()
            var rng = SeededRandomGenerator(seed: seed)
            let body = encode(SampleMessage.random(using: &rng))
            for length in 0..<body.count {
                let cut = try frame(body: Array(body[..<length]))
                let result = cut.withUnsafeBytes { raw in
                    Result { () throws(WireError) in try SampleMessage(decoding: try Frame.decode(raw).body) }
                }
                #expect(result.errorCode == .truncated, "seed \(seed), \(length) body bytes")
            }
        }
    }
}
