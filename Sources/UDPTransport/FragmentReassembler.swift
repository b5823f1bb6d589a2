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
/// dropped and counted; it never traps. Memory is bounded: an incomplete
/// message's storage is allocated, uninitialized, at its full length, but
/// only the pages its fragments have written take memory (from 64 KiB on,
/// the storage is fresh mapped memory: see ``ReassembledMessage``), so
/// that is what it is charged (``pageSize`` bytes a page touched, at most
/// its length).
/// One datagram claiming the first fragment of a 4 MiB message is charged
/// one or two pages, not 4 MiB: a handful of such datagrams cannot evict
/// every honest message under reassembly. The per-sender and global caps
/// of ``Limits`` are kept by evicting incomplete messages (counted in
/// ``Counters/evicted``), before a new message is stored and whenever a
/// fragment makes one grow: the sender's own oldest for its caps; for the
/// global ones, the oldest of those that have barely started (three
/// fragments or fewer received, among the 64 oldest), else, for the count and allocation
/// caps, the oldest. The byte cap is never made room for by evicting a
/// message further along: a new message is then not stored, and a growing
/// one evicts only messages less far along, else itself
/// (``DropReason/noRoom``). So a flood of first fragments evicts its own
/// messages before an honest one under way, and of messages that outgrow
/// the byte cap together the one further along completes. Each message's
/// storage being allocated at its full length, what is allocated is also
/// capped, at four times ``Limits/maximumPartialBytes``
/// (``reservedByteCount``). An incomplete message is dropped
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
    /// The bytes charged to incomplete messages: ``pageSize`` a page their
    /// fragments have written, at most each message's length.
    public private(set) var partialByteCount = 0
    /// The bytes allocated for incomplete messages (their full lengths, of
    /// which only the pages written are backed): at most four times
    /// ``Limits/maximumPartialBytes``.
    public private(set) var reservedByteCount = 0
    /// The unit of memory an incomplete message is charged in: an
    /// allocation's pages are backed only once written.
    public static let pageSize = 4_096

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
            let added = partial.charge(range)
            if added > 0, !grow(partial, by: added) { return drop(.noRoom) }
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
        guard makeRoom(charging: PartialMessage.charge(of: range, length: length), reserving: length, from: sender)
        else { return drop(.noRoom) }
        let message = ReassembledMessage(count: length)
        let partial = PartialMessage(
            key: key, message: message, fragmentCount: count, deadline: now + limits.reassemblyTimeout)
        _ = partial.markReceived(index)
        _ = partial.charge(range)
        message.write(chunk, at: range.lowerBound)
        counters.fragmentsAccepted += 1
        insert(partial)
        return .pending
    }

    private func drop(_ reason: DropReason) -> Outcome {
        counters.record(reason)
        return .dropped(reason)
    }

    // MARK: Memory caps

    /// Evicts incomplete messages until a new one from `sender`, charged
    /// `charge` bytes and allocated at `length`, fits every cap: the
    /// sender's own oldest for its caps; for the global count and
    /// allocation caps the oldest that has barely started, else the oldest;
    /// for the global byte cap only one that has barely started (see
    /// ``candidates(sparing:)``). Returns false, having evicted what it
    /// could, when the byte cap is held by messages further along.
    private func makeRoom(charging charge: Int, reserving length: Int, from sender: Endpoint) -> Bool {
        while let usage = senders[sender], let victim = usage.messages.first,
            usage.messages.count >= limits.maximumPartialMessagesPerSender
                || usage.bytes + charge > limits.maximumPartialBytesPerSender
        {
            remove(victim)
            counters.evicted += 1
        }
        while partials.count >= limits.maximumPartialMessages || reservedByteCount + length > reservationLimit {
            let candidates = candidates(sparing: nil)
            guard let victim = candidates.barelyStarted ?? candidates.oldest else { break }
            remove(victim)
            counters.evicted += 1
        }
        while partialByteCount + charge > limits.maximumPartialBytes {
            guard let victim = candidates(sparing: nil).barelyStarted else { return false }
            remove(victim)
            counters.evicted += 1
        }
        return true
    }

    /// The most bytes allocated for incomplete messages
    /// (``reservedByteCount``), four times ``Limits/maximumPartialBytes``:
    /// each is allocated at its full length (only the pages written are
    /// backed), and this keeps what a flood of claims reserves to a few
    /// times the byte cap.
    public var reservationLimit: Int { 4 * limits.maximumPartialBytes }

    /// Which incomplete messages the global caps could evict, never
    /// `grower`, among the ``evictionScan`` oldest: the oldest with
    /// ``barelyStartedFragments`` or fewer received (barely started), the
    /// oldest of the others, and the oldest charged less than `grower`.
    /// Evicting those that barely started first, a flood of first
    /// fragments evicts its own messages before an honest message further
    /// into its reassembly.
    private func candidates(sparing grower: PartialMessage?) -> EvictionCandidates {
        var found = EvictionCandidates()
        var candidate = oldest
        var scanned = 0
        while let partial = candidate, scanned < Self.evictionScan {
            candidate = partial.newer
            guard partial !== grower else { continue }
            if partial.receivedCount <= Self.barelyStartedFragments {
                found.barelyStarted = partial
                break
            }
            found.oldest = found.oldest ?? partial
            if let grower, found.lessAlong == nil, partial.chargedBytes < grower.chargedBytes {
                found.lessAlong = partial
            }
            scanned += 1
        }
        return found
    }

    private struct EvictionCandidates {
        var barelyStarted: PartialMessage?
        var oldest: PartialMessage?
        var lessAlong: PartialMessage?
    }

    /// A message with this many fragments or fewer received has barely
    /// started: evicted before older ones further along. Counted in
    /// fragments, not bytes, so that it holds whatever the sender's
    /// datagram size.
    static let barelyStartedFragments = 3
    /// How many of the oldest messages eviction looks through for one that
    /// has barely started.
    static let evictionScan = 64

    /// Charges `partial` `added` bytes more (pages a fragment is about to
    /// write), first evicting other incomplete messages until it fits
    /// every byte cap: the sender's own oldest for its cap, then for the
    /// global cap one that barely started, else one less far along (see
    /// ``candidates(sparing:)``). Returns false, having
    /// evicted `partial` itself (counted), if that is not enough: the caps
    /// are held by messages further along.
    private func grow(_ partial: PartialMessage, by added: Int) -> Bool {
        let sender = partial.key.sender
        while let usage = senders[sender], usage.bytes + added > limits.maximumPartialBytesPerSender,
            let victim = usage.messages.first(where: { $0 !== partial })
        {
            remove(victim)
            counters.evicted += 1
        }
        var fits = true
        while partialByteCount + added > limits.maximumPartialBytes {
            let candidates = candidates(sparing: partial)
            guard let victim = candidates.barelyStarted ?? candidates.lessAlong else {
                fits = false
                break
            }
            remove(victim)
            counters.evicted += 1
        }
        // Charged before any removal of `partial`, which takes back its
        // whole charge, `added` included.
        senders[sender]?.bytes += added
        partialByteCount += added
        if !fits {
            remove(partial)
            counters.evicted += 1
        }
        return fits
    }

    private func insert(_ partial: PartialMessage) {
        partials[partial.key] = partial
        senders[partial.key.sender, default: SenderUsage()].add(partial)
        partialByteCount += partial.chargedBytes
        reservedByteCount += partial.message.count
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
        partialByteCount -= partial.chargedBytes
        reservedByteCount -= partial.message.count
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
    /// are charged.
    private struct SenderUsage {
        var messages: [PartialMessage] = []
        var bytes = 0

        mutating func add(_ partial: PartialMessage) {
            messages.append(partial)
            bytes += partial.chargedBytes
        }

        /// Removes `partial`; returns true if no message is left.
        mutating func remove(_ partial: PartialMessage) -> Bool {
            if let position = messages.firstIndex(where: { $0 === partial }) {
                messages.remove(at: position)
                bytes -= partial.chargedBytes
            }
            return messages.isEmpty
        }
    }

    /// An incomplete message: its storage, which fragments have arrived and
    /// which pages they wrote, its deadline, and its place in the
    /// arrival-order list.
    private final class PartialMessage {
        let key: Key
        let message: ReassembledMessage
        let fragmentCount: Int
        let deadline: Instant
        private var received: [UInt64]
        private(set) var receivedCount = 0
        private var writtenPages: [UInt64]
        private var writtenPageCount = 0
        /// What the message is charged: ``FragmentReassembler/pageSize`` a
        /// page written, at most its length.
        private(set) var chargedBytes = 0
        var newer: PartialMessage?
        weak var older: PartialMessage?

        init(key: Key, message: ReassembledMessage, fragmentCount: Int, deadline: Instant) {
            self.key = key
            self.message = message
            self.fragmentCount = fragmentCount
            self.deadline = deadline
            received = Array(repeating: 0, count: (fragmentCount + 63) / 64)
            let pages = (message.count + FragmentReassembler.pageSize - 1) / FragmentReassembler.pageSize
            writtenPages = Array(repeating: 0, count: (pages + 63) / 64)
        }

        var isComplete: Bool { receivedCount == fragmentCount }

        /// Records fragment `index` (below ``fragmentCount``); returns false
        /// if it had already arrived.
        func markReceived(_ index: Int) -> Bool {
            Self.set(index, in: &received, counting: &receivedCount)
        }

        /// The pages writing `range` (nonempty) touches.
        private static func pages(of range: Range<Int>) -> ClosedRange<Int> {
            (range.lowerBound / FragmentReassembler.pageSize)...((range.upperBound - 1) / FragmentReassembler.pageSize)
        }

        /// What `pages` pages of a message of `length` bytes are charged.
        private static func charge(forPages pages: Int, length: Int) -> Int {
            min(pages * FragmentReassembler.pageSize, length)
        }

        /// What a message of `length` bytes is charged once `range` alone
        /// is written.
        static func charge(of range: Range<Int>, length: Int) -> Int {
            charge(forPages: pages(of: range).count, length: length)
        }

        /// Marks the pages that writing `range` (nonempty, within the
        /// message) touches; returns the bytes this adds to
        /// ``chargedBytes``.
        func charge(_ range: Range<Int>) -> Int {
            for page in Self.pages(of: range) { _ = Self.set(page, in: &writtenPages, counting: &writtenPageCount) }
            let charged = Self.charge(forPages: writtenPageCount, length: message.count)
            defer { chargedBytes = charged }
            return charged - chargedBytes
        }

        /// Sets bit `index` of `bits`, counting it in `count` if it was
        /// clear; returns whether it was.
        private static func set(_ index: Int, in bits: inout [UInt64], counting count: inout Int) -> Bool {
            let bit: UInt64 = 1 << UInt64(index & 63)
            let word = index >> 6
            guard bits[word] & bit == 0 else { return false }
            bits[word] |= bit
            count += 1
            return true
        }
    }
}
