import EventCore
import WireCodec

extension UDPSocketTransport {
    /// How a ``UDPSocketTransport`` sizes its datagrams, batches, buffers
    /// and reassembly. Every field has a default suited to a LAN with a
    /// 1,500-byte Ethernet MTU; ``validate()`` checks the documented ranges.
    ///
    /// Memory: the send queue holds ``sendQueueCapacity`` ×
    /// ``maximumDatagramSize`` bytes of payload (5.6 MiB by default,
    /// resident only as the queue fills) and about 200 bytes a slot of
    /// addresses and headers, written at bind (0.8 MiB by default), and the
    /// receive batch ``batchSize`` ×
    /// ``maximumDatagramSize``, both allocated at bind; incomplete messages
    /// take at most ``maximumPartialBytes`` (charged by the pages their
    /// fragments wrote: see ``FragmentReassembler``).
    public struct Configuration: Hashable, Sendable {
        /// The largest UDP payload sent or received in one datagram, in
        /// bytes; longer messages are fragmented, longer datagrams received
        /// are dropped (``Counters/receiveTruncated``). Default 1,400 (fits
        /// a 1,500-byte Ethernet MTU under IPv6 and UDP headers). Range 64 ...
        /// 65,507; up to 65,507 is useful on loopback.
        public var maximumDatagramSize = 1_400
        /// The largest message ``UDPSocketTransport/send(_:to:)`` accepts and
        /// the receiver reassembles, in bytes. Default 4 MiB plus the 13-byte
        /// frame header (`WireLimits.default.maximumFrameLength`). Range 1 ...
        /// ``maximumFragmentCount`` × (``maximumDatagramSize`` − 25), at most 2³⁰.
        public var maximumMessageSize = WireLimits.default.maximumFrameLength
        /// Datagrams per `sendmmsg`/`recvmmsg` call: queued sends are flushed
        /// when this many are waiting (and at the end of every loop
        /// iteration). Default 64. Range 1 ... 1,024.
        public var batchSize = 64
        /// The most datagrams queued while the socket would block; beyond it
        /// messages are dropped whole (``Counters/sendQueueOverflows``).
        /// Default 4,096. Range ``batchSize`` ... 1,048,576, at least the
        /// datagrams of one ``maximumMessageSize`` message (3,051 with the
        /// defaults), and at most 2³⁰ bytes of queue (``sendQueueCapacity``
        /// × ``maximumDatagramSize``). A socket blocks as soon as the
        /// kernel's send buffer is full (`net.core.wmem_max` caps it, 208
        /// KiB on a stock kernel): a queue smaller than the largest message
        /// would drop every such message each time it is sent. Payload
        /// pages are reserved at bind and touched only as the queue fills.
        public var sendQueueCapacity = 4_096
        /// The most `recvmmsg` batches read per readiness event before other
        /// descriptors get their turn. Default 16. Range 1 ... 1,024.
        public var receiveBatchesPerWakeup = 16
        /// The socket receive buffer (`SO_RCVBUF`) requested, in bytes.
        /// Default 4 MiB. Range 4,096 ... 2³⁰. The kernel caps it at
        /// `net.core.rmem_max` unless the process has `CAP_NET_ADMIN`.
        public var receiveBufferSize = 4 << 20
        /// The socket send buffer (`SO_SNDBUF`) requested, in bytes. Default
        /// 4 MiB. Range 4,096 ... 2³⁰. Capped like ``receiveBufferSize``.
        public var sendBufferSize = 4 << 20
        /// The most fragments a received message may have. Default 8,192
        /// (enough for the default message size in datagrams of 538 bytes or
        /// more; below 1,049 bytes, the default send queue is too short for
        /// it: raise ``sendQueueCapacity`` or lower ``maximumMessageSize``).
        /// Range 1 ... 65,535.
        public var maximumFragmentCount = 8_192
        /// How long after its first fragment an incomplete message is
        /// dropped. Default 5 s. Range 1 ms ... 1 hour.
        public var reassemblyTimeout: Duration = .seconds(5)
        /// The most incomplete messages kept per sender. Default 16. Range 1
        /// ... ``maximumPartialMessages``.
        public var maximumPartialMessagesPerSender = 16
        /// The most bytes charged to one sender's incomplete messages.
        /// Default 16 MiB. Range ``maximumMessageSize`` ... ``maximumPartialBytes``.
        public var maximumPartialBytesPerSender = 16 << 20
        /// The most incomplete messages kept from all senders. Default 256.
        /// Range 1 ... 1,000,000.
        public var maximumPartialMessages = 256
        /// The most bytes charged to all incomplete messages. Default
        /// 64 MiB. Range ``maximumPartialBytesPerSender`` ... 2⁴⁰.
        public var maximumPartialBytes = 64 << 20

        /// Creates the default configuration.
        public init() {}

        /// The reassembly limits these settings give.
        public var reassemblyLimits: FragmentReassembler.Limits {
            FragmentReassembler.Limits(
                maximumMessageSize: maximumMessageSize,
                maximumFragmentCount: maximumFragmentCount,
                reassemblyTimeout: reassemblyTimeout,
                maximumPartialMessagesPerSender: maximumPartialMessagesPerSender,
                maximumPartialBytesPerSender: maximumPartialBytesPerSender,
                maximumPartialMessages: maximumPartialMessages,
                maximumPartialBytes: maximumPartialBytes)
        }

        /// Checks every field against its documented range.
        ///
        /// - Throws: ``ConfigurationError`` naming the first field out of
        ///   range and the range it allows.
        public func validate() throws(ConfigurationError) {
            try ConfigurationError.checkRange("maximumDatagramSize", maximumDatagramSize, 64...65_507)
            try ConfigurationError.checkRange("batchSize", batchSize, 1...1_024)
            try ConfigurationError.checkRange("receiveBatchesPerWakeup", receiveBatchesPerWakeup, 1...1_024)
            try ConfigurationError.checkRange("receiveBufferSize", receiveBufferSize, 4_096...(1 << 30))
            try ConfigurationError.checkRange("sendBufferSize", sendBufferSize, 4_096...(1 << 30))
            try ConfigurationError.checkRange("maximumFragmentCount", maximumFragmentCount, 1...Int(UInt16.max))
            let chunk = maximumDatagramSize - FragmentHeader.datagramOverhead
            let largest = min(maximumFragmentCount * chunk, 1 << 30)
            try ConfigurationError.checkRange(
                "maximumMessageSize", maximumMessageSize, 1...largest,
                "1 ... maximumFragmentCount × (maximumDatagramSize − 25) (\(largest))")
            // The queue is allocated at bind: keep it to 1 GiB. A whole
            // message of the largest size must fit it, or a blocked socket
            // drops every one of them.
            let largestQueue = max(batchSize, min(1 << 20, (1 << 30) / maximumDatagramSize))
            let datagrams = maximumMessageSize <= maximumDatagramSize ? 1 : (maximumMessageSize + chunk - 1) / chunk
            guard datagrams <= largestQueue else {
                throw ConfigurationError(
                    field: "maximumMessageSize", value: "\(maximumMessageSize)",
                    allowedRange: "1 ... \(largestQueue * chunk) (what the largest send queue, \(largestQueue) datagrams, holds)")
            }
            try ConfigurationError.checkRange(
                "sendQueueCapacity", sendQueueCapacity, max(batchSize, datagrams)...largestQueue,
                "batchSize (\(batchSize)), and the datagrams of one maximumMessageSize message (\(datagrams)), ... "
                    + "min(1048576, 2^30 / maximumDatagramSize) (\(largestQueue))")
            try reassemblyLimits.validate()
        }
    }
}
