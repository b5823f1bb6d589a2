import EventCore
import SWIM
import Testing
import WireCodec

/// The SWIM wire format: every message kind and update round-trips, and
/// malformed bodies give typed errors, never a trap.
@Suite("SWIM wire format")
struct SWIMMessageTests {
    static let limits = WireLimits(maximumByteStringLength: 1_024, maximumCollectionCount: 4_096,
                                   maximumFrameLength: 1 << 20)
    static let someone = Member(id: NodeID(7), endpoint: try! Endpoint(parsing: "10.1.2.3:7946"), incarnation: 300,
                                status: .alive, metadata: Array("zone=a".utf8))
    static let someoneV6 = Member(id: NodeID(8), endpoint: try! Endpoint(parsing: "[fd00::1]:7946"), incarnation: 0,
                                  status: .suspect, metadata: [])

    static let updates: [SWIMUpdate] = [
        .alive(someone),
        .suspect(NodeID(9), incarnation: 1 << 40, by: NodeID(3)),
        .dead(NodeID(10), incarnation: 0, by: NodeID(4)),
        .left(NodeID(11), incarnation: 12),
        .broadcast(SWIMBroadcast(origin: NodeID(12), sequence: 99, payload: Array(repeating: 0xAB, count: 256))),
    ]

    static let messages: [SWIMMessage] = [
        SWIMMessage(sender: NodeID(1), body: .ping(sequence: 5, target: NodeID(2)), updates: updates),
        SWIMMessage(sender: NodeID(1), body: .ack(sequence: .max)),
        SWIMMessage(sender: NodeID(1), body: .pingRequest(sequence: 6, target: NodeID(2), endpoint: someoneV6.endpoint)),
        SWIMMessage(sender: NodeID(1), body: .nack(sequence: 0)),
        SWIMMessage(sender: NodeID(1), body: .gossip, updates: [updates[4]]),
        SWIMMessage(sender: NodeID(1), body: .pushPull(members: [someone, someoneV6], isReply: true)),
    ]

    static func frame(_ message: SWIMMessage) -> [UInt8] {
        var writer = WireWriter()
        message.encodeFrame(into: &writer)
        return writer.bytes
    }

    static func decode(_ frame: [UInt8]) throws -> SWIMMessage {
        try frame.withUnsafeBytes { raw in
            let (_, body) = try Frame.decode(raw, limits: limits)
            return try SWIMMessage(decoding: body, limits: limits)
        }
    }

    @Test("every message kind and update round-trips", arguments: messages)
    func roundTrip(message: SWIMMessage) throws {
        #expect(try Self.decode(Self.frame(message)) == message)
    }

    /// The update count was bounded by the limits' collection count,
    /// maximumMembers + 1: with maximumMembers 16, a gossip carrying 20
    /// small broadcasts (70 more fit a packet) was dropped as malformed by
    /// every receiver.
    @Test("a packet may carry more updates than the member list bound; a push-pull may list no more members than it")
    func updatesBoundedByPacket() throws {
        let small = WireLimits(maximumByteStringLength: 256, maximumCollectionCount: 17, maximumFrameLength: 1 << 20)
        let broadcasts = (0..<20).map {
            SWIMUpdate.broadcast(SWIMBroadcast(origin: NodeID(12), sequence: UInt64($0), payload: Array(repeating: 1, count: 10)))
        }
        let gossip = SWIMMessage(sender: NodeID(1), body: .gossip, updates: broadcasts)
        var writer = WireWriter()
        gossip.encode(to: &writer)
        #expect(writer.count < 1_400)
        let decoded = try writer.bytes.withUnsafeBytes { raw in try SWIMMessage(decoding: raw, limits: small) }
        #expect(decoded == gossip)

        let members = (0..<18).map {
            Member(id: NodeID(UInt64($0 + 100)), endpoint: .loopbackV4(port: UInt16($0 + 1)), incarnation: 0,
                   status: .alive, metadata: [])
        }
        writer.removeAll()
        SWIMMessage(sender: NodeID(1), body: .pushPull(members: members, isReply: false)).encode(to: &writer)
        let error = #expect(throws: WireError.self) {
            try writer.bytes.withUnsafeBytes { raw in try SWIMMessage(decoding: raw, limits: small) }
        }
        #expect(error?.code == .lengthExceedsLimit)
    }

    @Test("encodedSize matches the bytes written", arguments: updates)
    func encodedSize(update: SWIMUpdate) {
        var writer = WireWriter()
        update.encode(to: &writer)
        #expect(writer.count == update.encodedSize)
    }

    @Test("a ping with its frame header is 32 bytes")
    func pingSize() {
        #expect(Self.frame(SWIMMessage(sender: NodeID(1), body: .ping(sequence: 5, target: NodeID(2)))).count == 32)
    }

    @Test("every truncation of every message is a typed error")
    func truncations() {
        for message in Self.messages {
            var writer = WireWriter()
            message.encode(to: &writer)
            let body = writer.bytes
            for length in 0..<body.count {
                let prefix = Array(body[..<length])
                #expect(throws: WireError.self) {
                    try prefix.withUnsafeBytes { raw in _ = try SWIMMessage(decoding: raw, limits: Self.limits) }
                }
            }
        }
    }

    @Test("unknown kinds, tags and statuses, and over-limit lengths are typed errors")
    func malformed() {
        let cases: [([UInt8], WireError.Code)] = [
            ([9] + Array(repeating: 0, count: 8) + [0], .invalidValue),  // kind 9
            ([4] + Array(repeating: 0, count: 8) + [1, 7], .invalidValue),  // gossip with update tag 7
            ([5] + Array(repeating: 0, count: 8) + [0, 1] + Array(repeating: 0, count: 8) + [4, 1, 2, 3, 4, 0, 1, 0, 9, 0, 0],
             .invalidValue),  // status 9
            ([4] + Array(repeating: 0, count: 8) + [0xFF, 0xFF, 0x7F], .lengthExceedsLimit),  // 2 million updates claimed
            ([4] + Array(repeating: 0, count: 8) + [1, 4] + Array(repeating: 0, count: 8) + [0, 0xFF, 0x7F],
             .lengthExceedsLimit),  // a 16,383-byte payload claimed, over the 1,024-byte limit
            ([4] + Array(repeating: 0, count: 8) + [1, 4] + Array(repeating: 0, count: 8) + [0, 100],
             .truncated),  // a 100-byte payload claimed, none present
            ([4] + Array(repeating: 0, count: 8) + [0, 0], .trailingBytes),  // trailing byte
        ]
        for (body, code) in cases {
            do {
                _ = try body.withUnsafeBytes { raw in try SWIMMessage(decoding: raw, limits: Self.limits) }
                Issue.record("\(body) decoded")
            } catch let error as WireError {
                #expect(error.code == code, "\(body): \(error)")
            } catch {
                Issue.record("\(body): \(error)")
            }
        }
    }

    @Test("an incarnation above 2⁶² is refused in every update and push-pull member; 2⁶² decodes")
    func absurdIncarnations() throws {
        let limit = Member.maximumIncarnation
        func messages(_ incarnation: UInt64) -> [SWIMMessage] {
            var member = Self.someone
            member.incarnation = incarnation
            let updates: [SWIMUpdate] = [
                .alive(member), .suspect(NodeID(7), incarnation: incarnation, by: NodeID(1)),
                .dead(NodeID(7), incarnation: incarnation, by: NodeID(1)), .left(NodeID(7), incarnation: incarnation),
            ]
            return updates.map { SWIMMessage(sender: NodeID(1), body: .gossip, updates: [$0]) }
                + [SWIMMessage(sender: NodeID(1), body: .pushPull(members: [member], isReply: false))]
        }
        for message in messages(limit) { #expect(try Self.decode(Self.frame(message)) == message) }
        for message in messages(limit + 1) + messages(.max) {
            #expect(throws: WireError.self) { try Self.decode(Self.frame(message)) }
        }
    }

    @Test("random bodies never trap (seed printed on failure)")
    func fuzz() {
        var generator = SeededRandomGenerator(seed: 0x5717)
        var decoded = 0
        for round in 0..<20_000 {
            let length = Int.random(in: 0..<64, using: &generator)
            var body = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if !body.isEmpty { body[0] %= 7 }
            if let _ = try? body.withUnsafeBytes({ raw in try SWIMMessage(decoding: raw, limits: Self.limits) }) {
                decoded += 1
            }
            _ = round
        }
        #expect(decoded < 20_000)
    }
}
