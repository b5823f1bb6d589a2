import EventCore
import UDPTransport
import WireCodec

/// Why a self-check phase failed.
struct SelfCheckFailure: Error, CustomStringConvertible {
    var description: String
}

/// Round-trip times of the ping phase.
struct RoundTripReport: Sendable {
    /// Every round trip, sorted.
    var times: [Duration]

    func percentile(_ p: Double) -> Duration {
        guard !times.isEmpty else { return .zero }
        let index = min(times.count - 1, Int((Double(times.count) * p).rounded(.up)) - 1)
        return times[max(0, index)]
    }
}

/// The near side of the self-check: sends pings, a bulk message and a
/// paced blast to an ``EchoPeer``, and reports what came back.
/// Loop-confined; each phase resumes its continuation once, on completion
/// or on its deadline.
final class SelfCheckProber {
    let transport: UDPSocketTransport
    private let loop: EventLoop
    private let peer: Endpoint
    private var writer = WireWriter(capacity: 256)

    private var roundTrips: (remaining: Int, times: [Duration], done: CheckedContinuation<RoundTripReport, Error>)?
    private var bulk: (checksum: UInt32, length: Int, done: CheckedContinuation<Duration, Error>, started: Instant)?

    init(transport: UDPSocketTransport, loop: EventLoop, peer: Endpoint) {
        self.transport = transport
        self.loop = loop
        self.peer = peer
        transport.setReceiveHandler { [unowned self] message, _, now in
            self.receive(message, now: now)
        }
    }

    /// Sends `count` pings one after another; resumes with their round trips.
    func measureRoundTrips(_ count: Int, timeout: Duration, done: CheckedContinuation<RoundTripReport, Error>) {
        roundTrips = (count, [], done)
        roundTrips?.times.reserveCapacity(count)
        loop.schedule(at: loop.now + timeout) { [unowned self] in
            guard let pending = roundTrips else { return }
            roundTrips = nil
            pending.done.resume(throwing: SelfCheckFailure(
                description: "\(pending.times.count) of \(count) round trips completed before the timeout"))
        }
        sendPing(sequence: 0)
    }

    /// Sends one message of `length` random bytes (fragmented by the
    /// transport); resumes with the time until its acknowledgement.
    func sendBulk(length: Int, seed: UInt64, timeout: Duration, done: CheckedContinuation<Duration, Error>) {
        var random = SeededRandomGenerator(seed: seed)
        let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
        let checksum = payload.withUnsafeBytes { CRC32C.checksum($0) }
        bulk = (checksum, length, done, loop.now)
        loop.schedule(at: loop.now + timeout) { [unowned self] in
            guard let pending = bulk else { return }
            bulk = nil
            pending.done.resume(throwing: SelfCheckFailure(description: "the \(length)-byte message was not acknowledged"))
        }
        do {
            try SelfCheckMessage.encodeBulk(payload, into: &writer)
            try writer.withUnsafeBytes { bytes throws(TransportError) in try transport.send(bytes, to: peer) }
        } catch {
            bulk = nil
            done.resume(throwing: error)
        }
    }

    /// Offers blast frames (`bodySize` bytes each) at `rate` per second
    /// until `deadline`, topping up to the rate every millisecond (at most
    /// `burstLimit` per wake-up); resumes with the number queued.
    func blast(
        rate: Int, bodySize: Int, from start: Instant, until deadline: Instant, sent: UInt64 = 0,
        done: CheckedContinuation<UInt64, Error>
    ) {
        let now = loop.now
        guard now < deadline else {
            done.resume(returning: sent)
            return
        }
        let elapsed = Double((now - start).nanoseconds) / 1e9
        let due = UInt64(elapsed * Double(rate))
        let burst = min(due > sent ? due - sent : 0, Self.burstLimit)
        var next = sent
        do {
            for _ in 0..<burst {
                try SelfCheckMessage.encodeBlast(sequence: next, bodySize: bodySize, into: &writer)
                try writer.withUnsafeBytes { bytes throws(TransportError) in try transport.send(bytes, to: peer) }
                next += 1
            }
        } catch {
            done.resume(throwing: error)
            return
        }
        loop.schedule(at: now + .milliseconds(1)) { [unowned self] in
            blast(rate: rate, bodySize: bodySize, from: start, until: deadline, sent: next, done: done)
        }
    }

    /// The most blast frames sent in one wake-up (a quarter of the
    /// transport's default send queue, 4,096 datagrams).
    private static let burstLimit: UInt64 = 1_024

    private func sendPing(sequence: UInt64) {
        do {
            try SelfCheckMessage.encodeEcho(pong: false, sequence: sequence, sentAt: loop.now, into: &writer)
            try writer.withUnsafeBytes { bytes throws(TransportError) in try transport.send(bytes, to: peer) }
        } catch {
            if let pending = roundTrips {
                roundTrips = nil
                pending.done.resume(throwing: error)
            }
        }
    }

    private func receive(_ message: UnsafeRawBufferPointer, now: Instant) {
        switch try? SelfCheckMessage(frame: message) {
        case .pong(let sequence, let sentAt)?:
            guard var pending = roundTrips else { return }
            roundTrips = nil  // so the append below does not copy the array
            pending.times.append(now - sentAt)
            pending.remaining -= 1
            if pending.remaining == 0 {
                pending.done.resume(returning: RoundTripReport(times: pending.times.sorted()))
            } else {
                roundTrips = pending
                sendPing(sequence: sequence + 1)
            }
        case .bulkAck(let checksum, let length)?:
            guard let pending = bulk else { return }
            bulk = nil
            if checksum == pending.checksum && length == pending.length {
                pending.done.resume(returning: now - pending.started)
            } else {
                pending.done.resume(throwing: SelfCheckFailure(
                    description: "the peer received \(length) bytes with CRC32C \(checksum), expected \(pending.length) with \(pending.checksum)"))
            }
        default:
            return
        }
    }
}
