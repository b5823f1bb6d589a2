import WireCodec

/// The unit a ``FileAcceptorStore`` appends with one `write(2)` and makes
/// durable with one `fdatasync(2)`: `[marker u32][payload length
/// u32][CRC32C of the payload u32][payload]`, little-endian, where the
/// payload is a run of ``AcceptorRecord``s.
///
/// Because every batch is synced before the next one is written, only the
/// last batch of a log can be torn by a crash; the marker lets recovery
/// look for whole batches after a bad one (which a torn tail never has).
enum AcceptorLogBatch {
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

    /// Frames `payload` as one batch.
    static func seal(_ payload: [UInt8]) -> [UInt8] {
        var writer = WireWriter(capacity: headerSize + payload.count)
        writer.writeUInt32(marker)
        writer.writeUInt32(UInt32(truncatingIfNeeded: payload.count))
        var crc = CRC32C()
        crc.update(payload)
        writer.writeUInt32(crc.value)
        payload.withUnsafeBytes { writer.writeRawBytes($0) }
        return writer.takeBytes()
    }

    /// Checks the batch at the start of `bytes`.
    static func check(_ bytes: UnsafeRawBufferPointer) -> Check {
        guard bytes.count >= headerSize,
            UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) == marker
        else { return .bad(claimedEnd: nil) }
        let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        let checksum = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard length <= bytes.count - headerSize else { return .bad(claimedEnd: headerSize + length) }
        let payload = headerSize..<(headerSize + length)
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[payload])) == checksum else {
            return .bad(claimedEnd: headerSize + length)
        }
        return .valid(payload: payload, length: headerSize + length)
    }

    /// The offset of the first valid batch strictly after the start of
    /// `bytes`, if any (recovery's test for damage before the tail).
    static func firstValid(after bytes: UnsafeRawBufferPointer) -> Int? {
        var offset = 1
        while offset + headerSize <= bytes.count {
            if case .valid = check(UnsafeRawBufferPointer(rebasing: bytes[offset...])) { return offset }
            offset += 1
        }
        return nil
    }
}

extension AcceptorLogBatch {
    /// Records gathered into batches: a batch is sealed once its payload
    /// reaches ``maximumPayload`` bytes, so none is longer than that and one
    /// record. A ``FileAcceptorStore`` buffers a sync's records in one, and
    /// writes a compaction's state through another.
    struct Writer {
        let maximumPayload: Int
        private var records: WireWriter
        private var sealed: [[UInt8]] = []

        init(maximumPayload: Int, capacity: Int) {
            self.maximumPayload = maximumPayload
            records = WireWriter(capacity: capacity)
        }

        mutating func append(_ write: AcceptorWrite) {
            AcceptorRecord.append(write, to: &records)
            sealIfFull()
        }

        mutating func appendFloor(_ floor: Ballot) {
            AcceptorRecord.appendFloor(floor, to: &records)
            sealIfFull()
        }

        /// Every batch, the records not yet in one sealed last; leaves the
        /// writer empty.
        mutating func takeBatches() -> [[UInt8]] {
            if records.count > 0 { sealed.append(AcceptorLogBatch.seal(records.takeBytes())) }
            defer { sealed = [] }
            return sealed
        }

        private mutating func sealIfFull() {
            if records.count >= maximumPayload { sealed.append(AcceptorLogBatch.seal(records.takeBytes())) }
        }
    }
}
