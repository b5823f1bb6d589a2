import EventCore
import WireCodec

/// One Raft message between the replicas of a group: the body of a frame
/// with protocol id `raft`.
///
/// Layout: a kind byte, the group (varint), sender and receiver
/// ``NodeID``s (8 bytes each), the sender's term (varint), then the kind's
/// fields (indices and terms as varints, entries as a count and that many
/// ``RaftEntry``s). Every message names its group: a
/// ``RaftGroupMultiplexer`` reads it (``peekGroup(_:)``) to run many
/// groups on one transport. A ``RaftNode`` runs one group, and drops (and
/// counts) messages of other groups.
public struct RaftMessage: Hashable, Sendable {
    /// The outcome of an AppendEntries at a follower.
    public enum AppendResult: Hashable, Sendable {
        /// The follower's log matches the leader's through `matchIndex`.
        case accepted(matchIndex: UInt64)
        /// The consistency check failed at `rejectedIndex` (the request's
        /// previous index). Fast backtracking (Raft §5.3): the follower's
        /// entry there has `conflictTerm` and the first entry of that term
        /// it holds is at `conflictIndex`; with `conflictTerm` 0 its log
        /// ends before `rejectedIndex` and `conflictIndex` is its last index
        /// plus one.
        case rejected(rejectedIndex: UInt64, conflictTerm: UInt64, conflictIndex: UInt64)
    }

    /// The leader's answer to a forwarded proposal.
    public enum ForwardOutcome: Hashable, Sendable {
        /// The leader appended the command at (`term`, `index`): the
        /// proposal took effect if the entry committed there has that term.
        case appended(term: UInt64, index: UInt64)
        /// The leader refused it (not the leader any more, too large, over
        /// its uncommitted limit).
        case refused(RaftError)
    }

    /// What the message asks or answers.
    public enum Body: Hashable, Sendable {
        /// RequestVote (§5.2), or a PreVote when `isPreVote` (the term is
        /// then the one the sender would campaign in). `isTransfer`: the
        /// candidate campaigns because its leader handed leadership to it
        /// (``timeoutNow``), so voters grant it though they heard from
        /// that leader lately (Raft dissertation §3.10); never with
        /// `isPreVote`.
        case voteRequest(lastLogIndex: UInt64, lastLogTerm: UInt64, isPreVote: Bool, isTransfer: Bool = false)
        /// The answer to a ``voteRequest(lastLogIndex:lastLogTerm:isPreVote:isTransfer:)``.
        case voteResponse(granted: Bool, isPreVote: Bool)
        /// AppendEntries (§5.3): `entries` follow the entry at
        /// `previousIndex` of term `previousTerm`.
        case append(previousIndex: UInt64, previousTerm: UInt64, entries: [RaftEntry], leaderCommit: UInt64)
        /// The answer to an ``append(previousIndex:previousTerm:entries:leaderCommit:)``.
        case appendResponse(AppendResult)
        /// A leader's heartbeat, carrying the commit index the follower may
        /// use (at most what it is known to hold) and the leader's latest
        /// read round (ReadIndex, §6.4: reads taken before the round
        /// started are served once a majority has answered it).
        case heartbeat(commitIndex: UInt64, readRound: UInt64)
        /// The answer to a heartbeat, naming its read round.
        case heartbeatResponse(readRound: UInt64)
        /// InstallSnapshot (§7), one chunk: the bytes `offset ..<
        /// offset + data.count` of the leader's snapshot through
        /// (`snapshotIndex`, `snapshotTerm`), which is `totalSize` bytes
        /// long. The follower answers each chunk with
        /// ``snapshotProgress(snapshotIndex:receivedBytes:outOfOrder:)``,
        /// and the last one, once the snapshot is durable, with an accepted
        /// ``appendResponse(_:)`` at `snapshotIndex`.
        case snapshotChunk(snapshotIndex: UInt64, snapshotTerm: UInt64, totalSize: UInt64, offset: UInt64,
                           data: [UInt8])
        /// A follower holds the first `receivedBytes` of the snapshot
        /// through `snapshotIndex`; `outOfOrder` when the chunk it answers
        /// did not follow on from them (the leader resends from there).
        case snapshotProgress(snapshotIndex: UInt64, receivedBytes: UInt64, outOfOrder: Bool)
        /// A follower refuses the snapshot through `snapshotIndex`: it is
        /// larger than the follower's ``RaftConfiguration/maximumSnapshotSize``,
        /// `maximumSize`. The leader stops sending it and withholds
        /// snapshots above `maximumSize` from that follower for a while
        /// (see ``RaftCounters/snapshotsRefusedByFollowers``).
        case snapshotRefused(snapshotIndex: UInt64, maximumSize: UInt64)
        /// A follower's ``RaftNode`` passes a proposal made there to the
        /// leader (``RaftConfiguration/forwardProposals``); `requestID`
        /// names it at the follower. Handled by the driver, not the replica.
        case forwardedProposal(requestID: UInt64, command: [UInt8])
        /// The leader's answer to a
        /// ``forwardedProposal(requestID:command:)`` or a
        /// ``forwardedChange(requestID:change:)``.
        case forwardOutcome(requestID: UInt64, outcome: ForwardOutcome)
        /// A follower's ``RaftNode`` passes a membership change asked there
        /// to the leader (``RaftConfiguration/forwardProposals``), as a
        /// proposal. Handled by the driver, not the replica.
        case forwardedChange(requestID: UInt64, change: RaftMembershipChange)
        /// A follower's ``RaftNode`` passes a read made there to the
        /// leader (``RaftConfiguration/forwardProposals``). Handled by the
        /// driver, not the replica.
        case forwardedRead(requestID: UInt64)
        /// The leader's answer to a ``forwardedRead(requestID:)``: an index
        /// it had applied after confirming the read (the follower serves
        /// it once it has applied that far), or nil if it could not
        /// confirm it.
        case readOutcome(requestID: UInt64, index: UInt64?)
        /// A leader's order to the follower it hands leadership to, once
        /// that follower holds its whole log: campaign now, without
        /// PreVote (Raft dissertation §3.10, etcd raft's MsgTimeoutNow).
        case timeoutNow
    }

    /// The bits of a vote request's flags byte (a PreVote's is 1, as the
    /// `Bool` it replaced).
    static let preVoteFlag: UInt8 = 1
    static let transferFlag: UInt8 = 2

    enum Kind: UInt8 {
        case voteRequest = 0, voteResponse, append, appendAccepted, appendRejected, heartbeat, heartbeatResponse
        case snapshotChunk, snapshotProgress, forwardedProposal, forwardOutcome, snapshotRefused
        case forwardedRead, readOutcome, timeoutNow, forwardedChange
    }

    /// The outcome byte of a ``Body/forwardOutcome(requestID:outcome:)``.
    enum OutcomeKind: UInt8 {
        case appended = 0, notLeader, commandTooLarge, uncommittedLimitExceeded, membershipChangePending
        case invalidMembershipChange
    }

    /// The kind byte of an encoded ``RaftMembershipChange``.
    enum ChangeKind: UInt8 {
        case add = 0, addLearner, promote, remove
    }

    /// The largest term or index a message may carry (2⁶²): far beyond any
    /// real log, and low enough that the arithmetic on it cannot overflow.
    public static let maximumTermOrIndex: UInt64 = 1 << 62

    /// The most entries one AppendEntries carries (however small their
    /// commands), so a decoder can bound the count it accepts.
    public static let maximumEntriesPerAppend = 1_024

    /// The limits a replica decodes messages with: those of the largest
    /// messages any valid ``RaftConfiguration`` sends (commands, appends and
    /// snapshot chunks of up to 4 MiB each), whatever the replica's own
    /// settings, so that replicas configured differently (a rolling change
    /// of the limits) still understand each other. Decoding with its own, a
    /// follower whose limits were below its leader's dropped the appends
    /// and chunks it could not decode, and never caught up.
    public static let decodingLimits = WireLimits(
        maximumByteStringLength: 4 << 20, maximumCollectionCount: maximumEntriesPerAppend,
        maximumFrameLength: 2 * (4 << 20) + maximumEntriesPerAppend * entryOverhead + messageOverhead)

    /// Bytes an entry adds to an append besides its command, at most (its
    /// term, index, kind and length).
    static let entryOverhead = 40
    /// Bytes a message adds to its entries or chunk, at most (frame
    /// header, kind, group, IDs, term and the body's other fields).
    static let messageOverhead = 256

    /// The Raft group the message belongs to.
    public var group: UInt64
    /// The sending replica.
    public var from: NodeID
    /// The receiving replica.
    public var to: NodeID
    /// The sender's current term (for a granted PreVote: the term asked
    /// about).
    public var term: UInt64
    /// What the message is.
    public var body: Body

    /// Creates a message.
    public init(group: UInt64, from: NodeID, to: NodeID, term: UInt64, body: Body) {
        self.group = group
        self.from = from
        self.to = to
        self.term = term
        self.body = body
    }

    /// The command bytes the message carries (for flow control).
    var payloadSize: Int {
        switch body {
        case .append(_, _, let entries, _): entries.reduce(0) { $0 + $1.payloadSize }
        case .snapshotChunk(_, _, _, _, let data): data.count
        case .forwardedProposal(_, let command): command.count
        default: 0
        }
    }

    /// Appends the body bytes (use ``encodeFrame(into:)`` to send).
    public func encode(to writer: inout WireWriter) {
        let kind: Kind = switch body {
        case .voteRequest: .voteRequest
        case .voteResponse: .voteResponse
        case .append: .append
        case .appendResponse(.accepted): .appendAccepted
        case .appendResponse(.rejected): .appendRejected
        case .heartbeat: .heartbeat
        case .heartbeatResponse: .heartbeatResponse
        case .snapshotChunk: .snapshotChunk
        case .snapshotProgress: .snapshotProgress
        case .snapshotRefused: .snapshotRefused
        case .forwardedProposal: .forwardedProposal
        case .forwardOutcome: .forwardOutcome
        case .forwardedRead: .forwardedRead
        case .readOutcome: .readOutcome
        case .timeoutNow: .timeoutNow
        case .forwardedChange: .forwardedChange
        }
        writer.writeUInt8(kind.rawValue)
        writer.writeVarint(group)
        writer.write(from)
        writer.write(to)
        writer.writeVarint(term)
        switch body {
        case .voteRequest(let lastLogIndex, let lastLogTerm, let isPreVote, let isTransfer):
            writer.writeVarint(lastLogIndex)
            writer.writeVarint(lastLogTerm)
            writer.writeUInt8((isPreVote ? Self.preVoteFlag : 0) | (isTransfer ? Self.transferFlag : 0))
        case .voteResponse(let granted, let isPreVote):
            writer.writeBool(granted)
            writer.writeBool(isPreVote)
        case .append(let previousIndex, let previousTerm, let entries, let leaderCommit):
            writer.writeVarint(previousIndex)
            writer.writeVarint(previousTerm)
            writer.writeVarint(leaderCommit)
            writer.write(entries)
        case .appendResponse(.accepted(let matchIndex)):
            writer.writeVarint(matchIndex)
        case .appendResponse(.rejected(let rejectedIndex, let conflictTerm, let conflictIndex)):
            writer.writeVarint(rejectedIndex)
            writer.writeVarint(conflictTerm)
            writer.writeVarint(conflictIndex)
        case .heartbeat(let commitIndex, let readRound):
            writer.writeVarint(commitIndex)
            writer.writeVarint(readRound)
        case .heartbeatResponse(let readRound):
            writer.writeVarint(readRound)
        case .snapshotChunk(let snapshotIndex, let snapshotTerm, let totalSize, let offset, let data):
            writer.writeVarint(snapshotIndex)
            writer.writeVarint(snapshotTerm)
            writer.writeVarint(totalSize)
            writer.writeVarint(offset)
            writer.writeBytes(data)
        case .snapshotProgress(let snapshotIndex, let receivedBytes, let outOfOrder):
            writer.writeVarint(snapshotIndex)
            writer.writeVarint(receivedBytes)
            writer.writeBool(outOfOrder)
        case .snapshotRefused(let snapshotIndex, let maximumSize):
            writer.writeVarint(snapshotIndex)
            writer.writeVarint(maximumSize)
        case .forwardedProposal(let requestID, let command):
            writer.writeVarint(requestID)
            writer.writeBytes(command)
        case .forwardOutcome(let requestID, let outcome):
            writer.writeVarint(requestID)
            Self.encode(outcome, to: &writer)
        case .forwardedRead(let requestID):
            writer.writeVarint(requestID)
        case .readOutcome(let requestID, let index):
            writer.writeVarint(requestID)
            if let index {
                writer.writeUInt8(0)
                writer.writeVarint(index)
            } else {
                writer.writeUInt8(1)
            }
        case .timeoutNow:
            break
        case .forwardedChange(let requestID, let change):
            writer.writeVarint(requestID)
            Self.encode(change, to: &writer)
        }
    }

    private static func encode(_ change: RaftMembershipChange, to writer: inout WireWriter) {
        let (kind, id, endpoint): (ChangeKind, NodeID, Endpoint?) = switch change {
        case .add(let id, let endpoint): (.add, id, endpoint)
        case .addLearner(let id, let endpoint): (.addLearner, id, endpoint)
        case .promote(let id): (.promote, id, nil)
        case .remove(let id): (.remove, id, nil)
        }
        writer.writeUInt8(kind.rawValue)
        writer.write(id)
        if kind == .add || kind == .addLearner {
            writer.writeOptional(endpoint) { writer, endpoint in writer.write(endpoint) }
        }
    }

    private static func readChange(_ reader: inout WireReader) throws(WireError) -> RaftMembershipChange {
        let kind = try reader.readEnum(ChangeKind.self)
        let id = try reader.read(NodeID.self)
        switch kind {
        case .add, .addLearner:
            let endpoint = try reader.readOptional { r throws(WireError) in try r.read(Endpoint.self) }
            return kind == .add ? .add(id, endpoint: endpoint) : .addLearner(id, endpoint: endpoint)
        case .promote: return .promote(id)
        case .remove: return .remove(id)
        }
    }

    private static func encode(_ outcome: ForwardOutcome, to writer: inout WireWriter) {
        switch outcome {
        case .appended(let term, let index):
            writer.writeUInt8(OutcomeKind.appended.rawValue)
            writer.writeVarint(term)
            writer.writeVarint(index)
        case .refused(.notLeader(let hint)):
            writer.writeUInt8(OutcomeKind.notLeader.rawValue)
            writer.writeOptional(hint) { writer, hint in writer.write(hint) }
        case .refused(.commandTooLarge(let size, let limit)):
            writer.writeUInt8(OutcomeKind.commandTooLarge.rawValue)
            writer.writeVarint(UInt64(size))
            writer.writeVarint(UInt64(limit))
        case .refused(.uncommittedLimitExceeded(let bytes, let limit)):
            writer.writeUInt8(OutcomeKind.uncommittedLimitExceeded.rawValue)
            writer.writeVarint(UInt64(bytes))
            writer.writeVarint(UInt64(limit))
        case .refused(.membershipChangePending):
            writer.writeUInt8(OutcomeKind.membershipChangePending.rawValue)
        case .refused(.invalidMembershipChange(let detail)):
            writer.writeUInt8(OutcomeKind.invalidMembershipChange.rawValue)
            writer.writeString(String(detail.utf8.prefix(Self.maximumDetailLength)) ?? "")
        case .refused:
            // A leader's propose and proposeMembershipChange refuse with
            // the errors above only; anything else reads as "not the
            // leader" at the follower.
            writer.writeUInt8(OutcomeKind.notLeader.rawValue)
            writer.writeOptional(NodeID?.none) { writer, hint in writer.write(hint) }
        }
    }

    private static func readOutcome(_ reader: inout WireReader) throws(WireError) -> ForwardOutcome {
        switch try reader.readEnum(OutcomeKind.self) {
        case .appended:
            return .appended(term: try readBounded(&reader, "term"), index: try readBounded(&reader, "index"))
        case .notLeader:
            return .refused(.notLeader(leaderHint: try reader.readOptional { r throws(WireError) in
                try r.read(NodeID.self)
            }))
        case .commandTooLarge:
            return .refused(.commandTooLarge(size: Int(try readBounded(&reader, "size")),
                                             limit: Int(try readBounded(&reader, "limit"))))
        case .uncommittedLimitExceeded:
            return .refused(.uncommittedLimitExceeded(uncommittedBytes: Int(try readBounded(&reader, "bytes")),
                                                      limit: Int(try readBounded(&reader, "limit"))))
        case .membershipChangePending:
            return .refused(.membershipChangePending)
        case .invalidMembershipChange:
            return .refused(.invalidMembershipChange(try reader.readString()))
        }
    }

    /// The most bytes of an error's detail a forward outcome carries.
    static let maximumDetailLength = 256

    /// Appends the whole frame (header and body).
    ///
    /// - Throws: `WireError.Code.lengthExceedsLimit` if the message is
    ///   longer than `limits` allow (the replica keeps appends within
    ///   ``RaftConfiguration/maximumAppendBytes`` plus one command, so this
    ///   happens only with limits smaller than the configuration's).
    public func encodeFrame(into writer: inout WireWriter, limits: WireLimits = .default) throws(WireError) {
        try Frame.encode(protocol: .raft, limits: limits, into: &writer) { encode(to: &$0) }
    }

    /// The group of the Raft frame `frame` (header and body), read without
    /// verifying the checksum or decoding the rest: for routing, before
    /// the group's node decodes the frame.
    ///
    /// - Throws: what ``WireCodec/FrameHeader/peek(_:)`` throws;
    ///   `.invalidValue` for a frame of another protocol; `.truncated`,
    ///   `.varintTooLong` or `.varintOverflow` if the body does not start
    ///   with a kind byte and a group.
    public static func peekGroup(_ frame: UnsafeRawBufferPointer) throws(WireError) -> UInt64 {
        let header = try FrameHeader.peek(frame)
        guard header.protocolID == .raft else {
            throw WireError(.invalidValue, offset: 3, detail: "a \(header.protocolID) frame, not a Raft one")
        }
        var reader = WireReader(UnsafeRawBufferPointer(rebasing: frame[FrameHeader.size...]))
        _ = try reader.readUInt8()
        return try reader.readVarint()
    }

    /// Decodes a frame body. The entry count is bounded by the limits'
    /// `maximumCollectionCount` and each command by
    /// `maximumByteStringLength`, both checked before allocation.
    ///
    /// - Throws: `WireError`: `.truncated`; `.invalidValue` for an unknown
    ///   kind or entry kind, a bool other than 0 or 1, a term or index above
    ///   ``maximumTermOrIndex``, or entries that are not numbered
    ///   `previousIndex + 1, + 2, ...` with terms rising no higher than the
    ///   message's; `.lengthExceedsLimit`; `.varintTooLong`,
    ///   `.varintOverflow`; `.trailingBytes`.
    public init(decoding bytes: UnsafeRawBufferPointer, limits: WireLimits) throws(WireError) {
        var reader = WireReader(bytes, limits: limits)
        let kind = try reader.readEnum(Kind.self)
        group = try reader.readVarint()
        from = try reader.read(NodeID.self)
        to = try reader.read(NodeID.self)
        term = try Self.readBounded(&reader, "term")
        switch kind {
        case .voteRequest:
            let lastLogIndex = try Self.readBounded(&reader, "last log index")
            let lastLogTerm = try Self.readBounded(&reader, "last log term")
            let flagsAt = reader.offset
            let flags = try reader.readUInt8()
            guard flags == 0 || flags == Self.preVoteFlag || flags == Self.transferFlag else {
                throw WireError(
                    .invalidValue, offset: flagsAt,
                    detail: "vote request flags \(flags): 0, 1 (PreVote) or 2 (a leadership transfer)")
            }
            body = .voteRequest(
                lastLogIndex: lastLogIndex, lastLogTerm: lastLogTerm, isPreVote: flags == Self.preVoteFlag,
                isTransfer: flags == Self.transferFlag)
        case .voteResponse:
            body = .voteResponse(granted: try reader.readBool(), isPreVote: try reader.readBool())
        case .append:
            let previousIndex = try Self.readBounded(&reader, "previous index")
            let previousTerm = try Self.readBounded(&reader, "previous term")
            let leaderCommit = try Self.readBounded(&reader, "leader commit")
            let entriesStart = reader.offset
            let entries = try reader.readArray { r throws(WireError) in try r.read(RaftEntry.self) }
            body = .append(previousIndex: previousIndex, previousTerm: previousTerm, entries: entries,
                           leaderCommit: leaderCommit)
            if let problem = Self.entriesProblem(previousIndex: previousIndex, previousTerm: previousTerm,
                                                  entries: entries, term: term) {
                throw WireError(.invalidValue, offset: entriesStart, detail: problem)
            }
        case .appendAccepted:
            body = .appendResponse(.accepted(matchIndex: try Self.readBounded(&reader, "match index")))
        case .appendRejected:
            body = .appendResponse(.rejected(
                rejectedIndex: try Self.readBounded(&reader, "rejected index"),
                conflictTerm: try Self.readBounded(&reader, "conflict term"),
                conflictIndex: try Self.readBounded(&reader, "conflict index")))
        case .heartbeat:
            body = .heartbeat(
                commitIndex: try Self.readBounded(&reader, "commit index"), readRound: try reader.readVarint())
        case .heartbeatResponse:
            body = .heartbeatResponse(readRound: try reader.readVarint())
        case .snapshotChunk:
            let start = reader.offset
            body = .snapshotChunk(
                snapshotIndex: try Self.readBounded(&reader, "snapshot index"),
                snapshotTerm: try Self.readBounded(&reader, "snapshot term"),
                totalSize: try Self.readBounded(&reader, "snapshot size"),
                offset: try Self.readBounded(&reader, "snapshot offset"), data: try reader.readByteArray())
            if let problem = Self.chunkProblem(body, term: term) {
                throw WireError(.invalidValue, offset: start, detail: problem)
            }
        case .snapshotProgress:
            body = .snapshotProgress(
                snapshotIndex: try Self.readBounded(&reader, "snapshot index"),
                receivedBytes: try Self.readBounded(&reader, "received bytes"), outOfOrder: try reader.readBool())
        case .snapshotRefused:
            body = .snapshotRefused(
                snapshotIndex: try Self.readBounded(&reader, "snapshot index"),
                maximumSize: try Self.readBounded(&reader, "snapshot size"))
        case .forwardedProposal:
            body = .forwardedProposal(requestID: try reader.readVarint(), command: try reader.readByteArray())
        case .forwardOutcome:
            body = .forwardOutcome(requestID: try reader.readVarint(), outcome: try Self.readOutcome(&reader))
        case .forwardedRead:
            body = .forwardedRead(requestID: try reader.readVarint())
        case .readOutcome:
            let requestID = try reader.readVarint()
            let offset = reader.offset
            switch try reader.readUInt8() {
            case 0: body = .readOutcome(requestID: requestID, index: try Self.readBounded(&reader, "read index"))
            case 1: body = .readOutcome(requestID: requestID, index: nil)
            case let other:
                throw WireError(.invalidValue, offset: offset, detail: "read outcome \(other), expected 0 or 1")
            }
        case .timeoutNow:
            body = .timeoutNow
        case .forwardedChange:
            body = .forwardedChange(requestID: try reader.readVarint(), change: try Self.readChange(&reader))
        }
        try reader.finish()
    }

    private static func readBounded(_ reader: inout WireReader, _ what: String) throws(WireError) -> UInt64 {
        try reader.readVarint(atMost: maximumTermOrIndex, what: what)
    }

    /// Why the entries of an append cannot be what a leader sent, or nil if
    /// they can: indices must follow `previousIndex` one by one, terms must
    /// be at least 1, never fall, not exceed the message's term and not be
    /// below `previousTerm`; a membership entry must hold a membership.
    static func entriesProblem(
        previousIndex: UInt64, previousTerm: UInt64, entries: [RaftEntry], term: UInt64
    ) -> String? {
        var expectedIndex = previousIndex
        var lastTerm = previousTerm
        for entry in entries {
            guard expectedIndex < maximumTermOrIndex else { return "entry index above 2^62" }
            expectedIndex += 1
            guard entry.index == expectedIndex else {
                return "entry index \(entry.index) where \(expectedIndex) was expected"
            }
            guard entry.term >= 1, entry.term >= lastTerm, entry.term <= term else {
                return "entry term \(entry.term) outside \(max(1, lastTerm)) ... \(term)"
            }
            if entry.kind == .membership, let problem = RaftMembership.problem(in: entry) { return problem }
            lastTerm = entry.term
        }
        return nil
    }

    /// Why a snapshot chunk cannot be what a leader sent, or nil if it can
    /// (or `body` is no chunk): the snapshot's index and term must be at
    /// least 1, its term at most the message's, and the chunk must lie
    /// within the snapshot's size.
    static func chunkProblem(_ body: Body, term: UInt64) -> String? {
        guard case .snapshotChunk(let index, let snapshotTerm, let totalSize, let offset, let data) = body else {
            return nil
        }
        guard index >= 1, snapshotTerm >= 1, snapshotTerm <= term else {
            return "snapshot (\(index), term \(snapshotTerm)) is not one a leader of term \(term) has"
        }
        guard offset <= totalSize, UInt64(data.count) <= totalSize - offset else {
            return "chunk of \(data.count) bytes at \(offset) overruns the snapshot's \(totalSize) bytes"
        }
        return nil
    }

    /// Whether the message is a forwarded proposal or its outcome, which
    /// the driver handles.
    public var isForwarding: Bool {
        switch body {
        case .forwardedProposal, .forwardOutcome, .forwardedRead, .readOutcome, .forwardedChange: true
        default: false
        }
    }

    /// Whether every term and index is within ``maximumTermOrIndex`` and an
    /// append's entries are consistent (what decoding checks), for messages
    /// stepped without going through the decoder.
    /// Whether the message is one a leader or a candidate sends (an
    /// append, a heartbeat, a snapshot chunk, a vote request): one a
    /// replica takes from a sender its membership does not name yet. Not
    /// a `timeoutNow`: its leader is a voter of the receiver's membership,
    /// which holds the leader's whole log.
    var isLeaderOrCandidateMessage: Bool {
        switch body {
        case .append, .heartbeat, .snapshotChunk, .voteRequest: true
        case .voteResponse, .appendResponse, .heartbeatResponse, .snapshotProgress, .snapshotRefused,
            .forwardedProposal, .forwardOutcome, .forwardedRead, .readOutcome, .timeoutNow, .forwardedChange:
            false
        }
    }

    var isWellFormed: Bool {
        let bound = Self.maximumTermOrIndex
        guard term <= bound else { return false }
        switch body {
        case .voteRequest(let lastLogIndex, let lastLogTerm, _, _):
            return lastLogIndex <= bound && lastLogTerm <= bound
        case .voteResponse, .heartbeatResponse, .timeoutNow:
            return true
        case .append(let previousIndex, let previousTerm, let entries, let leaderCommit):
            return previousIndex <= bound && previousTerm <= bound && leaderCommit <= bound
                && Self.entriesProblem(previousIndex: previousIndex, previousTerm: previousTerm,
                                       entries: entries, term: term) == nil
        case .appendResponse(.accepted(let matchIndex)):
            return matchIndex <= bound
        case .appendResponse(.rejected(let rejectedIndex, let conflictTerm, let conflictIndex)):
            return rejectedIndex <= bound && conflictTerm <= bound && conflictIndex <= bound
        case .heartbeat(let commitIndex, _):
            return commitIndex <= bound
        case .snapshotChunk(let index, let snapshotTerm, let totalSize, let offset, _):
            return index <= bound && snapshotTerm <= bound && totalSize <= bound && offset <= bound
                && Self.chunkProblem(body, term: term) == nil
        case .snapshotProgress(let index, let receivedBytes, _):
            return index <= bound && receivedBytes <= bound
        case .snapshotRefused(let index, let maximumSize):
            return index <= bound && maximumSize <= bound
        case .forwardedProposal:
            return true
        case .forwardOutcome(_, .appended(let entryTerm, let index)):
            return entryTerm <= bound && index <= bound
        case .forwardOutcome, .forwardedRead, .forwardedChange:
            return true
        case .readOutcome(_, let index):
            return index.map { $0 <= bound } ?? true
        }
    }
}
