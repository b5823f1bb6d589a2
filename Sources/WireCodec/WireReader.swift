/// Reads values in Chorus's wire encoding (see ``WireWriter``) from bytes it
/// does not own, advancing an offset.
///
/// A reader is a cursor over an `UnsafeRawBufferPointer`, typically a frame
/// body inside a datagram the transport lends for the duration of a
/// callback: it must not outlive those bytes. Payloads are not copied unless
/// asked for: ``readBytes()`` returns a slice of the input,
/// ``readByteArray()`` and ``readString()`` copy.
///
/// Every read throws ``WireError`` instead of trapping: a value that runs
/// past the end is ``WireError/Code/truncated``, a length or count above
/// ``limits`` is ``WireError/Code/lengthExceedsLimit`` (checked before
/// anything is allocated), a byte outside its domain is
/// ``WireError/Code/invalidValue``. After a failed read the reader's offset
/// is unspecified; discard the message.
public struct WireReader {
    @usableFromInline
    internal let input: UnsafeRawBufferPointer

    /// The limits this reader checks length and count prefixes against.
    public let limits: WireLimits

    /// The position of the next byte to read; always between 0 and the
    /// input's count.
    @usableFromInline
    internal var cursor: Int

    /// The position of the next byte to read, in bytes from the start of the
    /// input. Always between 0 and the input's count.
    @inlinable
    public var offset: Int { cursor }

    /// Creates a reader at the start of `bytes`. The reader points into
    /// `bytes`, which must stay valid while it is used.
    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer, limits: WireLimits = .default) {
        input = bytes
        self.limits = limits
        cursor = 0
    }

    /// The number of bytes not yet read.
    @inlinable
    public var remainingCount: Int { input.count &- cursor }

    /// Whether every byte has been read.
    @inlinable
    public var isAtEnd: Bool { cursor == input.count }

    /// Throws unless every byte has been read: the last step of decoding a
    /// message that fills its buffer.
    ///
    /// - Throws: ``WireError/Code/trailingBytes`` if bytes remain.
    @inlinable @inline(__always)
    public func finish() throws(WireError) {
        guard cursor == input.count else {
            throw WireError.trailingBytes(at: cursor, count: remainingCount)
        }
    }

    // MARK: Bounds

    /// Checks that `count` (>= 0) more bytes are present and returns the
    /// offset they start at, advancing past them.
    @inlinable @inline(__always)
    internal mutating func advance(by count: Int) throws(WireError) -> Int {
        let start = cursor
        guard count <= input.count &- start else {
            throw WireError.truncated(at: start, needed: count, available: input.count &- start)
        }
        cursor = start &+ count
        return start
    }

    // MARK: Fixed-width integers

    @inlinable @inline(__always)
    internal mutating func readFixed<T: FixedWidthInteger>(_: T.Type) throws(WireError) -> T {
        let start = try advance(by: MemoryLayout<T>.size)
        return T(littleEndian: input.loadUnaligned(fromByteOffset: start, as: T.self))
    }

    /// Reads one byte.
    ///
    /// - Throws: ``WireError/Code/truncated`` at the end of the input.
    @inlinable @inline(__always)
    public mutating func readUInt8() throws(WireError) -> UInt8 {
        let start = try advance(by: 1)
        return input[start]
    }

    /// Reads 2 bytes as a little-endian integer.
    ///
    /// - Throws: ``WireError/Code/truncated`` if fewer than 2 bytes remain.
    @inlinable @inline(__always)
    public mutating func readUInt16() throws(WireError) -> UInt16 { try readFixed(UInt16.self) }

    /// Reads 4 bytes as a little-endian integer.
    ///
    /// - Throws: ``WireError/Code/truncated`` if fewer than 4 bytes remain.
    @inlinable @inline(__always)
    public mutating func readUInt32() throws(WireError) -> UInt32 { try readFixed(UInt32.self) }

    /// Reads 8 bytes as a little-endian integer.
    ///
    /// - Throws: ``WireError/Code/truncated`` if fewer than 8 bytes remain.
    @inlinable @inline(__always)
    public mutating func readUInt64() throws(WireError) -> UInt64 { try readFixed(UInt64.self) }

    /// Reads one byte as a two's complement integer.
    ///
    /// - Throws: ``WireError/Code/truncated`` at the end of the input.
    @inlinable
    public mutating func readInt8() throws(WireError) -> Int8 { Int8(bitPattern: try readUInt8()) }

    /// Reads 2 bytes as a little-endian two's complement integer.
    ///
    /// - Throws: ``WireError/Code/truncated`` if fewer than 2 bytes remain.
    @inlinable @inline(__always)
    public mutating func readInt16() throws(WireError) -> Int16 { try readFixed(Int16.self) }

    /// Reads 4 bytes as a little-endian two's complement integer.
    ///
    /// - Throws: ``WireError/Code/truncated`` if fewer than 4 bytes remain.
    @inlinable @inline(__always)
    public mutating func readInt32() throws(WireError) -> Int32 { try readFixed(Int32.self) }

    /// Reads 8 bytes as a little-endian two's complement integer.
    ///
    /// - Throws: ``WireError/Code/truncated`` if fewer than 8 bytes remain.
    @inlinable @inline(__always)
    public mutating func readInt64() throws(WireError) -> Int64 { try readFixed(Int64.self) }

    // MARK: Varints

    /// Reads an unsigned LEB128 varint of at most 10 bytes. Non-minimal
    /// encodings (such as `0x80 0x00` for 0) are accepted.
    ///
    /// - Throws: ``WireError/Code/truncated`` if the input ends inside the
    ///   varint; ``WireError/Code/varintTooLong`` if its 10th byte has the
    ///   continuation bit; ``WireError/Code/varintOverflow`` if its 10th byte
    ///   is above 1.
    @inlinable @inline(__always)
    public mutating func readVarint() throws(WireError) -> UInt64 {
        let start = cursor
        // One byte is the common case (tags, small counts and lengths): it
        // stays inline; longer varints take the outlined loop.
        if start < input.count {
            let first = input[start]
            if first < 0x80 {
                cursor = start &+ 1
                return UInt64(first)
            }
        }
        return try readMultibyteVarint()
    }

    /// ``readVarint()`` for a varint of more than one byte, or at the end of
    /// the input.
    @usableFromInline @inline(never)
    internal mutating func readMultibyteVarint() throws(WireError) -> UInt64 {
        let start = cursor
        let end = input.count
        guard start < end else { throw WireError.truncated(at: start, needed: 1, available: 0) }
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var index = start
        while true {
            guard index < end else {
                throw WireError.truncated(at: start, needed: index &- start &+ 1, available: end &- start)
            }
            let byte = input[index]
            index &+= 1
            if shift == 63 {
                // The 10th byte carries bit 63 only.
                guard byte & 0x80 == 0 else { throw WireError.varintTooLong(at: start) }
                guard byte <= 1 else { throw WireError.varintOverflow(at: start, lastByte: byte) }
            }
            result |= UInt64(byte & 0x7F) &<< shift
            if byte < 0x80 {
                cursor = index
                return result
            }
            shift &+= 7
        }
    }

    /// Reads a varint no larger than `maximum` (a protocol's bound on a
    /// counter, a version or an index, so that arithmetic on it cannot
    /// overflow).
    ///
    /// - Throws: what ``readVarint()`` throws, and
    ///   ``WireError/Code/invalidValue`` naming `what` for a larger value.
    public mutating func readVarint(atMost maximum: UInt64, what: String) throws(WireError) -> UInt64 {
        let start = cursor
        let value = try readVarint()
        guard value <= maximum else {
            throw WireError(.invalidValue, offset: start, detail: "\(what) \(value) is above \(maximum)")
        }
        return value
    }

    /// Reads a varint and converts it to `type`.
    ///
    /// - Throws: what ``readVarint()`` throws, and
    ///   ``WireError/Code/invalidValue`` if the value does not fit `type`.
    @inlinable
    public mutating func readVarint<Value: FixedWidthInteger & UnsignedInteger>(
        as type: Value.Type
    ) throws(WireError) -> Value {
        let start = cursor
        let raw = try readVarint()
        guard let value = Value(exactly: raw) else {
            throw WireError.varintDoesNotFit(at: start, value: raw, type: Value.self)
        }
        return value
    }

    /// Reads a zigzag-mapped varint (see ``WireWriter/writeZigZag(_:)``).
    ///
    /// - Throws: what ``readVarint()`` throws.
    @inlinable
    public mutating func readZigZag() throws(WireError) -> Int64 {
        let raw = try readVarint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    // MARK: Bools, bytes, strings

    /// Reads one byte that must be 0 (false) or 1 (true).
    ///
    /// - Throws: ``WireError/Code/truncated`` at the end of the input,
    ///   ``WireError/Code/invalidValue`` for any other byte.
    @inlinable
    public mutating func readBool() throws(WireError) -> Bool {
        let start = try advance(by: 1)
        switch input[start] {
        case 0: return false
        case 1: return true
        case let byte: throw WireError.invalidFlag(at: start, byte: byte, what: "bool")
        }
    }

    /// Reads a length or count prefix and checks it against `limit` (the
    /// caller checks it against the bytes present); returns it and where the
    /// prefix started.
    @inlinable @inline(__always)
    internal mutating func readLengthPrefix(
        limit: Int, what: StaticString
    ) throws(WireError) -> (length: Int, prefixStart: Int) {
        let start = cursor
        let raw = try readVarint()
        guard raw <= UInt64(Int.max), Int(truncatingIfNeeded: raw) <= limit else {
            throw WireError.lengthExceedsLimit(at: start, length: raw, limit: limit, what: what)
        }
        return (Int(truncatingIfNeeded: raw), start)
    }

    /// Returns the next `count` bytes without copying: a slice of the
    /// input, valid as long as the input is.
    ///
    /// - Throws: ``WireError/Code/truncated`` if fewer than `count` bytes
    ///   remain, ``WireError/Code/invalidValue`` if `count` is negative.
    @inlinable
    public mutating func readRawBytes(count: Int) throws(WireError) -> UnsafeRawBufferPointer {
        guard count >= 0 else {
            throw WireError.negativeCount(at: cursor, count: count)
        }
        let start = try advance(by: count)
        return UnsafeRawBufferPointer(rebasing: input[start..<(start &+ count)])
    }

    /// Reads a length-prefixed byte string without copying: the result is a
    /// slice of the input, valid as long as the input is.
    ///
    /// - Throws: what ``readVarint()`` throws for the prefix;
    ///   ``WireError/Code/lengthExceedsLimit`` if the length is above
    ///   ``WireLimits/maximumByteStringLength``; ``WireError/Code/truncated``
    ///   if fewer bytes remain than it declares.
    @inlinable
    public mutating func readBytes() throws(WireError) -> UnsafeRawBufferPointer {
        let (length, prefixStart) = try readLengthPrefix(
            limit: limits.maximumByteStringLength, what: "byte string length")
        let start = cursor
        guard length <= input.count &- start else {
            throw WireError.truncated(at: prefixStart, needed: start &- prefixStart &+ length,
                                      available: input.count &- prefixStart)
        }
        cursor = start &+ length
        return UnsafeRawBufferPointer(rebasing: input[start..<cursor])
    }

    /// Reads a length-prefixed byte string into a new array.
    ///
    /// - Throws: what ``readBytes()`` throws.
    @inlinable
    public mutating func readByteArray() throws(WireError) -> [UInt8] {
        Array(try readBytes())
    }

    /// Reads a length-prefixed UTF-8 string.
    ///
    /// - Throws: what ``readBytes()`` throws, and
    ///   ``WireError/Code/invalidValue`` if the bytes are not valid UTF-8.
    @inlinable
    public mutating func readString() throws(WireError) -> String {
        let start = cursor
        let bytes = try readBytes()
        guard let string = bytes.withMemoryRebound(to: UInt8.self, { String(validating: $0, as: UTF8.self) })
        else {
            throw WireError.invalidUTF8(at: start, byteCount: bytes.count)
        }
        return string
    }

    // MARK: Optionals, collections, enums, decodable values

    /// Reads a presence byte, then, if it is 1, a value with `readValue`.
    ///
    /// Spell the closure's error type out, as Swift 6 does not infer typed
    /// throws for closures: `reader.readOptional { r throws(WireError) in
    /// try r.readVarint() }`.
    ///
    /// - Throws: ``WireError/Code/truncated`` at the end of the input,
    ///   ``WireError/Code/invalidValue`` if the presence byte is not 0 or 1,
    ///   and what `readValue` throws.
    @inlinable
    public mutating func readOptional<Value>(
        _ readValue: (inout WireReader) throws(WireError) -> Value
    ) throws(WireError) -> Value? {
        let start = try advance(by: 1)
        switch input[start] {
        case 0: return nil
        case 1: return try readValue(&self)
        case let byte: throw WireError.invalidFlag(at: start, byte: byte, what: "optional presence")
        }
    }

    /// Reads an element count, then that many elements with `readElement`.
    ///
    /// Storage is reserved for at most as many elements as bytes remain, so
    /// a large count in a short input cannot force a large allocation. As for
    /// ``readOptional(_:)``, write the closure as `{ r throws(WireError) in ... }`.
    ///
    /// - Throws: what ``readVarint()`` throws for the count;
    ///   ``WireError/Code/lengthExceedsLimit`` if the count is above
    ///   ``WireLimits/maximumCollectionCount``; what `readElement` throws.
    @inlinable
    public mutating func readArray<Element>(
        _ readElement: (inout WireReader) throws(WireError) -> Element
    ) throws(WireError) -> [Element] {
        try readArray(maximumCount: limits.maximumCollectionCount, readElement)
    }

    /// ``readArray(_:)`` for a collection with a bound of its own,
    /// `maximumCount`, in place of ``WireLimits/maximumCollectionCount``
    /// (a message with two collections bounded differently).
    @inlinable
    public mutating func readArray<Element>(
        maximumCount: Int, _ readElement: (inout WireReader) throws(WireError) -> Element
    ) throws(WireError) -> [Element] {
        let (count, _) = try readLengthPrefix(limit: maximumCount, what: "element count")
        // An empty array allocates nothing; reserving capacity 0 would still
        // take the slow path of creating a buffer.
        if count == 0 { return [] }
        var elements: [Element] = []
        elements.reserveCapacity(Swift.min(count, remainingCount))
        for _ in 0..<count {
            elements.append(try readElement(&self))
        }
        return elements
    }

    /// Reads one byte and converts it to `type` by raw value (a message or
    /// field tag).
    ///
    /// - Throws: ``WireError/Code/truncated`` at the end of the input,
    ///   ``WireError/Code/invalidValue`` if no case has that raw value.
    @inlinable
    public mutating func readEnum<Value: RawRepresentable>(
        _ type: Value.Type
    ) throws(WireError) -> Value where Value.RawValue == UInt8 {
        let start = cursor
        let raw = try readUInt8()
        guard let value = Value(rawValue: raw) else {
            throw WireError.unknownTag(at: start, tag: raw, type: Value.self)
        }
        return value
    }

    /// Reads a value in its own encoding (see ``WireDecodable``).
    ///
    /// - Throws: what `Value.init(from:)` throws.
    @inlinable
    public mutating func read<Value: WireDecodable>(
        _ type: Value.Type = Value.self
    ) throws(WireError) -> Value {
        try Value(from: &self)
    }
}
