// libFuzzer entry point for SWIM, compiled by Scripts/fuzz against the
// WireCodec, EventCore and SWIM modules (each built with the same
// sanitizers) and the CChorusSystem C shim.
//
// The first byte of an input is a control byte: its low three bits pick the
// sender, the rest how far the clock moves on first (0 to 310 ms), and a
// value of 0xFF makes the member leave. The rest is decoded as a SWIM frame
// body and, framed afresh, as a whole datagram (which must decode to the
// same message); a decoded message must re-encode to bytes that decode to
// an equal message. What decodes goes to one long-lived SWIMInstance, which
// is then ticked when due: it must neither trap nor leave a deadline behind
// the clock after a tick (a driver would spin on it), and its effects must
// encode. The member starts knowing four others (at the first four
// senders); one that departed is started again. A broken expectation is
// a `precondition` failure, a crash libFuzzer keeps.

import EventCore
import SWIM
import WireCodec

/// The fixed setting of the harness: small limits, so that the member's
/// bounds are reached often, and the endpoints messages come from.
enum SWIMFuzzSetup {
    static let configuration: SWIMConfiguration = {
        var configuration = SWIMConfiguration()
        configuration.maximumMembers = 32
        configuration.membershipQueueCapacity = 64
        configuration.broadcastQueueCapacity = 8
        configuration.broadcastMemory = 64
        configuration.maximumStateSize = 4_096
        return configuration
    }()

    static let endpoint = Endpoint.loopbackV4(port: 7_000)
    /// The senders the control byte picks from (eight: three bits).
    static let senders: [Endpoint] =
        (1...5).map { Endpoint.loopbackV4(port: 7_000 + UInt16($0)) } + [
            endpoint, Endpoint.loopbackV6(port: 7_001), Endpoint(address: .ipv4(0), port: 0),
        ]
    static let limits = SWIMMessage.decodingLimits
    static let frameLimits = WireLimits(maximumFrameLength: configuration.maximumStateSize + FrameHeader.size)
}

/// One member kept across inputs, and the clock it runs on.
final class SWIMHarness {
    private var member: SWIMInstance
    private var now = Instant(nanoseconds: 1_000_000_000)
    private var effects: [SWIMEffect] = []
    private var starts: UInt64 = 1

    init() {
        member = Self.start(seed: 1, now: now, into: &effects)
        effects.removeAll()
    }

    private static func start(seed: UInt64, now: Instant, into effects: inout [SWIMEffect]) -> SWIMInstance {
        do {
            var member = try SWIMInstance(
                id: NodeID(1), endpoint: SWIMFuzzSetup.endpoint, configuration: SWIMFuzzSetup.configuration,
                seed: seed, now: now)
            member.join(seeds: [SWIMFuzzSetup.senders[0]], now: now, into: &effects)
            // Four members known from the start (at the first four senders),
            // so that short inputs reach probes, suspicions and leaves.
            let known = (0..<4).map { index in
                SWIMUpdate.alive(
                    Member(id: NodeID(UInt64(index + 2)), endpoint: SWIMFuzzSetup.senders[index], incarnation: 1,
                           status: .alive))
            }
            member.receive(
                SWIMMessage(sender: NodeID(2), body: .gossip, updates: known), from: SWIMFuzzSetup.senders[0], now: now,
                into: &effects)
            return member
        } catch {
            preconditionFailure("the harness's configuration is invalid: \(error)")
        }
    }

    func run(_ data: UnsafeRawBufferPointer) {
        guard let control = data.first else { return }
        now = now + .milliseconds(Int(control >> 3) * 10)
        let sender = SWIMFuzzSetup.senders[Int(control & 7)]
        let bytes = UnsafeRawBufferPointer(rebasing: data.dropFirst())
        if control == 0xFF {
            member.leave(now: now, into: &effects)
        }
        let message = Self.decode(bytes)
        Self.checkFramed(bytes, decodesTo: message)
        if let message { member.receive(message, from: sender, now: now, into: &effects) }
        check(effects)
        effects.removeAll(keepingCapacity: true)
        if member.nextDeadline <= now {
            member.tick(now: now, into: &effects)
            check(effects)
            let departed = effects.contains { if case .departed = $0 { true } else { false } }
            effects.removeAll(keepingCapacity: true)
            if departed {
                starts += 1
                member = Self.start(seed: starts, now: now, into: &effects)
                effects.removeAll(keepingCapacity: true)
            } else {
                precondition(member.nextDeadline > now, "a deadline left behind the clock after a tick")
            }
        }
    }

    /// The body decoded, re-encoded and decoded again (which must give the
    /// same message); nil if it does not decode.
    private static func decode(_ body: UnsafeRawBufferPointer) -> SWIMMessage? {
        guard let message = try? SWIMMessage(decoding: body, limits: SWIMFuzzSetup.limits) else { return nil }
        var writer = WireWriter()
        message.encode(to: &writer)
        let again = writer.withUnsafeBytes { try? SWIMMessage(decoding: $0, limits: SWIMFuzzSetup.limits) }
        precondition(again == message, "round trip changed the message: \(message) -> \(String(describing: again))")
        return message
    }

    /// The bytes as the body of a SWIM frame: the frame must decode back to
    /// them, and so to `message`.
    private static func checkFramed(_ bytes: UnsafeRawBufferPointer, decodesTo message: SWIMMessage?) {
        var writer = WireWriter()
        do throws(WireError) {
            try Frame.encode(protocol: .swim, limits: SWIMFuzzSetup.frameLimits, into: &writer) { $0.writeRawBytes(bytes) }
        } catch {
            precondition(bytes.count > SWIMFuzzSetup.configuration.maximumStateSize, "a frame of \(bytes.count) bytes refused: \(error)")
            return
        }
        writer.withUnsafeBytes { frame in
            guard let body = try? Frame.decodeBody(frame, of: .swim, limits: SWIMFuzzSetup.frameLimits) else {
                preconditionFailure("a freshly encoded frame did not decode")
            }
            precondition(body.elementsEqual(bytes), "the frame changed its body")
            precondition(decode(body) == message, "the same body decoded differently")
        }
    }

    /// Every message the member sends must encode as a frame.
    private func check(_ effects: [SWIMEffect]) {
        for case .send(let message, _) in effects {
            var writer = WireWriter()
            message.encodeFrame(into: &writer)
            writer.withUnsafeBytes { frame in
                guard let body = try? Frame.decodeBody(frame, of: .swim, limits: SWIMFuzzSetup.frameLimits) else {
                    preconditionFailure("a message the member sent does not decode as a frame: \(message)")
                }
                let decoded = try? SWIMMessage(decoding: body, limits: SWIMFuzzSetup.limits)
                precondition(decoded == message, "a message the member sent decoded differently: \(message)")
            }
        }
    }
}

/// The harness, kept across inputs (libFuzzer calls the entry point from
/// one thread).
nonisolated(unsafe) private let harness = SWIMHarness()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSWIM(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    harness.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
