import EventCore
import WireCodec

/// One transport shared by many Raft groups: a ``RaftNode`` per group on
/// one socket (or on the Raft channel of a `Chorus` `ProtocolMultiplexer`),
/// each receiving the messages of its own group only.
///
/// Every Raft message names its group (``RaftMessage/group``, the varint
/// after the kind byte of the frame's body). The multiplexer installs the
/// transport's receive handler, reads that group
/// (``RaftMessage/peekGroup(_:)``), and hands the frame to the handler
/// installed on the ``RaftGroupChannel`` of that group. A channel is a
/// ``EventCore/Transport``: give it to the group's node in place of the
/// transport.
///
/// ```swift
/// loop.execute {
///     let groups = RaftGroupMultiplexer(transport: transport)
///     for group: UInt64 in 1...100 {
///         nodes[group] = try RaftNode(
///             id: NodeID(1), group: group, peers: peers, storage: InMemoryRaftStorage(),
///             stateMachine: KeyValueStateMachine(), transport: groups.channel(for: group), scheduler: loop)
///     }
/// }
/// ```
///
/// Only the frame header and the body's first bytes are read here; the
/// group's node verifies the checksum and decodes the message, as on a
/// transport of its own (so a corrupted group number takes a frame to
/// another group's node, which drops it as malformed). A datagram that is
/// not a Raft frame this build reads, or whose group has no handler here,
/// is dropped and counted (``counters``) and logged at `debug`.
///
/// Each group's node still sends its own frames: the groups' heartbeats
/// to one peer are not coalesced (a host of thousands of groups would want
/// that, as CockroachDB's does).
///
/// The channels hold the multiplexer, and it holds the transport; the
/// handler it installs on the transport, at creation, holds it weakly.
/// Confined to the transport's loop, like the transport.
public final class RaftGroupMultiplexer {
    /// What the multiplexer did with the datagrams it received.
    public struct Counters: Hashable, Sendable {
        /// Frames handed to a group's node.
        public var delivered: UInt64 = 0
        /// Datagrams dropped because they are not Raft frames this build
        /// reads: no frame header, another protocol, or a body too short
        /// to name a group.
        public var malformed: UInt64 = 0
        /// Frames dropped because their group has no node here (none was
        /// created, or it was stopped: a node's `stop()` removes its
        /// channel's handler).
        public var unclaimed: UInt64 = 0

        /// Creates zeroed counters.
        public init() {}
    }

    private struct Receiver {
        var handler: TransportReceiveHandler
        /// The channel that installed the handler.
        var channel: ObjectIdentifier
    }

    /// The transport the groups share.
    public let transport: any Transport
    /// What was delivered and dropped so far.
    public private(set) var counters = Counters()
    private var receivers: [UInt64: Receiver] = [:]
    private let logger: any LogSink

    /// Takes over `transport`'s receive handler; frames are dropped
    /// (``Counters/unclaimed``) until a channel of their group gets a
    /// handler. Drops are logged to `logger` at `debug` under
    /// `"raft-groups"`.
    public init(transport: any Transport, logger: any LogSink = DiscardingLogSink()) {
        self.transport = transport
        self.logger = logger
        transport.setReceiveHandler { [weak self] message, sender, now in
            self?.dispatch(message, from: sender, now: now)
        }
    }

    /// The groups with a node receiving here, in ascending order.
    public var groups: [UInt64] { receivers.keys.sorted() }

    /// The channel of `group`'s frames on this transport. As with a
    /// transport, the latest ``RaftGroupChannel/setReceiveHandler(_:)`` of
    /// the group's channels receives its frames, and a channel's
    /// ``RaftGroupChannel/removeReceiveHandler()`` removes only its own
    /// handler (so a node's replacement may be created before the old node
    /// is stopped). Run one node per group on a multiplexer.
    public func channel(for group: UInt64) -> RaftGroupChannel {
        RaftGroupChannel(group: group, multiplexer: self)
    }

    /// Installs `handler`, of `channel`, for `group`'s frames.
    func setHandler(_ handler: @escaping TransportReceiveHandler, for group: UInt64, of channel: RaftGroupChannel) {
        receivers[group] = Receiver(handler: handler, channel: ObjectIdentifier(channel))
    }

    /// Removes `group`'s handler if `channel` installed it.
    func removeHandler(for group: UInt64, of channel: RaftGroupChannel) {
        guard receivers[group]?.channel == ObjectIdentifier(channel) else { return }
        receivers[group] = nil
    }

    private func dispatch(_ message: UnsafeRawBufferPointer, from sender: Endpoint, now: Instant) {
        let group: UInt64
        do throws(WireError) {
            group = try RaftMessage.peekGroup(message)
        } catch {
            counters.malformed += 1
            logger.log(.debug, source: "raft-groups", "dropped a datagram from \(sender): \(error)")
            return
        }
        guard let handler = receivers[group]?.handler else {
            counters.unclaimed += 1
            logger.log(.debug, source: "raft-groups", "dropped a frame of group \(group) from \(sender): no node of it here")
            return
        }
        counters.delivered += 1
        handler(message, sender, now)
    }
}
