import EventCore
import WireCodec

/// A member entry, as SWIM gossip would carry it.
struct SampleMember: WireCodable, Equatable {
    enum Status: UInt8 {
        case alive = 0, suspect = 1, dead = 2
    }

    var id: UInt64
    var status: Status
    var delta: Int32

    init(id: UInt64, status: Status, delta: Int32) {
        self.id = id
        self.status = status
        self.delta = delta
    }

    func encode(to writer: inout WireWriter) {
        writer.writeUInt64(id)
        writer.writeUInt8(status.rawValue)
        writer.writeInt32(delta)
    }

    init(from reader: inout WireReader) throws(WireError) {
        id = try reader.readUInt64()
        status = try reader.readEnum(Status.self)
        delta = try reader.readInt32()
    }

    static func random(using rng: inout SeededRandomGenerator) -> SampleMember {
        SampleMember(
            id: rng.next(), status: [.alive, .suspect, .dead].randomElement(using: &rng)!,
            delta: Int32(truncatingIfNeeded: rng.nextSpread()))
    }
}

/// A composite message using every primitive: a SWIM-ping-like head (varints,
/// a node id, an endpoint) and a tail of strings, bytes, optionals and arrays.
struct SampleMessage: WireCodable, Equatable {
    var sequence: UInt64
    var incarnation: UInt32
    var sender: UInt64
    var address: (high: UInt64, low: UInt64)?
    var port: UInt16
    var term: Int64
    var small: Int8
    var medium: Int16
    var wide: Int64
    var byte: UInt8
    var isRelay: Bool
    var name: String
    var payload: [UInt8]
    var hint: UInt64?
    var members: [SampleMember]
    var tags: [String]
    var note: String?

    static func == (lhs: SampleMessage, rhs: SampleMessage) -> Bool {
        lhs.sequence == rhs.sequence && lhs.incarnation == rhs.incarnation && lhs.sender == rhs.sender
            && lhs.address?.high == rhs.address?.high && lhs.address?.low == rhs.address?.low
            && lhs.port == rhs.port && lhs.term == rhs.term && lhs.small == rhs.small
            && lhs.medium == rhs.medium && lhs.wide == rhs.wide && lhs.byte == rhs.byte
            && lhs.isRelay == rhs.isRelay && lhs.name == rhs.name && lhs.payload == rhs.payload
            && lhs.hint == rhs.hint && lhs.members == rhs.members && lhs.tags == rhs.tags
            && lhs.note == rhs.note
    }

    init(
        sequence: UInt64, incarnation: UInt32, sender: UInt64, address: (high: UInt64, low: UInt64)?,
        port: UInt16, term: Int64, small: Int8, medium: Int16, wide: Int64, byte: UInt8, isRelay: Bool,
        name: String, payload: [UInt8], hint: UInt64?, members: [SampleMember], tags: [String], note: String?
    ) {
        self.sequence = sequence
        self.incarnation = incarnation
        self.sender = sender
        self.address = address
        self.port = port
        self.term = term
        self.small = small
        self.medium = medium
        self.wide = wide
        self.byte = byte
        self.isRelay = isRelay
        self.name = name
        self.payload = payload
        self.hint = hint
        self.members = members
        self.tags = tags
        self.note = note
    }

    func encode(to writer: inout WireWriter) {
        writer.writeVarint(sequence)
        writer.writeVarint(UInt64(incarnation))
        writer.writeUInt64(sender)
        writer.writeOptional(address) { writer, address in
            writer.writeUInt64(address.high)
            writer.writeUInt64(address.low)
        }
        writer.writeUInt16(port)
        writer.writeZigZag(term)
        writer.writeInt8(small)
        writer.writeInt16(medium)
        writer.writeInt64(wide)
        writer.writeUInt8(byte)
        writer.writeBool(isRelay)
        writer.writeString(name)
        writer.writeBytes(payload)
        writer.writeOptional(hint) { $0.writeVarint($1) }
        writer.write(members)
        writer.writeArray(tags) { $0.writeString($1) }
        writer.write(note)
    }

    init(from reader: inout WireReader) throws(WireError) {
        sequence = try reader.readVarint()
        incarnation = try reader.readVarint(as: UInt32.self)
        sender = try reader.readUInt64()
        address = try reader.readOptional { reader throws(WireError) in
            (try reader.readUInt64(), try reader.readUInt64())
        }
        port = try reader.readUInt16()
        term = try reader.readZigZag()
        small = try reader.readInt8()
        medium = try reader.readInt16()
        wide = try reader.readInt64()
        byte = try reader.readUInt8()
        isRelay = try reader.readBool()
        name = try reader.readString()
        payload = try reader.readByteArray()
        hint = try reader.readOptional { reader throws(WireError) in try reader.readVarint() }
        members = try reader.read()
        tags = try reader.readArray { reader throws(WireError) in try reader.readString() }
        note = try reader.read()
    }

    static func random(using rng: inout SeededRandomGenerator) -> SampleMessage {
        SampleMessage(
            sequence: rng.nextSpread(),
            incarnation: UInt32(truncatingIfNeeded: rng.nextSpread()),
            sender: rng.next(),
            address: Bool.random(using: &rng) ? (rng.next(), rng.next()) : nil,
            port: UInt16(truncatingIfNeeded: rng.next()),
            term: Int64(bitPattern: rng.nextSpread()) >> Int64.random(in: 0...63, using: &rng),
            small: Int8(truncatingIfNeeded: rng.next()),
            medium: Int16(truncatingIfNeeded: rng.next()),
            wide: Int64(bitPattern: rng.next()),
            byte: UInt8(truncatingIfNeeded: rng.next()),
            isRelay: Bool.random(using: &rng),
            name: rng.string(maxScalars: 12),
            payload: rng.bytes(count: Int.random(in: 0...40, using: &rng)),
            hint: Bool.random(using: &rng) ? rng.nextSpread() : nil,
            members: (0..<Int.random(in: 0...5, using: &rng)).map { _ in SampleMember.random(using: &rng) },
            tags: (0..<Int.random(in: 0...3, using: &rng)).map { _ in rng.string(maxScalars: 4) },
            note: Bool.random(using: &rng) ? rng.string(maxScalars: 6) : nil)
    }
}
