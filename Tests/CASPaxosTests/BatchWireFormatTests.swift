import CASPaxos
import EventCore
import Testing
import WireCodec

/// Frames of many messages: the batch encoding round-trips, and every
/// truncated, oversized, absurd or nested batch is a typed error that
/// leaves the decoded messages as they were; ``CASPaxosOutbox`` coalesces
/// per destination within the size and count limits.
@Suite("CASPaxos batches")
struct BatchWireFormatTests {
    static let configuration = CASPaxosConfiguration()
    static let samples = WireFormatTests.samples
    static let acceptor = Endpoint.loopbackV4(port: 1)

    /// Every frame `outbox` hands out, with its destination.
    static func frames(of outbox: inout CASPaxosOutbox) -> [(Endpoint, [UInt8])] {
        var frames: [(Endpoint, [UInt8])] = []
        outbox.flush { destination, encodeFrame in
            var writer = WireWriter()
            do throws(WireError) {
                try encodeFrame(&writer)
                frames.append((destination, writer.bytes))
            } catch {
                Issue.record("a frame did not encode: \(error)")
            }
        }
        return frames
    }

    /// The messages of a frame body, or the error.
    static func decodeBody(
        _ body: [UInt8], configuration: CASPaxosConfiguration = configuration, into messages: inout [CASPaxosMessage]
    ) throws(WireError) {
        let result: Result<Void, WireError> = body.withUnsafeBytes { raw in
            do throws(WireError) {
                try CASPaxosMessage.decodeFrameBody(raw, configuration: configuration, into: &messages)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// The messages of a whole frame.
    static func decodeFrame(_ frame: [UInt8], configuration: CASPaxosConfiguration = configuration) throws
        -> [CASPaxosMessage]
    {
        let body = try frame.withUnsafeBytes { raw in
            Array(try Frame.decodeBody(raw, of: .casPaxos, limits: WireLimits(maximumFrameLength: configuration.maximumMessageSize)))
        }
        var messages: [CASPaxosMessage] = []
        try decodeBody(body, configuration: configuration, into: &messages)
        return messages
    }

    /// A batch body: the tag, `count` (as given), then `messages`.
    static func batchBody(count: UInt64, _ messages: [CASPaxosMessage]) -> [UInt8] {
        var writer = WireWriter()
        writer.writeUInt8(15)
        writer.writeVarint(count)
        for message in messages { message.encode(to: &writer) }
        return writer.bytes
    }

    static func expectError(_ code: WireError.Code, decoding body: [UInt8], _ comment: Comment) {
        var messages: [CASPaxosMessage] = [.accepted(requestID: 99)]
        do {
            try decodeBody(body, into: &messages)
            Issue.record("decoded: \(comment)")
        } catch {
            #expect(error.code == code, comment)
        }
        #expect(messages == [.accepted(requestID: 99)], "a bad frame left messages behind: \(comment)")
    }

    @Test("a batch of every kind round-trips, after the messages already decoded")
    func roundTrip() throws {
        var messages: [CASPaxosMessage] = [.accepted(requestID: 99)]
        try Self.decodeBody(Self.batchBody(count: UInt64(Self.samples.count), Self.samples), into: &messages)
        #expect(messages == [.accepted(requestID: 99)] + Self.samples)
        var single: [CASPaxosMessage] = []
        try Self.decodeBody(WireFormatTests.encode(Self.samples[0]), into: &single)
        #expect(single == [Self.samples[0]])
    }

    @Test("every truncation of a batch, and a byte after it, is refused whole")
    func truncation() {
        let body = Self.batchBody(count: UInt64(Self.samples.count), Self.samples)
        for length in 0..<body.count {
            var messages: [CASPaxosMessage] = []
            #expect(throws: WireError.self) { try Self.decodeBody(Array(body[..<length]), into: &messages) }
            #expect(messages.isEmpty)
        }
        Self.expectError(.trailingBytes, decoding: body + [0], "a byte after the batch")
    }

    @Test("empty, oversized, absurd and nested batches are distinct typed errors")
    func hostileCounts() {
        let two: [CASPaxosMessage] = [.accepted(requestID: 1), .accepted(requestID: 2)]
        Self.expectError(.invalidValue, decoding: Self.batchBody(count: 0, []), "an empty batch")
        Self.expectError(.truncated, decoding: [15], "a batch without a count")
        let limit = UInt64(Self.configuration.maximumMessagesPerFrame)
        Self.expectError(
            .lengthExceedsLimit,
            decoding: Self.batchBody(count: limit + 1, Array(repeating: .accepted(requestID: 1), count: Int(limit) + 1)),
            "more messages than the limit")
        Self.expectError(.lengthExceedsLimit, decoding: Self.batchBody(count: UInt64.max, two), "a count of 2^64 - 1")
        Self.expectError(.truncated, decoding: Self.batchBody(count: 500, two), "a count the bytes cannot hold")
        Self.expectError(.truncated, decoding: Self.batchBody(count: 3, two), "one message fewer than the count")
        Self.expectError(.trailingBytes, decoding: Self.batchBody(count: 1, two), "one message more than the count")
        var nested = WireWriter()
        nested.writeUInt8(15)
        nested.writeVarint(2)
        CASPaxosMessage.accepted(requestID: 1).encode(to: &nested)
        Self.expectError(.invalidValue, decoding: nested.bytes + Self.batchBody(count: 1, [two[0]]), "a nested batch")
        var stray = WireWriter()
        stray.writeUInt8(15)
        #expect(throws: WireError.self) {
            _ = try stray.bytes.withUnsafeBytes { raw throws(WireError) in
                try CASPaxosMessage(decoding: raw, configuration: Self.configuration)
            }
        }
        let bigKey = CASPaxosMessage.prepare(
            requestID: 1, key: [UInt8](repeating: 1, count: 257), ballot: WireFormatTests.ballot, age: 0, version: 1)
        Self.expectError(.lengthExceedsLimit, decoding: Self.batchBody(count: 2, [two[0], bigKey]), "an oversized key")
    }

    @Test("random batches of garbage never trap (fixed seed)")
    func garbage() {
        var random = SeededRandomGenerator(seed: 43)
        let body = Self.batchBody(count: UInt64(Self.samples.count), Self.samples)
        for _ in 0..<5_000 {
            var bytes = body
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            var messages: [CASPaxosMessage] = []
            if (try? Self.decodeBody(bytes, into: &messages)) == nil { #expect(messages.isEmpty) }
        }
    }

    /// A build from before tag 27 refuses a frame holding it, whole.
    @Test("a registersFull goes in a frame of its own, between batches of the replies around it")
    func registersFullAlone() throws {
        var outbox = CASPaxosOutbox(configuration: Self.configuration)
        let replies: [CASPaxosMessage] = [
            .accepted(requestID: 1), .accepted(requestID: 2), .registersFull(requestID: 3), .accepted(requestID: 4),
            .registersFull(requestID: 5),
        ]
        for reply in replies { outbox.append(reply, to: Self.acceptor) }
        let frames = try Self.frames(of: &outbox).map { try Self.decodeFrame($0.1) }
        #expect(frames == [
            [.accepted(requestID: 1), .accepted(requestID: 2)], [.registersFull(requestID: 3)],
            [.accepted(requestID: 4)], [.registersFull(requestID: 5)],
        ])
    }

    @Test("the outbox coalesces per destination: a lone message in its own frame, several in a batch")
    func coalescing() throws {
        // Every kind but registersFull, which goes alone (registersFullAlone).
        let samples = Self.samples.filter { if case .registersFull = $0 { false } else { true } }
        var outbox = CASPaxosOutbox(configuration: Self.configuration)
        let other = Endpoint.loopbackV4(port: 2)
        outbox.append(samples[0], to: Self.acceptor)
        outbox.append(samples[1], to: other)
        for message in samples.dropFirst(2) { outbox.append(message, to: Self.acceptor) }
        #expect(outbox.messageCount == samples.count)
        let frames = Self.frames(of: &outbox)
        #expect(outbox.isEmpty)
        #expect(frames.map(\.0) == [Self.acceptor, other])
        #expect(try Self.decodeFrame(frames[0].1) == [samples[0]] + samples.dropFirst(2))
        #expect(try Self.decodeFrame(frames[1].1) == [samples[1]])
        // The lone message's frame is its own encoding, as without batches.
        var alone = WireWriter()
        try samples[1].encodeFrame(into: &alone, maximumMessageSize: Self.configuration.maximumMessageSize)
        #expect(frames[1].1 == alone.bytes)
        #expect(Self.frames(of: &outbox).isEmpty)
    }

    @Test("frames split at the size and count limits, in order; a message too large for any frame fails alone")
    func splitting() throws {
        var configuration = CASPaxosConfiguration()
        configuration.maximumKeySize = 16
        configuration.maximumValueSize = 300
        configuration.maximumMessageSize = 444
        configuration.maximumBatchSize = 444
        configuration.maximumMessagesPerFrame = 7
        try configuration.validate()
        let value = [UInt8](repeating: 7, count: 100)
        let accepts: [CASPaxosMessage] = (0..<40).map {
            .accept(
                requestID: UInt64($0), key: [UInt8($0)], ballot: WireFormatTests.ballot, age: 0,
                value: $0 % 3 == 0 ? value : [1], nextBallot: nil, version: 1)
        }
        var outbox = CASPaxosOutbox(configuration: configuration)
        for message in accepts { outbox.append(message, to: Self.acceptor) }
        let frames = Self.frames(of: &outbox)
        #expect(frames.count > 40 / 7)
        var decoded: [CASPaxosMessage] = []
        for (_, frame) in frames {
            #expect(frame.count <= configuration.maximumMessageSize)
            let messages = try Self.decodeFrame(frame, configuration: configuration)
            #expect(messages.count <= configuration.maximumMessagesPerFrame)
            decoded += messages
        }
        #expect(decoded == accepts)

        // A value over the message size: its frame fails to encode, the
        // frames before and after it do not.
        let huge = CASPaxosMessage.promise(requestID: 7, accepted: .zero, value: [UInt8](repeating: 1, count: 500), removalFloor: nil)
        outbox.append(.accepted(requestID: 1), to: Self.acceptor)
        outbox.append(huge, to: Self.acceptor)
        outbox.append(.accepted(requestID: 2), to: Self.acceptor)
        var outcomes: [Bool] = []
        outbox.flush { _, encodeFrame in
            var writer = WireWriter()
            do throws(WireError) {
                try encodeFrame(&writer)
                outcomes.append(true)
            } catch {
                #expect(error.code == .lengthExceedsLimit)
                #expect(writer.count == 0)
                outcomes.append(false)
            }
        }
        #expect(outcomes == [true, false, true])
    }

    @Test("batches stay within the batch size (one datagram); a longer message goes alone, up to the message size")
    func batchSize() throws {
        var configuration = CASPaxosConfiguration()
        configuration.maximumBatchSize = 300
        try configuration.validate()
        let small: [CASPaxosMessage] = (0..<30).map {
            .accept(
                requestID: UInt64($0), key: [UInt8($0)], ballot: WireFormatTests.ballot, age: 0,
                value: [UInt8](repeating: 1, count: 40), nextBallot: nil, version: 1)
        }
        let large = CASPaxosMessage.promise(requestID: 99, accepted: .zero, value: [UInt8](repeating: 2, count: 2_000), removalFloor: nil)
        var outbox = CASPaxosOutbox(configuration: configuration)
        for message in small[..<15] { outbox.append(message, to: Self.acceptor) }
        outbox.append(large, to: Self.acceptor)
        for message in small[15...] { outbox.append(message, to: Self.acceptor) }
        var decoded: [[CASPaxosMessage]] = []
        for (_, frame) in Self.frames(of: &outbox) {
            let messages = try Self.decodeFrame(frame, configuration: configuration)
            if messages.count > 1 { #expect(frame.count <= configuration.maximumBatchSize) }
            #expect(frame.count <= configuration.maximumMessageSize)
            decoded.append(messages)
        }
        #expect(decoded.flatMap { $0 } == small[..<15] + [large] + small[15...])
        #expect(decoded.contains([large]))
        #expect(decoded.count >= 1 + 2 * 3)

        configuration.maximumBatchSize = configuration.maximumMessageSize + 1
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
    }

    @Test("more than 16 destinations in a turn keep their own frames")
    func manyDestinations() throws {
        var outbox = CASPaxosOutbox(configuration: Self.configuration)
        let destinations = (1...40).map { Endpoint.loopbackV4(port: UInt16($0)) }
        for round in 0..<3 {
            for (index, destination) in destinations.enumerated() {
                outbox.append(.accepted(requestID: UInt64(round * 100 + index)), to: destination)
            }
        }
        let frames = Self.frames(of: &outbox)
        #expect(frames.map(\.0) == destinations)
        for (index, (_, frame)) in frames.enumerated() {
            #expect(try Self.decodeFrame(frame) == (0..<3).map { .accepted(requestID: UInt64($0 * 100 + index)) })
        }
    }
}
