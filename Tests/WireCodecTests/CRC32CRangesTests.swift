import EventCore
import Testing
@testable import WireCodec

@Suite("CRC32C of ranges")
struct CRC32CRangesTests {
    @Test("a range's checksum after a salt is the checksum of the salt and the range fed in turn")
    func matchesFeeding() {
        var seeds = SeededRandomGenerator(seed: 0xC4C2)
        for _ in 0..<40 {
            let seed = seeds.next()
            var rng = SeededRandomGenerator(seed: seed)
            let bytes = rng.bytes(count: Int.random(in: 0...20_000, using: &rng))
            let salt = rng.next()
            bytes.withUnsafeBytes { buffer in
                let ranges = CRC32CRanges(buffer)
                for _ in 0..<50 {
                    let start = Int.random(in: 0...bytes.count, using: &rng)
                    // Long ranges half the time: past the direct limit, the
                    // kept registers and the multiplications answer.
                    let longest = bytes.count - start
                    let length = Bool.random(using: &rng)
                        ? Int.random(in: 0...longest, using: &rng)
                        : Int.random(in: min(longest, CRC32CRanges.directLimit)...longest, using: &rng)
                    var fed = CRC32C(salt: salt)
                    fed.update(UnsafeRawBufferPointer(rebasing: buffer[start..<(start + length)]))
                    let answer = ranges.checksum(of: start..<(start + length), after: CRC32C(salt: salt))
                    #expect(answer == fed.value, "seed \(seed), range \(start)..<\(start + length)")
                }
            }
        }
    }

    @Test("shifting a register by n zero bytes is feeding it n zero bytes")
    func shiftIsFeedingZeros() {
        var rng = SeededRandomGenerator(seed: 0x5F7)
        for count in [0, 1, 2, 3, 7, 8, 63, 64, 65, 1_000, 4_097, 65_536, 1_000_003] {
            let salt = rng.next()
            var fed = CRC32C(salt: salt)
            fed.update([UInt8](repeating: 0, count: count))
            #expect(CRC32CRanges.shifted(CRC32C(salt: salt).state, byZeroBytes: count) == fed.state, "count \(count)")
        }
    }
}
