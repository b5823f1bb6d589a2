import WireCodec

/// A snapshot's bytes as they travel to a follower (``RaftMessage/Body/snapshotChunk(snapshotIndex:snapshotTerm:totalSize:offset:data:)``)
/// and as a snapshot file (format 2) holds them: a byte saying whether a
/// ``RaftMembership`` follows (0 or 1), the membership, then the state
/// machine's bytes.
enum SnapshotPayload {
    /// The most bytes the membership part takes: the presence byte, two
    /// two-byte counts (voters, learners) and
    /// ``RaftMembership/maximumMembers`` members of 28 bytes (ID, presence
    /// byte, IPv6 endpoint). Snapshot size limits
    /// (``RaftConfiguration/maximumSnapshotSize``) are on the state
    /// machine's bytes: a payload may be this much larger.
    static let maximumOverhead = 5 + RaftMembership.maximumMembers * (8 + 1 + 19)

    /// The bytes a payload starts with: the presence byte and `membership`;
    /// the state machine's bytes follow.
    static func prefix(_ membership: RaftMembership?) -> [UInt8] {
        var writer = WireWriter(capacity: 64)
        if let membership {
            writer.writeUInt8(1)
            membership.encode(to: &writer)
        } else {
            writer.writeUInt8(0)
        }
        return writer.takeBytes()
    }

    /// The snapshot at (`index`, `term`) whose payload is `bytes`.
    ///
    /// - Throws: `WireError` if the membership part does not decode.
    static func decode(_ bytes: UnsafeRawBufferPointer, index: UInt64, term: UInt64) throws(WireError) -> RaftSnapshot {
        var reader = WireReader(bytes)
        let presence = try reader.readUInt8()
        let membership: RaftMembership?
        switch presence {
        case 0: membership = nil
        case 1: membership = try RaftMembership(from: &reader)
        default:
            throw WireError(.invalidValue, offset: 0, detail: "membership presence byte \(presence) is neither 0 nor 1")
        }
        return RaftSnapshot(
            index: index, term: term, membership: membership, data: Array(bytes[reader.offset...]))
    }
}
