/// Why bytes could not be decoded: thrown (typed) by every read of a
/// ``WireReader`` and by ``Frame``, and by ``Frame/encode(protocol:flags:limits:into:body:)``
/// when asked to build a frame its peers would refuse.
///
/// Every malformed input maps to one ``Code``; ``offset`` says where in the
/// buffer being read the problem was found, ``detail`` says the rest for
/// people (sizes, limits, the offending value). Decoding never traps on bad
/// bytes: it throws one of these.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong with the bytes. `CaseIterable`, so a driver can keep
    /// one drop counter per code.
    public enum Code: Hashable, Sendable, CaseIterable {
        /// The input ended before the value being read did (a fixed-width
        /// integer, a varint, a length-prefixed payload, a frame header).
        case truncated
        /// A length or count prefix, or a frame's length, is above the
        /// configured ``WireLimits`` maximum.
        case lengthExceedsLimit
        /// A varint's 10th byte has its continuation bit set: more than the
        /// 10 bytes a 64-bit value can need.
        case varintTooLong
        /// A varint's 10th byte is above 1, so the value does not fit in 64
        /// bits.
        case varintOverflow
        /// A frame does not start with ``FrameHeader/magic``.
        case badMagic
        /// A frame's version is not ``FrameHeader/currentVersion``.
        case unsupportedVersion
        /// A frame's CRC32C does not match its bytes.
        case badChecksum
        /// A frame's checksum is valid but its protocol id is not a
        /// ``ProtocolID`` this build knows.
        case unknownProtocol
        /// A valid frame of another protocol than the one its reader
        /// speaks (a Raft frame handed to the gossip driver).
        case otherProtocol
        /// A value is outside its domain: a bool or presence byte other than
        /// 0 or 1, a string that is not valid UTF-8, an unknown enum tag, a
        /// varint too large for the requested type.
        case invalidValue
        /// A message was decoded completely but bytes remain after it.
        case trailingBytes
        /// A frame's body length field disagrees with the number of bytes
        /// that follow the header.
        case lengthMismatch
    }

    /// What was wrong.
    public var code: Code
    /// Where, in bytes from the start of the buffer being decoded, the
    /// problem was found (for a value, usually where the value starts).
    public var offset: Int
    /// Details for people: sizes, limits, the offending value.
    public var detail: String

    /// Creates an error; protocol modules use it for their own invalid values
    /// (typically with ``Code/invalidValue``).
    public init(_ code: Code, offset: Int, detail: String) {
        self.code = code
        self.offset = offset
        self.detail = detail
    }

    /// The code, the offset and the detail on one line.
    public var description: String {
        "WireError.\(code) at byte \(offset): \(detail)"
    }
}

// Error constructors used by inlinable code. They are kept out of line so the
// string formatting stays off the hot paths it is called from.
extension WireError {
    @usableFromInline @inline(never)
    static func truncated(at offset: Int, needed: Int, available: Int) -> WireError {
        WireError(.truncated, offset: offset, detail: "needs \(needed) bytes, \(available) remain")
    }

    @usableFromInline @inline(never)
    static func varintTooLong(at offset: Int) -> WireError {
        WireError(.varintTooLong, offset: offset, detail: "varint continues past 10 bytes")
    }

    @usableFromInline @inline(never)
    static func varintOverflow(at offset: Int, lastByte: UInt8) -> WireError {
        WireError(.varintOverflow, offset: offset, detail: "10th varint byte is \(lastByte), at most 1 fits in 64 bits")
    }

    @usableFromInline @inline(never)
    static func lengthExceedsLimit(at offset: Int, length: UInt64, limit: Int, what: StaticString) -> WireError {
        WireError(.lengthExceedsLimit, offset: offset, detail: "\(what) \(length) exceeds the limit \(limit)")
    }

    @usableFromInline @inline(never)
    static func trailingBytes(at offset: Int, count: Int) -> WireError {
        WireError(.trailingBytes, offset: offset, detail: "\(count) bytes remain after the message")
    }

    @usableFromInline @inline(never)
    static func varintDoesNotFit(at offset: Int, value: UInt64, type: Any.Type) -> WireError {
        WireError(.invalidValue, offset: offset, detail: "varint \(value) does not fit \(type)")
    }

    @usableFromInline @inline(never)
    static func invalidUTF8(at offset: Int, byteCount: Int) -> WireError {
        WireError(.invalidValue, offset: offset, detail: "string of \(byteCount) bytes is not valid UTF-8")
    }

    @usableFromInline @inline(never)
    static func unknownTag(at offset: Int, tag: UInt8, type: Any.Type) -> WireError {
        WireError(.invalidValue, offset: offset, detail: "\(tag) is not a \(type) tag")
    }

    @usableFromInline @inline(never)
    static func negativeCount(at offset: Int, count: Int) -> WireError {
        WireError(.invalidValue, offset: offset, detail: "negative byte count \(count)")
    }

    @usableFromInline @inline(never)
    static func invalidFlag(at offset: Int, byte: UInt8, what: StaticString) -> WireError {
        WireError(.invalidValue, offset: offset, detail: "\(what) byte is \(byte), expected 0 or 1")
    }
}
