/// A value that can write itself in Chorus's wire encoding.
///
/// Protocol messages conform in a few lines, writing their fields in order
/// with ``WireWriter``'s primitives; ``WireDecodable/init(from:)`` reads them
/// back in the same order.
public protocol WireEncodable {
    /// Appends this value's encoding to `writer`.
    func encode(to writer: inout WireWriter)
}

/// A value that can read itself from Chorus's wire encoding.
public protocol WireDecodable {
    /// Reads a value from `reader`, advancing it past the value's bytes.
    ///
    /// - Throws: ``WireError`` when the bytes are not a valid encoding.
    init(from reader: inout WireReader) throws(WireError)
}

/// A value that can both write and read itself in Chorus's wire encoding.
public typealias WireCodable = WireEncodable & WireDecodable

extension WireDecodable {
    /// Decodes a value that fills `bytes` exactly.
    ///
    /// - Throws: what ``init(from:)`` throws, and
    ///   ``WireError/Code/trailingBytes`` if bytes remain after the value.
    @inlinable
    public init(decoding bytes: UnsafeRawBufferPointer, limits: WireLimits = .default) throws(WireError) {
        var reader = WireReader(bytes, limits: limits)
        self = try Self(from: &reader)
        try reader.finish()
    }
}

// Integers have no conformance on purpose: whether a field is fixed-width,
// a varint or zigzag is part of each message's definition, so messages call
// the explicit WireWriter/WireReader methods.

extension Bool: WireEncodable, WireDecodable {
    /// Writes one byte, 0 or 1.
    @inlinable
    public func encode(to writer: inout WireWriter) { writer.writeBool(self) }

    /// Reads one byte, 0 or 1.
    ///
    /// - Throws: ``WireError/Code/truncated`` at the end of the input,
    ///   ``WireError/Code/invalidValue`` for any other byte.
    @inlinable
    public init(from reader: inout WireReader) throws(WireError) { self = try reader.readBool() }
}

extension String: WireEncodable, WireDecodable {
    /// Writes a varint byte count, then the UTF-8 bytes.
    @inlinable
    public func encode(to writer: inout WireWriter) { writer.writeString(self) }

    /// Reads a length-prefixed, validated UTF-8 string.
    ///
    /// - Throws: what ``WireReader/readString()`` throws.
    @inlinable
    public init(from reader: inout WireReader) throws(WireError) { self = try reader.readString() }
}

extension Optional: WireEncodable where Wrapped: WireEncodable {
    /// Writes a presence byte (0 for nil, 1 otherwise), then the value if
    /// present.
    @inlinable
    public func encode(to writer: inout WireWriter) {
        writer.writeOptional(self) { writer, value in value.encode(to: &writer) }
    }
}

extension Optional: WireDecodable where Wrapped: WireDecodable {
    /// Reads a presence byte, then the value if it is 1.
    ///
    /// - Throws: what ``WireReader/readOptional(_:)`` throws.
    @inlinable
    public init(from reader: inout WireReader) throws(WireError) {
        self = try reader.readOptional { reader throws(WireError) in try Wrapped(from: &reader) }
    }
}

extension Array: WireEncodable where Element: WireEncodable {
    /// Writes a varint element count, then the elements.
    @inlinable
    public func encode(to writer: inout WireWriter) {
        writer.writeArray(self) { writer, element in element.encode(to: &writer) }
    }
}

extension Array: WireDecodable where Element: WireDecodable {
    /// Reads an element count, checked against
    /// ``WireLimits/maximumCollectionCount``, then the elements.
    ///
    /// - Throws: what ``WireReader/readArray(_:)`` throws.
    @inlinable
    public init(from reader: inout WireReader) throws(WireError) {
        self = try reader.readArray { reader throws(WireError) in try Element(from: &reader) }
    }
}
