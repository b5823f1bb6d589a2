/// Appends values in Chorus's wire encoding to a growable byte buffer.
///
/// The buffer is a `[UInt8]` the caller owns: hand one in with
/// ``init(reusing:)`` and take it back with ``takeBytes()``, or keep one
/// writer alive and call ``removeAll()`` between messages. Either way the
/// capacity is kept, so once the buffer has grown to the largest message,
/// encoding allocates nothing.
///
/// Encodings (all integers little-endian):
/// - fixed-width integers: their 1, 2, 4 or 8 bytes, two's complement for
///   signed types;
/// - varints: unsigned LEB128, 7 bits per byte, low group first, at most 10
///   bytes; signed varints are zigzag-mapped first (0, -1, 1, -2, ... become
///   0, 1, 2, 3, ...);
/// - bools and presence flags: one byte, 0 or 1;
/// - byte strings and strings: a varint byte count, then the bytes (UTF-8 for
///   strings);
/// - collections: a varint element count, then the elements.
///
/// Writing never fails; sizes are checked when reading, against
/// ``WireLimits``.
public struct WireWriter: Sendable {
    /// Initialized bytes; the first `used` of them are the output, the rest
    /// is room already zero-filled, so a write is a bounds check and a store.
    @usableFromInline
    internal var storage: [UInt8]

    /// The number of bytes written; never more than `storage.count`.
    @usableFromInline
    internal var used: Int

    /// Creates a writer that appends to `buffer` after emptying it; its
    /// capacity is kept. Pass a buffer no one else references (with
    /// `consume`, or one just returned by ``takeBytes()``), or the first write
    /// copies it.
    @inlinable
    public init(reusing buffer: consuming [UInt8]) {
        buffer.removeAll(keepingCapacity: true)
        storage = consume buffer
        used = 0
    }

    /// Creates an empty writer whose buffer can hold `capacity` bytes before
    /// it grows.
    @inlinable
    public init(capacity: Int = 0) {
        storage = []
        storage.reserveCapacity(capacity)
        used = 0
    }

    /// The number of bytes written.
    @inlinable
    public var count: Int { used }

    /// A copy of the bytes written so far. Prefer ``withUnsafeBytes(_:)`` or
    /// ``takeBytes()``, which do not copy.
    public var bytes: [UInt8] { Array(storage[..<used]) }

    /// Returns the bytes written, leaving this writer empty with no storage
    /// of its own. Hand the result back with ``init(reusing:)`` to reuse its
    /// capacity.
    @inlinable
    public mutating func takeBytes() -> [UInt8] {
        var taken: [UInt8] = []
        swap(&taken, &storage)
        taken.removeLast(taken.count &- used)
        used = 0
        return taken
    }

    /// Forgets everything written, keeping the storage.
    @inlinable
    public mutating func removeAll() {
        used = 0
    }

    /// Calls `body` with the bytes written so far; the pointer is valid only
    /// during the call. Rethrows what `body` throws.
    @inlinable
    public func withUnsafeBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        // Array.withUnsafeBytes is untyped-rethrows; route the typed error through a Result.
        let outcome: Swift.Result<Result, Failure> = storage.withUnsafeBytes { raw in
            do throws(Failure) {
                return .success(try body(UnsafeRawBufferPointer(rebasing: raw[..<used])))
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }

    // MARK: Room

    /// Claims the next `byteCount` (>= 0) bytes, growing the storage if
    /// needed, and returns the offset they start at.
    @inlinable @inline(__always)
    internal mutating func claim(_ byteCount: Int) -> Int {
        let start = used
        if storage.count &- start < byteCount {
            grow(toHold: byteCount)
        }
        used = start &+ byteCount
        return start
    }

    /// Zero-fills the storage to at least `used + byteCount` bytes, at least
    /// doubling it so growth is amortized (allocating only when that exceeds
    /// the capacity).
    @usableFromInline @inline(never)
    internal mutating func grow(toHold byteCount: Int) {
        let target = Swift.max(used + byteCount, storage.count * 2, 64)
        storage.reserveCapacity(target)
        // Appending from a zeroed buffer is a memcpy; appending a repeated
        // element goes one byte at a time.
        Self.zeros.withUnsafeBufferPointer { zeros in
            while storage.count < target {
                let chunk = Swift.min(target - storage.count, zeros.count)
                storage.append(contentsOf: UnsafeBufferPointer(rebasing: zeros[..<chunk]))
            }
        }
    }

    /// Zero bytes to fill new storage from.
    private static let zeros = [UInt8](repeating: 0, count: 4096)

    /// Stores `value`'s bytes, little-endian, at the end.
    @inlinable @inline(__always)
    internal mutating func writeFixed<T: FixedWidthInteger>(_ value: T) {
        let start = claim(MemoryLayout<T>.size)
        storage.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: value.littleEndian, toByteOffset: start, as: T.self)
        }
    }

    // MARK: Fixed-width integers

    /// Appends one byte.
    @inlinable
    public mutating func writeUInt8(_ value: UInt8) { writeFixed(value) }

    /// Appends `value` as 2 bytes, little-endian.
    @inlinable
    public mutating func writeUInt16(_ value: UInt16) { writeFixed(value) }

    /// Appends `value` as 4 bytes, little-endian.
    @inlinable
    public mutating func writeUInt32(_ value: UInt32) { writeFixed(value) }

    /// Appends `value` as 8 bytes, little-endian.
    @inlinable
    public mutating func writeUInt64(_ value: UInt64) { writeFixed(value) }

    /// Appends `value` as 1 byte, two's complement.
    @inlinable
    public mutating func writeInt8(_ value: Int8) { writeFixed(value) }

    /// Appends `value` as 2 bytes, little-endian two's complement.
    @inlinable
    public mutating func writeInt16(_ value: Int16) { writeFixed(value) }

    /// Appends `value` as 4 bytes, little-endian two's complement.
    @inlinable
    public mutating func writeInt32(_ value: Int32) { writeFixed(value) }

    /// Appends `value` as 8 bytes, little-endian two's complement.
    @inlinable
    public mutating func writeInt64(_ value: Int64) { writeFixed(value) }

    // MARK: Varints

    /// The bytes ``writeVarint(_:)`` takes for `value`: 1 ... 10.
    @inlinable
    public static func varintSize(_ value: UInt64) -> Int {
        value < 0x80 ? 1 : (UInt64.bitWidth &- value.leadingZeroBitCount &+ 6) / 7
    }

    /// Appends `value` as an unsigned LEB128 varint: 1 byte below 128, at
    /// most 10 bytes.
    @inlinable
    public mutating func writeVarint(_ value: UInt64) {
        if value < 0x80 {
            writeFixed(UInt8(truncatingIfNeeded: value))
            return
        }
        // ceil(significant bits / 7) bytes.
        let length = (UInt64.bitWidth &- value.leadingZeroBitCount &+ 6) / 7
        let start = claim(length)
        storage.withUnsafeMutableBytes { raw in
            var rest = value
            var index = start
            let last = start &+ length &- 1
            while index < last {
                raw[index] = UInt8(truncatingIfNeeded: rest) | 0x80
                rest &>>= 7
                index &+= 1
            }
            raw[last] = UInt8(truncatingIfNeeded: rest)
        }
    }

    /// Appends `value` zigzag-mapped, as a varint: small magnitudes of
    /// either sign take few bytes (-64...63 take 1).
    @inlinable
    public mutating func writeZigZag(_ value: Int64) {
        writeVarint(UInt64(bitPattern: (value &<< 1) ^ (value &>> 63)))
    }

    // MARK: Bools, bytes, strings

    /// Appends `value` as one byte, 1 for true and 0 for false.
    @inlinable
    public mutating func writeBool(_ value: Bool) {
        writeFixed(UInt8(value ? 1 : 0))
    }

    /// Appends `bytes` as they are, with no length prefix (for fields whose
    /// size both sides know, or a payload that is the rest of the message).
    @inlinable
    public mutating func writeRawBytes(_ bytes: UnsafeRawBufferPointer) {
        let start = claim(bytes.count)
        storage.withUnsafeMutableBytes { raw in
            // `claim` made room for bytes.count bytes at start.
            UnsafeMutableRawBufferPointer(rebasing: raw[start..<(start &+ bytes.count)]).copyMemory(from: bytes)
        }
    }

    /// Appends a varint byte count, then `bytes`.
    @inlinable
    public mutating func writeBytes(_ bytes: UnsafeRawBufferPointer) {
        writeVarint(UInt64(bytes.count))
        writeRawBytes(bytes)
    }

    /// Appends a varint byte count, then `bytes`.
    @inlinable
    public mutating func writeBytes(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { writeBytes($0) }
    }

    /// Appends a varint byte count, then the UTF-8 bytes of `string`.
    @inlinable
    public mutating func writeString(_ string: String) {
        var string = string
        string.withUTF8 { writeBytes(UnsafeRawBufferPointer($0)) }
    }

    // MARK: Optionals, collections, encodable values

    /// Appends a presence byte (0 for nil, 1 otherwise), then, if present,
    /// the value as `writeValue` writes it.
    @inlinable
    public mutating func writeOptional<Value>(
        _ value: Value?, _ writeValue: (inout WireWriter, Value) -> Void
    ) {
        if let value {
            writeFixed(UInt8(1))
            writeValue(&self, value)
        } else {
            writeFixed(UInt8(0))
        }
    }

    /// Appends a varint element count, then each element as `writeElement`
    /// writes it.
    @inlinable
    public mutating func writeArray<Elements: Collection>(
        _ elements: Elements, _ writeElement: (inout WireWriter, Elements.Element) -> Void
    ) {
        writeVarint(UInt64(elements.count))
        for element in elements {
            writeElement(&self, element)
        }
    }

    /// Appends `value` in its own encoding (see ``WireEncodable``).
    @inlinable
    public mutating func write<Value: WireEncodable>(_ value: Value) {
        value.encode(to: &self)
    }

    // MARK: Frame support

    /// Overwrites 4 bytes at `offset` with `value`, little-endian. The caller
    /// has checked that `offset + 4 <= count`.
    internal mutating func patchUInt32(_ value: UInt32, at offset: Int) {
        storage.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
        }
    }

    /// Forgets the bytes from `offset` (at most ``count``) to the end.
    internal mutating func truncate(to offset: Int) {
        used = offset
    }
}
