import WireCodec

extension Endpoint: WireCodable {
    /// Writes a family byte (4 or 6), the address (4 or 16 bytes) and the
    /// port (2 bytes), little-endian: 7 or 19 bytes.
    public func encode(to writer: inout WireWriter) {
        switch address {
        case .ipv4(let value):
            writer.writeUInt8(4)
            writer.writeUInt32(value)
        case .ipv6(let high, let low):
            writer.writeUInt8(6)
            writer.writeUInt64(high)
            writer.writeUInt64(low)
        }
        writer.writeUInt16(port)
    }

    /// Reads what ``encode(to:)`` writes.
    ///
    /// - Throws: `WireError.Code.invalidValue` for a family byte other
    ///   than 4 or 6, `.truncated` if the bytes end early.
    public init(from reader: inout WireReader) throws(WireError) {
        let start = reader.offset
        switch try reader.readUInt8() {
        case 4:
            let value = try reader.readUInt32()
            self.init(address: .ipv4(value), port: try reader.readUInt16())
        case 6:
            let high = try reader.readUInt64()
            let low = try reader.readUInt64()
            self.init(address: .ipv6(high: high, low: low), port: try reader.readUInt16())
        case let family:
            throw WireError(.invalidValue, offset: start, detail: "endpoint address family \(family) is neither 4 nor 6")
        }
    }
}

extension Endpoint {
    /// The most bytes an endpoint's wire encoding takes: 19, an IPv6 one.
    public static let maximumEncodedSize = 19

    /// The bytes this endpoint's wire encoding takes: 7 (IPv4) or 19
    /// (IPv6).
    public var encodedSize: Int { isIPv6 ? Self.maximumEncodedSize : 7 }
}

extension NodeID: WireCodable {
    /// Writes the 8-byte identifier, little-endian.
    public func encode(to writer: inout WireWriter) {
        writer.writeUInt64(rawValue)
    }

    /// Reads what ``encode(to:)`` writes.
    ///
    /// - Throws: `WireError.Code.truncated` if fewer than 8 bytes remain.
    public init(from reader: inout WireReader) throws(WireError) {
        self.init(try reader.readUInt64())
    }
}
