#if canImport(Glibc)
import Glibc
#endif
import EventCore

/// A ``EventCore/Transport`` over one nonblocking UDP socket (IPv4 or
/// IPv6) on an ``EventCore/EventLoop``.
///
/// - Sending copies each message into a preallocated send queue and hands
///   the queue to the kernel with `sendmmsg`, when ``Configuration/batchSize``
///   datagrams are waiting and at the end of every loop iteration. When the
///   socket would block, the rest stays queued (up to
///   ``Configuration/sendQueueCapacity`` datagrams, beyond which messages
///   are dropped and counted) until the socket is writable again.
/// - Receiving reads batches with `recvmmsg` into preallocated buffers and
///   passes each message to the receive handler as a pointer into them: no
///   allocation per datagram.
/// - Messages longer than ``Configuration/maximumDatagramSize`` are split by
///   a ``Fragmenter`` and put back together by a ``FragmentReassembler``
///   (with a timeout on the loop's timers and bounded memory), up to
///   ``Configuration/maximumMessageSize``.
/// - Network errors (`ECONNREFUSED` from an ICMP port unreachable, `EMSGSIZE`,
///   `ENOBUFS`, ...) are counted in ``counters``, never thrown or fatal.
///
/// Confined to its loop: create it with ``bind(to:on:configuration:)`` and
/// call it only on the loop's thread. It closes when ``close()`` is called,
/// when the loop shuts down, or when it is released.
///
/// ```swift
/// // In an async context; `loop` is a started EventLoop.
/// let transport = try await loop.submit {
///     let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
///     transport.setReceiveHandler { message, sender, now in /* ... */ }
///     return LoopBound(transport, on: loop)
/// }
/// try await loop.submit { try transport.value.send(bytes, to: peer) }
/// ```
public final class UDPSocketTransport: Transport {
    /// Why ``bind(to:on:configuration:)`` failed.
    public enum BindError: Error, Hashable, Sendable, CustomStringConvertible {
        /// The configuration is invalid; the error names the field.
        case invalidConfiguration(ConfigurationError)
        /// A system call failed (`socket`, `setsockopt`, `bind`,
        /// `getsockname`, `epoll_ctl`): the address is in use or not local,
        /// descriptors ran out, ...
        case system(SystemError)

        /// What failed, for people.
        public var description: String {
            switch self {
            case .invalidConfiguration(let error): "invalid UDPSocketTransport configuration: \(error)"
            case .system(let error): "cannot bind a UDP socket: \(error)"
            }
        }
    }

    /// The endpoint the socket is bound to, with the port the kernel chose
    /// if it was asked for port 0.
    public let localEndpoint: Endpoint
    /// The configuration the transport was bound with.
    public let configuration: Configuration
    /// Whether ``close()`` has run (directly, at loop shutdown, or after a
    /// failed bind).
    public private(set) var isClosed = false

    let loop: EventLoop
    let socket: UDPSocket
    var sendQueue: SendQueue
    let receiveVector: DatagramVector
    let errorQueue = SocketErrorQueue()
    let reassembler: FragmentReassembler
    var receiveHandler: TransportReceiveHandler?
    /// The counters, but for the reassembler's own (see ``counters``).
    var stats = Counters()
    /// Receive slots whose address length `recvmmsg` overwrote.
    var receiveSlotsToReset = 0
    var reassemblyTimer: TimerHandle?
    private let fragmenter: Fragmenter
    private let batchSize: Int
    private var nextMessageID = UInt32.random(in: .min ... .max)
    private var watchesWritable = false
    /// The flush and close handlers this transport added to its loop.
    private var loopHooks: [LoopHook] = []

    private init(
        socket: UDPSocket, localEndpoint: Endpoint, loop: EventLoop, configuration: Configuration,
        fragmenter: Fragmenter, reassembler: FragmentReassembler
    ) {
        self.socket = socket
        self.localEndpoint = localEndpoint
        self.loop = loop
        self.configuration = configuration
        self.fragmenter = fragmenter
        self.reassembler = reassembler
        batchSize = configuration.batchSize
        sendQueue = SendQueue(
            capacity: configuration.sendQueueCapacity, slotSize: configuration.maximumDatagramSize,
            addressLength: SocketAddress.length(isIPv6: socket.isIPv6))
        receiveVector = DatagramVector(
            capacity: configuration.batchSize, slotSize: configuration.maximumDatagramSize,
            addressLength: socklen_t(SocketAddress.storageSize))
    }

    /// Opens a UDP socket bound to `endpoint` and starts receiving on
    /// `loop`. Loop-only: call it on `loop`'s thread.
    ///
    /// The socket's family is `endpoint`'s: an IPv4 transport sends to IPv4
    /// endpoints only, an IPv6 one (`IPV6_V6ONLY`) to IPv6 endpoints only.
    /// Port 0 lets the kernel choose; ``localEndpoint`` reports its choice.
    ///
    /// - Throws: ``BindError/invalidConfiguration(_:)`` if `configuration`
    ///   fails ``Configuration/validate()``; ``BindError/system(_:)`` if a
    ///   system call fails (the address is in use or not local, ...).
    public static func bind(
        to endpoint: Endpoint, on loop: EventLoop, configuration: Configuration = Configuration()
    ) throws(BindError) -> UDPSocketTransport {
        try open(endpoint, multicastGroup: nil, on: loop, configuration: configuration)
    }

    /// Opens a UDP socket that receives what is sent to the multicast group
    /// `group` (an IPv4 address in 224.0.0.0/4 or an IPv6 one in ff00::/8,
    /// and a port), and starts receiving on `loop`. Loop-only.
    ///
    /// The socket binds the wildcard address at `group`'s port with
    /// `SO_REUSEADDR`/`SO_REUSEPORT`, so every process on the host can
    /// listen to the same group, joins the group on `interface`'s interface
    /// (and hears no other group a socket on the host joined at the port:
    /// `IP_MULTICAST_ALL` off), and sends with multicast loopback on and a
    /// TTL (hop limit) of 1. Any
    /// transport can send to the group; this one is for listening (it can
    /// send as well). ``localEndpoint`` is the wildcard address and port.
    ///
    /// - Throws: as ``bind(to:on:configuration:)``; ``BindError/system(_:)``
    ///   with `EINVAL` if `group` is not a multicast address, or whatever
    ///   the kernel says when the host has no multicast route.
    ///
    /// - Parameter interface: a local address whose interface joins the
    ///   group (127.0.0.1 keeps discovery on loopback); nil: the default
    ///   interface.
    public static func listen(
        toGroup group: Endpoint, interface: Endpoint.Address? = nil, on loop: EventLoop,
        configuration: Configuration = Configuration()
    ) throws(BindError) -> UDPSocketTransport {
        try open(group, multicastGroup: group.address, interface: interface, on: loop, configuration: configuration)
    }

    private static func open(
        _ endpoint: Endpoint, multicastGroup: Endpoint.Address?, interface: Endpoint.Address? = nil, on loop: EventLoop,
        configuration: Configuration
    ) throws(BindError) -> UDPSocketTransport {
        if !loop.isInLoop {
            EventLoop.calledOffLoop(multicastGroup == nil ? "UDPSocketTransport.bind" : "UDPSocketTransport.listen")
        }
        let fragmenter: Fragmenter
        let reassembler: FragmentReassembler
        do throws(ConfigurationError) {
            try configuration.validate()
            fragmenter = try Fragmenter(maximumDatagramSize: configuration.maximumDatagramSize)
            reassembler = try FragmentReassembler(limits: configuration.reassemblyLimits)
        } catch {
            throw .invalidConfiguration(error)
        }
        let socket: UDPSocket
        let localEndpoint: Endpoint
        do throws(SystemError) {
            socket = try UDPSocket.open(
                boundTo: endpoint, receiveBufferSize: configuration.receiveBufferSize,
                sendBufferSize: configuration.sendBufferSize, multicastGroup: multicastGroup,
                multicastInterface: interface)
            do throws(SystemError) {
                localEndpoint = try socket.localEndpoint()
            } catch {
                socket.close()
                throw error
            }
        } catch {
            throw .system(error)
        }
        let transport = UDPSocketTransport(
            socket: socket, localEndpoint: localEndpoint, loop: loop, configuration: configuration,
            fragmenter: fragmenter, reassembler: reassembler)
        do throws(SystemError) {
            try loop.register(socket.descriptor, interest: .readable) { [weak transport] events in
                transport?.handle(events)
            }
        } catch {
            transport.isClosed = true
            socket.close()
            throw .system(error)
        }
        transport.loopHooks = [
            loop.addIterationEndHandler { [weak transport] in transport?.flushAtIterationEnd() },
            loop.addShutdownHandler { [weak transport] in transport?.close() },
        ]
        return transport
    }

    deinit {
        guard !isClosed else { return }
        if loop.isInLoop {
            loop.unregister(socket.descriptor)
            for hook in loopHooks { loop.removeHandler(hook) }
            socket.close()
            return
        }
        // Released on another thread (the last reference was, say, a
        // `LoopBound` dropped by a task): the loop's registration and hooks
        // may only be touched on the loop, and the descriptor must stay open
        // until it is unregistered, or a new descriptor given the same number
        // could lose its registration. If the loop refuses the work (it is
        // in its last iteration or has stopped), it forgets both as it
        // ends, and nothing on it can still use the transport, being
        // released.
        let loop = loop
        let socket = socket
        let hooks = loopHooks
        let handedOver = loop.execute {
            loop.unregister(socket.descriptor)
            for hook in hooks { loop.removeHandler(hook) }
            socket.close()
        }
        if !handedOver { socket.close() }
    }

    /// The largest message ``send(_:to:)`` accepts, in bytes
    /// (``Configuration/maximumMessageSize``).
    public var maximumMessageSize: Int { configuration.maximumMessageSize }

    /// A snapshot of the counters. Loop-only.
    public var counters: Counters {
        var snapshot = stats
        snapshot.reassembly = reassembler.counters
        return snapshot
    }

    /// Installs the function called, on the loop, with every message
    /// received (replacing any earlier one). Loop-only.
    public func setReceiveHandler(_ handler: @escaping TransportReceiveHandler) {
        receiveHandler = handler
    }

    /// Removes the receive handler: messages received until another is
    /// installed are dropped and counted (``Counters/messagesUnclaimed``).
    /// Loop-only.
    public func removeReceiveHandler() {
        receiveHandler = nil
    }

    /// Queues `message` for `destination`; it leaves in the next batch.
    /// Loop-only.
    ///
    /// A message of at most ``Configuration/maximumDatagramSize`` bytes is
    /// sent as one datagram, unless its byte 4 has the fragment flag set
    /// (then it travels fragmented, so the receiver cannot take it for a
    /// fragment: as one fragment if it fits one with the fragment header,
    /// else as two); a longer one is fragmented. If the send queue is full while
    /// the socket would block, the message is dropped and counted in
    /// ``Counters/sendQueueOverflows``: a fragmented one whole, its
    /// fragments still queued withdrawn (none is queued if the queue
    /// cannot take them all while the socket would block).
    ///
    /// - Throws: ``EventCore/TransportError`` with code `.closed` after
    ///   ``close()``, `.addressFamilyMismatch` if `destination` is IPv6 and
    ///   the socket IPv4 or the reverse, `.messageTooLarge` if `message` is
    ///   longer than ``maximumMessageSize``.
    public func send(_ message: UnsafeRawBufferPointer, to destination: Endpoint) throws(TransportError) {
        guard !isClosed else {
            throw TransportError(.closed, detail: "the UDP transport bound to \(localEndpoint) is closed")
        }
        guard destination.isIPv6 == socket.isIPv6 else {
            throw TransportError(
                .addressFamilyMismatch,
                detail: "cannot send to \(destination) from the socket bound to \(localEndpoint)")
        }
        guard message.count <= configuration.maximumMessageSize else {
            throw TransportError(
                .messageTooLarge,
                detail: "message of \(message.count) bytes exceeds the limit of \(configuration.maximumMessageSize)")
        }
        stats.messagesSent += 1
        guard message.count <= configuration.maximumDatagramSize, !FragmentHeader.isFragment(message) else {
            sendFragments(of: message, to: destination)
            return
        }
        guard let slot = reserveSlot() else {
            stats.sendQueueOverflows += 1
            return
        }
        let vector = sendQueue.vector
        if let bytes = message.baseAddress {
            vector.payload(slot).copyMemory(from: bytes, byteCount: message.count)
        }
        SocketAddress.write(destination, to: vector.address(slot))
        sendQueue.append(length: message.count)
        flushIfBatchIsFull()
    }

    /// Sends what can leave without blocking, stops receiving and closes
    /// the socket; incomplete reassemblies are dropped, and so are queued
    /// datagrams the socket would not take (counted in
    /// ``Counters/datagramsDroppedAtClose``). Idempotent. Loop-only. Runs
    /// by itself when the loop shuts down.
    public func close() {
        guard !isClosed else { return }
        // Even a queue that blocked: the socket may have room again by now
        // (its writability not handled yet), and the flush cannot block.
        if sendQueue.count > 0 { _ = sendQueue.flush(descriptor: socket.descriptor, counters: &stats) }
        stats.datagramsDroppedAtClose += UInt64(sendQueue.count)
        sendQueue.removeLast(sendQueue.count)
        isClosed = true
        if let timer = reassemblyTimer {
            loop.cancel(timer)
            reassemblyTimer = nil
        }
        reassembler.removeAll()
        loop.unregister(socket.descriptor)
        for hook in loopHooks { loop.removeHandler(hook) }
        loopHooks = []
        socket.close()
    }

    // MARK: Sending

    /// Queues the fragments of `message`, all or none that are still
    /// queued: a message the queue cannot take whole while the socket would
    /// block is dropped before its first fragment, and if the socket blocks
    /// with the queue full part way through, the fragments still queued are
    /// withdrawn (those the kernel took are gone). A part of a message is of
    /// no use to the receiver, which would hold it until its reassembly
    /// timeout, and the bandwidth it takes is short just then.
    private func sendFragments(of message: UnsafeRawBufferPointer, to destination: Endpoint) {
        stats.fragmentedMessagesSent += 1
        let messageID = nextMessageID
        nextMessageID &+= 1
        let count = fragmenter.fragmentCount(messageLength: message.count)
        guard !sendQueue.isBlocked || sendQueue.freeSlots >= count else {
            stats.sendQueueOverflows += 1
            return
        }
        let vector = sendQueue.vector
        for index in 0..<count {
            guard let slot = reserveSlot() else {
                sendQueue.removeLast(min(index, sendQueue.count))
                stats.sendQueueOverflows += 1
                return
            }
            let datagram = UnsafeMutableRawBufferPointer(start: vector.payload(slot), count: vector.slotSize)
            let length = fragmenter.writeFragment(
                index, count: count, of: message, messageID: messageID, into: datagram)
            SocketAddress.write(destination, to: vector.address(slot))
            sendQueue.append(length: length)
            flushIfBatchIsFull()
        }
    }

    /// The free send slot to write the next datagram to, flushing first if
    /// the queue is full; nil if it stays full (the socket would block).
    private func reserveSlot() -> Int? {
        if sendQueue.isFull && !sendQueue.isBlocked { flushSendQueue() }
        return sendQueue.isFull ? nil : sendQueue.tail
    }

    @inline(__always)
    private func flushIfBatchIsFull() {
        if sendQueue.count >= batchSize && !sendQueue.isBlocked { flushSendQueue() }
    }

    private func flushAtIterationEnd() {
        if !isClosed && sendQueue.count > 0 && !sendQueue.isBlocked { flushSendQueue() }
    }

    /// Flushes the send queue, watching for writability while it is blocked.
    func flushSendQueue() {
        let drained = sendQueue.flush(descriptor: socket.descriptor, counters: &stats)
        // Change the interest only when it is wrong: blocked and not yet
        // watching for writability, or drained and still watching.
        guard drained == watchesWritable else { return }
        do throws(SystemError) {
            try loop.setInterest(socket.descriptor, drained ? .readable : [.readable, .writable])
            watchesWritable = !drained
        } catch {
            stats.sendErrors.record(error.errno)
        }
    }
}
