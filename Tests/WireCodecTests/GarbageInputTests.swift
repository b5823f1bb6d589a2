import EventCore
import Testing
import WireCodec

/// Random bytes must only ever produce a WireError (a trap would kill the
/// test process), and whatever does decode must re-encode to the same value.
@Suite("Random garbage")
struct GarbageInputTests {
    /// 100,000 inputs in four parallel chunks of 25,000, each with its own
    /// seed (Swift Testing captures a backtrace on every throw, so the work is
    /// spread over the cores).
    @Test(arguments: 0..<4)
    func randomDatagramsNeverTrap(chunk: UInt64) {
        let seed: UInt64 = 0x6A5BA6E &+ chunk
        var rng = SeededRandomGenerator(seed: seed)
        var codes: [WireError.Code: Int] = [:]
        for index in 0..<25_000 {
            var bytes = rng.bytes(count: Int.random(in: 0...256, using: &rng))
            // Give half of the inputs a plausible start so checks past the magic run too.
            if index % 2 == 0, bytes.count >= 3 {
                bytes[0] = 0xC4
                bytes[1] = 0x05
                bytes[2] = 1
            }
            bytes.withUnsafeBytes { raw in
                do throws(WireError) {
                    _ = try Frame.decode(raw)
                } catch {
                    codes[error.code, default: 0] += 1
                }
                do throws(WireError) {
                    let message = try SampleMessage(decoding: raw)
                    let again = encode(message).withUnsafeBytes { raw in
                        Result { () throws(WireError) in try SampleMessage(decoding: raw) }
                    }
                    #expect(again.value == message, "seed \(seed), input \(index)")
                } catch {
                    codes[error.code, default: 0] += 1
                }
            }
        }
        #expect(codes[.badMagic, default: 0] > 0, "seed \(seed): \(codes)")
        #expect(codes[.truncated, default: 0] > 0, "seed \(seed): \(codes)")
    }

    @Test func randomBodiesInValidFramesNeverTrap() throws {
        let seed: UInt64 = 0xB0D1E5
        var rng = SeededRandomGenerator(seed: seed)
        let limits = WireLimits(maximumByteStringLength: 64, maximumCollectionCount: 8)
        for index in 0..<20_000 {
            let body = rng.bytes(count: Int.random(in: 0...256, using: &rng))
            let bytes = try frame(body: body)
            let result = bytes.withUnsafeBytes { raw in
                Result { () throws(WireError) in
                    try SampleMessage(decoding: try Frame.decode(raw, limits: limits).body, limits: limits)
                }
            }
            if let message = result.value {
                #expect(encode(message).count == body.count, "seed \(seed), input \(index)")
            }
        }
    }
}
