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
/// // In an async context; `loop` is a started EventLoop.
/// let raft = try await loop.submit {
///     let transport = try UDPSocketTransport.bind(to: endpoint, on: loop)
///     let groups = try RaftGroupMultiplexer(transport: transport, scheduler: loop)
///     let nodes = try (1...100).map { (group: UInt64) in
///         try RaftNode(
///             id: NodeID(1), group: group, peers: peers, storage: InMemoryRaftStorage(),
///             stateMachine: KeyValueStateMachine(), transport: groups.channel(for: group), scheduler: loop)
///     }
///     return LoopBound(nodes, on: loop)   // keep the nodes: nothing else holds them
/// }
/// ```
///
/// Only a frame's header and its body's first bytes are read here; the
/// group's node verifies the checksum and decodes the message, as on a
/// transport of its own (so a corrupted group number takes a frame to
/// another group's node, which drops it as malformed). A datagram that is
/// not a Raft frame this build reads, or whose group has no handler here,
/// is dropped and counted (``counters``) and logged at `debug`.
///
/// Sending, the multiplexer coalesces: the frames the groups address to
/// one peer in a loop turn leave, at the end of the turn, in as few
/// datagrams as ``maximumBatchSize`` allows, each a batch (a Raft frame
/// of kind `0xFF` holding whole Raft frames; a lone frame goes as it is).
/// Leaders put their heartbeats on a common grid (multiples of the
/// interval), so a process's groups send theirs in the same turn: a
/// thousand groups' heartbeats to a peer take a few datagrams, not a
/// thousand, and the answers come back the same way. A received batch's
/// checksum is verified here, then each of its frames goes to its group
/// as if it had come alone; a batch that is not whole Raft frames is
/// dropped entire. A ``RaftNode`` on a transport of its own reads batches
/// too, so multiplexed and plain machines may serve one group together.
///
/// The channels hold the multiplexer, and it holds the transport; the
/// handler it installs on the transport, at creation, holds it weakly, as
/// does its end-of-turn flush. Confined to the transport's loop, like the
/// transport.
public final class RaftGroupMultiplexer {
    /// What the multiplexer did with the datagrams it received.
    public struct Counters: Hashable, Sendable {
        /// Frames handed to a group's node.
        public var delivered: UInt64 = 0
        /// Datagrams dropped because they are not Raft frames this build
        /// reads: no frame header, another protocol, a body too short to
        /// name a group, or a batch that fails its checksum or is not
        /// whole Raft frames (counted once, with all its frames).
        public var malformed: UInt64 = 0
        /// Frames dropped because their group has no node here (none was
        /// created, or it was stopped: a node's `stop()` removes its
        /// channel's handler).
        public var unclaimed: UInt64 = 0
        /// Frames the groups sent through the multiplexer.
        public var framesSent: UInt64 = 0
        /// Datagrams handed to the transport: a batch of frames, or one
        /// frame alone.
        public var datagramsSent: UInt64 = 0
        /// Datagrams the transport refused (closed, say), with every frame
        /// in them; logged at `debug`.
        public var sendFailures: UInt64 = 0

        /// Creates zeroed counters.
        public init() {}
    }

    private struct Receiver {
        var handler: TransportReceiveHandler
        /// The channel that installed the handler.
        var channel: ObjectIdentifier
    }

    /// The frames queued for one peer in this turn, back to back.
    private struct Outgoing {
        var destination: Endpoint
        var frames = WireWriter(capacity: 1_024)
    }

    /// The transport the groups share.
    public let transport: any Transport
    /// The scheduler whose turns the multiplexer coalesces the groups'
    /// frames over.
    public let scheduler: any Scheduler
    /// The longest datagram that carries several frames, in bytes.
    public let maximumBatchSize: Int
    /// What was delivered, sent and dropped so far.
    public private(set) var counters = Counters()
    private var receivers: [UInt64: Receiver] = [:]
    private let logger: any LogSink
    /// Peers with frames queued in this turn, in the order first
    /// addressed; the entries past ``outgoingCount`` are kept for their
    /// buffers.
    private var outgoing: [Outgoing] = []
    private var outgoingCount = 0
    private var outgoingIndex: [Endpoint: Int] = [:]
    private var batch = WireWriter(capacity: 1_024)
    private var isFlushScheduled = false

    /// Takes over `transport`'s receive handler; frames are dropped
    /// (``Counters/unclaimed``) until a channel of their group gets a
    /// handler. The frames sent in a turn of `scheduler` (the transport's
    /// loop) are coalesced per peer into datagrams of up to
    /// `maximumBatchSize` bytes: set it to the transport's datagram size
    /// (the default, 1,400 bytes, fits an Ethernet MTU; loopback takes
    /// 64 KiB). Drops are logged to `logger` at `debug` under
    /// `"raft-groups"`.
    ///
    /// - Throws: `ConfigurationError` unless `maximumBatchSize` is from
    ///   64 to the transport's `maximumMessageSize`.
    public init(
        transport: any Transport, scheduler: any Scheduler, maximumBatchSize: Int = 1_400,
        logger: any LogSink = DiscardingLogSink()
    ) throws(ConfigurationError) {
        guard (64...max(64, transport.maximumMessageSize)).contains(maximumBatchSize) else {
            throw ConfigurationError(
                field: "maximumBatchSize", value: "\(maximumBatchSize)",
                allowedRange: "64 ... the transport's maximumMessageSize (\(transport.maximumMessageSize))")
        }
        self.transport = transport
        self.scheduler = scheduler
        self.maximumBatchSize = maximumBatchSize
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

    // MARK: Sending

    /// Queues `frame`, of a group's node, for `destination` until the end
    /// of the turn. A message that is not one whole Raft frame (nothing a
    /// node sends) goes at once, as it is.
    ///
    /// - Throws: `TransportError(.messageTooLarge)` for a message longer
    ///   than the transport's `maximumMessageSize`; other transport errors
    ///   only for a message sent at once (a queued frame's are counted in
    ///   ``Counters/sendFailures``).
    func send(_ frame: UnsafeRawBufferPointer, to destination: Endpoint) throws(TransportError) {
        guard frame.count <= transport.maximumMessageSize else {
            throw TransportError(
                .messageTooLarge,
                detail: "\(frame.count) bytes, above the transport's maximumMessageSize (\(transport.maximumMessageSize))")
        }
        counters.framesSent += 1
        guard Self.isLoneRaftFrame(frame) else {
            try transport.send(frame, to: destination)
            counters.datagramsSent += 1
            return
        }
        let slot: Int
        if let known = outgoingIndex[destination] {
            slot = known
        } else {
            slot = outgoingCount
            outgoingCount += 1
            outgoingIndex[destination] = slot
            if slot < outgoing.count {
                outgoing[slot].destination = destination
            } else {
                outgoing.append(Outgoing(destination: destination))
            }
        }
        outgoing[slot].frames.writeRawBytes(frame)
        guard !isFlushScheduled else { return }
        isFlushScheduled = true
        scheduler.atEndOfTurn { [weak self] in self?.flush() }
    }

    /// Whether `frame` is exactly one Raft frame, not a batch: what the
    /// flush may put in a batch.
    private static func isLoneRaftFrame(_ frame: UnsafeRawBufferPointer) -> Bool {
        guard let header = try? FrameHeader.peek(frame) else { return false }
        return header.protocolID == .raft && header.frameLength == frame.count && !RaftFrameBatch.isBatch(frame)
    }

    /// Sends every peer's queued frames, in as few datagrams as the batch
    /// size allows.
    private func flush() {
        isFlushScheduled = false
        for slot in 0..<outgoingCount {
            let destination = outgoing[slot].destination
            outgoing[slot].frames.withUnsafeBytes { sendCoalesced($0, to: destination) }
            outgoing[slot].frames.removeAll()
        }
        outgoingCount = 0
        outgoingIndex.removeAll(keepingCapacity: true)
    }

    /// Sends `frames`, whole frames back to back, in runs: each run as
    /// long as fits in one batch; a run of one frame as that frame.
    private func sendCoalesced(_ frames: UnsafeRawBufferPointer, to destination: Endpoint) {
        var runStart = 0
        var runCount = 0
        var offset = 0
        while offset < frames.count {
            // Queued by `send` as whole frames.
            let end = RaftFrameBatch.end(ofFrameAt: offset, in: frames)
            if runCount > 0 && RaftFrameBatch.overhead + end - runStart > maximumBatchSize {
                sendRun(UnsafeRawBufferPointer(rebasing: frames[runStart..<offset]), of: runCount, to: destination)
                runStart = offset
                runCount = 0
            }
            runCount += 1
            offset = end
        }
        if runCount > 0 {
            sendRun(UnsafeRawBufferPointer(rebasing: frames[runStart..<offset]), of: runCount, to: destination)
        }
    }

    private func sendRun(_ frames: UnsafeRawBufferPointer, of count: Int, to destination: Endpoint) {
        do {
            if count == 1 {
                try transport.send(frames, to: destination)
            } else {
                batch.removeAll()
                try RaftFrameBatch.encode(frames, limits: WireLimits(maximumFrameLength: maximumBatchSize), into: &batch)
                let transport = transport
                try batch.withUnsafeBytes { bytes throws(TransportError) in try transport.send(bytes, to: destination) }
            }
            counters.datagramsSent += 1
        } catch {
            counters.sendFailures += 1
            logger.log(.debug, source: "raft-groups", "cannot send \(count) frames to \(destination): \(error)")
        }
    }

    // MARK: Receiving

    private func dispatch(_ message: UnsafeRawBufferPointer, from sender: Endpoint, now: Instant) {
        guard RaftFrameBatch.isBatch(message) else {
            dispatchFrame(message, from: sender, now: now)
            return
        }
        let frames: RaftFrameBatch
        do throws(WireError) {
            frames = try RaftFrameBatch(body: Frame.decodeBody(message, of: .raft, limits: Self.batchLimits))
        } catch {
            counters.malformed += 1
            logger.log(.debug, source: "raft-groups", "dropped a batch from \(sender): \(error)")
            return
        }
        for frame in frames { dispatchFrame(frame, from: sender, now: now) }
    }

    /// A batch is as long as the transport let it be.
    private static let batchLimits = WireLimits(maximumFrameLength: .max)

    private func dispatchFrame(_ message: UnsafeRawBufferPointer, from sender: Endpoint, now: Instant) {
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
