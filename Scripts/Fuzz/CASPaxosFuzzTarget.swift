// libFuzzer entry point for CASPaxos, compiled by Scripts/fuzz against the
// WireCodec, EventCore and CASPaxos modules (each built with the same
// sanitizers) and the CChorusSystem C shim.
//
// Every input is decoded three ways: as a frame body (one message or a
// batch), as a whole datagram, and as the body of a freshly encoded
// CASPaxos frame (which must decode to what the first way gave). Every
// decoded message must re-encode to bytes that decode to an equal message.
// The messages then go to a long-lived Acceptor and a long-lived Proposer
// (see `CASPaxosHarness`), which must neither trap nor let the acceptor's
// state drift from what its `.persist` effects recorded in the store. A
// broken expectation is a `precondition` failure, a crash libFuzzer keeps.

import CASPaxos
import EventCore
import WireCodec

/// The fixed setting of the harness: small limits, so that the decoder's
/// and the roles' bounds are reached often, and the endpoints messages
/// come from.
enum FuzzSetup {
    static let configuration: CASPaxosConfiguration = {
        var configuration = CASPaxosConfiguration()
        configuration.maximumKeySize = 16
        configuration.maximumValueSize = 64
        configuration.maximumMessageSize = 512
        configuration.maximumMessagesPerFrame = 32
        configuration.maximumBatchSize = 512
        configuration.maximumPendingProposals = 16
        configuration.maximumCachedKeys = 4
        configuration.maximumRegisters = 32
        configuration.maximumTrackedProposers = 4
        configuration.maximumKeysPerListing = 4
        configuration.maximumGarbageCollections = 2
        return configuration
    }()

    /// The proposer's acceptors, 127.0.0.1 ports 1 ... 3.
    static let acceptors: [Endpoint] = (1...3).map { Endpoint.loopbackV4(port: $0) }
    /// The acceptor the membership change started at creation adds.
    static let joiningAcceptor = Endpoint.loopbackV4(port: 4)
    /// The proposer's own endpoint (the only proposer its maintenance
    /// tasks wait for).
    static let proposer = Endpoint.loopbackV4(port: 100)
    /// The senders an input's control byte picks from (eight: three bits).
    static let senders: [Endpoint] =
        acceptors + [
            joiningAcceptor, proposer, Endpoint.loopbackV4(port: 9), Endpoint.loopbackV6(port: 1),
            Endpoint(address: .ipv4(0), port: 0),
        ]
    /// The keys proposals are made on.
    static let keys: [[UInt8]] = [[0x61], [0x62], [0x63], []]
    /// The limits of a whole CASPaxos frame.
    static let frameLimits = WireLimits(maximumFrameLength: configuration.maximumMessageSize)
}

/// The last few request IDs the proposer sent. A message for the proposer
/// whose request ID is below ``capacity`` is given the ID of one of them
/// instead, so that short inputs can answer requests in flight (the real
/// IDs are large, and change as the proposer runs).
struct RecentRequests {
    static let capacity = 8
    private var ids: [UInt64] = []
    private var next = 0

    mutating func record(_ id: UInt64) {
        if ids.count < Self.capacity {
            ids.append(id)
        } else {
            ids[next] = id
            next = (next + 1) % Self.capacity
        }
    }

    /// `message`, answering a recent request if its ID names one.
    func aliasing(_ message: CASPaxosMessage) -> CASPaxosMessage {
        let id = message.requestID
        guard id < UInt64(Self.capacity), !ids.isEmpty else { return message }
        return message.replacingRequestID(ids[Int(id) % ids.count])
    }
}

extension CASPaxosMessage {
    /// This message with another request ID.
    func replacingRequestID(_ id: UInt64) -> CASPaxosMessage {
        switch self {
        case .prepare(_, let key, let ballot, let age, let version):
            .prepare(requestID: id, key: key, ballot: ballot, age: age, version: version)
        case .readPrepare(_, let key, let ballot, let age, let version):
            .readPrepare(requestID: id, key: key, ballot: ballot, age: age, version: version)
        case .promise(_, let accepted, let value, let floor): .promise(requestID: id, accepted: accepted, value: value, removalFloor: floor)
        case .promiseWithParent(_, let accepted, let value, let floor, let parent):
            .promiseWithParent(requestID: id, accepted: accepted, value: value, removalFloor: floor, parent: parent)
        case .unrecordedPromise(_, let floor): .unrecordedPromise(requestID: id, removalFloor: floor)
        case .accept(_, let key, let ballot, let age, let value, let next, let version):
            .accept(requestID: id, key: key, ballot: ballot, age: age, value: value, nextBallot: next, version: version)
        case .acceptWithParent(_, let key, let ballot, let age, let value, let version, let parent, let next):
            .acceptWithParent(
                requestID: id, key: key, ballot: ballot, age: age, value: value, version: version, parent: parent,
                nextBallot: next)
        case .rewriteTombstone(_, let key, let ballot, let age, let version):
            .rewriteTombstone(requestID: id, key: key, ballot: ballot, age: age, version: version)
        case .collectionPrepare(_, let key, let ballot, let age, let version):
            .collectionPrepare(requestID: id, key: key, ballot: ballot, age: age, version: version)
        case .accepted: .accepted(requestID: id)
        case .conflict(_, let highest, let neverAccepted):
            .conflict(requestID: id, highest: highest, neverAccepted: neverAccepted)
        case .staleAge(_, let minimumAge): .staleAge(requestID: id, minimumAge: minimumAge)
        case .staleConfiguration(_, let minimumVersion):
            .staleConfiguration(requestID: id, minimumVersion: minimumVersion)
        case .invalidate(_, let key, let ballot): .invalidate(requestID: id, key: key, ballot: ballot)
        case .invalidated(_, let proposer, let age): .invalidated(requestID: id, proposer: proposer, age: age)
        case .setMinimumAges(_, let ages): .setMinimumAges(requestID: id, ages: ages)
        case .removeTombstone(_, let key, let ballot): .removeTombstone(requestID: id, key: key, ballot: ballot)
        case .acknowledged: .acknowledged(requestID: id)
        case .reconfigure(_, let quorums): .reconfigure(requestID: id, quorums: quorums)
        case .configurationRefused(_, let current): .configurationRefused(requestID: id, current: current)
        case .listKeys(_, let after, let floor, let minimumVersion):
            .listKeys(requestID: id, after: after, raisingFloorTo: floor, minimumVersion: minimumVersion)
        case .keyList(_, let keys, let isComplete, let floor): .keyList(requestID: id, keys: keys, isComplete: isComplete, removalFloor: floor)
        case .setMinimumVersion(_, let version): .setMinimumVersion(requestID: id, version: version)
        case .registersFull: .registersFull(requestID: id)
        }
    }
}

/// The control byte: an input's last byte, read as settings for its turn.
struct FuzzControl {
    let byte: UInt8

    /// The sender of the `index`th decoded message (bits 0-2, plus the
    /// index).
    func sender(ofMessage index: Int) -> Endpoint {
        FuzzSetup.senders[(Int(byte) + index) % FuzzSetup.senders.count]
    }

    /// Whether the roles' messages to each other are delivered (bit 3): the
    /// acceptors then answer the proposer's requests, and the proposer its
    /// own maintenance requests.
    var deliversLoopback: Bool { byte & 0x08 != 0 }

    /// How far the clock moves before the tick (bits 4-7: 0 ... 75 ms, and
    /// 1 µs more so that time always moves).
    var elapsed: Duration { .milliseconds(5 * Int(byte >> 4)) + .microseconds(1) }
}

/// Decodes `bytes` every way a CASPaxos driver might and checks that the
/// decoders agree and every message survives a round trip; returns the
/// messages of the frame body (empty if it did not decode).
func decodeChecked(_ bytes: UnsafeRawBufferPointer) -> [CASPaxosMessage] {
    let configuration = FuzzSetup.configuration
    let messages = decodeBody(bytes)

    // The input as a datagram (its checksum rarely matches).
    if let body = try? Frame.decodeBody(bytes, of: .casPaxos, limits: FuzzSetup.frameLimits) {
        _ = decodeBody(body)
    }

    // The input as the body of a valid frame: it must arrive unchanged.
    var writer = WireWriter()
    do throws(WireError) {
        try Frame.encode(protocol: .casPaxos, limits: FuzzSetup.frameLimits, into: &writer) { $0.writeRawBytes(bytes) }
    } catch {
        precondition(
            error.code == .lengthExceedsLimit && bytes.count + FrameHeader.size > configuration.maximumMessageSize,
            "unexpected frame encode failure: \(error)")
        return messages ?? []
    }
    writer.withUnsafeBytes { frame in
        let body: UnsafeRawBufferPointer
        do throws(WireError) {
            body = try Frame.decodeBody(frame, of: .casPaxos, limits: FuzzSetup.frameLimits)
        } catch {
            preconditionFailure("a freshly encoded frame did not decode: \(error)")
        }
        precondition(body.elementsEqual(bytes), "the frame changed its body")
        let again = decodeBody(body)
        precondition(again == messages, "the same body decoded differently: \(String(describing: messages)) vs \(String(describing: again))")
    }
    return messages ?? []
}

/// The messages of a frame body, or nil if it does not decode; checks that
/// a failed decode appends nothing and that every message round-trips.
private func decodeBody(_ body: UnsafeRawBufferPointer) -> [CASPaxosMessage]? {
    let configuration = FuzzSetup.configuration
    // A message already in the array, which a failed decode must leave.
    let earlier = CASPaxosMessage.accepted(requestID: 0)
    var messages = [earlier]
    do throws(WireError) {
        try CASPaxosMessage.decodeFrameBody(body, configuration: configuration, into: &messages)
    } catch {
        precondition(messages == [earlier], "a failed decode left \(messages.count - 1) messages")
        return nil
    }
    precondition(messages.first == earlier && messages.count > 1, "a decode lost or added messages")
    messages.removeFirst()
    for message in messages {
        var writer = WireWriter()
        message.encode(to: &writer)
        let decoded = writer.withUnsafeBytes { encoded in
            Result { () throws(WireError) in try CASPaxosMessage(decoding: encoded, configuration: configuration) }
        }
        guard case .success(let again) = decoded, again == message else {
            preconditionFailure("round trip changed the message: \(message) -> \(decoded)")
        }
    }
    return messages
}

/// A message on its way between the harness's roles.
struct LoopbackDelivery {
    var message: CASPaxosMessage
    var from: Endpoint
    var to: Endpoint
}

/// The roles every input is fed to: an ``Acceptor`` (the one at the first
/// of ``FuzzSetup/acceptors``) whose writes go to an
/// ``InMemoryAcceptorStore`` (and which is reloaded from it every
/// ``reloadInterval`` inputs), and a ``Proposer`` with three acceptors, a
/// few proposals always pending, a garbage collection and a membership
/// change. In the loopback, further acceptors (``peers``) answer for the
/// other endpoints the proposer addresses. All are recreated every
/// ``recreateInterval`` inputs, so the fuzzer also sees young roles; their
/// state is bounded by the small limits of ``FuzzSetup/configuration``
/// meanwhile.
final class CASPaxosHarness {
    static let reloadInterval = 64
    static let recreateInterval = 4_096
    /// Messages delivered between the roles per input, at most.
    static let loopbackBudget = 128
    /// Endpoints the loopback answers for besides the acceptor's, at most
    /// (messages to others are lost).
    static let maximumPeers = 8
    /// Proposals kept pending.
    static let pendingTarget = 3

    private var acceptor: Acceptor
    private var store: InMemoryAcceptorStore
    private var proposer: Proposer
    private var peers: [Endpoint: Acceptor] = [:]
    private var now = Instant(nanoseconds: 1_000_000_000)
    private var inputs = 0
    private var recent = RecentRequests()
    private var effects: [CASPaxosEffect] = []
    private var loopback: [LoopbackDelivery] = []
    private var deliversLoopback = false

    init() {
        (acceptor, store, proposer) = Self.makeRoles()
        start()
    }

    private static func makeRoles() -> (Acceptor, InMemoryAcceptorStore, Proposer) {
        let configuration = FuzzSetup.configuration
        do throws(ConfigurationError) {
            let proposer = try Proposer(
                id: NodeID(0x5EED), quorums: .majority(of: FuzzSetup.acceptors), configuration: configuration, seed: 1)
            return (makeAcceptor(), InMemoryAcceptorStore(), proposer)
        } catch {
            preconditionFailure("the harness's configuration is invalid: \(error)")
        }
    }

    private static func makeAcceptor(recovering snapshot: AcceptorSnapshot = AcceptorSnapshot()) -> Acceptor {
        do throws(ConfigurationError) {
            return try Acceptor(recovering: snapshot, configuration: FuzzSetup.configuration)
        } catch {
            preconditionFailure("the harness's configuration is invalid: \(error)")
        }
    }

    /// Starts the maintenance tasks and the first proposals of new roles.
    private func start() {
        let (a, b, c) = (FuzzSetup.keys[0], FuzzSetup.keys[1], FuzzSetup.keys[2])
        _ = try? proposer.propose(key: a, change: { ($0 ?? []) + [1] }, now: now, into: &effects)
        _ = try? proposer.read(key: b, now: now, into: &effects)
        _ = try? proposer.propose(key: c, change: { _ in nil }, now: now, into: &effects)
        _ = try? proposer.collectGarbage(key: c, proposers: [FuzzSetup.proposer], now: now, into: &effects)
        _ = try? proposer.changeMembership(
            to: FuzzSetup.acceptors + [FuzzSetup.joiningAcceptor], proposers: [FuzzSetup.proposer], now: now,
            into: &effects)
        route(from: FuzzSetup.proposer)
    }

    /// One input's turn.
    func run(_ bytes: UnsafeRawBufferPointer) {
        inputs += 1
        if inputs % Self.recreateInterval == 0 {
            (acceptor, store, proposer) = Self.makeRoles()
            peers.removeAll()
            recent = RecentRequests()
            start()
        }
        let control = FuzzControl(byte: bytes.last ?? 0)
        deliversLoopback = control.deliversLoopback
        for (index, message) in decodeChecked(bytes).enumerated() {
            let sender = control.sender(ofMessage: index)
            acceptor.receive(message, from: sender, into: &effects)
            route(from: FuzzSetup.acceptors[0])
            proposer.receive(recent.aliasing(message), from: sender, now: now, into: &effects)
            route(from: FuzzSetup.proposer)
        }
        now = now + control.elapsed
        proposer.tick(now: now, into: &effects)
        route(from: FuzzSetup.proposer)
        keepProposalsPending()
        deliverLoopback()
        if inputs % Self.reloadInterval == 0 { reloadAcceptor() }
        loopback.removeAll(keepingCapacity: true)
    }

    /// Tops the proposer's pending proposals up to ``pendingTarget``: a
    /// write, a read or a delete, by turns.
    private func keepProposalsPending() {
        var turn = inputs
        while proposer.pendingCount < Self.pendingTarget {
            let key = FuzzSetup.keys[turn % FuzzSetup.keys.count]
            let started: UInt64?
            switch turn % 3 {
            case 0: started = try? proposer.propose(key: key, change: { ($0 ?? []) + [2] }, now: now, into: &effects)
            case 1: started = try? proposer.read(key: key, now: now, into: &effects)
            default: started = try? proposer.propose(key: key, change: { _ in nil }, now: now, into: &effects)
            }
            route(from: FuzzSetup.proposer)
            guard started != nil else { return }
            turn += 1
        }
    }

    /// Performs `effects`, which `source` emitted, and empties the buffer:
    /// the acceptor's writes go to the store (the peers' are dropped), the
    /// proposer's request IDs are recorded, and messages are queued for the
    /// loopback if this input delivers it.
    private func route(from source: Endpoint) {
        for effect in effects {
            switch effect {
            case .persist(let write):
                if source == FuzzSetup.acceptors[0] { store.apply(write) }
            case .send(let message, let destination):
                sent(message, from: source, to: [destination])
            case .sendToEach(let message, let destinations):
                sent(message, from: source, to: destinations)
            case .proposalCompleted, .maintenanceCompleted:
                break
            }
        }
        effects.removeAll(keepingCapacity: true)
    }

    private func sent(_ message: CASPaxosMessage, from source: Endpoint, to destinations: [Endpoint]) {
        if source == FuzzSetup.proposer { recent.record(message.requestID) }
        guard deliversLoopback else { return }
        for destination in destinations where loopback.count < Self.loopbackBudget {
            loopback.append(LoopbackDelivery(message: message, from: source, to: destination))
        }
    }

    /// Delivers the queued messages, and those they cause, up to
    /// ``loopbackBudget``: the proposer gets what is sent to its endpoint,
    /// the acceptor what is sent to its own, and a peer acceptor what is
    /// sent to any other (so the proposer's attempts can succeed in
    /// whatever configuration a hostile reconfiguration gave it).
    private func deliverLoopback() {
        var index = 0
        while index < loopback.count {
            let delivery = loopback[index]
            index += 1
            if delivery.to == FuzzSetup.proposer {
                proposer.receive(delivery.message, from: delivery.from, now: now, into: &effects)
            } else if delivery.to == FuzzSetup.acceptors[0] {
                acceptor.receive(delivery.message, from: delivery.from, into: &effects)
            } else if var peer = peers[delivery.to] ?? newPeer() {
                peer.receive(delivery.message, from: delivery.from, into: &effects)
                peers[delivery.to] = peer
            }
            route(from: delivery.to)
        }
    }

    /// A new peer acceptor, or nil if there are ``maximumPeers``.
    private func newPeer() -> Acceptor? {
        peers.count < Self.maximumPeers ? Self.makeAcceptor() : nil
    }

    /// Restarts the acceptor from the store, which must hold exactly the
    /// acceptor's state (every change came out as a `.persist`).
    private func reloadAcceptor() {
        precondition(store.snapshot == acceptor.snapshot, "the store and the acceptor disagree")
        acceptor = Self.makeAcceptor(recovering: store.load())
    }
}

/// The harness, kept across inputs (libFuzzer calls the entry point from
/// one thread).
nonisolated(unsafe) private let harness = CASPaxosHarness()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCASPaxos(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    harness.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
