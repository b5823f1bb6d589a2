// libFuzzer entry point for Gossip, compiled by Scripts/fuzz against the
// WireCodec, EventCore and Gossip modules (each built with the same
// sanitizers) and the CChorusSystem C shim.
//
// The first byte of an input is a control byte: its low three bits pick the
// sender, the next four how far the clock moves on first (0 to 300 ms, and
// 1 µs more, so that time always moves and retained messages get ages of
// fractions of a millisecond). With its top bit clear, the rest is one
// message's body; with it set, the rest is a sequence of messages, each a
// control byte of its own (read the same way, its top bit unused), a length
// byte and that many bytes of body (fewer at the end of the input), so that
// one input can bring a node to a state and then poke it. Every body is
// decoded as a gossip frame body and, framed afresh, as a whole datagram
// (which must decode to the same message), and the whole input as a
// datagram too (its checksum rarely matches); a decoded message must
// re-encode to bytes that decode to an equal message. A body that begins
// with an unknown tag from 0xF0 up is broadcast instead, the bytes after the
// tag its payload.
//
// What decodes, if it fits a frame the node's driver (GossipNode) takes, goes
// to two long-lived GossipInstances, one in Plumtree mode and one in push
// mode, which are then ticked when due. Each starts with three neighbours
// (the first three senders, its active view full) and standby peers (the
// other senders), and its seeds are the first two senders, so that short
// inputs reach evictions, failures and their repair, walks, shuffles,
// grafts and anti-entropy. After every step the harness checks what it can
// state from the code: the views within their sizes, disjoint and without
// the node; retention, missing messages and tracked origins within their
// caps; no more sends than the step's handlers can make; the next deadline
// no further than a heartbeat interval away, and after a tick not behind
// the clock; every delivery within the payload limit and from another
// origin; every message sent to another endpoint, in a frame its peers take
// (GossipNode's receive limits) that decodes to it (an age rounded up to
// whole milliseconds, as the wire carries it).
//
// The nodes are kept across inputs, as the SWIM target keeps its member:
// their interesting states (full views, requests out, messages missing and
// grafted, retention and de-duplication at their caps) take many messages to
// reach, more than most inputs hold, even as sequences. A gossip node has no leave and keeps
// retrying its seeds while it has no neighbour, so nothing wedges it; it
// only ages, its caps reached and held. Both are therefore built anew every
// `GossipHarness.rebuildInterval` inputs, with a new seed, so that the
// fuzzer also sees young nodes. A crash that needs earlier inputs
// reproduces from the corpus run in order, not from its artifact alone.
// A broken expectation is a `precondition` failure, a crash libFuzzer keeps.

import EventCore
import Gossip
import WireCodec

/// The fixed setting of the harness: small limits, so that the node's
/// bounds are reached often, and the endpoints messages come from.
enum GossipFuzzSetup {
    /// Small views, caps and messages (9 IDs an IHAVE, 6 runs a digest),
    /// and short intervals, so that the clock's steps (up to 310 ms) pass
    /// several deadlines at once.
    static func configuration(_ mode: DisseminationMode) -> GossipConfiguration {
        var configuration = GossipConfiguration(mode: mode)
        configuration.maximumMessageSize = 128
        configuration.fanout = 2
        configuration.activeViewSize = 3
        configuration.passiveViewSize = 8
        configuration.activeRandomWalkLength = 3
        configuration.passiveRandomWalkLength = 2
        configuration.shuffleInterval = .milliseconds(500)
        configuration.shuffleActiveCount = 1
        configuration.shufflePassiveCount = 2
        configuration.heartbeatInterval = .milliseconds(100)
        configuration.peerTimeout = .milliseconds(300)
        configuration.requestTimeout = .milliseconds(150)
        configuration.reconnectInterval = .milliseconds(600)
        configuration.failedPeersCapacity = 4
        configuration.lazyPushInterval = .milliseconds(10)
        configuration.graftTimeout = .milliseconds(50)
        configuration.maximumMissingMessages = 16
        configuration.antiEntropyInterval = .milliseconds(400)
        configuration.retentionCapacity = 16
        configuration.retentionPeriod = .seconds(5)
        configuration.maximumPullCount = 4
        configuration.maximumTrackedOrigins = 16
        return configuration
    }

    /// The modes of the nodes every input goes to.
    static let modes: [DisseminationMode] = [.plumtree, .push]
    /// The limits shared by both modes' configurations.
    static let shared = configuration(.plumtree)

    static let endpoint = Endpoint.loopbackV4(port: 7_000)
    /// The senders the control byte picks from (eight: three bits): five
    /// peers, the node itself, an IPv6 peer and the wildcard address.
    static let senders: [Endpoint] =
        (1...5).map { Endpoint.loopbackV4(port: 7_000 + UInt16($0)) } + [
            endpoint, Endpoint.loopbackV6(port: 7_001), Endpoint(address: .ipv4(0), port: 0),
        ]
    /// The nodes' seeds.
    static let seeds = Array(senders[0..<2])
    /// The limits GossipNode decodes frames with: a frame of
    /// `maximumMessageSize` and the bytes of a repair's tag and a message's
    /// age.
    static let limits = WireLimits(maximumFrameLength: shared.maximumMessageSize + GossipMessage.agedOverhead)
    /// A body whose first byte is this or above (an unknown tag) is
    /// broadcast.
    static let broadcastTag: UInt8 = 0xF0
}

/// One node under test, with its effects buffer and the checks run after
/// each of its steps.
struct CheckedNode {
    private(set) var instance: GossipInstance
    private var effects: [GossipEffect] = []

    /// The most sends one received message makes: a JOIN's eviction,
    /// answer and walks (one to each other neighbour), a message pushed to
    /// the fanout, or a GRAFT or PULL served up to the pull count. A
    /// broadcast makes no more than a data message.
    private static var maximumSendsPerInput: Int {
        let configuration = GossipFuzzSetup.shared
        return max(configuration.activeViewSize + 2, configuration.fanout, configuration.maximumPullCount)
    }

    /// The most sends one tick makes: a heartbeat and an IHAVE to each
    /// neighbour, the requests that refill the active view, a join, a
    /// shuffle, a probe, a digest, and a graft for each missing message.
    private static var maximumSendsPerTick: Int {
        let configuration = GossipFuzzSetup.shared
        return 3 * configuration.activeViewSize + 4 + configuration.maximumMissingMessages
    }

    /// A node of `mode` with three neighbours (the first three senders)
    /// and the other senders as standby peers, joined through the seeds.
    init(mode: DisseminationMode, seed: UInt64, now: Instant) {
        do {
            instance = try GossipInstance(
                id: NodeID(1), endpoint: GossipFuzzSetup.endpoint, configuration: GossipFuzzSetup.configuration(mode),
                seed: seed, now: now)
        } catch {
            preconditionFailure("the harness's configuration is invalid: \(error)")
        }
        instance.join(seeds: GossipFuzzSetup.seeds, now: now, into: &effects)
        check(sendsAtMost: 1, deliveriesAtMost: 0, now: now)
        let senders = GossipFuzzSetup.senders
        for neighbor in senders[0..<3] { receive(.join, from: neighbor, now: now) }
        receive(.shuffleReply(sample: Array(senders[3...])), from: senders[0], now: now)
    }

    mutating func receive(_ message: GossipMessage, from sender: Endpoint, now: Instant) {
        instance.receive(message, from: sender, now: now, into: &effects)
        check(sendsAtMost: Self.maximumSendsPerInput, deliveriesAtMost: 1, now: now)
    }

    /// Broadcasts `payload`, which must be refused exactly when it is over
    /// the payload limit.
    mutating func broadcast(_ payload: [UInt8], now: Instant) {
        let limit = instance.configuration.maximumPayloadSize
        do throws(GossipError) {
            try instance.broadcast(payload, now: now, into: &effects)
            precondition(payload.count <= limit, "a payload of \(payload.count) bytes was taken (limit \(limit))")
        } catch {
            precondition(
                error.code == .payloadTooLarge && payload.count > limit,
                "a payload of \(payload.count) bytes was refused (limit \(limit)): \(error)")
        }
        check(sendsAtMost: Self.maximumSendsPerInput, deliveriesAtMost: 0, now: now)
    }

    /// Ticks the node if its deadline has come: the next must then be
    /// after `now` (a driver would spin on it otherwise).
    mutating func tickIfDue(now: Instant) {
        guard instance.nextDeadline <= now else { return }
        instance.tick(now: now, into: &effects)
        check(sendsAtMost: Self.maximumSendsPerTick, deliveriesAtMost: 0, now: now)
        precondition(
            instance.nextDeadline > now, "a deadline left behind the clock after a tick: \(instance.nextDeadline) <= \(now)")
    }

    /// Checks the effects of one step and the node's state after it, and
    /// empties the buffer.
    private mutating func check(sendsAtMost maximumSends: Int, deliveriesAtMost maximumDeliveries: Int, now: Instant) {
        var sends = 0
        var deliveries = 0
        for effect in effects {
            switch effect {
            case .send(let message, let destination):
                sends += 1
                checkSent(message, to: destination)
            case .deliver(let delivery):
                deliveries += 1
                check(delivery, now: now)
            }
        }
        precondition(sends <= maximumSends, "\(sends) sends in one step (at most \(maximumSends) expected)")
        precondition(deliveries <= maximumDeliveries, "\(deliveries) deliveries in one step (at most \(maximumDeliveries))")
        effects.removeAll(keepingCapacity: true)
        checkState(now: now)
    }

    /// The views within their sizes, disjoint and without the node itself;
    /// the other state within its caps; a tick due within a heartbeat
    /// interval (every periodic deadline is set at most one interval
    /// ahead, and the heartbeat's is always set).
    private func checkState(now: Instant) {
        let configuration = instance.configuration
        let active = instance.activeView
        let passive = instance.passiveView
        let activeSet = Set(active)
        let passiveSet = Set(passive)
        precondition(active.count <= configuration.activeViewSize, "an active view of \(active.count): \(active)")
        precondition(passive.count <= configuration.passiveViewSize, "a passive view of \(passive.count): \(passive)")
        precondition(activeSet.count == active.count && passiveSet.count == passive.count, "a peer twice in a view")
        precondition(activeSet.isDisjoint(with: passiveSet), "a peer in both views: \(active) \(passive)")
        precondition(!activeSet.contains(instance.endpoint) && !passiveSet.contains(instance.endpoint), "the node in its own view")
        precondition(Set(instance.eagerPeers).isSubset(of: activeSet), "an eager peer not in the active view")
        precondition(instance.retainedCount <= configuration.retentionCapacity, "\(instance.retainedCount) messages retained")
        precondition(
            instance.missingCount <= configuration.maximumMissingMessages, "\(instance.missingCount) messages missing")
        precondition(
            instance.trackedOriginCount <= configuration.maximumTrackedOrigins,
            "\(instance.trackedOriginCount) origins tracked")
        precondition(
            instance.nextDeadline <= now + configuration.heartbeatInterval,
            "the next deadline \(instance.nextDeadline) is more than a heartbeat interval after \(now)")
    }

    private func check(_ delivery: GossipDelivery, now: Instant) {
        precondition(delivery.id.origin != instance.id, "the node delivered its own broadcast \(delivery.id)")
        precondition(delivery.payload.count <= instance.configuration.maximumPayloadSize, "an oversized payload delivered")
        precondition(delivery.deliveredAt == now, "a delivery stamped \(delivery.deliveredAt) at \(now)")
    }

    /// A message the node sends must go to another endpoint, in a frame
    /// that the node's peers take and that decodes to it.
    private func checkSent(_ message: GossipMessage, to destination: Endpoint) {
        precondition(destination != instance.endpoint, "the node sent itself \(message)")
        var writer = WireWriter()
        message.encodeFrame(into: &writer)
        writer.withUnsafeBytes { frame in
            guard let body = try? Frame.decodeBody(frame, of: .gossip, limits: GossipFuzzSetup.limits) else {
                preconditionFailure(
                    "the node sent a frame of \(frame.count) bytes its peers drop (limit \(GossipFuzzSetup.limits.maximumFrameLength)): \(message)")
            }
            let decoded = try? GossipMessage(decoding: body, limits: GossipFuzzSetup.limits)
            precondition(
                decoded.map { $0 == message.onTheWire } == true,
                "a message the node sent decoded differently: \(message) -> \(String(describing: decoded))")
        }
    }
}

extension GossipMessage {
    /// This message as a peer decodes it: a data message's or repair's age
    /// rounded up to whole milliseconds (at most
    /// ``GossipMessage/maximumAgeMilliseconds``), the rest unchanged.
    var onTheWire: GossipMessage {
        func rounded(_ data: GossipData) -> GossipData {
            var data = data
            let milliseconds = (max(0, data.age.nanoseconds) + 999_999) / 1_000_000
            data.age = .milliseconds(min(milliseconds, Int64(GossipMessage.maximumAgeMilliseconds)))
            return data
        }
        switch self {
        case .data(let data): return .data(rounded(data))
        case .repair(let data): return .repair(rounded(data))
        default: return self
        }
    }
}

/// The nodes kept across inputs, and the clock they run on.
final class GossipHarness {
    /// Inputs after which the nodes are built anew.
    static let rebuildInterval = 4_096
    /// The control byte's bit that makes the rest of the input a sequence
    /// of messages.
    static let sequenceFlag: UInt8 = 0x80

    private var nodes: [CheckedNode]
    private var now = Instant(nanoseconds: 1_000_000_000)
    private var inputs = 0
    private var builds: UInt64 = 1

    init() {
        nodes = Self.build(seed: builds, now: now)
    }

    private static func build(seed: UInt64, now: Instant) -> [CheckedNode] {
        GossipFuzzSetup.modes.map { CheckedNode(mode: $0, seed: seed, now: now) }
    }

    func run(_ data: UnsafeRawBufferPointer) {
        guard let control = data.first else { return }
        inputs += 1
        if inputs % Self.rebuildInterval == 0 {
            builds += 1
            nodes = Self.build(seed: builds, now: now)
        }
        if control & Self.sequenceFlag == 0 {
            step(control, body: UnsafeRawBufferPointer(rebasing: data.dropFirst()))
        } else {
            var records = data.dropFirst()
            while records.count >= 2 {
                let bodyStart = records.startIndex + 2
                let bodyEnd = min(bodyStart + Int(records[records.startIndex + 1]), records.endIndex)
                step(records[records.startIndex], body: UnsafeRawBufferPointer(rebasing: records[bodyStart..<bodyEnd]))
                records = records[bodyEnd...]
            }
        }
        // The whole input as a datagram: it must decode to a message that
        // survives a round trip, or not at all.
        if let body = try? Frame.decodeBody(data, of: .gossip, limits: GossipFuzzSetup.limits) {
            _ = Self.decode(body)
        }
    }

    /// One message's turn: the clock moves, the body is decoded and, if it
    /// fits a frame the node takes, fed to each node from the sender the
    /// control byte picks (or broadcast, after an unknown tag from
    /// ``GossipFuzzSetup/broadcastTag`` up), and each node is ticked if due.
    private func step(_ control: UInt8, body: UnsafeRawBufferPointer) {
        now = now + .milliseconds(20 * Int((control >> 3) & 0x0F)) + .microseconds(1)
        let sender = GossipFuzzSetup.senders[Int(control & 7)]
        let message = Self.decode(body)
        let arrives = Self.checkFramed(body, decodesTo: message)
        let broadcast = body.first.flatMap { $0 >= GossipFuzzSetup.broadcastTag ? Array(body.dropFirst()) : nil }
        for index in nodes.indices {
            if arrives, let message { nodes[index].receive(message, from: sender, now: now) }
            if let broadcast { nodes[index].broadcast(broadcast, now: now) }
            nodes[index].tickIfDue(now: now)
        }
    }

    /// The body decoded, re-encoded and decoded again (which must give the
    /// same message); nil if it does not decode.
    private static func decode(_ body: UnsafeRawBufferPointer) -> GossipMessage? {
        guard let message = try? GossipMessage(decoding: body, limits: GossipFuzzSetup.limits) else { return nil }
        var writer = WireWriter()
        message.encode(to: &writer)
        let again = writer.withUnsafeBytes { try? GossipMessage(decoding: $0, limits: GossipFuzzSetup.limits) }
        precondition(again == message, "round trip changed the message: \(message) -> \(String(describing: again))")
        return message
    }

    /// The bytes as the body of a gossip frame: the frame must decode back
    /// to them, and so to `message`. Returns false if they are too long
    /// for a frame the node takes.
    private static func checkFramed(_ bytes: UnsafeRawBufferPointer, decodesTo message: GossipMessage?) -> Bool {
        let limits = GossipFuzzSetup.limits
        var writer = WireWriter()
        do throws(WireError) {
            try Frame.encode(protocol: .gossip, limits: limits, into: &writer) { $0.writeRawBytes(bytes) }
        } catch {
            precondition(
                error.code == .lengthExceedsLimit && bytes.count + FrameHeader.size > limits.maximumFrameLength,
                "a frame of \(bytes.count) bytes refused: \(error)")
            return false
        }
        writer.withUnsafeBytes { frame in
            guard let body = try? Frame.decodeBody(frame, of: .gossip, limits: limits) else {
                preconditionFailure("a freshly encoded frame did not decode")
            }
            precondition(body.elementsEqual(bytes), "the frame changed its body")
            precondition(decode(body) == message, "the same body decoded differently")
        }
        return true
    }
}

/// The harness, kept across inputs (libFuzzer calls the entry point from
/// one thread).
nonisolated(unsafe) private let harness = GossipHarness()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGossip(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    harness.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
