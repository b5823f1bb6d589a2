import EventCore
import WireCodec

extension FragmentReassembler {
    /// What a ``FragmentReassembler`` accepts and how much memory it may
    /// hold for incomplete messages. Checked by ``validate()`` when the
    /// reassembler is created.
    ///
    /// A message's storage is allocated, uninitialized, at its full length
    /// when its first fragment arrives; it is charged against the byte caps
    /// by the pages its fragments have written
    /// (``FragmentReassembler/pageSize`` each, at most its length), which
    /// is the memory it takes, until it completes, times out or is
    /// evicted.
    public struct Limits: Hashable, Sendable {
        /// The longest message reassembled, in bytes; fragments of longer
        /// ones are dropped. Default 4 MiB plus the 13-byte frame header
        /// (`WireLimits.default.maximumFrameLength`). Range 1 ... 2³⁰.
        public var maximumMessageSize: Int
        /// The most fragments a message may be cut into. Default 8,192
        /// (enough for the default message size in datagrams of 538 bytes or
        /// more). Range 1 ... 65,535.
        public var maximumFragmentCount: Int
        /// How long after its first fragment an incomplete message is
        /// dropped. Default 5 s. Range 1 ms ... 1 hour.
        public var reassemblyTimeout: Duration
        /// The most incomplete messages kept per sender; a new one evicts
        /// the sender's oldest. Default 16. Range 1 ... ``maximumPartialMessages``.
        public var maximumPartialMessagesPerSender: Int
        /// The most bytes charged to one sender's incomplete messages. Default 16 MiB. Range ``maximumMessageSize`` ...
        /// ``maximumPartialBytes``.
        public var maximumPartialBytesPerSender: Int
        /// The most incomplete messages kept from all senders; a new one
        /// evicts the oldest. Default 256. Range 1 ... 1,000,000.
        public var maximumPartialMessages: Int
        /// The most bytes charged to all incomplete messages. Default
        /// 64 MiB. Range ``maximumPartialBytesPerSender`` ... 2⁴⁰.
        public var maximumPartialBytes: Int

        /// Creates limits; every argument has the default described on its
        /// property.
        public init(
            maximumMessageSize: Int = WireLimits.default.maximumFrameLength,
            maximumFragmentCount: Int = 8_192,
            reassemblyTimeout: Duration = .seconds(5),
            maximumPartialMessagesPerSender: Int = 16,
            maximumPartialBytesPerSender: Int = 16 << 20,
            maximumPartialMessages: Int = 256,
            maximumPartialBytes: Int = 64 << 20
        ) {
            self.maximumMessageSize = maximumMessageSize
            self.maximumFragmentCount = maximumFragmentCount
            self.reassemblyTimeout = reassemblyTimeout
            self.maximumPartialMessagesPerSender = maximumPartialMessagesPerSender
            self.maximumPartialBytesPerSender = maximumPartialBytesPerSender
            self.maximumPartialMessages = maximumPartialMessages
            self.maximumPartialBytes = maximumPartialBytes
        }

        /// Checks every field against its documented range.
        ///
        /// - Throws: ``ConfigurationError`` naming the first field out of
        ///   range and the range it allows.
        public func validate() throws(ConfigurationError) {
            try ConfigurationError.checkRange("maximumMessageSize", maximumMessageSize, 1...(1 << 30))
            try ConfigurationError.checkRange("maximumFragmentCount", maximumFragmentCount, 1...Int(UInt16.max))
            guard reassemblyTimeout >= .milliseconds(1), reassemblyTimeout <= .seconds(3_600) else {
                throw ConfigurationError(
                    field: "reassemblyTimeout", value: "\(reassemblyTimeout)", allowedRange: "1 ms ... 1 hour")
            }
            try ConfigurationError.checkRange("maximumPartialMessages", maximumPartialMessages, 1...1_000_000)
            try ConfigurationError.checkRange(
                "maximumPartialMessagesPerSender", maximumPartialMessagesPerSender, 1...maximumPartialMessages,
                "1 ... maximumPartialMessages (\(maximumPartialMessages))")
            try ConfigurationError.checkRange(
                "maximumPartialBytes", maximumPartialBytes, maximumMessageSize...(1 << 40),
                "maximumMessageSize (\(maximumMessageSize)) ... 2^40")
            try ConfigurationError.checkRange(
                "maximumPartialBytesPerSender", maximumPartialBytesPerSender, maximumMessageSize...maximumPartialBytes,
                "maximumMessageSize (\(maximumMessageSize)) ... maximumPartialBytes (\(maximumPartialBytes))")
        }
    }
}
