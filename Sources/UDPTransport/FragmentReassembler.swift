import EventCore

/// Puts fragmented messages back together: the receiving half of the
/// fragmentation layer (``Fragmenter`` is the sending half).
///
/// Sans-IO: it is fed datagrams with the instant they arrived and returns
/// what happened; it reads no clock and arms no timer. A driver calls
/// ``expire(now:)`` at ``nextDeadline``. Confined to one thread (its
/// transport's loop).
///
/// Input is hostile. A fragment that is malformed (see ``DropReason``) is
/// dropped and counted; it never traps. Memory is bounded: each incomplete
/// message reserves its full length, and the per-sender and global caps of
/// ``Limits`` are kept by evicting the oldest incomplete messages (counted
/// in ``Counters/evicted``). An incomplete message is dropped
/// ``Limits/reassemblyTimeout`` after its first fragment (counted in
/// ``Counters/timedOut``).
///
/// A fragment of a message completed earlier (a duplicate delivered late by
/// the network) starts a new incomplete message, which times out.
public final class FragmentReassembler {
    /// What happened to a datagram.
    public enum Outcome {
        /// The fragment was stored; its message is still incomplete.
        case pending
        /// The fragment completed its message.
        case completed(ReassembledMessage)
        /// The fragment was dropped, and counted.
        case dropped(DropReason)
    }

    /// The limits this reassembler enforces.
    public let limits: Limits
    /// What it has done so far.
    public private(set) var counters = Counters()
    /// The bytes reserved for incomplete messages.
    public private(set) var partialByteCount = 0

    private var partials: [Key: PartialMessage] = [:]
    private var senders: [Endpoint: SenderUsage] = [:]
    /// The incomplete messages in arrival order, which is also deadline
    /// order: a list from `oldest` through `newer` links.
    private var oldest: PartialMessage?
    private weak var newest: PartialMessage?

    /// Creates an empty reassembler.
    ///
    /// - Throws: ``ConfigurationError`` if `limits` is invalid (see
    ///   ``Limits/validate()``).
    public init(limits: Limits = Limits()) throws(ConfigurationError) {
        try limits.validate()
        self.limits = limits
    }

    deinit {
        // Unlinks one by one: releasing a long `newer` chain from its head
        // would recurse once per message.
        removeAll()
    }

    /// The number of incomplete messages held.
    public var partialMessageCount: Int { partials.count }

    /// When the oldest incomplete message times out, or nil if there is none.
    public var nextDeadline: Instant? { oldest?.deadline }

    /// Takes one fragment datagram (a frame with the fragment flag, as
    /// ``Fragmenter`` writes) from `sender`, which arrived at `now`.
    /// Incomplete messages whose timeout has passed at `now` are dropped
    /// first.
    ///
    /// The datagram is copied as needed; it need not outlive the call.
    public func receive(_ datagram: UnsafeRawBufferPointer, from sender: Endpoint, now: Instant) -> Outcome {
        expire(now: now)
        switch FragmentHeader.decode(datagram) {
        case .malformed(let reason):
            return drop(reason)
        case .fragment(let header, let chunk):
            return accept(header, chunk: chunk, from: sender, now: now)
        }
    }

    /// Drops every incomplete message whose timeout has passed at `now`,
    /// counting each in ``Counters/timedOut``.
    public func expire(now: Instant) {
        while let partial = oldest, partial.deadline <= now {
            remove(partial)
            counters.timedOut += 1
        }
    }

    /// Drops every incomplete message without counting it.
    public func removeAll() {
        while let partial = oldest { remove(partial) }
    }

    // MARK: Accepting

    private func accept(
        _ header: FragmentHeader, chunk: UnsafeRawBufferPointer, from sender: Endpoint, now: Instant
    ) -> Outcome {
        let count = Int(header.count)
        let index = Int(header.index)
        let length = Int(header.messageLength)
        guard count >= 1, count <= limits.maximumFragmentCount else { return drop(.countOutOfRange) }
        guard index < count else { return drop(.indexOutOfRange) }
        guard length <= limits.maximumMessageSize else { return drop(.messageTooLarge) }
        guard let range = FragmentHeader.chunkRange(index: index, count: count, messageLength: length),
            range.count == chunk.count
        else { return drop(.badLength) }

        let key = Key(sender: sender, messageID: header.messageID)
        if let partial = partials[key] {
            guard partial.fragmentCount == count, partial.message.count == length else { return drop(.inconsistent) }
            guard partial.markReceived(index) else { return drop(.duplicate) }
            partial.message.write(chunk, at: range.lowerBound)
            counters.fragmentsAccepted += 1
            guard partial.isComplete else { return .pending }
            remove(partial)
            counters.messagesCompleted += 1
            return .completed(partial.message)
        }

        if count == 1 {
            let message = ReassembledMessage(count: length)
            message.write(chunk, at: range.lowerBound)
            counters.fragmentsAccepted += 1
            counters.messagesCompleted += 1
            return .completed(message)
        }
        // Evict before allocating, so the caps bound what is held at every moment.
        makeRoom(for: length, from: sender)
        let message = ReassembledMessage(count: length)
        message.write(chunk, at: range.lowerBound)
        counters.fragmentsAccepted += 1
        let partial = PartialMessage(
            key: key, message: message, fragmentCount: count, deadline: now + limits.reassemblyTimeout)
        _ = partial.markReceived(index)
        insert(partial)
        return .pending
    }

    private func drop(_ reason: DropReason) -> Outcome {
        counters.record(reason)
        return .dropped(reason)
    }

    // MARK: Memory caps

    /// Evicts the oldest incomplete messages, the sender's own first, until
    /// a new one of `length` bytes from `sender` fits every cap.
    private func makeRoom(for length: Int, from sender: Endpoint) {
        while let usage = senders[sender], let victim = usage.messages.first,
            usage.messages.count >= limits.maximumPartialMessagesPerSender
                || usage.bytes + length > limits.maximumPartialBytesPerSender
        {
            remove(victim)
            counters.evicted += 1
        }
        while let victim = oldest,
            partials.count >= limits.maximumPartialMessages || partialByteCount + length > limits.maximumPartialBytes
        {
            remove(victim)
            counters.evicted += 1
        }
    }

    private func insert(_ partial: PartialMessage) {
        partials[partial.key] = partial
        senders[partial.key.sender, default: SenderUsage()].add(partial)
        partialByteCount += partial.message.count
        if let last = newest {
            last.newer = partial
            partial.older = last
        } else {
            oldest = partial
        }
        newest = partial
    }

    private func remove(_ partial: PartialMessage) {
        partials[partial.key] = nil
        let sender = partial.key.sender
        if senders[sender]?.remove(partial) == true { senders[sender] = nil }
        partialByteCount -= partial.message.count
        let older = partial.older
        let newer = partial.newer
        if let older { older.newer = newer } else { oldest = newer }
        if let newer { newer.older = older } else { newest = older }
        partial.newer = nil
        partial.older = nil
    }
}

extension FragmentReassembler {
    /// A message is identified by its sender and the id the sender gave it.
    private struct Key: Hashable {
        var sender: Endpoint
        var messageID: UInt32
    }

    /// One sender's incomplete messages, oldest first, and the bytes they
    /// reserve.
    private struct SenderUsage {
        var messages: [PartialMessage] = []
        var bytes = 0

        mutating func add(_ partial: PartialMessage) {
            messages.append(partial)
            bytes += partial.message.count
        }

        /// Removes `partial`; returns true if no message is left.
        mutating func remove(_ partial: PartialMessage) -> Bool {
            if let position = messages.firstIndex(where: { $0 === partial }) {
                messages.remove(at: position)
                bytes -= partial.message.count
            }
            return messages.isEmpty
        }
    }

    /// An incomplete message: its storage, which fragments have arrived, its
    /// deadline, and its place in the arrival-order list.
    private final class PartialMessage {
        let key: Key
        let message: ReassembledMessage
        let fragmentCount: Int
        let deadline: Instant
        private var received: [UInt64]
        private var receivedCount = 0
        var newer: PartialMessage?
        weak var older: PartialMessage?

        init(key: Key, message: ReassembledMessage, fragmentCount: Int, deadline: Instant) {
            self.key = key
            self.message = message
            self.fragmentCount = fragmentCount
            self.deadline = deadline
            received = Array(repeating: 0, count: (fragmentCount + 63) / 64)
        }

        var isComplete: Bool { receivedCount == fragmentCount }

        /// Records fragment `index` (below ``fragmentCount``); returns false
        /// if it had already arrived.
        func markReceived(_ index: Int) -> Bool {
            let bit: UInt64 = 1 << UInt64(index & 63)
            let word = index >> 6
            guard received[word] & bit == 0 else { return false }
            received[word] |= bit
            receivedCount += 1
            return true
        }
    }
}
