import CChorusSystem

/// The CRC-32C (Castagnoli) checksum: reflected polynomial `0x82F63B78`,
/// initial value and final XOR `0xFFFFFFFF`, as used by iSCSI (RFC 3720),
/// SCTP and ext4. `"123456789"` checksums to `0xE3069283`.
///
/// Computed with the CPU's `crc32` instruction where it has one (x86-64
/// with SSE 4.2, through `CChorusSystem`), 8 input bytes per instruction;
/// elsewhere with slicing-by-8 tables (8 × 256 entries, built once on
/// first use), 8 input bytes per step. Both give the same values.
/// Incremental: feeding a message in pieces with ``update(_:)`` gives the
/// same ``value`` as one ``checksum(_:)`` call.
public struct CRC32C: Sendable {
    /// The running register, before the final XOR.
    private(set) var state: UInt32 = 0xFFFF_FFFF

    /// Creates a checksum of no bytes (whose ``value`` is 0).
    public init() {}

    /// Resumes a checksum whose register is `state`.
    init(state: UInt32) {
        self.state = state
    }

    /// Creates a checksum that has been fed `salt` (its 8 bytes,
    /// little-endian). A log whose records are checksummed from a salt it
    /// keeps secret cannot be handed a record forged inside a value: no one
    /// without the salt can compute a matching checksum.
    public init(salt: UInt64) {
        withUnsafeBytes(of: salt.littleEndian) { update($0) }
    }

    /// The checksum of every byte fed so far.
    public var value: UInt32 { ~state }

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    /// Feeds `bytes`, which follow everything fed before.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard Self.hasInstruction, let base = bytes.baseAddress else {
            return updateWithTables(bytes)
        }
        state = CChorus_crc32c_update_hardware(state, base, bytes.count)
    }

    /// Whether ``update(_:)-(UnsafeRawBufferPointer)`` uses the CPU's
    /// instruction.
    static let hasInstruction = CChorus_crc32c_hardware_available() != 0

    /// Feeds `bytes` through the tables, whatever the CPU has.
    mutating func updateWithTables(_ bytes: UnsafeRawBufferPointer) {
        state = Self.tables.withUnsafeBufferPointer { tables in
            Self.update(state, bytes, tables)
        }
    }

    /// Feeds `bytes`, which follow everything fed before.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Runs the register `crc` over `bytes`. `tables` holds the 8 tables of
    /// 256 entries; every index below is a table number times 256 plus a
    /// byte, so it is always within the 2048 entries.
    private static func update(
        _ crc: UInt32, _ bytes: UnsafeRawBufferPointer, _ tables: UnsafeBufferPointer<UInt32>
    ) -> UInt32 {
        var crc = crc
        var index = 0
        let count = bytes.count
        while count &- index >= 8 {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            let low = UInt32(truncatingIfNeeded: word) ^ crc
            let high = UInt32(truncatingIfNeeded: word &>> 32)
            crc = tables[0x700 | Int(low & 0xFF)]
                ^ tables[0x600 | Int((low &>> 8) & 0xFF)]
                ^ tables[0x500 | Int((low &>> 16) & 0xFF)]
                ^ tables[0x400 | Int(low &>> 24)]
                ^ tables[0x300 | Int(high & 0xFF)]
                ^ tables[0x200 | Int((high &>> 8) & 0xFF)]
                ^ tables[0x100 | Int((high &>> 16) & 0xFF)]
                ^ tables[Int(high &>> 24)]
            index &+= 8
        }
        while index < count {
            crc = tables[Int((crc ^ UInt32(bytes[index])) & 0xFF)] ^ (crc &>> 8)
            index &+= 1
        }
        return crc
    }

    /// Slicing-by-8 tables: table 0 is the byte-at-a-time table; table k
    /// gives the effect of a byte followed by k zero bytes.
    private static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 {
                crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
            }
            tables[byte] = crc
        }
        for table in 1..<8 {
            for byte in 0..<256 {
                let previous = tables[(table - 1) * 256 + byte]
                tables[table * 256 + byte] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()
}
