extension FragmentReassembler {
    /// Why a fragment was dropped. Each reason has its own counter in
    /// ``Counters``.
    public enum DropReason: Hashable, Sendable, CaseIterable {
        /// Shorter than the frame and fragment headers, or the frame's body
        /// length disagrees with the bytes present.
        case truncated
        /// The frame header's magic or version is wrong.
        case badFrame
        /// The frame's CRC32C does not match its bytes.
        case badChecksum
        /// The fragment count is 0 or above ``Limits/maximumFragmentCount``.
        case countOutOfRange
        /// The fragment index is not below the fragment count.
        case indexOutOfRange
        /// The message length is above ``Limits/maximumMessageSize``.
        case messageTooLarge
        /// The chunk's length is not the one the message length and the
        /// fragment count give this index (or the message is empty, or has
        /// fewer bytes than fragments).
        case badLength
        /// The fragment count or message length differs from that of earlier
        /// fragments with the same sender and message id.
        case inconsistent
        /// A fragment already received for a message still incomplete.
        case duplicate
        /// No room under the global byte cap without evicting a message
        /// further along: the first fragment of a new message (not
        /// stored), or one that makes a message grow (that message is
        /// evicted, and counted in ``Counters/evicted``).
        case noRoom
    }

    /// What a ``FragmentReassembler`` has done; every field only grows.
    public struct Counters: Hashable, Sendable {
        /// Fragments accepted (each stored once).
        public var fragmentsAccepted: UInt64 = 0
        /// Messages completed and returned.
        public var messagesCompleted: UInt64 = 0
        /// Incomplete messages dropped because their timeout passed.
        public var timedOut: UInt64 = 0
        /// Incomplete messages dropped to make room for a newer one under
        /// the per-sender or global caps.
        public var evicted: UInt64 = 0
        /// Fragments dropped: ``DropReason/truncated``.
        public var truncated: UInt64 = 0
        /// Fragments dropped: ``DropReason/badFrame``.
        public var badFrame: UInt64 = 0
        /// Fragments dropped: ``DropReason/badChecksum``.
        public var badChecksum: UInt64 = 0
        /// Fragments dropped: ``DropReason/countOutOfRange``.
        public var countOutOfRange: UInt64 = 0
        /// Fragments dropped: ``DropReason/indexOutOfRange``.
        public var indexOutOfRange: UInt64 = 0
        /// Fragments dropped: ``DropReason/messageTooLarge``.
        public var messageTooLarge: UInt64 = 0
        /// Fragments dropped: ``DropReason/badLength``.
        public var badLength: UInt64 = 0
        /// Fragments dropped: ``DropReason/inconsistent``.
        public var inconsistent: UInt64 = 0
        /// Fragments dropped: ``DropReason/duplicate``.
        public var duplicate: UInt64 = 0
        /// Fragments dropped: ``DropReason/noRoom``.
        public var noRoom: UInt64 = 0

        /// Creates counters at zero.
        public init() {}

        /// The fragments dropped for `reason`.
        public subscript(reason: DropReason) -> UInt64 {
            switch reason {
            case .truncated: truncated
            case .badFrame: badFrame
            case .badChecksum: badChecksum
            case .countOutOfRange: countOutOfRange
            case .indexOutOfRange: indexOutOfRange
            case .messageTooLarge: messageTooLarge
            case .badLength: badLength
            case .inconsistent: inconsistent
            case .duplicate: duplicate
            case .noRoom: noRoom
            }
        }

        /// Fragments dropped for any reason.
        public var droppedFragments: UInt64 {
            DropReason.allCases.reduce(0) { $0 + self[$1] }
        }

        /// Counts one fragment dropped for `reason`.
        mutating func record(_ reason: DropReason) {
            switch reason {
            case .truncated: truncated += 1
            case .badFrame: badFrame += 1
            case .badChecksum: badChecksum += 1
            case .countOutOfRange: countOutOfRange += 1
            case .indexOutOfRange: indexOutOfRange += 1
            case .messageTooLarge: messageTooLarge += 1
            case .badLength: badLength += 1
            case .inconsistent: inconsistent += 1
            case .duplicate: duplicate += 1
            case .noRoom: noRoom += 1
            }
        }
    }
}
