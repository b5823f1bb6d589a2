import EventCore
import WireCodec

extension CASPaxosMessage {
    /// Appends this message's body to `writer` (frame it with
    /// ``encodeFrame(into:)`` to send it).
    public func encode(to writer: inout WireWriter) {
        switch self {
        case .prepare(let id, let key, let ballot, let age, let version):
            Self.writePrepare(.prepare, id, key, ballot, age, version, &writer)
        case .readPrepare(let id, let key, let ballot, let age, let version):
            Self.writePrepare(.readPrepare, id, key, ballot, age, version, &writer)
        case .rewriteTombstone(let id, let key, let ballot, let age, let version):
            Self.writePrepare(.rewriteTombstone, id, key, ballot, age, version, &writer)
        case .collectionPrepare(let id, let key, let ballot, let age, let version):
            Self.writePrepare(.collectionPrepare, id, key, ballot, age, version, &writer)
        case .unrecordedPromise(let id, let removalFloor):
            Self.start(.unrecordedPromise, id, &writer)
            writer.writeOptional(removalFloor) { $1.encode(to: &$0) }
        case .promise(let id, let accepted, let value, let removalFloor):
            Self.writePromise(.promise, id, accepted, value, removalFloor, &writer)
        case .promiseWithParent(let id, let accepted, let value, let removalFloor, let parent):
            Self.writePromise(.promiseWithParent, id, accepted, value, removalFloor, &writer)
            parent.encode(to: &writer)
        case .accept(let id, let key, let ballot, let age, let value, let nextBallot, let version):
            Self.writeAccept(.accept, id, key, ballot, age, value, nextBallot, version, &writer)
        case .acceptWithParent(let id, let key, let ballot, let age, let value, let version, let parent, let nextBallot):
            Self.writeAccept(.acceptWithParent, id, key, ballot, age, value, nextBallot, version, &writer)
            parent.encode(to: &writer)
        case .accepted(let id):
            Self.start(.accepted, id, &writer)
        case .conflict(let id, let highest, let neverAccepted):
            Self.start(.conflict, id, &writer)
            highest.encode(to: &writer)
            writer.writeBool(neverAccepted)
        case .staleAge(let id, let minimumAge):
            Self.start(.staleAge, id, &writer)
            writer.writeVarint(minimumAge)
        case .staleConfiguration(let id, let minimumVersion):
            Self.start(.staleConfiguration, id, &writer)
            minimumVersion.encode(to: &writer)
        case .registersFull(let id):
            Self.start(.registersFull, id, &writer)
        case .invalidate(let id, let key, let ballot):
            Self.start(.invalidate, id, &writer)
            writer.writeBytes(key)
            ballot.encode(to: &writer)
        case .invalidated(let id, let proposer, let age):
            Self.start(.invalidated, id, &writer)
            writer.write(proposer)
            writer.writeVarint(age)
        case .setMinimumAges(let id, let ages):
            Self.start(.setMinimumAges, id, &writer)
            writer.writeArray(ages) { writer, pair in
                writer.write(pair.proposer)
                writer.writeVarint(pair.age)
            }
        case .removeTombstone(let id, let key, let ballot):
            Self.start(.removeTombstone, id, &writer)
            writer.writeBytes(key)
            ballot.encode(to: &writer)
        case .acknowledged(let id):
            Self.start(.acknowledged, id, &writer)
        case .reconfigure(let id, let quorums):
            Self.start(.reconfigure, id, &writer)
            quorums.encode(to: &writer)
        case .configurationRefused(let id, let current):
            Self.start(.configurationRefused, id, &writer)
            current.encode(to: &writer)
        case .listKeys(let id, let after, let floor, let minimumVersion):
            Self.start(.listKeys, id, &writer)
            writer.writeOptional(after) { $0.writeBytes($1) }
            writer.writeOptional(floor) { $1.encode(to: &$0) }
            minimumVersion.encode(to: &writer)
        case .keyList(let id, let keys, let isComplete, let removalFloor):
            Self.start(.keyList, id, &writer)
            writer.writeBool(isComplete)
            writer.writeArray(keys) { $0.writeBytes($1) }
            removalFloor.encode(to: &writer)
        case .setMinimumVersion(let id, let version):
            Self.start(.setMinimumVersion, id, &writer)
            version.encode(to: &writer)
        }
    }

    /// Appends this message as one CASPaxos frame (header and body).
    ///
    /// - Throws: `WireError.Code.lengthExceedsLimit` if the frame would be
    ///   longer than `maximumMessageSize`; `writer` is left as it was.
    public func encodeFrame(into writer: inout WireWriter, maximumMessageSize: Int) throws(WireError) {
        try Frame.encode(
            protocol: .casPaxos, limits: WireLimits(maximumFrameLength: maximumMessageSize), into: &writer
        ) { encode(to: &$0) }
    }

    /// Decodes a frame body that holds one message (not a batch), refusing
    /// keys and values longer than `configuration` allows and key lists
    /// longer than its ``CASPaxosConfiguration/maximumKeysPerListing``.
    ///
    /// - Throws: `WireError`: `.truncated` if the body ends early,
    ///   `.invalidValue` for an unknown tag or a batch, a bad presence byte,
    ///   an address family other than 4 or 6, a ballot counter above
    ///   ``Ballot/maximumCounter``, an age above ``ProposerAge/maximumAge``,
    ///   a configuration version above ``AcceptorQuorums/maximumVersion``
    ///   or quorum sizes that do not fit;
    ///   `.lengthExceedsLimit` for a key, value or list over its limit;
    ///   `.trailingBytes` if bytes follow the message.
    public init(decoding body: UnsafeRawBufferPointer, configuration: CASPaxosConfiguration) throws(WireError) {
        var reader = WireReader(body, limits: Self.limits(configuration))
        self = try Self.read(from: &reader, configuration)
        try reader.finish()
    }

    /// Decodes a frame body, one message or a batch (see
    /// ``CASPaxosMessage``), and appends its messages to `messages`, in
    /// order. The whole body is checked before this returns: on a throw,
    /// `messages` is left as it was, so no message of a bad frame is acted
    /// on.
    ///
    /// A batch's count is checked before anything is reserved for it:
    /// against ``CASPaxosConfiguration/maximumMessagesPerFrame`` and
    /// against the bytes present (every message takes at least nine).
    ///
    /// - Throws: `WireError`: what ``init(decoding:configuration:)``
    ///   throws for each message, and for a batch `.invalidValue` if its
    ///   count is 0 or a message in it is itself a batch,
    ///   `.lengthExceedsLimit` if its count is above the limit, and
    ///   `.truncated` if its count needs more bytes than follow.
    public static func decodeFrameBody(
        _ body: UnsafeRawBufferPointer, configuration: CASPaxosConfiguration,
        into messages: inout [CASPaxosMessage]
    ) throws(WireError) {
        var reader = WireReader(body, limits: limits(configuration))
        let first = messages.count
        do throws(WireError) {
            if body.first == Kind.batch.rawValue {
                _ = try reader.readUInt8()
                let count = try readBatchCount(&reader, configuration)
                messages.reserveCapacity(first + count)
                for _ in 0..<count { messages.append(try read(from: &reader, configuration)) }
            } else {
                messages.append(try read(from: &reader, configuration))
            }
            try reader.finish()
        } catch {
            messages.removeSubrange(first...)
            throw error
        }
    }

    /// The smallest encoded message: a tag and the 8-byte request ID.
    static let minimumEncodedSize = 9

    /// Reads a batch's count and checks it (see
    /// ``decodeFrameBody(_:configuration:into:)``).
    private static func readBatchCount(
        _ reader: inout WireReader, _ configuration: CASPaxosConfiguration
    ) throws(WireError) -> Int {
        let offset = reader.offset
        let count = try reader.readVarint()
        guard count > 0 else {
            throw WireError(.invalidValue, offset: offset, detail: "a batch of no messages")
        }
        guard count <= UInt64(configuration.maximumMessagesPerFrame) else {
            throw WireError(
                .lengthExceedsLimit, offset: offset,
                detail: "a batch of \(count) messages, limit \(configuration.maximumMessagesPerFrame)")
        }
        let present = reader.remainingCount
        guard Int(count) <= present / minimumEncodedSize else {
            throw WireError(
                .truncated, offset: offset,
                detail: "a batch of \(count) messages needs at least \(Int(count) * minimumEncodedSize) bytes, \(present) follow")
        }
        return Int(count)
    }

    /// The decoder's limits for `configuration`.
    private static func limits(_ configuration: CASPaxosConfiguration) -> WireLimits {
        WireLimits(
            maximumByteStringLength: max(configuration.maximumKeySize, configuration.maximumValueSize),
            maximumCollectionCount: max(configuration.maximumKeysPerListing, configuration.trackedProposerLimit, 255),
            maximumFrameLength: configuration.maximumMessageSize)
    }

    /// Reads one message (a tag and its fields; never a batch).
    private static func read(
        from reader: inout WireReader, _ configuration: CASPaxosConfiguration
    ) throws(WireError) -> CASPaxosMessage {
        let tagOffset = reader.offset
        let tag = try reader.readUInt8()
        guard let kind = Kind(rawValue: tag) else {
            throw WireError(.invalidValue, offset: tagOffset, detail: "unknown CASPaxos message tag \(tag)")
        }
        let id = try reader.readUInt64()
        let keyLimit = configuration.maximumKeySize
        switch kind {
        case .prepare:
            let (key, ballot, age, version) = try readPrepare(&reader, keyLimit: keyLimit)
            return .prepare(requestID: id, key: key, ballot: ballot, age: age, version: version)
        case .readPrepare:
            let (key, ballot, age, version) = try readPrepare(&reader, keyLimit: keyLimit)
            return .readPrepare(requestID: id, key: key, ballot: ballot, age: age, version: version)
        case .rewriteTombstone:
            let (key, ballot, age, version) = try readPrepare(&reader, keyLimit: keyLimit)
            return .rewriteTombstone(requestID: id, key: key, ballot: ballot, age: age, version: version)
        case .collectionPrepare:
            let (key, ballot, age, version) = try readPrepare(&reader, keyLimit: keyLimit)
            return .collectionPrepare(requestID: id, key: key, ballot: ballot, age: age, version: version)
        case .unrecordedPromise:
            let removalFloor = try reader.readOptional { r throws(WireError) in try Ballot(from: &r) }
            return .unrecordedPromise(requestID: id, removalFloor: removalFloor)
        case .promise:
            let (accepted, value, removalFloor) = try readPromise(&reader, configuration)
            return .promise(requestID: id, accepted: accepted, value: value, removalFloor: removalFloor)
        case .promiseWithParent:
            let (accepted, value, removalFloor) = try readPromise(&reader, configuration)
            return .promiseWithParent(
                requestID: id, accepted: accepted, value: value, removalFloor: removalFloor, parent: try Ballot(from: &reader))
        case .accept:
            let (key, ballot, age, value, next, version) = try readAccept(&reader, keyLimit: keyLimit, configuration)
            return .accept(
                requestID: id, key: key, ballot: ballot, age: age, value: value, nextBallot: next, version: version)
        case .acceptWithParent:
            let (key, ballot, age, value, next, version) = try readAccept(&reader, keyLimit: keyLimit, configuration)
            return .acceptWithParent(
                requestID: id, key: key, ballot: ballot, age: age, value: value, version: version,
                parent: try Ballot(from: &reader), nextBallot: next)
        case .accepted: return .accepted(requestID: id)
        case .conflict:
            let highest = try Ballot(from: &reader)
            return .conflict(requestID: id, highest: highest, neverAccepted: try reader.readBool())
        case .staleAge: return .staleAge(requestID: id, minimumAge: try readAge(&reader))
        case .staleConfiguration:
            return .staleConfiguration(requestID: id, minimumVersion: try ConfigurationVersion(from: &reader))
        case .registersFull: return .registersFull(requestID: id)
        case .setMinimumVersion: return .setMinimumVersion(requestID: id, version: try ConfigurationVersion(from: &reader))
        case .invalidate:
            let key = try readBytes(&reader, limit: keyLimit, what: "key")
            return .invalidate(requestID: id, key: key, ballot: try Ballot(from: &reader))
        case .invalidated:
            let proposer = try reader.read(NodeID.self)
            return .invalidated(requestID: id, proposer: proposer, age: try readAge(&reader))
        case .setMinimumAges:
            let ages = try reader.readArray { r throws(WireError) in
                let proposer = try r.read(NodeID.self)
                return ProposerAge(proposer: proposer, age: try readAge(&r))
            }
            return .setMinimumAges(requestID: id, ages: ages)
        case .removeTombstone:
            let key = try readBytes(&reader, limit: keyLimit, what: "key")
            return .removeTombstone(requestID: id, key: key, ballot: try Ballot(from: &reader))
        case .acknowledged: return .acknowledged(requestID: id)
        case .reconfigure: return .reconfigure(requestID: id, quorums: try AcceptorQuorums(from: &reader))
        case .configurationRefused:
            return .configurationRefused(requestID: id, current: try AcceptorQuorums(from: &reader))
        case .listKeys:
            let after = try reader.readOptional { r throws(WireError) in
                try readBytes(&r, limit: keyLimit, what: "key")
            }
            let floor = try reader.readOptional { r throws(WireError) in try Ballot(from: &r) }
            let minimumVersion = try ConfigurationVersion(from: &reader)
            return .listKeys(requestID: id, after: after, raisingFloorTo: floor, minimumVersion: minimumVersion)
        case .keyList:
            let isComplete = try reader.readBool()
            let countOffset = reader.offset
            let keys = try reader.readArray { r throws(WireError) in try readBytes(&r, limit: keyLimit, what: "key") }
            guard keys.count <= configuration.maximumKeysPerListing else {
                throw WireError(
                    .lengthExceedsLimit, offset: countOffset,
                    detail: "\(keys.count) keys in a listing, limit \(configuration.maximumKeysPerListing)")
            }
            return .keyList(requestID: id, keys: keys, isComplete: isComplete, removalFloor: try Ballot(from: &reader))
        case .batch:
            throw WireError(.invalidValue, offset: tagOffset, detail: "a batch where one message belongs")
        }
    }

    private static func start(_ kind: Kind, _ id: UInt64, _ writer: inout WireWriter) {
        writer.writeUInt8(kind.rawValue)
        writer.writeUInt64(id)
    }

    /// A prepare's layout, under `kind` (a prepare or a read's).
    private static func writePrepare(
        _ kind: Kind, _ id: UInt64, _ key: [UInt8], _ ballot: Ballot, _ age: UInt64, _ version: ConfigurationVersion,
        _ writer: inout WireWriter
    ) {
        start(kind, id, &writer)
        writer.writeBytes(key)
        ballot.encode(to: &writer)
        writer.writeVarint(age)
        version.encode(to: &writer)
    }

    /// The fields ``writePrepare(_:_:_:_:_:_:_:)`` writes after the request ID.
    private static func readPrepare(
        _ reader: inout WireReader, keyLimit: Int
    ) throws(WireError) -> (key: [UInt8], ballot: Ballot, age: UInt64, version: ConfigurationVersion) {
        let key = try readBytes(&reader, limit: keyLimit, what: "key")
        let ballot = try Ballot(from: &reader)
        let age = try readAge(&reader)
        return (key, ballot, age, try ConfigurationVersion(from: &reader))
    }

    /// A promise's layout, under `kind` (with its parent, or without).
    private static func writePromise(
        _ kind: Kind, _ id: UInt64, _ accepted: Ballot, _ value: [UInt8]?, _ removalFloor: Ballot?,
        _ writer: inout WireWriter
    ) {
        start(kind, id, &writer)
        accepted.encode(to: &writer)
        write(value, &writer)
        writer.writeOptional(removalFloor) { $1.encode(to: &$0) }
    }

    /// The fields ``writePromise(_:_:_:_:_:_:)`` writes after the request ID.
    private static func readPromise(
        _ reader: inout WireReader, _ configuration: CASPaxosConfiguration
    ) throws(WireError) -> (accepted: Ballot, value: [UInt8]?, removalFloor: Ballot?) {
        let accepted = try Ballot(from: &reader)
        let value = try readValue(&reader, configuration)
        return (accepted, value, try reader.readOptional { r throws(WireError) in try Ballot(from: &r) })
    }

    /// An accept's layout, under `kind` (with its parent, or without).
    private static func writeAccept(
        _ kind: Kind, _ id: UInt64, _ key: [UInt8], _ ballot: Ballot, _ age: UInt64, _ value: [UInt8]?,
        _ nextBallot: Ballot?, _ version: ConfigurationVersion, _ writer: inout WireWriter
    ) {
        start(kind, id, &writer)
        writer.writeBytes(key)
        ballot.encode(to: &writer)
        writer.writeVarint(age)
        write(value, &writer)
        writer.writeOptional(nextBallot) { $1.encode(to: &$0) }
        version.encode(to: &writer)
    }

    /// The fields ``writeAccept(_:_:_:_:_:_:_:_:_:)`` writes after the request ID.
    private static func readAccept(
        _ reader: inout WireReader, keyLimit: Int, _ configuration: CASPaxosConfiguration
    ) throws(WireError) -> (
        key: [UInt8], ballot: Ballot, age: UInt64, value: [UInt8]?, next: Ballot?, version: ConfigurationVersion
    ) {
        let key = try readBytes(&reader, limit: keyLimit, what: "key")
        let ballot = try Ballot(from: &reader)
        let age = try readAge(&reader)
        let value = try readValue(&reader, configuration)
        let next = try reader.readOptional { r throws(WireError) in try Ballot(from: &r) }
        return (key, ballot, age, value, next, try ConfigurationVersion(from: &reader))
    }

    private static func write(_ value: [UInt8]?, _ writer: inout WireWriter) {
        writer.writeOptional(value) { $0.writeBytes($1) }
    }

    private static func readBytes(
        _ reader: inout WireReader, limit: Int, what: String
    ) throws(WireError) -> [UInt8] {
        let start = reader.offset
        let bytes = try reader.readBytes()
        guard bytes.count <= limit else {
            throw WireError(.lengthExceedsLimit, offset: start, detail: "\(what) of \(bytes.count) bytes, limit \(limit)")
        }
        return Array(bytes)
    }

    /// Reads a proposer's age, refusing one above
    /// ``ProposerAge/maximumAge``.
    private static func readAge(_ reader: inout WireReader) throws(WireError) -> UInt64 {
        try reader.readVarint(atMost: ProposerAge.maximumAge, what: "age")
    }

    private static func readValue(
        _ reader: inout WireReader, _ configuration: CASPaxosConfiguration
    ) throws(WireError) -> [UInt8]? {
        try reader.readOptional { r throws(WireError) in
            try readBytes(&r, limit: configuration.maximumValueSize, what: "value")
        }
    }
}

extension AcceptorQuorums: WireCodable {
    /// Writes the version, the prepare acceptors and quorum, then the
    /// accept acceptors and quorum (counts, versions and quorums as
    /// varints): a ``CASPaxosMessage/reconfigure(requestID:quorums:)``'s
    /// fields, and a node's configuration in its ``FileAcceptorStore``.
    public func encode(to writer: inout WireWriter) {
        writer.writeVarint(version)
        writer.writeArray(prepareAcceptors) { $0.write($1) }
        writer.writeVarint(UInt64(prepareQuorum))
        writer.writeArray(acceptAcceptors) { $0.write($1) }
        writer.writeVarint(UInt64(acceptQuorum))
    }

    /// Reads what ``encode(to:)`` writes.
    ///
    /// - Throws: `WireError` `.truncated` if the bytes end early,
    ///   `.invalidValue` for a configuration ``validate()`` refuses.
    public init(from reader: inout WireReader) throws(WireError) {
        let version = try reader.readVarint()
        let prepare = try reader.readArray { r throws(WireError) in try r.read(Endpoint.self) }
        let prepareQuorum = try reader.readVarint()
        let accept = try reader.readArray { r throws(WireError) in try r.read(Endpoint.self) }
        let offset = reader.offset
        let acceptQuorum = try reader.readVarint()
        self.init(
            version: version, prepareAcceptors: prepare, prepareQuorum: Int(clamping: prepareQuorum),
            acceptAcceptors: accept, acceptQuorum: Int(clamping: acceptQuorum))
        do throws(ConfigurationError) {
            try validate()
        } catch {
            throw WireError(.invalidValue, offset: offset, detail: "invalid acceptor quorums: \(error)")
        }
    }
}
