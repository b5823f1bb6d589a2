import EventCore
import Testing
import WireCodec
@testable import Raft

/// The Raft wire format: every message kind round-trips, and truncated,
/// garbage and absurd input is refused with a distinct `WireError`, never
/// a trap.
@Suite("Raft wire format")
struct RaftMessageTests {
    static let limits = WireLimits(maximumByteStringLength: 1_024, maximumCollectionCount: 64,
                                   maximumFrameLength: 1 << 20)

    static let samples: [RaftMessage] = {
        let bodies: [RaftMessage.Body] = [
            .voteRequest(lastLogIndex: 12, lastLogTerm: 3, isPreVote: false),
            .voteRequest(lastLogIndex: 0, lastLogTerm: 0, isPreVote: true),
            .voteResponse(granted: true, isPreVote: true),
            .voteResponse(granted: false, isPreVote: false),
            .append(previousIndex: 7, previousTerm: 2, entries: [
                RaftEntry(term: 2, index: 8, command: Array("set x 1".utf8)),
                RaftEntry(term: 4, index: 9, kind: .leaderNoop),
                RaftEntry(term: 4, index: 10, command: Array(repeating: 0xFF, count: 300)),
            ], leaderCommit: 7),
            .append(previousIndex: 0, previousTerm: 0, entries: [], leaderCommit: 0),
            .appendResponse(.accepted(matchIndex: 1 << 40)),
            .appendResponse(.rejected(rejectedIndex: 9, conflictTerm: 3, conflictIndex: 5)),
            .heartbeat(commitIndex: 99, readRound: 1 << 40),
            .heartbeatResponse(readRound: 7),
            .snapshotChunk(snapshotIndex: 500, snapshotTerm: 3, totalSize: 1_000, offset: 400,
                           data: Array(repeating: 7, count: 100)),
            .snapshotChunk(snapshotIndex: 1, snapshotTerm: 1, totalSize: 0, offset: 0, data: []),
            .snapshotProgress(snapshotIndex: 500, receivedBytes: 400, outOfOrder: true),
            .snapshotRefused(snapshotIndex: 500, maximumSize: 1 << 30),
            .forwardedProposal(requestID: 77, command: Array("put x".utf8)),
            .forwardOutcome(requestID: 77, outcome: .appended(term: 4, index: 1_000)),
            .forwardOutcome(requestID: 78, outcome: .refused(.notLeader(leaderHint: NodeID(3)))),
            .forwardOutcome(requestID: 79, outcome: .refused(.notLeader(leaderHint: nil))),
            .forwardOutcome(requestID: 80, outcome: .refused(.commandTooLarge(size: 5_000, limit: 1_024))),
            .forwardOutcome(requestID: 81, outcome: .refused(.uncommittedLimitExceeded(uncommittedBytes: 9, limit: 8))),
            .forwardedRead(requestID: 82),
            .readOutcome(requestID: 82, index: 1 << 50),
            .readOutcome(requestID: 83, index: nil),
            .voteRequest(lastLogIndex: 12, lastLogTerm: 3, isPreVote: false, isTransfer: true),
            .timeoutNow,
            .forwardedChange(requestID: 84, change: .add(NodeID(5), endpoint: .loopbackV4(port: 5))),
            .forwardedChange(requestID: 85, change: .addLearner(NodeID(6), endpoint: nil)),
            .forwardedChange(requestID: 86, change: .promote(NodeID(6))),
            .forwardedChange(requestID: 87, change: .remove(NodeID(2))),
            .forwardOutcome(requestID: 88, outcome: .refused(.membershipChangePending)),
            .forwardOutcome(requestID: 89, outcome: .refused(.invalidMembershipChange("node 9 is not a member"))),
        ]
        return bodies.map { RaftMessage(group: 0xDEAD_BEEF, from: NodeID(1), to: NodeID(UInt64.max), term: 4, body: $0) }
    }()

    static func bodyBytes(_ message: RaftMessage) -> [UInt8] {
        var writer = WireWriter()
        message.encode(to: &writer)
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(WireError) -> RaftMessage {
        let result: Result<RaftMessage, WireError> = bytes.withUnsafeBytes { raw in
            do throws(WireError) { return .success(try RaftMessage(decoding: raw, limits: limits)) } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    static func code(_ bytes: [UInt8]) -> WireError.Code? {
        do throws(WireError) {
            _ = try decode(bytes)
            return nil
        } catch {
            return error.code
        }
    }

    @Test("every kind of message round-trips through a frame")
    func roundTrip() throws {
        for message in Self.samples {
            var writer = WireWriter()
            try message.encodeFrame(into: &writer, limits: Self.limits)
            let decoded = try writer.bytes.withUnsafeBytes { raw in
                let (header, body) = try Frame.decode(raw, limits: Self.limits)
                #expect(header.protocolID == .raft)
                return try RaftMessage(decoding: body, limits: Self.limits)
            }
            #expect(decoded == message)
        }
    }

    @Test("every truncation of every message is refused as truncated")
    func truncations() {
        for message in Self.samples {
            let bytes = Self.bodyBytes(message)
            for length in 0..<bytes.count {
                #expect(Self.code(Array(bytes[..<length])) == .truncated, "\(message.body) cut at \(length)")
            }
        }
    }

    @Test("trailing bytes, unknown kinds and bad flags are refused with distinct codes")
    func malformed() {
        let vote = Self.bodyBytes(Self.samples[0])
        #expect(Self.code(vote + [0]) == .trailingBytes)
        var unknownKind = vote
        unknownKind[0] = 200
        #expect(Self.code(unknownKind) == .invalidValue)
        var badFlag = vote
        badFlag[badFlag.count - 1] = 3  // PreVote and transfer: never both
        #expect(Self.code(badFlag) == .invalidValue)
        let tooLongVarint = [UInt8(0)] + Array(repeating: 0xFF, count: 11)
        #expect(Self.code(tooLongVarint) == .varintTooLong)
        var badReadOutcome = Self.bodyBytes(RaftMessage(
            group: 1, from: NodeID(1), to: NodeID(2), term: 1, body: .readOutcome(requestID: 5, index: nil)))
        badReadOutcome[badReadOutcome.count - 1] = 2
        #expect(Self.code(badReadOutcome) == .invalidValue)
    }

    @Test("a snapshot chunk that overruns its snapshot, or of a term above the message's, is refused")
    func impossibleChunks() {
        let bodies: [RaftMessage.Body] = [
            .snapshotChunk(snapshotIndex: 5, snapshotTerm: 1, totalSize: 10, offset: 8, data: [1, 2, 3]),
            .snapshotChunk(snapshotIndex: 5, snapshotTerm: 1, totalSize: 10, offset: 11, data: []),
            .snapshotChunk(snapshotIndex: 5, snapshotTerm: 9, totalSize: 10, offset: 0, data: [1]),
            .snapshotChunk(snapshotIndex: 0, snapshotTerm: 1, totalSize: 10, offset: 0, data: [1]),
        ]
        for body in bodies {
            let message = RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 4, body: body)
            #expect(Self.code(Self.bodyBytes(message)) == .invalidValue, "\(body)")
        }
    }

    @Test("terms and indices above 2^62 are refused")
    func absurdNumbers() {
        let absurd = RaftMessage.maximumTermOrIndex + 1
        let messages = [
            RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: absurd, body: .heartbeatResponse(readRound: 0)),
            RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 1, body: .heartbeat(commitIndex: absurd, readRound: 0)),
            RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 1,
                        body: .voteRequest(lastLogIndex: UInt64.max, lastLogTerm: 1, isPreVote: false)),
            RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 1,
                        body: .appendResponse(.rejected(rejectedIndex: 1, conflictTerm: absurd, conflictIndex: 1))),
            RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 1,
                        body: .append(previousIndex: absurd, previousTerm: 1, entries: [], leaderCommit: 0)),
        ]
        for message in messages {
            #expect(Self.code(Self.bodyBytes(message)) == .invalidValue, "\(message)")
        }
    }

    @Test("append entries must follow the previous index one by one, with terms that never fall or pass the message's",
          arguments: [
            [RaftEntry(term: 1, index: 6)],                                  // gap
            [RaftEntry(term: 1, index: 4)],                                  // overlap
            [RaftEntry(term: 2, index: 5), RaftEntry(term: 1, index: 6)],    // falling term
            [RaftEntry(term: 9, index: 5)],                                  // term above the message's
            [RaftEntry(term: 0, index: 5)],                                  // term 0
          ])
    func inconsistentEntries(entries: [RaftEntry]) {
        let message = RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 3,
                                  body: .append(previousIndex: 4, previousTerm: 1, entries: entries, leaderCommit: 0))
        #expect(Self.code(Self.bodyBytes(message)) == .invalidValue)
    }

    @Test("entry counts and command lengths above the limits are refused before allocation")
    func limits() {
        let many = RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 3, body: .append(
            previousIndex: 0, previousTerm: 0, entries: (1...65).map { RaftEntry(term: 1, index: UInt64($0)) },
            leaderCommit: 0))
        #expect(Self.code(Self.bodyBytes(many)) == .lengthExceedsLimit)
        let large = RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 3, body: .append(
            previousIndex: 0, previousTerm: 0, entries: [RaftEntry(term: 1, index: 1, command: Array(repeating: 1, count: 1_025))],
            leaderCommit: 0))
        #expect(Self.code(Self.bodyBytes(large)) == .lengthExceedsLimit)
        // A count claiming 2^40 entries in a few bytes.
        var writer = WireWriter()
        writer.writeUInt8(2)
        writer.writeVarint(1)
        writer.writeUInt64(1)
        writer.writeUInt64(2)
        writer.writeVarint(3)
        writer.writeVarint(0)
        writer.writeVarint(0)
        writer.writeVarint(0)
        writer.writeVarint(1 << 40)
        #expect(Self.code(writer.bytes) == .lengthExceedsLimit)
    }

    @Test("random bytes and random mutations of valid messages never trap")
    func garbage() {
        var generator = SeededRandomGenerator(seed: 0x5EED)
        var refused = 0
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0..<64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            } else {
                bytes = Self.bodyBytes(Self.samples[round / 2 % Self.samples.count])
                for _ in 0..<Int.random(in: 1...4, using: &generator) where !bytes.isEmpty {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
            }
            if Self.code(bytes) != nil { refused += 1 }
        }
        #expect(refused > 10_000, "most garbage is refused (seed 0x5EED)")
    }
}
