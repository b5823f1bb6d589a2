import EventCore
import WireCodec

/// One transport shared by several protocols: a SWIM member, a CASPaxos
/// node and a Raft node on one UDP socket (one port to open, one endpoint
/// per machine in every protocol's peer list).
///
/// Every Chorus datagram starts with a ``WireCodec/FrameHeader`` that names
/// its protocol (byte 3, ``WireCodec/ProtocolID``). The multiplexer
/// installs the transport's receive handler, reads that byte, and hands the
/// datagram to the handler installed on the ``ProtocolChannel`` of that
/// protocol. A channel is a ``EventCore/Transport``: give it to a node in
/// place of the transport. Sends go straight through to the transport, so
/// the protocols' frames of a loop turn leave in the transport's batch.
///
/// ```swift
/// // In an async context; `loop` is a started EventLoop.
/// let nodes = try await loop.submit {
///     let transport = try UDPSocketTransport.bind(to: .loopbackV4(port: 7946), on: loop)
///     let multiplexer = ProtocolMultiplexer(transport: transport)
///     let member = try SWIMNode(transport: multiplexer.channel(for: .swim), scheduler: loop)
///     let registers = try CASPaxosNode(
///         transport: multiplexer.channel(for: .casPaxos), scheduler: loop,
///         quorums: nil, acceptorStore: InMemoryAcceptorStore())
///     member.start(seeds: seeds)
///     return LoopBound((member, registers), on: loop)   // keep the nodes: nothing else holds them
/// }
/// ```
///
/// Only the 13-byte header is looked at here
/// (``WireCodec/FrameHeader/peek(_:)``: its size, magic, version and
/// protocol id); the protocol's node verifies the checksum and decodes the
/// rest, as it does on a transport of its own. A datagram that is not a
/// frame this build reads, or whose protocol has no handler, is dropped
/// and counted (``counters``) and logged at `debug`; it never reaches a
/// node.
///
/// The channels hold the multiplexer, and it holds the transport; the
/// handler it installs on the transport, once, at creation, holds it
/// weakly. So the multiplexer lives while a channel (or its creator) keeps
/// it, and leaves no cycle. A transport whose handler is replaced later (a
/// `SimulatedNode`'s crash clears it) needs a new multiplexer.
/// Confined to the transport's loop, like the transport.
public final class ProtocolMultiplexer {
    /// What the multiplexer did with the datagrams it received.
    public struct Counters: Hashable, Sendable {
        /// Datagrams handed to a channel's receive handler, by protocol
        /// (protocols that had none are absent).
        public var deliveredByProtocol: [ProtocolID: UInt64] = [:]
        /// Datagrams handed to a channel's receive handler, all protocols.
        public var delivered: UInt64 { deliveredByProtocol.values.reduce(0, +) }
        /// Datagrams dropped because they do not start with a frame header
        /// this build reads: shorter than a header, another magic or
        /// version, a protocol id no ``WireCodec/ProtocolID`` names.
        public var malformed: UInt64 = 0
        /// Frames dropped because no channel of their protocol has a
        /// receive handler: no node of that protocol was created here, or
        /// it was stopped (its `stop()` removes its channel's handler).
        public var unclaimed: UInt64 = 0

        /// Creates zeroed counters.
        public init() {}
    }

    /// The transport the channels share.
    public let transport: any Transport
    /// What was delivered and dropped so far.
    public var counters: Counters {
        var counters = dropped
        for id in ProtocolID.allCases where delivered[Int(id.rawValue)] > 0 {
            counters.deliveredByProtocol[id] = delivered[Int(id.rawValue)]
        }
        return counters
    }
    /// The drops; ``counters`` adds the deliveries.
    private var dropped = Counters()
    /// The receive handler of each protocol, with the channel that
    /// installed it, and the datagrams it was handed, by the protocol's raw
    /// id.
    private var handlers: [(handler: TransportReceiveHandler, channel: ObjectIdentifier)?]
    private var delivered: [UInt64]
    private let logger: any LogSink

    /// Takes over `transport`'s receive handler; frames are dropped
    /// (``Counters/unclaimed``) until a channel of their protocol gets a
    /// handler of its own. Drops are logged to `logger` at `debug` under
    /// `"multiplexer"`.
    public init(transport: any Transport, logger: any LogSink = DiscardingLogSink()) {
        self.transport = transport
        self.logger = logger
        let slots = Int(UInt8.max) + 1
        handlers = Array(repeating: nil, count: slots)
        delivered = Array(repeating: 0, count: slots)
        transport.setReceiveHandler { [weak self] message, sender, now in
            self?.dispatch(message, from: sender, now: now)
        }
    }

    /// The channel of `protocolID`'s frames on this transport. Every call
    /// for one protocol gives a channel to the same slot: the latest
    /// ``ProtocolChannel/setReceiveHandler(_:)`` of any of them receives
    /// the protocol's frames, as the latest handler of a transport does.
    /// A channel's ``ProtocolChannel/removeReceiveHandler()`` empties the
    /// slot only while the handler there is its own, so a node may be
    /// replaced by a new one on a new channel before it is stopped: its
    /// `stop()` does not silence its successor. Run one node per protocol
    /// on a multiplexer.
    public func channel(for protocolID: ProtocolID) -> ProtocolChannel {
        ProtocolChannel(protocolID, multiplexer: self)
    }

    /// Installs `handler`, of `channel`, for `protocolID`'s frames.
    func setHandler(
        _ handler: @escaping TransportReceiveHandler, for protocolID: ProtocolID, of channel: ProtocolChannel
    ) {
        handlers[Int(protocolID.rawValue)] = (handler, ObjectIdentifier(channel))
    }

    /// Removes `protocolID`'s handler if `channel` installed it.
    func removeHandler(for protocolID: ProtocolID, of channel: ProtocolChannel) {
        guard handlers[Int(protocolID.rawValue)]?.channel == ObjectIdentifier(channel) else { return }
        handlers[Int(protocolID.rawValue)] = nil
    }

    private func dispatch(_ message: UnsafeRawBufferPointer, from sender: Endpoint, now: Instant) {
        let protocolID: ProtocolID
        do throws(WireError) {
            protocolID = try FrameHeader.peek(message).protocolID
        } catch {
            dropped.malformed += 1
            logger.log(.debug, source: "multiplexer", "dropped a datagram from \(sender): \(error)")
            return
        }
        guard let handler = handlers[Int(protocolID.rawValue)]?.handler else {
            dropped.unclaimed += 1
            logger.log(.debug, source: "multiplexer", "dropped a \(protocolID) frame from \(sender): no node of it here")
            return
        }
        delivered[Int(protocolID.rawValue)] += 1
        handler(message, sender, now)
    }
}
