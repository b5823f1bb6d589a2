import EventCore
import Testing
import WireCodec

@Suite("Reader errors from crafted input")
struct ReaderErrorTests {
    private let sample: [UInt8] = {
        var rng = SeededRandomGenerator(seed: 77)
        var message = SampleMessage.random(using: &rng)
        message.name = "ping"
        message.payload = [1, 2, 3]
        message.hint = 300
        message.members = [SampleMember(id: 9, status: .suspect, delta: -5)]
        message.tags = ["a", "bc"]
        message.note = "n"
        message.address = (1, 2)
        return encode(message)
    }()

    @Test func everyPrefixOfAMessageIsTruncated() {
        for length in 0..<sample.count {
            let result = decode(Array(sample[..<length])) { r throws(WireError) in try SampleMessage(from: &r) }
            #expect(result.errorCode == .truncated, "prefix of \(length) bytes")
        }
        #expect(decode(sample) { r throws(WireError) in try SampleMessage(from: &r) }.errorCode == nil)
    }

    @Test func everyFixedWidthReadIsTruncatedOnShortInput() {
        for length in 0..<8 {
            let bytes = [UInt8](repeating: 0xAB, count: length)
            #expect(decode(bytes) { r throws(WireError) in try r.readUInt64() }.errorCode == .truncated)
            #expect(decode(bytes) { r throws(WireError) in try r.readInt64() }.errorCode == .truncated)
            if length < 4 {
                #expect(decode(bytes) { r throws(WireError) in try r.readUInt32() }.errorCode == .truncated)
                #expect(decode(bytes) { r throws(WireError) in try r.readInt32() }.errorCode == .truncated)
            }
            if length < 2 {
                #expect(decode(bytes) { r throws(WireError) in try r.readUInt16() }.errorCode == .truncated)
                #expect(decode(bytes) { r throws(WireError) in try r.readInt16() }.errorCode == .truncated)
            }
        }
        #expect(decode([]) { r throws(WireError) in try r.readUInt8() }.errorCode == .truncated)
        #expect(decode([]) { r throws(WireError) in try r.readInt8() }.errorCode == .truncated)
        #expect(decode([]) { r throws(WireError) in try r.readBool() }.errorCode == .truncated)
        #expect(decode([]) { r throws(WireError) in try r.readOptional { r throws(WireError) in try r.readBool() } }.errorCode == .truncated)
    }

    @Test func everyPrefixOfAVarintIsTruncated() {
        let full: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        #expect(decode(full) { r throws(WireError) in try r.readVarint() } == .success(UInt64.max))
        for length in 0..<full.count {
            let result = decode(Array(full[..<length])) { r throws(WireError) in try r.readVarint() }
            #expect(result.errorCode == .truncated, "prefix of \(length) bytes")
        }
    }

    @Test func boundedVarintRefusesALargerValueNamingIt() {
        var writer = WireWriter()
        writer.writeUInt8(0)
        writer.writeVarint(1 << 62)
        writer.writeVarint((1 << 62) + 1)
        let bytes = writer.bytes
        let result = decode(bytes) { r throws(WireError) in
            _ = try r.readUInt8()
            let largest = try r.readVarint(atMost: 1 << 62, what: "counter")
            #expect(largest == 1 << 62)
            return try r.readVarint(atMost: 1 << 62, what: "counter")
        }
        guard case .failure(let error) = result else {
            Issue.record("a value past the bound decoded: \(result)")
            return
        }
        #expect(error.code == .invalidValue && error.offset == 10, "\(error)")
        #expect(error.detail.contains("counter 4611686018427387905 is above 4611686018427387904"), "\(error)")
    }

    @Test func elevenByteVarintIsTooLong() {
        let bytes: [UInt8] = [UInt8](repeating: 0x80, count: 10) + [0x00]
        let result = decode(bytes) { r throws(WireError) in try r.readVarint() }
        #expect(result.errorCode == .varintTooLong)
        // The continuation bit on the 10th byte is enough, whatever follows.
        #expect(decode([UInt8](repeating: 0xFF, count: 10)) { r throws(WireError) in try r.readVarint() }.errorCode == .varintTooLong)
    }

    @Test func tenthVarintByteAboveOneOverflows() {
        for last: UInt8 in 2...0x7F {
            let bytes: [UInt8] = [UInt8](repeating: 0xFF, count: 9) + [last]
            #expect(decode(bytes) { r throws(WireError) in try r.readVarint() }.errorCode == .varintOverflow, "\(last)")
        }
    }

    @Test func narrowingAVarintThatDoesNotFitIsInvalid() {
        let bytes = encode { $0.writeVarint(UInt64(UInt32.max) + 1) }
        #expect(decode(bytes) { r throws(WireError) in try r.readVarint(as: UInt32.self) }.errorCode == .invalidValue)
    }

    @Test func lengthPrefixOverTheLimit() {
        let limits = WireLimits(maximumByteStringLength: 16, maximumCollectionCount: 4)
        let seventeen = encode { $0.writeBytes([UInt8](repeating: 1, count: 17)) }
        #expect(decode(seventeen, limits: limits) { r throws(WireError) in try r.readByteArray() }.errorCode == .lengthExceedsLimit)
        #expect(decode(seventeen, limits: limits) { r throws(WireError) in try r.readBytes().count }.errorCode == .lengthExceedsLimit)
        let sixteen = encode { $0.writeBytes([UInt8](repeating: 1, count: 16)) }
        #expect(decode(sixteen, limits: limits) { r throws(WireError) in try r.readByteArray() }.value?.count == 16)
        let longString = encode { $0.writeString(String(repeating: "x", count: 17)) }
        #expect(decode(longString, limits: limits) { r throws(WireError) in try r.readString() }.errorCode == .lengthExceedsLimit)
        let fiveBools = encode([true, true, true, true, true])
        #expect(decode(fiveBools, limits: limits) { r throws(WireError) in try r.read([Bool].self) }.errorCode == .lengthExceedsLimit)
        // The largest varint is refused by the limit, not by arithmetic.
        let huge = encode { $0.writeVarint(UInt64.max) }
        #expect(decode(huge) { r throws(WireError) in try r.readBytes().count }.errorCode == .lengthExceedsLimit)
        #expect(decode(huge) { r throws(WireError) in try r.read([Bool].self) }.errorCode == .lengthExceedsLimit)
        let intMax = encode { $0.writeVarint(UInt64(Int.max)) }
        let unlimited = WireLimits(maximumByteStringLength: .max, maximumCollectionCount: .max)
        #expect(decode(intMax, limits: unlimited) { r throws(WireError) in try r.readBytes().count }.errorCode == .truncated)
    }

    @Test func negativeLimitsRefuseEverything() {
        let limits = WireLimits(maximumByteStringLength: -1, maximumCollectionCount: .min, maximumFrameLength: .min)
        #expect(decode([0]) { r throws(WireError) in try r.readByteArray() }.errorCode == nil)
        #expect(decode([0], limits: limits) { r throws(WireError) in try r.readByteArray() }.errorCode == .lengthExceedsLimit)
        #expect(decode([0], limits: limits) { r throws(WireError) in try r.read([Bool].self) }.errorCode == .lengthExceedsLimit)
    }

    @Test func lengthPrefixOverTheBytesPresent() {
        #expect(decode([5, 1, 2, 3, 4]) { r throws(WireError) in try r.readByteArray() }.errorCode == .truncated)
        #expect(decode([5, 0x61, 0x62]) { r throws(WireError) in try r.readString() }.errorCode == .truncated)
        // A large count with few bytes fails on the bytes, without reserving for the count.
        #expect(decode(encode { $0.writeVarint(60_000); $0.writeUInt8(1) }) { r throws(WireError) in
            try r.read([SampleMember].self)
        }.errorCode == .truncated)
        #expect(decode([1, 2]) { r throws(WireError) in try r.readRawBytes(count: 3) }.errorCode == .truncated)
        #expect(decode([1, 2]) { r throws(WireError) in try r.readRawBytes(count: -1) }.errorCode == .invalidValue)
    }

    @Test func boolAndPresenceBytesMustBeZeroOrOne() {
        for byte: UInt8 in 2...255 {
            #expect(decode([byte]) { r throws(WireError) in try r.readBool() }.errorCode == .invalidValue)
            #expect(decode([byte, 0]) { r throws(WireError) in try r.read(Bool?.self) }.errorCode == .invalidValue)
        }
    }

    @Test func invalidUTF8IsRefused() {
        let invalid: [[UInt8]] = [
            [0xFF], [0xC3, 0x28], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82],
            [0x61, 0x80],
        ]
        for bytes in invalid {
            let encoded = encode { $0.writeBytes(bytes) }
            let result = decode(encoded) { r throws(WireError) in try r.readString() }
            #expect(result.errorCode == .invalidValue, "\(bytes)")
            #expect(decode(encoded) { r throws(WireError) in try r.readByteArray() }.value == bytes)
        }
    }

    @Test func unknownEnumTagIsInvalid() {
        #expect(decode([3]) { r throws(WireError) in try r.readEnum(SampleMember.Status.self) }.errorCode == .invalidValue)
    }

    @Test func trailingBytesAfterAMessage() {
        let bytes = sample + [0]
        let result = bytes.withUnsafeBytes { raw in Result { () throws(WireError) in try SampleMessage(decoding: raw) } }
        guard case .failure(let error) = result else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.code == .trailingBytes)
        #expect(error.offset == sample.count)
    }

    @Test func errorOffsetsPointAtTheValue() {
        // A bad bool after 3 good bytes is reported at offset 3.
        let result = decode([1, 0, 1, 7]) { r throws(WireError) in
            for _ in 0..<4 { _ = try r.readBool() }
        }
        guard case .failure(let error) = result else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.code == .invalidValue)
        #expect(error.offset == 3)
        #expect(error.description.contains("byte 3"))
    }
}
