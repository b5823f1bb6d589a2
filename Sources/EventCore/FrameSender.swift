import WireCodec

/// A protocol driver's outgoing path: each message is encoded as a frame
/// into one reused buffer and handed to the transport; a message that does
/// not encode (over a limit) or that the transport refuses is counted and
/// logged, never thrown at the protocol. Confined to the driver's loop.
public struct FrameSender {
    /// The transport frames go out through.
    public let transport: any Transport
    private var writer: WireWriter
    private let initialCapacity: Int
    private let retainedCapacity: Int
    private let logger: any LogSink
    private let source: String
    /// Frames handed to the transport.
    public private(set) var framesSent = 0
    /// Bytes of those frames, headers included.
    public private(set) var bytesSent = 0
    /// Messages not sent: they did not encode, or the transport refused
    /// them (closed, wrong address family, too large). A datagram the
    /// transport queued and dropped later (a full send queue while the
    /// socket blocks) is counted by the transport, not here
    /// (`UDPSocketTransport.Counters.sendQueueOverflows`).
    public private(set) var failures = 0

    /// Creates a sender on `transport` whose buffer starts at `capacity`
    /// bytes; failures are logged to `logger` under `source`. A frame
    /// longer than `retainedCapacity` bytes leaves a fresh buffer of
    /// `capacity` behind it, so a driver that seldom sends a large message
    /// (a SWIM push-pull of a large cluster) does not hold its size for
    /// good; by default the buffer keeps what it grew to.
    public init(
        transport: any Transport, capacity: Int, retainedCapacity: Int = .max, logger: any LogSink, source: String
    ) {
        self.transport = transport
        writer = WireWriter(capacity: capacity)
        initialCapacity = capacity
        self.retainedCapacity = retainedCapacity
        self.logger = logger
        self.source = source
    }

    /// Encodes a frame with `encode` and sends it to `destination`.
    public mutating func send(to destination: Endpoint, _ encode: (inout WireWriter) throws(WireError) -> Void) {
        writer.removeAll()
        defer {
            if writer.count > retainedCapacity { writer = WireWriter(capacity: initialCapacity) }
        }
        do throws(WireError) {
            try encode(&writer)
        } catch {
            failures += 1
            logger.log(.warning, source: source, "cannot encode a message to \(destination): \(error)")
            return
        }
        let transport = transport
        do throws(TransportError) {
            try writer.withUnsafeBytes { bytes throws(TransportError) in try transport.send(bytes, to: destination) }
            framesSent += 1
            bytesSent += writer.count
        } catch {
            failures += 1
            logger.log(.debug, source: source, "cannot send to \(destination): \(error)")
        }
    }
}
