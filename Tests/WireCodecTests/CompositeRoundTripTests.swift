import EventCore
import Testing
import WireCodec

@Suite("Composite message round trips")
struct CompositeRoundTripTests {
    @Test func randomMessagesRoundTrip() {
        var seeds = SeededRandomGenerator(seed: 0xC0DE)
        for _ in 0..<2_000 {
            let seed = seeds.next()
            var rng = SeededRandomGenerator(seed: seed)
            let message = SampleMessage.random(using: &rng)
            let bytes = encode(message)
            let decoded = bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try SampleMessage(decoding: raw) } }
            #expect(decoded.value == message, "seed \(seed)")
            if decoded.value != message { return }
        }
    }

    @Test func randomMessagesRoundTripInFrames() throws {
        var seeds = SeededRandomGenerator(seed: 0xF4A3E)
        for _ in 0..<500 {
            let seed = seeds.next()
            var rng = SeededRandomGenerator(seed: seed)
            let message = SampleMessage.random(using: &rng)
            let protocolID = ProtocolID.allCases.randomElement(using: &rng)!
            let flags = FrameFlags(rawValue: UInt8.random(in: 0...255, using: &rng))
            var writer = WireWriter()
            try Frame.encode(protocol: protocolID, flags: flags, into: &writer) { $0.write(message) }
            let decoded = writer.withUnsafeBytes { raw in
                Result { () throws(WireError) in
                    let (header, body) = try Frame.decode(raw)
                    return (header, try SampleMessage(decoding: body))
                }
            }
            let header = try #require(decoded.value?.0, "seed \(seed)")
            #expect(header.protocolID == protocolID, "seed \(seed)")
            #expect(header.flags == flags, "seed \(seed)")
            #expect(header.frameLength == writer.count, "seed \(seed)")
            #expect(decoded.value?.1 == message, "seed \(seed)")
        }
    }
}
