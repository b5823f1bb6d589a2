import WireCodec

/// The unit a ``FileAcceptorStore`` appends with one `write(2)` and makes
/// durable with one `fdatasync(2)`: `[marker u32][payload length
/// u32][checksum u32][payload]`, little-endian, where the payload is a run
/// of ``AcceptorRecord``s and the checksum is the CRC32C of the log's salt
/// (8 bytes, little-endian) and the payload.
///
/// Because every batch is synced before the next one is written, only the
/// last batch of a log can be torn by a crash; the marker lets recovery
/// look for whole batches after a bad one (which a torn tail never has).
/// The salt, random per log file and never sent anywhere, is why a user's
/// value cannot pass for a batch there: a value holding a well-formed batch
/// inside a torn tail would make recovery refuse the log as damaged.
///
/// Package-visible so that the log fuzz target (`Scripts/fuzz
/// acceptorlog`) seals its batches as the store does.
package enum AcceptorLogBatch {
    /// Bytes before the payload.
    static let headerSize = 12
    /// "CPXB", little-endian.
    static let marker: UInt32 = 0x4258_5043

    /// What lies at an offset of the log.
    enum Check: Equatable {
        /// A whole batch whose checksum matches: its payload's range (in the
        /// bytes checked) and the batch's length.
        case valid(payload: Range<Int>, length: Int)
        /// Not a whole valid batch; `claimedEnd` is where its header says it
        /// ends, if the header is there and carries the marker.
        case bad(claimedEnd: Int?)
    }

    /// Frames `payload` as one batch of a log with `salt`.
    package static func seal(_ payload: [UInt8], salt: UInt64) -> [UInt8] {
        var writer = WireWriter(capacity: headerSize + payload.count)
        writer.writeUInt32(marker)
        writer.writeUInt32(UInt32(truncatingIfNeeded: payload.count))
        writer.writeUInt32(payload.withUnsafeBytes { checksum(of: $0, salt: salt) })
        payload.withUnsafeBytes { writer.writeRawBytes($0) }
        return writer.takeBytes()
    }

    private static func checksum(of payload: UnsafeRawBufferPointer, salt: UInt64) -> UInt32 {
        var crc = CRC32C(salt: salt)
        crc.update(payload)
        return crc.value
    }

    /// Checks the batch at the start of `bytes`, in a log with `salt`.
    static func check(_ bytes: UnsafeRawBufferPointer, salt: UInt64) -> Check {
        check(bytes) { range in Self.checksum(of: UnsafeRawBufferPointer(rebasing: bytes[range]), salt: salt) }
    }

    /// ``check(_:salt:)`` with `checksum` giving the salted checksum of a
    /// range of `bytes`.
    private static func check(_ bytes: UnsafeRawBufferPointer, checksum: (Range<Int>) -> UInt32) -> Check {
        guard bytes.count >= headerSize,
            UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) == marker
        else { return .bad(claimedEnd: nil) }
        let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        let recorded = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard length <= bytes.count - headerSize else { return .bad(claimedEnd: headerSize + length) }
        let payload = headerSize..<(headerSize + length)
        guard checksum(payload) == recorded else { return .bad(claimedEnd: headerSize + length) }
        return .valid(payload: payload, length: headerSize + length)
    }

    /// The offset of the first valid batch strictly after the start of
    /// `bytes`, if any (recovery's test for damage before the tail). Each
    /// offset's candidate is checksummed through ``CRC32CRanges``, so the
    /// search does not read the bytes again for every offset that holds the
    /// marker (a value can hold it many times).
    static func firstValid(after bytes: UnsafeRawBufferPointer, salt: UInt64) -> Int? {
        CRC32CRanges.firstValidOffset(in: bytes, salt: salt, leaving: headerSize) { candidate, checksum in
            if case .valid = check(candidate, checksum: checksum) { true } else { false }
        }
    }
}

extension AcceptorLogBatch {
    /// Records gathered into batches of a log with ``salt``: a batch is
    /// sealed once its payload reaches ``maximumPayload`` bytes, so none is
    /// longer than that and one record. A ``FileAcceptorStore`` buffers a
    /// sync's records in one, and writes a compaction's state through
    /// another.
    struct Writer {
        let maximumPayload: Int
        private let salt: UInt64
        private var records: WireWriter
        private var sealed: [[UInt8]] = []

        init(maximumPayload: Int, capacity: Int, salt: UInt64) {
            self.maximumPayload = maximumPayload
            self.salt = salt
            records = WireWriter(capacity: capacity)
        }

        mutating func append(_ write: AcceptorWrite) {
            AcceptorRecord.append(write, to: &records)
            sealIfFull()
        }

        /// The batches sealed so far, without the records not yet in one.
        mutating func takeSealedBatches() -> [[UInt8]] {
            defer { sealed = [] }
            return sealed
        }

        /// Every batch, the records not yet in one sealed last; leaves the
        /// writer empty.
        mutating func takeBatches() -> [[UInt8]] {
            if records.count > 0 { sealed.append(AcceptorLogBatch.seal(records.takeBytes(), salt: salt)) }
            defer { sealed = [] }
            return sealed
        }

        private mutating func sealIfFull() {
            if records.count >= maximumPayload { sealed.append(AcceptorLogBatch.seal(records.takeBytes(), salt: salt)) }
        }
    }
}
