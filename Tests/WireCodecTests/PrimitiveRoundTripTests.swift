import EventCore
import Testing
import WireCodec

/// Writes random values of one primitive and reads them back, one case per
/// seed drawn from `seed`; a failure names the case's own seed.
private func checkRoundTrip<Value: Equatable>(
    seed: UInt64, cases: Int = 2_000,
    make: (inout SeededRandomGenerator) -> Value,
    write: (inout WireWriter, Value) -> Void,
    read: (inout WireReader) throws(WireError) -> Value,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    var seeds = SeededRandomGenerator(seed: seed)
    for _ in 0..<cases {
        let caseSeed = seeds.next()
        var rng = SeededRandomGenerator(seed: caseSeed)
        let value = make(&rng)
        let bytes = encode { write(&$0, value) }
        let decoded = decode(bytes, read)
        #expect(decoded == .success(value), "seed \(caseSeed): \(value) -> \(bytes)", sourceLocation: sourceLocation)
        if decoded != .success(value) { return }
    }
}

@Suite("Primitive round trips")
struct PrimitiveRoundTripTests {
    @Test func fixedUnsigned() {
        checkRoundTrip(seed: 1, make: { UInt8(truncatingIfNeeded: $0.next()) },
                       write: { $0.writeUInt8($1) }, read: { r throws(WireError) in try r.readUInt8() })
        checkRoundTrip(seed: 2, make: { UInt16(truncatingIfNeeded: $0.next()) },
                       write: { $0.writeUInt16($1) }, read: { r throws(WireError) in try r.readUInt16() })
        checkRoundTrip(seed: 3, make: { UInt32(truncatingIfNeeded: $0.next()) },
                       write: { $0.writeUInt32($1) }, read: { r throws(WireError) in try r.readUInt32() })
        checkRoundTrip(seed: 4, make: { $0.next() },
                       write: { $0.writeUInt64($1) }, read: { r throws(WireError) in try r.readUInt64() })
    }

    @Test func fixedSigned() {
        checkRoundTrip(seed: 5, make: { Int8(truncatingIfNeeded: $0.next()) },
                       write: { $0.writeInt8($1) }, read: { r throws(WireError) in try r.readInt8() })
        checkRoundTrip(seed: 6, make: { Int16(truncatingIfNeeded: $0.next()) },
                       write: { $0.writeInt16($1) }, read: { r throws(WireError) in try r.readInt16() })
        checkRoundTrip(seed: 7, make: { Int32(truncatingIfNeeded: $0.next()) },
                       write: { $0.writeInt32($1) }, read: { r throws(WireError) in try r.readInt32() })
        checkRoundTrip(seed: 8, make: { Int64(bitPattern: $0.next()) },
                       write: { $0.writeInt64($1) }, read: { r throws(WireError) in try r.readInt64() })
    }

    @Test func fixedWidthIsLittleEndian() {
        #expect(encode { $0.writeUInt16(0x0102) } == [0x02, 0x01])
        #expect(encode { $0.writeUInt32(0x0102_0304) } == [0x04, 0x03, 0x02, 0x01])
        #expect(encode { $0.writeUInt64(0x0102_0304_0506_0708) } == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(encode { $0.writeInt16(-2) } == [0xFE, 0xFF])
        #expect(encode { $0.writeInt8(-1) } == [0xFF])
    }

    @Test func varint() {
        checkRoundTrip(seed: 9, cases: 5_000, make: { $0.nextSpread() },
                       write: { $0.writeVarint($1) }, read: { r throws(WireError) in try r.readVarint() })
    }

    @Test func varintGoldenBytes() {
        #expect(encode { $0.writeVarint(0) } == [0x00])
        #expect(encode { $0.writeVarint(127) } == [0x7F])
        #expect(encode { $0.writeVarint(128) } == [0x80, 0x01])
        #expect(encode { $0.writeVarint(300) } == [0xAC, 0x02])
        #expect(encode { $0.writeVarint(UInt64.max) } == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        // Every bit length gives ceil(bits / 7) bytes (at least 1).
        for bits in 0...64 {
            let value: UInt64 = bits == 0 ? 0 : UInt64.max >> (64 - bits)
            #expect(encode { $0.writeVarint(value) }.count == max(1, (bits + 6) / 7), "bits \(bits)")
        }
        // Non-minimal encodings are accepted.
        #expect(decode([0x80, 0x00]) { r throws(WireError) in try r.readVarint() } == .success(0))
    }

    @Test func narrowedVarint() {
        checkRoundTrip(seed: 10, make: { UInt32(truncatingIfNeeded: $0.nextSpread()) },
                       write: { $0.writeVarint(UInt64($1)) },
                       read: { r throws(WireError) in try r.readVarint(as: UInt32.self) })
        #expect(decode([0xFF, 0x01]) { r throws(WireError) in try r.readVarint(as: UInt8.self) } == .success(255))
    }

    @Test func zigZag() {
        checkRoundTrip(seed: 11, cases: 5_000,
                       make: { rng in Int64(bitPattern: rng.nextSpread()) >> Int64.random(in: 0...63, using: &rng) },
                       write: { $0.writeZigZag($1) }, read: { r throws(WireError) in try r.readZigZag() })
        let mapping: [(Int64, UInt64)] = [(0, 0), (-1, 1), (1, 2), (-2, 3), (63, 126), (-64, 127),
                                          (Int64.max, UInt64.max - 1), (Int64.min, UInt64.max)]
        for (signed, unsigned) in mapping {
            #expect(encode { $0.writeZigZag(signed) } == encode { $0.writeVarint(unsigned) }, "\(signed)")
        }
    }

    @Test func bool() {
        checkRoundTrip(seed: 12, cases: 100, make: { Bool.random(using: &$0) },
                       write: { $0.writeBool($1) }, read: { r throws(WireError) in try r.readBool() })
        #expect(encode { $0.writeBool(true); $0.writeBool(false) } == [1, 0])
    }

    @Test func byteStrings() {
        checkRoundTrip(seed: 13, make: { rng in rng.bytes(count: Int.random(in: 0...300, using: &rng)) },
                       write: { $0.writeBytes($1) }, read: { r throws(WireError) in try r.readByteArray() })
        #expect(encode { $0.writeBytes([7, 8, 9]) } == [3, 7, 8, 9])
    }

    @Test func borrowedBytesPointIntoTheInput() throws {
        let bytes = encode { $0.writeBytes([1, 2, 3]); $0.writeUInt8(9) }
        bytes.withUnsafeBytes { raw in
            var reader = WireReader(raw)
            let slice = try? reader.readBytes()
            #expect(slice?.baseAddress == raw.baseAddress.map { $0 + 1 })
            #expect(slice.map(Array.init) == [1, 2, 3])
            #expect(reader.offset == 4)
            #expect(reader.remainingCount == 1)
            #expect(!reader.isAtEnd)
            #expect((try? reader.readUInt8()) == 9)
            #expect(reader.isAtEnd)
        }
    }

    @Test func rawBytes() {
        checkRoundTrip(seed: 14, cases: 200, make: { rng in rng.bytes(count: Int.random(in: 0...40, using: &rng)) },
                       write: { writer, bytes in bytes.withUnsafeBytes { writer.writeRawBytes($0) } },
                       read: { r throws(WireError) in Array(try r.readRawBytes(count: r.remainingCount)) })
    }

    @Test func strings() {
        checkRoundTrip(seed: 15, make: { $0.string(maxScalars: 40) },
                       write: { $0.writeString($1) }, read: { r throws(WireError) in try r.readString() })
        #expect(encode { $0.writeString("é") } == [2, 0xC3, 0xA9])
    }

    @Test func optionals() {
        checkRoundTrip(seed: 16, make: { rng in Bool.random(using: &rng) ? rng.nextSpread() : nil },
                       write: { $0.writeOptional($1) { $0.writeVarint($1) } },
                       read: { r throws(WireError) in try r.readOptional { r throws(WireError) in try r.readVarint() } })
        checkRoundTrip(seed: 17, make: { rng in Bool.random(using: &rng) ? rng.string(maxScalars: 5) : nil },
                       write: { $0.write($1) }, read: { r throws(WireError) in try r.read(String?.self) })
        #expect(encode { $0.write(Bool?.none) } == [0])
        #expect(encode { $0.write(Bool?.some(true)) } == [1, 1])
    }

    @Test func arrays() {
        checkRoundTrip(seed: 18, cases: 500,
                       make: { rng in (0..<Int.random(in: 0...20, using: &rng)).map { _ in rng.string(maxScalars: 3) } },
                       write: { $0.write($1) }, read: { r throws(WireError) in try r.read([String].self) })
        checkRoundTrip(seed: 19, cases: 500,
                       make: { rng in (0..<Int.random(in: 0...20, using: &rng)).map { _ in rng.nextSpread() } },
                       write: { $0.writeArray($1) { $0.writeVarint($1) } },
                       read: { r throws(WireError) in try r.readArray { r throws(WireError) in try r.readVarint() } })
        #expect(encode([true, false, true]) == [3, 1, 0, 1])
    }

    @Test func enumTags() {
        #expect(decode([2]) { r throws(WireError) in try r.readEnum(SampleMember.Status.self) } == .success(.dead))
    }
}
