import EventCore
import WireCodec

/// The on-disk form of one ``AcceptorWrite`` in a ``FileAcceptorStore``: a
/// tag byte and the write's fields (keys and values length-prefixed, node
/// IDs and ballots as on the wire). Records carry no checksum of their own:
/// they travel in an ``AcceptorLogBatch``, whose checksum covers them.
enum AcceptorRecord {
    enum Tag: UInt8 {
        case register = 1, remove, minimumAge, removalFloor, forgetMinimumAge, proposerConfiguration
        /// A fence without its digest (format 4, and a fence with an
        /// unknown digest), and with it (format 5).
        case minimumVersion, digestedMinimumVersion
        /// A register whose accepted value names its parent
        /// (``RegisterState/parent``): the register's fields, then the
        /// parent (format 6).
        case registerWithParent
    }

    /// The oldest ``FileAcceptorStore`` format version that can hold the
    /// record of `write`: 3 introduced the configuration's tag, 4 the
    /// fence's, 5 the fence with its digest, 6 the register with its
    /// value's parent.
    static func formatVersion(of write: AcceptorWrite) -> UInt32 {
        switch write {
        case .register(_, let state) where state.parent != nil: 6
        case .register, .remove, .removalFloor, .minimumAge, .forgetMinimumAge: 2
        case .proposerConfiguration: 3
        case .minimumVersion(let version): version.digest == 0 ? 4 : 5
        }
    }

    /// Appends the record of `write` to `writer`.
    static func append(_ write: AcceptorWrite, to writer: inout WireWriter) {
        switch write {
        case .register(let key, let state):
            writer.writeUInt8(state.parent == nil ? Tag.register.rawValue : Tag.registerWithParent.rawValue)
            writer.writeBytes(key)
            writer.write(state.promised)
            writer.write(state.accepted)
            writer.writeOptional(state.value) { $0.writeBytes($1) }
            if let parent = state.parent { writer.write(parent) }
        case .remove(let key, let floor):
            writer.writeUInt8(Tag.remove.rawValue)
            writer.writeBytes(key)
            writer.write(floor)
        case .removalFloor(let floor):
            writer.writeUInt8(Tag.removalFloor.rawValue)
            writer.write(floor)
        case .minimumAge(let proposer, let age):
            writer.writeUInt8(Tag.minimumAge.rawValue)
            writer.write(proposer)
            writer.writeVarint(age)
        case .forgetMinimumAge(let proposer):
            writer.writeUInt8(Tag.forgetMinimumAge.rawValue)
            writer.write(proposer)
        case .proposerConfiguration(let quorums):
            writer.writeUInt8(Tag.proposerConfiguration.rawValue)
            writer.write(quorums)
        case .minimumVersion(let version) where version.digest == 0:
            writer.writeUInt8(Tag.minimumVersion.rawValue)
            writer.writeVarint(version.number)
        case .minimumVersion(let version):
            writer.writeUInt8(Tag.digestedMinimumVersion.rawValue)
            writer.write(version)
        }
    }

    /// The limits a log is replayed with: values up to the largest
    /// ``CASPaxosConfiguration/maximumValueSize`` allows (16 MiB), keys up
    /// to the largest ``CASPaxosConfiguration/maximumKeySize``. With the
    /// reader's defaults (4 MiB), a value the acceptor had accepted and
    /// acknowledged made its log unreadable at the next start.
    static let replayLimits = WireLimits(maximumByteStringLength: 16 << 20)

    /// Reads one record from `reader` into `snapshot`.
    ///
    /// - Throws: `WireError` if the record is cut short or malformed.
    static func read(from reader: inout WireReader, into snapshot: inout AcceptorSnapshot) throws(WireError) {
        let tag = try reader.readEnum(Tag.self)
        switch tag {
        case .register, .registerWithParent:
            let key = try reader.readByteArray()
            let promised = try reader.read(Ballot.self)
            let accepted = try reader.read(Ballot.self)
            let value = try reader.readOptional { r throws(WireError) in try r.readByteArray() }
            let parent = tag == .registerWithParent ? try reader.read(Ballot.self) : nil
            snapshot.apply(
                .register(
                    key: key, state: RegisterState(promised: promised, accepted: accepted, value: value, parent: parent)))
        case .remove:
            let key = try reader.readByteArray()
            snapshot.apply(.remove(key: key, floor: try reader.read(Ballot.self)))
        case .minimumAge:
            let proposer = try reader.read(NodeID.self)
            // Within what the network decodes: replayed, a larger one would
            // go out in refusals every peer drops.
            let age = try reader.readVarint(atMost: ProposerAge.maximumAge, what: "minimum age")
            snapshot.apply(.minimumAge(proposer: proposer, age: age))
        case .removalFloor:
            snapshot.apply(.removalFloor(try reader.read(Ballot.self)))
        case .forgetMinimumAge:
            snapshot.apply(.forgetMinimumAge(proposer: try reader.read(NodeID.self)))
        case .proposerConfiguration:
            snapshot.apply(.proposerConfiguration(try reader.read(AcceptorQuorums.self)))
        case .minimumVersion:
            let version = try reader.readVarint(atMost: AcceptorQuorums.maximumVersion, what: "configuration version")
            snapshot.apply(.minimumVersion(ConfigurationVersion(version, digest: 0)))
        case .digestedMinimumVersion:
            snapshot.apply(.minimumVersion(try reader.read(ConfigurationVersion.self)))
        }
    }
}
