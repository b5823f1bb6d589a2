import EventCore
import WireCodec

/// The messages a driver sends in one loop turn, coalesced per destination
/// into as few CASPaxos frames as the limits allow: one frame carries the
/// requests of many proposals to one acceptor, another that acceptor's
/// replies.
///
/// Each message is encoded as it is appended, into its destination's
/// buffer (the outbox keeps bytes, not messages). A frame closes when the
/// next message would take it past
/// ``CASPaxosConfiguration/maximumBatchSize`` bytes or
/// ``CASPaxosConfiguration/maximumMessagesPerFrame`` messages, so a
/// message too long for a batch goes alone (up to
/// ``CASPaxosConfiguration/maximumMessageSize``; a longer one fails alone,
/// when it is encoded). A frame of one message is that message's own
/// frame, a frame of several a batch (see ``CASPaxosMessage``).
/// ``flush(_:)`` hands out every frame and empties the outbox, keeping its
/// buffers, so a driver that flushes every turn allocates nothing once they
/// have grown.
public struct CASPaxosOutbox {
    /// One destination's messages, encoded back to back.
    private struct Queue {
        var destination: Endpoint
        var bytes = WireWriter(capacity: 512)
        /// The closed frames: where each ends in ``bytes`` and how many
        /// messages it holds.
        var closed: [(end: Int, count: Int)] = []
        /// Where the open frame starts in ``bytes``, and its messages.
        var openStart = 0
        var openCount = 0

        init(destination: Endpoint) {
            self.destination = destination
        }

        /// Counts the message just encoded at `start`, closing the open
        /// frame first if the message would take it past a limit.
        mutating func add(messageAt start: Int, limits: (size: Int, count: Int, overhead: Int)) {
            let size = bytes.count - start
            if openCount > 0, openCount == limits.count || limits.overhead + (start - openStart) + size > limits.size {
                closed.append((start, openCount))
                openStart = start
                openCount = 0
            }
            openCount += 1
        }

        /// Closes the open frame, if it holds a message.
        mutating func closeOpenFrame() {
            guard openCount > 0 else { return }
            closed.append((bytes.count, openCount))
            openStart = bytes.count
            openCount = 0
        }

        mutating func removeAll() {
            bytes.removeAll()
            closed.removeAll(keepingCapacity: true)
            openStart = 0
            openCount = 0
        }
    }

    /// Destinations searched one by one up to this many; past it, through
    /// ``index`` (an acceptor answering many proposers in one turn).
    private static let linearSearchLimit = 16

    private var queues: [Queue] = []
    /// Queues in use, in the order their destinations were first addressed;
    /// those after are kept for their buffers.
    private var used = 0
    /// Each destination's queue, kept once more than
    /// ``linearSearchLimit`` are in use.
    private var index: [Endpoint: Int] = [:]
    /// The batch limits: bytes, messages, and the bytes a batch adds to its
    /// messages' (frame header, tag, the largest count).
    private let limits: (size: Int, count: Int, overhead: Int)
    /// The longest frame, a lone message's.
    private let maximumMessageSize: Int
    /// Where a message sent to several destinations is encoded once.
    private var scratch = WireWriter(capacity: 256)
    /// Messages appended since the last flush.
    public private(set) var messageCount = 0

    /// Creates an empty outbox for batches within `configuration`'s
    /// ``CASPaxosConfiguration/maximumBatchSize`` and
    /// ``CASPaxosConfiguration/maximumMessagesPerFrame``, and lone messages
    /// within its ``CASPaxosConfiguration/maximumMessageSize``.
    public init(configuration: CASPaxosConfiguration) {
        let count = max(1, configuration.maximumMessagesPerFrame)
        maximumMessageSize = configuration.maximumMessageSize
        limits = (
            min(configuration.maximumBatchSize, configuration.maximumMessageSize), count,
            FrameHeader.size + 1 + WireWriter.varintSize(UInt64(count))
        )
    }

    /// Whether nothing waits to be sent.
    public var isEmpty: Bool { messageCount == 0 }

    /// Encodes `message` into the frames for `destination`. A
    /// ``CASPaxosMessage/registersFull(requestID:)`` goes in a frame of its
    /// own: a build from before it refuses a frame holding one, whole, and
    /// would lose the other replies batched with it.
    public mutating func append(_ message: CASPaxosMessage, to destination: Endpoint) {
        let queue = queue(for: destination)
        let isAlone = if case .registersFull = message { true } else { false }
        if isAlone { queues[queue].closeOpenFrame() }
        let start = queues[queue].bytes.count
        message.encode(to: &queues[queue].bytes)
        queues[queue].add(messageAt: start, limits: limits)
        if isAlone { queues[queue].closeOpenFrame() }
        messageCount += 1
    }

    /// Encodes `message` once and appends it to the frames for each of
    /// `destinations` but `skipped` (a node's own endpoint, whose copy it
    /// hands over without the network).
    public mutating func append(
        _ message: CASPaxosMessage, toEach destinations: [Endpoint], skipping skipped: Endpoint? = nil
    ) {
        guard destinations.contains(where: { $0 != skipped }) else { return }
        scratch.removeAll()
        message.encode(to: &scratch)
        let encoded = scratch
        encoded.withUnsafeBytes { bytes in
            for destination in destinations where destination != skipped {
                let queue = queue(for: destination)
                let start = queues[queue].bytes.count
                queues[queue].bytes.writeRawBytes(bytes)
                queues[queue].add(messageAt: start, limits: limits)
                messageCount += 1
            }
        }
    }

    /// Hands out every frame, then empties the outbox: `send` gets each
    /// frame's destination and a function that appends the frame to a
    /// writer (it throws `WireError` `.lengthExceedsLimit`, leaving the
    /// writer as it was, for a lone message over the size limit).
    /// Destinations come in the order they were first addressed, and each
    /// one's frames in the order of their messages.
    public mutating func flush(
        _ send: (_ destination: Endpoint, _ encodeFrame: (inout WireWriter) throws(WireError) -> Void) -> Void
    ) {
        let frameLimits = WireLimits(maximumFrameLength: maximumMessageSize)
        for queue in 0..<used {
            queues[queue].closeOpenFrame()
            Self.emitFrames(of: queues[queue], limits: frameLimits, send)
        }
        removeAll()
    }

    /// Drops every message appended since the last flush.
    public mutating func removeAll() {
        for queue in 0..<used { queues[queue].removeAll() }
        used = 0
        index.removeAll(keepingCapacity: true)
        messageCount = 0
    }

    private static func emitFrames(
        of queue: Queue, limits: WireLimits,
        _ send: (_ destination: Endpoint, _ encodeFrame: (inout WireWriter) throws(WireError) -> Void) -> Void
    ) {
        queue.bytes.withUnsafeBytes { bytes in
            var start = 0
            for (end, count) in queue.closed {
                let body = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
                start = end
                send(queue.destination) { writer throws(WireError) in
                    try Frame.encode(protocol: .casPaxos, limits: limits, into: &writer) { writer in
                        if count > 1 {
                            writer.writeUInt8(CASPaxosMessage.Kind.batch.rawValue)
                            writer.writeVarint(UInt64(count))
                        }
                        writer.writeRawBytes(body)
                    }
                }
            }
        }
    }

    /// The queue of `destination`, taken from the spare ones (or made) if
    /// it has none yet.
    private mutating func queue(for destination: Endpoint) -> Int {
        if used <= Self.linearSearchLimit {
            for queue in 0..<used where queues[queue].destination == destination { return queue }
        } else if let queue = index[destination] {
            return queue
        }
        if used == queues.count {
            queues.append(Queue(destination: destination))
        } else {
            queues[used].destination = destination
        }
        used += 1
        if used == Self.linearSearchLimit + 1 {
            for queue in 0..<used { index[queues[queue].destination] = queue }
        } else if used > Self.linearSearchLimit + 1 {
            index[destination] = used - 1
        }
        return used - 1
    }
}
