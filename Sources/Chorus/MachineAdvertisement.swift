import WireCodec

/// What a ``ChorusNode`` tells the cluster about itself in its SWIM
/// member's metadata: the Raft groups it runs a replica of (so that a
/// group's leader with a ``RaftMembershipPolicy`` adds a machine that
/// starts one), and the application's own metadata after them.
///
/// The encoding: a marker byte (0xC1), a varint count of groups, each
/// group's ID as a varint, then the application's bytes to the end.
/// Metadata that does not decode (a member that is no `ChorusNode`, or a
/// hostile one) advertises nothing.
struct MachineAdvertisement: Hashable {
    static let marker: UInt8 = 0xC1

    /// The groups, ascending.
    var groups: [UInt64]
    var application: [UInt8]

    init(groups: [UInt64], application: [UInt8]) {
        self.groups = groups.sorted()
        self.application = application
    }

    /// Decodes `metadata`; nil if it is no advertisement.
    init?(decoding metadata: [UInt8]) {
        let decoded = metadata.withUnsafeBytes { buffer -> (groups: [UInt64], end: Int)? in
            var reader = WireReader(buffer)
            do throws(WireError) {
                guard try reader.readUInt8() == Self.marker else { return nil }
                let count = try reader.readVarint()
                // Each group takes a byte at the least.
                guard count <= UInt64(reader.remainingCount) else { return nil }
                var groups: [UInt64] = []
                groups.reserveCapacity(Int(count))
                for _ in 0..<count { groups.append(try reader.readVarint()) }
                return (groups, reader.offset)
            } catch {
                return nil
            }
        }
        guard let decoded else { return nil }
        self.init(groups: decoded.groups, application: Array(metadata[decoded.end...]))
    }

    var encoded: [UInt8] {
        var writer = WireWriter(capacity: 2 + groups.count * 10 + application.count)
        writer.writeUInt8(Self.marker)
        writer.writeVarint(UInt64(groups.count))
        for group in groups { writer.writeVarint(group) }
        application.withUnsafeBytes { writer.writeRawBytes($0) }
        return writer.bytes
    }
}
