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

    @Test("ranges at the buffer's ends, at kept registers and empty, in buffers of every size around the stride")
    func edges() {
        var rng = SeededRandomGenerator(seed: 0xED6E)
        let stride = CRC32CRanges.stride
        for count in [0, 1, stride - 1, stride, stride + 1, 10 * stride, CRC32CRanges.directLimit * 3 + 5] {
            let bytes = rng.bytes(count: count)
            let salt = rng.next()
            let cuts = Set([0, 1, stride, count / 2, count - stride, count - 1, count].filter { (0...count).contains($0) })
            bytes.withUnsafeBytes { buffer in
                let ranges = CRC32CRanges(buffer)
                for start in cuts {
                    for end in cuts where end >= start {
                        var fed = CRC32C(salt: salt)
                        fed.update(UnsafeRawBufferPointer(rebasing: buffer[start..<end]))
                        #expect(ranges.checksum(of: start..<end, after: CRC32C(salt: salt)) == fed.value,
                                "\(count) bytes, range \(start)..<\(end)")
                    }
                }
            }
        }
    }

    @Test("a long range's checksum comes from the registers kept at construction, not from reading the range again")
    func longRangesAreNotRead() {
        var rng = SeededRandomGenerator(seed: 0x4EAD)
        var bytes = rng.bytes(count: 8_192)
        let range = (10 * CRC32CRanges.stride + 5)..<(100 * CRC32CRanges.stride + 7)
        var fed = CRC32C(salt: 9)
        fed.update(Array(bytes[range]))
        bytes.withUnsafeMutableBytes { buffer in
            let ranges = CRC32CRanges(UnsafeRawBufferPointer(buffer))
            // Overwritten after the pass: only the bytes between a kept
            // register and the range's ends are read again.
            for index in 1_000..<5_000 { buffer[index] = ~buffer[index] }
            #expect(ranges.checksum(of: range, after: CRC32C(salt: 9)) == fed.value)
        }
    }

    @Test("shifting a register by n zero bytes is feeding it n zero bytes")
    func shiftIsFeedingZeros() {
        var rng = SeededRandomGenerator(seed: 0x5F7)
        for count in [0, 1, 2, 3, 7, 8, 63, 64, 65, 255, 256, 257, 1_000, 4_097, 65_536, 65_793, 1_000_003, 16_777_217] {
            let salt = rng.next()
            var fed = CRC32C(salt: salt)
            fed.update([UInt8](repeating: 0, count: count))
            #expect(CRC32CRanges.shifted(CRC32C(salt: salt).state, byZeroBytes: count) == fed.state, "count \(count)")
        }
    }
}
