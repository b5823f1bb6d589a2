#if canImport(Glibc)
import Glibc
#endif
import CChorusSystem
import EventCore

extension UDPSocketTransport {
    /// Handles readiness of the socket: the error queue first (so counts
    /// are current), then incoming datagrams, then a blocked send queue.
    func handle(_ events: IOEvents) {
        if events.contains(.error) { errorQueue.drain(socket, into: &stats.sendErrors) }
        if events.contains(.readable) { receiveBatches() }
        if events.contains(.writable) && !isClosed { flushSendQueue() }
    }

    /// Reads and delivers batches until the socket has no more, or
    /// ``Configuration/receiveBatchesPerWakeup`` batches were read (the
    /// level-triggered loop calls again), or the handler closed the
    /// transport.
    private func receiveBatches() {
        var batches = 0
        while !isClosed && batches < configuration.receiveBatchesPerWakeup {
            batches += 1
            guard receiveBatch() == receiveVector.capacity else { return }
        }
    }

    /// Reads one batch with `recvmmsg` and delivers it; returns the number
    /// of datagrams read.
    private func receiveBatch() -> Int {
        let vector = receiveVector
        for slot in 0..<receiveSlotsToReset { vector.resetAddressLength(slot) }
        receiveSlotsToReset = 0
        var retried = false
        var received = 0
        while true {
            received = Int(CChorus_recvmmsg(socket.descriptor, vector.headers(from: 0), UInt32(vector.capacity), 0))
            if received >= 0 { break }
            let code = errno
            switch code {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                return 0
            default:
                // Most likely an ICMP error for an earlier send (any kind:
                // unreachable, fragmentation needed, prohibited), left on
                // the socket and reported by this call; it is counted from
                // the error queue: read again, once.
                guard !retried else {
                    stats.receiveErrors += 1
                    return 0
                }
                retried = true
            }
        }
        receiveSlotsToReset = received
        let now = loop.now
        for slot in 0..<received {
            deliver(slot, of: vector, now: now)
            if isClosed { break }
        }
        return received
    }

    /// Passes datagram `slot` to the handler, or to the reassembler if it
    /// is a fragment.
    @inline(__always)
    private func deliver(_ slot: Int, of vector: DatagramVector, now: Instant) {
        let length = vector.receivedLength(slot)
        stats.datagramsReceived += 1
        stats.bytesReceived += UInt64(length)
        guard vector.receivedFlags(slot) & CChorus_MSG_TRUNC == 0 else {
            stats.receiveTruncated += 1
            return
        }
        guard let sender = SocketAddress.endpoint(at: vector.address(slot), length: vector.receivedAddressLength(slot))
        else {
            stats.receiveErrors += 1
            return
        }
        let datagram = UnsafeRawBufferPointer(start: vector.payload(slot), count: length)
        guard FragmentHeader.isFragment(datagram) else {
            guard let handler = receiveHandler else {
                stats.messagesUnclaimed += 1
                return
            }
            stats.messagesDelivered += 1
            handler(datagram, sender, now)
            return
        }
        switch reassembler.receive(datagram, from: sender, now: now) {
        case .pending:
            armReassemblyTimer()
        case .completed(let message):
            guard let handler = receiveHandler else {
                stats.messagesUnclaimed += 1
                return
            }
            stats.messagesDelivered += 1
            message.withUnsafeBytes { handler($0, sender, now) }
        case .dropped:
            break  // counted by the reassembler
        }
    }

    // MARK: Reassembly timeouts

    /// Arms the timer for the oldest incomplete message, unless one is armed
    /// (incomplete messages time out in arrival order, so an armed timer is
    /// never late).
    private func armReassemblyTimer() {
        guard reassemblyTimer == nil, let deadline = reassembler.nextDeadline else { return }
        reassemblyTimer = loop.schedule(at: deadline) { [weak self] in
            self?.reassemblyTimerFired()
        }
    }

    private func reassemblyTimerFired() {
        reassemblyTimer = nil
        guard !isClosed else { return }
        reassembler.expire(now: loop.now)
        armReassemblyTimer()
    }
}
