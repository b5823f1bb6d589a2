// libFuzzer entry point for Raft, compiled by Scripts/fuzz against the
// WireCodec, EventCore and Raft modules (each built with the same
// sanitizers) and the CChorusSystem C shim.
//
// An input is three control bytes (see `RaftFuzzControl`) and a body. The
// body is decoded three ways: as a frame body, as a whole datagram (as
// `RaftNode` receives one), and as the body of a freshly encoded Raft frame
// (which must decode to what the first way gave); every decoded message
// must re-encode to bytes that decode to an equal message. The input,
// as a datagram and as the body of a valid frame, is also given to a
// `RaftGroupMultiplexer` (`BatchRouting`), whose batch reader must hand
// its groups only whole Raft frames, none a batch, and drop a bad batch
// entire, counted once.
//
// What decodes is stepped into one long-lived `RaftReplica` (replica 1 of a
// five-member group, on an `InMemoryRaftStorage`) as if a peer sent it: the
// group, receiver and sender are forged, and the term and indices are
// either kept or moved next to the replica's own (so that short inputs
// answer its votes, match its log and acknowledge its appends); the
// message may also be stepped once from every peer, for a quorum. Some
// peers, as many as the input says, answer what the replica sends, as
// followers that agree or refuse (`RaftHarness.reply(to:refusing:)`), so
// that it wins elections, commits, and sends snapshots. The harness drives
// the replica as `RaftNode` does: it performs every ready (restore,
// persist, send, apply, advance), snapshots and compacts every few applied
// entries, proposes (commands, reads, membership changes, leadership
// transfers) while the replica leads, and ticks it as the input
// moves its clock. After each step it checks what the code
// promises: no trap; term, commit index and applied entries never go back;
// commit index within the log; one vote per term, made durable before it
// is sent; an acknowledged entry durable before the acknowledgement
// leaves; a leader's log append-only, committing entries of its own term;
// the storage holding the replica's term, vote and last entry once the
// readies are done; no deadline behind the clock after a tick; every
// message the replica sends of its group, to a peer, and decoding to
// itself from a frame.
//
// The replica is kept across inputs, as the CASPaxos target keeps its
// roles: its deeper states (a leader with followers in every flow-control
// state, a half-received snapshot) take many messages to reach. It is
// restarted from its storage every `RaftHarness.restartInterval` inputs
// (and when the third control byte is 0xFF), which must keep its term,
// vote, log and commit index and re-apply the same entries, and started
// afresh on empty storage every `RaftHarness.freshInterval` inputs, once
// its log holds more than `RaftHarness.maximumHeldEntries` entries, and at
// a restart if forged messages wedged it (its term or log beyond 2^61,
// where it no longer campaigns), so that the fuzzer also sees young
// replicas, and memory stays bounded. A
// crash that needs earlier inputs therefore reproduces from the corpus run
// in order, not from its artifact alone. A broken expectation is a
// `precondition` failure, a crash libFuzzer keeps.

import EventCore
import Raft
import WireCodec

/// The fixed setting of the harness: small limits, so that flow control,
/// the uncommitted limit, snapshot chunking and the snapshot size limit
/// are reached often.
enum RaftFuzzSetup {
    static let configuration: RaftConfiguration = {
        var configuration = RaftConfiguration()
        configuration.maximumInflightMessages = 4
        configuration.maximumAppendBytes = 1_024
        configuration.maximumInflightBytes = 2_048
        configuration.maximumCommandSize = 48
        configuration.maximumUncommittedBytes = 256
        configuration.snapshotInterval = 8
        configuration.entriesKeptAfterSnapshot = 2
        configuration.snapshotChunkSize = 1_024
        configuration.maximumSnapshotChunksInFlight = 2
        configuration.maximumSnapshotSize = 4_096
        return configuration
    }()

    static let group: UInt64 = 7
    /// The replica under test.
    static let id = NodeID(1)
    /// Its peers (four: two bits of the first control byte pick one).
    static let peers = (2...5).map { NodeID(UInt64($0)) }
    /// The limits `RaftNode` receives with.
    static let limits = RaftMessage.decodingLimits
    /// The sizes of the harness's state-machine snapshots, by turns: one
    /// to four chunks, and one above ``configuration``'s
    /// `maximumSnapshotSize` (which a leader withholds).
    static let snapshotSizes = [100, 1_100, 2_100, 3_100, 5_000]
}

/// The three control bytes that open an input.
struct RaftFuzzControl {
    let first: UInt8
    let second: UInt8
    let third: UInt8

    /// The peer the messages come from (bits 0-1 of the first byte).
    var sender: NodeID { RaftFuzzSetup.peers[Int(first & 0x03)] }
    /// Whether each message is stepped from every peer in turn (bit 2).
    var fromEveryPeer: Bool { first & 0x04 != 0 }
    /// How the messages are forged (bits 3-4 of the first byte): 0 ... 2
    /// move the term and indices next to the replica's; 3 keeps them as
    /// decoded, the message whole if bit 7 of the second byte is set
    /// (mostly dropped then, for another group, receiver or sender). Raw
    /// terms soon take the replica's term far up, and reset its role: they
    /// come one turn in eight.
    var forging: RaftForging {
        guard (first >> 3) & 0x03 == 3 else { return .nearReplica }
        return second & 0x80 != 0 ? .none : .header
    }
    /// How far the clock moves before the tick (bits 5-7: 0 ... 210 ms).
    var elapsed: Duration { .milliseconds(30 * Int(first >> 5)) }
    /// Whether a leader proposes a command this turn (bit 6 of the second
    /// byte), of ``proposalLength`` bytes (bits 0-5: 0 ... 63, so that
    /// some are above the limit of 48).
    var proposes: Bool { second & 0x40 != 0 }
    var proposalLength: Int { Int(second & 0x3F) }
    /// The peers that answer what the replica sends this turn (bits 0-2 of
    /// the third byte, modulo 5: none to all four), as
    /// ``RaftHarness/reply(to:refusing:)`` says.
    var answeringPeers: ArraySlice<NodeID> { RaftFuzzSetup.peers.prefix(Int(third & 0x07) % 5) }
    /// Whether they refuse votes and reject appends (bit 3).
    var peersRefuse: Bool { third & 0x08 != 0 }
    /// Whether the replica restarts from its storage first (0xFF).
    var restarts: Bool { third == 0xFF }
    /// The membership change a leader proposes beside its command (bits
    /// 4-5 of the third byte): none, adding node 6 (which never answers),
    /// removing the sender, or (bit 0 of the first byte) removing the
    /// replica itself, else adding the sender back.
    /// Whether a leader hands leadership to the sender (bits 6-7 of the
    /// third byte both set).
    var transfersLeadership: Bool { third & 0xC0 == 0xC0 }
    var membershipChange: RaftMembershipChange? {
        switch (third >> 4) & 0x03 {
        case 1: .add(NodeID(6), endpoint: .loopbackV4(port: 6))
        case 2: .remove(sender)
        case 3: first & 0x01 != 0 ? .remove(RaftFuzzSetup.id) : .add(sender, endpoint: nil)
        default: nil
        }
    }
}

/// How the harness turns a decoded message into one from a peer.
enum RaftForging {
    /// The message as decoded.
    case none
    /// The group, receiver and sender replaced.
    case header
    /// The header replaced and the term and indices moved next to the
    /// replica's term and log.
    case nearReplica
}

/// Decodes `bytes` every way a Raft driver might and checks that the
/// decoders agree and every message survives a round trip; returns the
/// messages that decoded (the body's, and the datagram's).
func decodeChecked(_ bytes: UnsafeRawBufferPointer) -> [RaftMessage] {
    let limits = RaftFuzzSetup.limits
    var messages: [RaftMessage] = []
    let message = decodeBody(bytes)
    if let message { messages.append(message) }

    // The input as a datagram (its checksum rarely matches).
    if let body = try? Frame.decodeBody(bytes, of: .raft, limits: limits), let framed = decodeBody(body) {
        messages.append(framed)
    }

    // The input as the body of a valid frame: it must arrive unchanged.
    var writer = WireWriter()
    do throws(WireError) {
        try Frame.encode(protocol: .raft, limits: limits, into: &writer) { $0.writeRawBytes(bytes) }
    } catch {
        precondition(bytes.count + FrameHeader.size > limits.maximumFrameLength,
                     "a frame of \(bytes.count) bytes refused: \(error)")
        return messages
    }
    batchRouting.route(bytes)
    writer.withUnsafeBytes { batchRouting.route($0) }
    writer.withUnsafeBytes { frame in
        let body: UnsafeRawBufferPointer
        do throws(WireError) {
            body = try Frame.decodeBody(frame, of: .raft, limits: limits)
        } catch {
            preconditionFailure("a freshly encoded frame did not decode: \(error)")
        }
        precondition(body.elementsEqual(bytes), "the frame changed its body")
        let again = decodeBody(body)
        precondition(again == message, "the same body decoded differently: \(String(describing: message)) vs \(String(describing: again))")
    }
    return messages
}

/// A `RaftGroupMultiplexer` on a transport the harness feeds by hand,
/// with a handler for groups 0 to 3 (the varints a fuzzer finds first)
/// that checks each frame it is handed.
final class BatchRouting {
    /// The transport: it hands in what `route` is given and sends nothing
    /// (the multiplexer sends only when a group does).
    final class Wire: Transport {
        var handler: TransportReceiveHandler?
        let localEndpoint = Endpoint.loopbackV4(port: 1)
        let maximumMessageSize = 1 << 20
        func send(_ message: UnsafeRawBufferPointer, to destination: Endpoint) throws(TransportError) {
            preconditionFailure("the multiplexer sent on receiving")
        }
        func setReceiveHandler(_ handler: @escaping TransportReceiveHandler) { self.handler = handler }
        func removeReceiveHandler() { handler = nil }
    }

    /// The scheduler: receiving schedules nothing.
    final class Turns: Scheduler {
        var now: Instant { .zero }
        func schedule(at deadline: Instant, _ body: @escaping () -> Void) -> TimerHandle {
            preconditionFailure("the multiplexer armed a timer")
        }
        func cancel(_ handle: TimerHandle) { preconditionFailure("the multiplexer cancelled a timer") }
        func atEndOfTurn(_ body: @escaping () -> Void) { preconditionFailure("the multiplexer deferred work on receiving") }
        func onNextTurn(_ body: @escaping () -> Void) { preconditionFailure("the multiplexer deferred work on receiving") }
    }

    private let wire = Wire()
    private let multiplexer: RaftGroupMultiplexer
    private var handed = 0
    /// The datagram being routed.
    private var datagram = UnsafeRawBufferPointer(start: nil, count: 0)

    init() {
        do {
            multiplexer = try RaftGroupMultiplexer(transport: wire, scheduler: Turns())
        } catch {
            preconditionFailure("the multiplexer refused its setting: \(error)")
        }
        for group: UInt64 in 0...3 {
            multiplexer.channel(for: group).setReceiveHandler { [unowned self] frame, _, _ in
                handed += 1
                // A datagram that is not a batch is handed on as it is,
                // for the node to check.
                if frame.baseAddress == datagram.baseAddress && frame.count == datagram.count { return }
                guard let header = try? FrameHeader.peek(frame) else { preconditionFailure("handed a frame without a header") }
                precondition(header.protocolID == .raft && header.frameLength == frame.count, "handed a part of a frame")
                precondition(frame.count == FrameHeader.size || frame[FrameHeader.size] != 0xFF, "handed a batch")
                precondition((try? RaftMessage.peekGroup(frame)) == group, "handed another group's frame")
            }
        }
    }

    /// Hands `datagram` to the multiplexer and checks what it did: a
    /// datagram dropped as malformed hands nothing on; any other reaches
    /// a group or is counted unclaimed, frame by frame.
    func route(_ datagram: UnsafeRawBufferPointer) {
        let before = multiplexer.counters
        handed = 0
        self.datagram = datagram
        wire.handler?(datagram, wire.localEndpoint, .zero)
        let after = multiplexer.counters
        precondition(after.delivered - before.delivered == UInt64(handed), "a delivery not counted")
        let passed = after.delivered + after.unclaimed - before.delivered - before.unclaimed
        switch after.malformed - before.malformed {
        case 0: precondition(passed > 0, "a datagram neither passed on nor dropped")
        case 1: precondition(passed == 0, "a dropped datagram's frames passed on")
        default: preconditionFailure("one datagram counted malformed twice")
        }
    }
}

nonisolated(unsafe) private let batchRouting = BatchRouting()

/// The message in `body`, or nil if it does not decode; checks that it
/// round-trips.
private func decodeBody(_ body: UnsafeRawBufferPointer) -> RaftMessage? {
    guard let message = try? RaftMessage(decoding: body, limits: RaftFuzzSetup.limits) else { return nil }
    var writer = WireWriter()
    message.encode(to: &writer)
    let again = writer.withUnsafeBytes { try? RaftMessage(decoding: $0, limits: RaftFuzzSetup.limits) }
    precondition(again == message, "round trip changed the message: \(message) -> \(String(describing: again))")
    return message
}

/// A decoded term or index above this stands for
/// `RaftMessage.maximumTermOrIndex` itself when a message is moved next to
/// the replica: the largest value the decoder takes, which the fuzzer
/// rarely writes exactly (a nine-byte varint).
let absurdTermOrIndex = RaftMessage.maximumTermOrIndex / 2

/// `base` moved by `raw` within `base - below ... base + above`, no lower
/// than 0 and no higher than `RaftMessage.maximumTermOrIndex` (see
/// ``absurdTermOrIndex``).
func near(_ base: UInt64, _ raw: UInt64, below: UInt64, above: UInt64) -> UInt64 {
    guard raw <= absurdTermOrIndex else { return RaftMessage.maximumTermOrIndex }
    let low = base > below ? base - below : 0
    return min(low + raw % (base - low + above + 1), RaftMessage.maximumTermOrIndex)
}

/// The term of a forged message: `base` (the term the replica expects) five
/// times in eight, else one below (stale) or one or two above; above
/// ``absurdTermOrIndex``, the decoder's bound (which the replica drops) or
/// the last term a replica reaches (`RaftReplica.maximumReachableTerm`,
/// from which it does not campaign).
func nearTerm(_ base: UInt64, _ raw: UInt64) -> UInt64 {
    guard raw <= absurdTermOrIndex else {
        return raw & 1 == 0 ? RaftMessage.maximumTermOrIndex : RaftReplica.maximumReachableTerm
    }
    let offsets: [Int64] = [0, 0, 0, 0, 0, -1, 1, 2]
    let offset = offsets[Int(raw % UInt64(offsets.count))]
    let term = offset < 0 ? (base > 0 ? base - 1 : 0) : base + UInt64(offset)
    return min(term, RaftMessage.maximumTermOrIndex)
}

extension RaftMessage {
    /// This message as `sender` would send it to `replica` (see
    /// ``RaftForging``); `storage` is the replica's (for the index of the
    /// snapshot it sends as leader).
    func forged(_ forging: RaftForging, from sender: NodeID, to replica: RaftReplica,
                storage: InMemoryRaftStorage) -> RaftMessage {
        guard forging != .none else { return self }
        var message = self
        message.group = replica.group
        message.to = replica.id
        message.from = sender
        guard forging == .nearReplica else { return message }
        // A vote request, and a PreVote's grant, carry the term the sender
        // would campaign in.
        let term: UInt64 = switch body {
        case .voteRequest, .voteResponse(true, true): nearTerm(replica.term + 1, self.term)
        default: nearTerm(replica.term, self.term)
        }
        let last = replica.lastIndex
        message.term = term
        switch body {
        case .voteRequest(let lastLogIndex, let lastLogTerm, let isPreVote, let isTransfer):
            message.body = .voteRequest(
                lastLogIndex: near(last, lastLogIndex, below: 2, above: 2),
                lastLogTerm: min(near(replica.lastTerm, lastLogTerm, below: 1, above: 1), term), isPreVote: isPreVote,
                isTransfer: isTransfer)
        case .voteResponse, .timeoutNow:
            break
        case .append(let previousIndex, let previousTerm, let entries, let leaderCommit):
            let previous = near(last, previousIndex, below: 6, above: 2)
            // Even: the term the replica holds there (the check passes).
            let previousTerm = previousTerm % 2 == 0 ? replica.term(at: previous) ?? 0 : min(previousTerm / 2, term)
            var entryTerm = max(1, previousTerm)
            var renumbered: [RaftEntry] = []
            for (offset, entry) in entries.enumerated() {
                entryTerm = min(max(entryTerm, near(term, entry.term, below: 1, above: 0)), term)
                renumbered.append(RaftEntry(term: entryTerm, index: previous + 1 + UInt64(offset), kind: entry.kind,
                                            command: entry.command))
            }
            message.body = .append(previousIndex: previous, previousTerm: previousTerm, entries: renumbered,
                                   leaderCommit: near(last, leaderCommit, below: 4, above: 4))
        case .appendResponse(.accepted(let matchIndex)):
            message.body = .appendResponse(.accepted(matchIndex: near(last, matchIndex, below: 6, above: 1)))
        case .appendResponse(.rejected(let rejectedIndex, let conflictTerm, let conflictIndex)):
            message.body = .appendResponse(.rejected(
                rejectedIndex: near(last, rejectedIndex, below: 6, above: 1),
                conflictTerm: near(replica.lastTerm, conflictTerm, below: 2, above: 0),
                conflictIndex: near(last, conflictIndex, below: 12, above: 0)))
        case .heartbeat(let commitIndex, let readRound):
            message.body = .heartbeat(commitIndex: near(last, commitIndex, below: 4, above: 4), readRound: readRound)
        case .heartbeatResponse:
            break
        case .snapshotChunk(let snapshotIndex, let snapshotTerm, let totalSize, let offset, let data):
            let index = max(1, near(last, snapshotIndex, below: 2, above: 6))
            // Even: the term the replica holds there, if any.
            let held = snapshotTerm % 2 == 0 ? replica.term(at: index) : nil
            message.body = .snapshotChunk(
                snapshotIndex: index, snapshotTerm: max(1, min(held ?? snapshotTerm, term)), totalSize: totalSize,
                offset: offset, data: data)
        case .snapshotProgress(let snapshotIndex, let receivedBytes, let outOfOrder):
            message.body = .snapshotProgress(
                snapshotIndex: near(storage.snapshot?.index ?? 0, snapshotIndex, below: 1, above: 1),
                receivedBytes: receivedBytes, outOfOrder: outOfOrder)
        case .snapshotRefused(let snapshotIndex, let maximumSize):
            message.body = .snapshotRefused(
                snapshotIndex: near(storage.snapshot?.index ?? 0, snapshotIndex, below: 1, above: 1),
                maximumSize: maximumSize)
        case .forwardedProposal, .forwardOutcome, .forwardedRead, .readOutcome, .forwardedChange:
            break
        }
        return message
    }
}

/// What the harness knew of the replica before a step, for the checks of
/// what must not go back.
struct RaftObservation {
    let role: RaftRole
    let term: UInt64
    let commitIndex: UInt64
    let lastIndex: UInt64
    let lastTerm: UInt64

    init(_ replica: RaftReplica) {
        role = replica.role
        term = replica.term
        commitIndex = replica.commitIndex
        lastIndex = replica.lastIndex
        lastTerm = replica.lastTerm
    }
}

/// One replica kept across inputs, its storage, and the clock it runs on.
final class RaftHarness {
    static let restartInterval = 512
    static let freshInterval = 4_096
    /// Entries the storage may hold before the replica starts afresh.
    static let maximumHeldEntries: UInt64 = 50_000
    /// Readies one drain may take: more means the replica never settles.
    static let maximumReadiesPerDrain = 64
    /// Messages the answering peers answer per input, at most.
    static let answerBudget = 256

    private var storage = InMemoryRaftStorage()
    private var replica: RaftReplica
    private var now = Instant(nanoseconds: 1_000_000_000)
    private var inputs = 0
    private var starts: UInt64 = 1
    /// The last index applied, as `RaftNode` tracks it (the storage's
    /// snapshot's after a restart).
    private var lastApplied: UInt64 = 0
    /// The terms of the entries applied above the storage's snapshot: a
    /// restart must apply the same again.
    private var appliedTerms: [UInt64: UInt64] = [:]
    /// The latest vote seen (the replica's own when it campaigns).
    private var vote: (term: UInt64, candidate: NodeID)?
    /// What the replica sent this turn, and how many of those the
    /// answering peers have seen.
    private var sent: [RaftMessage] = []
    /// The reads asked of the replica as leader and not yet confirmed:
    /// the commit index when each was asked, by ID.
    private var reads: [UInt64: UInt64] = [:]
    private var answered = 0
    /// The highest term and commit index seen since the fresh start.
    private var highestTerm: UInt64 = 0
    private var highestCommit: UInt64 = 0

    init() {
        replica = Self.makeReplica(storage: storage, applied: 0, seed: 1, now: now)
    }

    private static func makeReplica(storage: InMemoryRaftStorage, applied: UInt64, seed: UInt64, now: Instant)
        -> RaftReplica
    {
        do throws(ConfigurationError) {
            return try RaftReplica(
                id: RaftFuzzSetup.id, group: RaftFuzzSetup.group, peers: RaftFuzzSetup.peers, storage: storage,
                configuration: RaftFuzzSetup.configuration, applied: applied, seed: seed, now: now)
        } catch {
            preconditionFailure("the harness's configuration is invalid: \(error)")
        }
    }

    /// One input's turn.
    func run(_ data: UnsafeRawBufferPointer) {
        guard data.count >= 3 else { return }
        inputs += 1
        let control = RaftFuzzControl(first: data[0], second: data[1], third: data[2])
        sent.removeAll(keepingCapacity: true)
        answered = 0
        if inputs % Self.freshInterval == 0 || storage.lastIndex > storage.firstIndex + Self.maximumHeldEntries
            || inputs % Self.restartInterval == 0 && isWedged
        {
            startAfresh()
        } else if inputs % Self.restartInterval == 0 || control.restarts {
            restart()
        }
        for message in decodeChecked(UnsafeRawBufferPointer(rebasing: data[3...])) {
            let senders = control.fromEveryPeer ? RaftFuzzSetup.peers : [control.sender]
            for sender in senders {
                let forged = message.forged(control.forging, from: sender, to: replica, storage: storage)
                perform(control) { $0.step(forged, now: now) }
            }
        }
        if control.proposes && replica.role == .leader {
            let command = [UInt8](repeating: UInt8(truncatingIfNeeded: inputs), count: control.proposalLength)
            perform(control) { replica in
                do throws(RaftError) {
                    try replica.propose(command)
                    precondition(command.count <= RaftFuzzSetup.configuration.maximumCommandSize,
                                 "a command of \(command.count) bytes proposed")
                } catch {
                    switch error {
                    case .commandTooLarge, .uncommittedLimitExceeded: break
                    case .notLeader where !replica.isMember: break  // its removal committed
                    case .notLeader(let hint) where hint != nil && hint == replica.transferTarget: break
                    default: preconditionFailure("a leader refused a proposal: \(error)")
                    }
                }
            }
        }
        if control.proposes && replica.role == .leader, let change = control.membershipChange {
            perform(control) { replica in
                do throws(RaftError) {
                    try replica.proposeMembershipChange(change)
                    precondition(replica.membership.count <= RaftMembership.maximumMembers, "a membership too large")
                } catch {
                    switch error {
                    case .membershipChangePending, .invalidMembershipChange, .commandTooLarge: break
                    case .notLeader where !replica.isMember: break
                    case .notLeader(let hint) where hint != nil && hint == replica.transferTarget: break
                    default: preconditionFailure("a leader refused a membership change: \(error)")
                    }
                }
            }
        }
        if control.transfersLeadership && replica.role == .leader {
            perform(control) { replica in
                do throws(RaftError) {
                    try replica.transferLeadership(to: control.sender, now: now)
                    precondition(replica.transferTarget == control.sender, "a transfer not recorded")
                } catch {
                    switch error {
                    case .invalidTransfer: precondition(!replica.peers.contains(control.sender), "a voter refused")
                    case .notLeader where !replica.isMember: break
                    default: preconditionFailure("a leader refused a transfer: \(error)")
                    }
                }
            }
        }
        if control.proposes && replica.role == .leader {
            // A read beside each proposal, its ID the input's number.
            let id = UInt64(inputs)
            reads[id] = replica.commitIndex
            perform(control) { replica in
                do throws(RaftError) {
                    try replica.readIndex(id)
                } catch {
                    precondition(!replica.isMember, "a leader refused a read: \(error)")
                    reads[id] = nil
                }
            }
        }
        // A replica that stepped down dropped its unconfirmed reads.
        if replica.role != .leader { reads.removeAll() }
        now = now + control.elapsed
        if replica.nextDeadline <= now {
            perform(control) { $0.tick(now: now) }
            precondition(replica.nextDeadline > now, "a deadline left behind the clock after a tick")
        }
    }

    /// Whether the replica's term or log is beyond ``absurdTermOrIndex``,
    /// where it no longer campaigns (only forged messages take it there).
    private var isWedged: Bool { replica.term > absurdTermOrIndex || replica.lastIndex > absurdTermOrIndex }

    /// Applies `change` to the replica, performs the readies it causes and
    /// checks the replica; then the answering peers answer what it sent.
    private func perform(_ control: RaftFuzzControl, _ change: (inout RaftReplica) -> Void) {
        let before = RaftObservation(replica)
        change(&replica)
        drain()
        check(since: before)
        while answered < sent.count && answered < Self.answerBudget {
            let message = sent[answered]
            answered += 1
            guard control.answeringPeers.contains(message.to),
                  let reply = Self.reply(to: message, refusing: control.peersRefuse) else { continue }
            let before = RaftObservation(replica)
            replica.step(reply, now: now)
            drain()
            check(since: before)
        }
    }

    /// What an answering peer replies to `message`: an agreeing one grants
    /// votes, accepts appends and takes snapshot chunks in order (as the
    /// replica sends them); a refusing one refuses votes and rejects
    /// appends as a peer whose log ends at half the previous index, so that
    /// the replica backs up its next index, down to its snapshot. Nil for
    /// what needs no answer.
    static func reply(to message: RaftMessage, refusing: Bool) -> RaftMessage? {
        var term = message.term
        let body: RaftMessage.Body
        switch message.body {
        case .voteRequest(_, _, let isPreVote, _):
            body = .voteResponse(granted: !refusing, isPreVote: isPreVote)
            // A refusal carries the peer's own term, not the one a PreVote
            // asks about.
            if refusing && isPreVote { term -= 1 }
        case .append(let previousIndex, _, let entries, _):
            body = refusing && previousIndex > 0
                ? .appendResponse(.rejected(rejectedIndex: previousIndex, conflictTerm: 0,
                                            conflictIndex: previousIndex / 2 + 1))
                : .appendResponse(.accepted(matchIndex: previousIndex + UInt64(entries.count)))
        case .heartbeat(_, let readRound):
            body = .heartbeatResponse(readRound: readRound)
        case .snapshotChunk(let index, _, let totalSize, let offset, let data):
            let received = offset + UInt64(data.count)
            body = received == totalSize
                ? .appendResponse(.accepted(matchIndex: index))
                : .snapshotProgress(snapshotIndex: index, receivedBytes: received, outOfOrder: false)
        default:
            return nil
        }
        return RaftMessage(group: message.group, from: message.to, to: message.from, term: term, body: body)
    }

    // MARK: Driving

    /// Performs the replica's readies as `RaftNode` does, until it has none,
    /// checking each.
    private func drain() {
        var readies = 0
        while replica.hasReady {
            readies += 1
            precondition(readies <= Self.maximumReadiesPerDrain, "the replica keeps having readies")
            let ready = replica.ready()
            do {
                if let snapshot = ready.snapshot { try install(snapshot, hardState: ready.hardState) }
                if !ready.entries.isEmpty || ready.hardState != nil {
                    if let first = ready.entries.first {
                        precondition(first.index > lastApplied, "entry \(first.index) rewritten, \(lastApplied) applied")
                    }
                    try storage.persist(ready.entries, hardState: ready.hardState)
                }
            } catch {
                preconditionFailure("the in-memory storage refused a ready: \(error)")
            }
            for read in ready.readStates {
                guard let asked = reads.removeValue(forKey: read.id) else {
                    preconditionFailure("read \(read.id) confirmed twice, or never asked")
                }
                precondition(read.index >= asked && read.index <= replica.commitIndex,
                             "read \(read.id) at \(read.index): asked at commit \(asked), commit now \(replica.commitIndex)")
            }
            for message in ready.messages { check(sent: message) }
            sent += ready.messages
            apply(ready.committedEntries)
            replica.advance(ready)
            snapshotIfDue()
        }
        let durable = storage.hardState
        precondition(durable.term == replica.term && durable.votedFor == replica.votedFor,
                     "the storage holds term \(durable.term) and vote \(String(describing: durable.votedFor)), the replica term \(replica.term) and vote \(String(describing: replica.votedFor))")
        precondition(storage.term(at: replica.lastIndex) == replica.lastTerm,
                     "the replica's last entry (\(replica.lastIndex), term \(replica.lastTerm)) is not durable")
    }

    /// `RaftNode`'s install: the new term and vote made durable, then the
    /// snapshot saved (the harness's state machine is the applied index).
    private func install(_ snapshot: RaftSnapshot, hardState: RaftHardState?) throws {
        precondition(snapshot.index > lastApplied, "snapshot \(snapshot.index) at or below applied \(lastApplied)")
        try storage.saveReceivedSnapshot(snapshot, hardState: hardState)
        lastApplied = snapshot.index
        appliedTerms = appliedTerms.filter { $0.key > snapshot.index }
    }

    /// Applies committed entries: they follow the last applied one, are
    /// committed and durable, and match what was applied before a restart.
    private func apply(_ entries: [RaftEntry]) {
        for entry in entries {
            precondition(entry.index == lastApplied + 1, "entry \(entry.index) applied after \(lastApplied)")
            precondition(entry.index <= replica.commitIndex, "entry \(entry.index) applied above the commit index")
            precondition(storage.term(at: entry.index) == entry.term, "entry \(entry.index) applied before it is durable")
            if let term = appliedTerms[entry.index] {
                precondition(term == entry.term, "entry \(entry.index) applied with term \(entry.term), before \(term)")
            }
            appliedTerms[entry.index] = entry.term
            lastApplied = entry.index
        }
    }

    /// `RaftNode`'s snapshot every `snapshotInterval` applied entries, and
    /// the compaction behind it.
    private func snapshotIfDue() {
        let configuration = RaftFuzzSetup.configuration
        let snapshotIndex = storage.snapshot?.index ?? 0
        let applied = replica.appliedIndex
        guard applied >= snapshotIndex + UInt64(configuration.snapshotInterval), let term = replica.term(at: applied)
        else { return }
        let size = RaftFuzzSetup.snapshotSizes[Int(applied % UInt64(RaftFuzzSetup.snapshotSizes.count))]
        let data = [UInt8](repeating: UInt8(truncatingIfNeeded: applied), count: size)
        do {
            try storage.saveSnapshot(
                RaftSnapshot(index: applied, term: term, membership: replica.membership(asOf: applied), data: data))
            replica.snapshotSaved(through: applied)
            let kept = UInt64(configuration.entriesKeptAfterSnapshot)
            if applied > kept { try storage.compact(through: applied - kept) }
        } catch {
            preconditionFailure("the in-memory storage refused a snapshot at \(applied): \(error)")
        }
        appliedTerms = appliedTerms.filter { $0.key > applied }
    }

    /// Restarts the replica from its storage, as a crash would: it must
    /// come back with its term, vote, log and commit index, and re-apply
    /// the entries above the snapshot (checked against the earlier
    /// applies as they come).
    private func restart() {
        let before = replica
        starts += 1
        lastApplied = storage.snapshot?.index ?? 0
        replica = Self.makeReplica(storage: storage, applied: lastApplied, seed: starts, now: now)
        reads.removeAll()
        precondition(replica.term == before.term && replica.votedFor == before.votedFor,
                     "a restart lost the term or vote")
        precondition(replica.term(at: before.lastIndex) == before.lastTerm, "a restart lost the last entry")
        precondition(replica.commitIndex == before.commitIndex,
                     "a restart moved the commit index from \(before.commitIndex) to \(replica.commitIndex)")
        drain()
    }

    /// Starts a new replica on empty storage.
    private func startAfresh() {
        starts += 1
        storage = InMemoryRaftStorage()
        replica = Self.makeReplica(storage: storage, applied: 0, seed: starts, now: now)
        reads.removeAll()
        lastApplied = 0
        appliedTerms = [:]
        vote = nil
        highestTerm = 0
        highestCommit = 0
    }

    // MARK: Checks

    /// Checks the replica after a step, a proposal or a tick (and the
    /// readies it caused) against what it was before.
    private func check(since before: RaftObservation) {
        precondition(replica.term >= highestTerm, "the term went back from \(highestTerm) to \(replica.term)")
        precondition(replica.term <= RaftReplica.maximumReachableTerm,
                     "term \(replica.term) above the last reachable, \(RaftReplica.maximumReachableTerm)")
        precondition(replica.commitIndex >= highestCommit,
                     "the commit index went back from \(highestCommit) to \(replica.commitIndex)")
        highestTerm = replica.term
        highestCommit = replica.commitIndex
        precondition(replica.commitIndex <= replica.lastIndex,
                     "commit index \(replica.commitIndex) above the last index \(replica.lastIndex)")
        precondition(replica.appliedIndex <= replica.commitIndex, "applied above the commit index")
        if let candidate = replica.votedFor {
            if let vote, vote.term == replica.term {
                precondition(vote.candidate == candidate, "two votes in term \(vote.term)")
            }
            vote = (replica.term, candidate)
        }
        switch replica.role {
        case .leader:
            precondition(replica.leader == replica.id && replica.votedFor == replica.id,
                         "a leader that did not vote for itself")
        case .preCandidate, .candidate:
            precondition(replica.leader == nil, "a candidate that knows a leader")
        case .follower:
            // Any other replica may lead: one added by a change this
            // replica has not appended yet.
            precondition(replica.leader != replica.id, "a follower of itself")
        }
        guard before.role == .leader, replica.role == .leader, before.term == replica.term else { return }
        // Leader append-only (§5.3), and commitment of its own term's
        // entries only (§5.4.2).
        precondition(replica.lastIndex >= before.lastIndex && replica.term(at: before.lastIndex) == before.lastTerm,
                     "a leader changed its log")
        if replica.commitIndex > before.commitIndex {
            precondition(replica.term(at: replica.commitIndex) == replica.term,
                         "a leader committed an entry of an earlier term by counting")
        }
    }

    /// A message in a ready, after the ready's writes: of the group, from
    /// the replica to a peer, decoding from a frame to itself; a granted
    /// vote and an acknowledgement promise only what is durable.
    private func check(sent message: RaftMessage) {
        // To a member, or answering a leader or candidate its membership
        // does not name: never to itself.
        precondition(message.group == RaftFuzzSetup.group && message.from == RaftFuzzSetup.id
                     && message.to != RaftFuzzSetup.id, "a message misaddressed: \(message)")
        precondition(message.term <= RaftReplica.maximumReachableTerm, "a message above the last reachable term: \(message)")
        var writer = WireWriter()
        do throws(WireError) {
            try message.encodeFrame(into: &writer, limits: RaftFuzzSetup.limits)
        } catch {
            preconditionFailure("a message the replica sent does not encode: \(error): \(message)")
        }
        writer.withUnsafeBytes { frame in
            let decoded = Result { () throws(WireError) in
                try RaftMessage(decoding: try Frame.decodeBody(frame, of: .raft, limits: RaftFuzzSetup.limits),
                                limits: RaftFuzzSetup.limits)
            }
            guard case .success(let again) = decoded, again == message else {
                preconditionFailure("a message the replica sent decodes as \(decoded): \(message)")
            }
        }
        switch message.body {
        case .voteResponse(granted: true, isPreVote: false):
            let durable = storage.hardState
            precondition(durable.term == message.term && durable.votedFor == message.to,
                         "a vote for \(message.to) in term \(message.term) sent before it was durable")
        case .appendResponse(.accepted(let matchIndex)):
            precondition(matchIndex <= storage.snapshot?.index ?? 0
                         || (matchIndex <= storage.lastIndex && storage.term(at: matchIndex) == replica.term(at: matchIndex)),
                         "entries through \(matchIndex) acknowledged before they were durable")
        default:
            break
        }
    }
}

/// The harness, kept across inputs (libFuzzer calls the entry point from
/// one thread).
nonisolated(unsafe) private let harness = RaftHarness()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRaft(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    harness.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
