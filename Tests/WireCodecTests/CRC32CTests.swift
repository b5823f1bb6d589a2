import EventCore
import Testing
@testable import WireCodec

/// The bit-at-a-time definition, to check the table-driven one against.
private func referenceCRC32C(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 {
            crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
        }
    }
    return ~crc
}

private func checksum(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBytes { CRC32C.checksum($0) }
}

@Suite("CRC32C")
struct CRC32CTests {
    @Test func publishedVectors() {
        // RFC 3720, appendix B.4.
        #expect(checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(checksum((0...31).map { UInt8($0) }) == 0x46DD_794E)
        #expect(checksum((0...31).reversed().map { UInt8($0) }) == 0x113F_DB5C)
        // The CRC catalogue's check value.
        #expect(checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(checksum([]) == 0)
        #expect(CRC32C().value == 0)
    }

    @Test func matchesTheBitwiseDefinition() {
        var seeds = SeededRandomGenerator(seed: 0xC4C)
        for _ in 0..<300 {
            let seed = seeds.next()
            var rng = SeededRandomGenerator(seed: seed)
            let bytes = rng.bytes(count: Int.random(in: 0...100, using: &rng))
            #expect(checksum(bytes) == referenceCRC32C(bytes), "seed \(seed)")
        }
    }

    @Test func incrementalEqualsOneShot() {
        var seeds = SeededRandomGenerator(seed: 0x1AC)
        for _ in 0..<500 {
            let seed = seeds.next()
            var rng = SeededRandomGenerator(seed: seed)
            let bytes = rng.bytes(count: Int.random(in: 0...200, using: &rng))
            let cuts = (0..<Int.random(in: 1...4, using: &rng)).map { _ in Int.random(in: 0...bytes.count, using: &rng) }.sorted()
            var crc = CRC32C()
            var start = 0
            for cut in cuts + [bytes.count] {
                crc.update(Array(bytes[start..<cut]))
                start = cut
            }
            #expect(crc.value == checksum(bytes), "seed \(seed), cuts \(cuts)")
        }
    }

    @Test("a salted checksum is the checksum of the salt's 8 little-endian bytes, then the data")
    func salted() {
        let salt: UInt64 = 0x0123_4567_89AB_CDEF
        let data = Array("123456789".utf8)
        var crc = CRC32C(salt: salt)
        crc.update(data)
        #expect(crc.value == referenceCRC32C([0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01] + data))
        #expect(crc.value != checksum(data))
    }

    /// The tests above check whichever way ``CRC32C/update(_:)`` computes
    /// on this CPU (its instruction, here); this one checks the tables a
    /// CPU without it uses, against that way.
    @Test func tablesAgreeWithTheInstruction() {
        var seeds = SeededRandomGenerator(seed: 0x7AB1E)
        for _ in 0..<300 {
            let seed = seeds.next()
            var rng = SeededRandomGenerator(seed: seed)
            let bytes = rng.bytes(count: Int.random(in: 0...300, using: &rng))
            let offset = Int.random(in: 0...min(7, bytes.count), using: &rng)
            bytes.withUnsafeBytes { raw in
                let slice = UnsafeRawBufferPointer(rebasing: raw[offset...])
                var tables = CRC32C()
                tables.updateWithTables(slice)
                #expect(tables.value == CRC32C.checksum(slice), "seed \(seed)")
                #expect(tables.value == referenceCRC32C(Array(bytes[offset...])), "seed \(seed)")
            }
        }
    }

    @Test func unalignedInput() {
        let bytes = (0..<64).map { UInt8($0 * 7 & 0xFF) }
        bytes.withUnsafeBytes { raw in
            for offset in 0..<8 {
                let slice = UnsafeRawBufferPointer(rebasing: raw[offset...])
                #expect(CRC32C.checksum(slice) == referenceCRC32C(Array(bytes[offset...])), "offset \(offset)")
            }
        }
    }
}
