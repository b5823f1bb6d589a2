import EventCore
import Testing
import WireCodec

@testable import Gossip

@Suite("Gossip wire format")
struct GossipMessageTests {
    static let v4 = Endpoint(address: .ipv4(0x7F00_0001), port: 7946)
    static let v6 = Endpoint(address: .ipv6(high: 0xFE80 << 48, low: 1), port: 65535)
    static let id = MessageID(origin: NodeID(0x0123_4567_89AB_CDEF), sequence: 0xFFFF_FFFE)

    static let samples: [GossipMessage] = [
        .data(GossipData(id: id, hops: 3, payload: Array(0..<200))),
        .data(GossipData(id: id, hops: 1, payload: [])),
        .repair(GossipData(id: id, hops: 127, payload: [1, 2, 3])),
        .data(GossipData(id: id, hops: 4, age: .milliseconds(1_234), payload: [9, 9])),
        .repair(GossipData(id: id, hops: 2, age: .seconds(59), payload: Array(0..<100))),
        .join,
        .forwardJoin(newcomer: v6, timeToLive: 6),
        .neighbor(highPriority: true),
        .neighbor(highPriority: false),
        .neighborReply(accepted: true),
        .disconnect,
        .shuffle(origin: v4, timeToLive: 5, sample: [v4, v6]),
        .shuffleReply(sample: []),
        .heartbeat,
        .ihave([id, MessageID(origin: NodeID(1), sequence: 0)]),
        .graft([id]),
        .prune,
        .digest([DigestRun(origin: NodeID(9), first: 4_000_000_000, count: 300)], isReply: true),
        .pull([id]),
    ]

    static func frame(_ message: GossipMessage) -> [UInt8] {
        var writer = WireWriter()
        message.encodeFrame(into: &writer)
        return writer.bytes
    }

    static func decode(_ frame: [UInt8]) throws(WireError) -> GossipMessage {
        let result: Result<GossipMessage, WireError> = frame.withUnsafeBytes { bytes in
            do throws(WireError) {
                let (header, body) = try Frame.decode(bytes)
                #expect(header.protocolID == .gossip)
                return .success(try GossipMessage(decoding: body))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    static func decodeBody(_ body: [UInt8]) -> Result<GossipMessage, WireError> {
        body.withUnsafeBytes { bytes in
            do throws(WireError) {
                return .success(try GossipMessage(decoding: bytes))
            } catch {
                return .failure(error)
            }
        }
    }

    @Test("every message kind round-trips through a frame", arguments: samples)
    func roundTrip(message: GossipMessage) throws {
        #expect(try Self.decode(Self.frame(message)) == message)
    }

    @Test("a data message costs exactly 26 bytes on top of its payload, as Pittacus")
    func dataOverhead() {
        for size in [0, 1, 100, 486] {
            let frame = Self.frame(.data(GossipData(id: Self.id, hops: 1, payload: Array(repeating: 7, count: size))))
            #expect(frame.count == size + GossipConfiguration.dataMessageOverhead)
        }
        #expect(GossipConfiguration().maximumPayloadSize == 486)
    }

    /// A message served from retention carries its age; the largest age
    /// the decoder takes keeps an aged message within
    /// ``GossipMessage/agedOverhead`` bytes of a data message's overhead.
    @Test("a message's age goes in whole milliseconds, in its own form; age 0 keeps the plain forms; ages above 2^35 ms saturate and are refused")
    func ages() throws {
        let fresh = GossipData(id: Self.id, hops: 1, payload: [1])
        #expect(Self.frame(.data(fresh)).count == 1 + GossipConfiguration.dataMessageOverhead)
        #expect(Self.frame(.data(fresh))[13] == 1, "the hop count, first: the plain data form")
        // Rounded up: an age never goes back on its way.
        guard case .data(let young) = try Self.decode(Self.frame(.data(GossipData(id: Self.id, hops: 1, age: .microseconds(1), payload: [1]))))
        else {
            Issue.record("not decoded as data")
            return
        }
        #expect(young.age == .milliseconds(1))
        let old = GossipData(id: Self.id, hops: 1, age: .seconds(Int64(1) << 40), payload: [1])
        let frame = Self.frame(.data(old))
        #expect(frame.count == 1 + GossipConfiguration.dataMessageOverhead + GossipMessage.agedOverhead)
        guard case .data(let decoded) = try Self.decode(frame) else {
            Issue.record("not decoded as data")
            return
        }
        #expect(decoded.age == .milliseconds(Int64(GossipMessage.maximumAgeMilliseconds)))
        // One past the largest age is refused.
        var body = [0x80 | GossipMessage.Kind.agedData.rawValue, 1]
        var age = WireWriter()
        age.writeVarint(GossipMessage.maximumAgeMilliseconds + 1)
        body += age.bytes + Array(repeating: 0, count: 12)
        guard case .failure(let error) = Self.decodeBody(body) else {
            Issue.record("an age above the largest decoded")
            return
        }
        #expect(error.code == .invalidValue, "\(error)")
    }

    @Test("hop counts above 127 saturate")
    func hopsSaturate() throws {
        let message = GossipMessage.data(GossipData(id: Self.id, hops: 500, payload: [1]))
        guard case .data(let data) = try Self.decode(Self.frame(message)) else {
            Issue.record("not decoded as data")
            return
        }
        #expect(data.hops == 127)
    }

    @Test("every truncation of every message is rejected with a typed error, never a trap")
    func truncations() {
        for message in Self.samples {
            var writer = WireWriter()
            message.encode(to: &writer)
            let body = writer.bytes
            // A data message's payload runs to the end: cutting into the
            // payload leaves a valid shorter message, so cut only the
            // fixed fields there.
            let fixedLength: Int
            switch message {
            case .data: fixedLength = 13
            case .repair: fixedLength = 14
            default: fixedLength = body.count
            }
            for length in 0..<fixedLength {
                guard case .failure = Self.decodeBody(Array(body[..<length])) else {
                    Issue.record("\(message) cut to \(length) bytes decoded")
                    continue
                }
            }
        }
    }

    @Test("unknown tags, bad flags and address families are invalid values; extra bytes are trailing")
    func invalidBodies() {
        let cases: [([UInt8], WireError.Code)] = [
            ([0xFF], .invalidValue),  // no such kind
            ([0x80 | 3, 2], .invalidValue),  // neighbor with a bool of 2
            ([0x80 | 2, 6, 5, 0, 0, 0, 0, 0, 0], .invalidValue),  // forwardJoin, family 5
            ([0x80 | 8, 0], .trailingBytes),  // heartbeat with a byte after it
        ]
        for (body, code) in cases {
            guard case .failure(let error) = Self.decodeBody(body) else {
                Issue.record("\(body) decoded")
                continue
            }
            #expect(error.code == code, "\(body)")
        }
    }

    @Test("random bodies never trap (seeded)")
    func randomBodies() {
        var random = SeededRandomGenerator(seed: 0x6055_1900)
        print("seed \(random.seed)")
        for _ in 0..<20_000 {
            let count = Int.random(in: 0..<64, using: &random)
            var body = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            if !body.isEmpty, Bool.random(using: &random) { body[0] = 0x80 | UInt8.random(in: 0...14, using: &random) }
            _ = Self.decodeBody(body)
        }
    }
}
