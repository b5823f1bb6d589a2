// libFuzzer entry point for WireCodec, compiled by Scripts/fuzz into one
// module together with Sources/WireCodec/*.swift (so there is no
// `import WireCodec`: the codec's types are in this module).
//
// Every input is fed three ways: to Frame.decode (then the body to the
// message decoder), straight to the message decoder, and as the body of a
// freshly encoded frame. Whatever decodes must re-encode and decode to an
// equal value; a mismatch is reported as a crash so libFuzzer keeps the
// input.

/// A message touching every reader primitive, with small limits so that
/// length and count checks are reached often.
struct FuzzMessage: WireCodable, Equatable {
    enum Kind: UInt8 {
        case ping = 1, ack = 2, suspect = 3
    }

    struct Member: WireCodable, Equatable {
        var id: UInt64
        var incarnation: UInt64

        func encode(to writer: inout WireWriter) {
            writer.writeUInt64(id)
            writer.writeVarint(incarnation)
        }

        init(from reader: inout WireReader) throws(WireError) {
            id = try reader.readUInt64()
            incarnation = try reader.readVarint()
        }
    }

    var kind: Kind
    var sequence: UInt32
    var term: Int64
    var port: UInt16
    var small: Int8
    var medium: Int16
    var large: Int32
    var wide: Int64
    var flag: Bool
    var name: String
    var payload: [UInt8]
    var fixed: [UInt8]
    var hint: UInt64?
    var members: [Member]
    var tags: [String]
    var note: String?

    func encode(to writer: inout WireWriter) {
        writer.writeUInt8(kind.rawValue)
        writer.writeVarint(UInt64(sequence))
        writer.writeZigZag(term)
        writer.writeUInt16(port)
        writer.writeInt8(small)
        writer.writeInt16(medium)
        writer.writeInt32(large)
        writer.writeInt64(wide)
        writer.writeBool(flag)
        writer.writeString(name)
        writer.writeBytes(payload)
        fixed.withUnsafeBytes { writer.writeRawBytes($0) }
        writer.writeOptional(hint) { $0.writeVarint($1) }
        writer.write(members)
        writer.writeArray(tags) { $0.writeString($1) }
        writer.write(note)
    }

    init(from reader: inout WireReader) throws(WireError) {
        kind = try reader.readEnum(Kind.self)
        sequence = try reader.readVarint(as: UInt32.self)
        term = try reader.readZigZag()
        port = try reader.readUInt16()
        small = try reader.readInt8()
        medium = try reader.readInt16()
        large = try reader.readInt32()
        wide = try reader.readInt64()
        flag = try reader.readBool()
        name = try reader.readString()
        payload = Array(try reader.readBytes())
        fixed = Array(try reader.readRawBytes(count: 4))
        hint = try reader.readOptional { reader throws(WireError) in try reader.readVarint() }
        members = try reader.read()
        tags = try reader.readArray { reader throws(WireError) in try reader.readString() }
        note = try reader.read()
    }
}

private let limits = WireLimits(maximumByteStringLength: 64, maximumCollectionCount: 16, maximumFrameLength: 1024)

/// Decodes a message filling `bytes`; if it decodes, checks that it
/// survives a round trip.
private func checkMessage(_ bytes: UnsafeRawBufferPointer) {
    let message: FuzzMessage
    do throws(WireError) {
        message = try FuzzMessage(decoding: bytes, limits: limits)
    } catch {
        return
    }
    var writer = WireWriter()
    writer.write(message)
    let again = writer.withUnsafeBytes { encoded in
        Result { () throws(WireError) in try FuzzMessage(decoding: encoded, limits: limits) }
    }
    guard case .success(let decoded) = again, decoded == message else {
        fatalError("round trip changed the message: \(message) -> \(again)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrame(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)

    // 1. The input as a datagram.
    do throws(WireError) {
        let peeked = try FrameHeader.peek(bytes)
        let (header, body) = try Frame.decode(bytes, limits: limits)
        guard header == peeked, header.frameLength == bytes.count else {
            fatalError("decode and peek disagree: \(header) vs \(peeked)")
        }
        checkMessage(body)
    } catch {
        // Hostile input: a WireError is the expected outcome.
    }

    // 2. The input as a message body.
    checkMessage(bytes)

    // 3. The input as the body of a valid frame.
    var writer = WireWriter()
    do throws(WireError) {
        try Frame.encode(protocol: .raft, flags: .fragment, limits: limits, into: &writer) { $0.writeRawBytes(bytes) }
    } catch {
        guard error.code == .lengthExceedsLimit, size + FrameHeader.size > limits.maximumFrameLength else {
            fatalError("unexpected encode failure: \(error)")
        }
        return 0
    }
    writer.withUnsafeBytes { frame in
        do throws(WireError) {
            let (header, body) = try Frame.decode(frame, limits: limits)
            guard header.protocolID == .raft, header.flags == .fragment, body.elementsEqual(bytes) else {
                fatalError("frame round trip changed the body")
            }
            checkMessage(body)
        } catch {
            fatalError("a freshly encoded frame did not decode: \(error)")
        }
    }
    return 0
}
