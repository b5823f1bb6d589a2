import EventCore
import Testing

@testable import Gossip

@Suite("SeenWindows: exactly-once bookkeeping")
struct SeenWindowsTests {
    static let origin = NodeID(42)

    static func id(_ sequence: UInt32, _ origin: NodeID = origin) -> MessageID {
        MessageID(origin: origin, sequence: sequence)
    }

    @Test("each ID is new once, in any order within the window")
    func outOfOrder() {
        var seen = SeenWindows(capacity: 16)
        var random = SeededRandomGenerator(seed: 7)
        let sequences = Array(UInt32(0)..<1_000).shuffled(using: &random)
        for sequence in sequences { #expect(seen.insert(Self.id(sequence)) == .new) }
        for sequence in sequences { #expect(seen.insert(Self.id(sequence)) == .seen) }
    }

    @Test("numbers a full window below the highest are too old; the window slides")
    func sliding() {
        var seen = SeenWindows(capacity: 16)
        let window = UInt32(SeenWindows.windowSize)
        #expect(seen.insert(Self.id(5_000)) == .new)
        #expect(seen.standing(of: Self.id(5_000 - window)) == .tooOld)
        #expect(seen.standing(of: Self.id(5_000 - window + 1)) == .new)
        #expect(seen.insert(Self.id(5_000 + window)) == .new)
        #expect(seen.standing(of: Self.id(5_000)) == .tooOld)
        // A jump of less than a window clears the bits it passes over.
        #expect(seen.insert(Self.id(5_000 + window + 10)) == .new)
        #expect(seen.standing(of: Self.id(5_000 + window + 5)) == .new)
        #expect(seen.standing(of: Self.id(5_000 + window)) == .seen)
    }

    @Test("sequence numbers wrap around 2^32")
    func wrapAround() {
        var seen = SeenWindows(capacity: 16)
        #expect(seen.insert(Self.id(UInt32.max - 1)) == .new)
        #expect(seen.insert(Self.id(UInt32.max)) == .new)
        #expect(seen.insert(Self.id(0)) == .new)
        #expect(seen.insert(Self.id(1)) == .new)
        #expect(seen.insert(Self.id(UInt32.max)) == .seen)
        #expect(seen.standing(of: Self.id(UInt32.max - 2)) == .new)
    }

    @Test("at capacity an origin not heard from lately is forgotten, and counted")
    func capacity() {
        var seen = SeenWindows(capacity: 16)
        for origin in 0..<40 { _ = seen.insert(Self.id(0, NodeID(UInt64(origin)))) }
        #expect(seen.originCount == 16)
        #expect(seen.forgottenOrigins == 24)
        #expect(seen.standing(of: Self.id(0, NodeID(39))) == .seen)
        #expect(seen.standing(of: Self.id(0, NodeID(0))) == .new)
    }

    /// Forgetting the origin first seen, still broadcasting, would let its
    /// messages that circulate again be delivered twice.
    @Test("an origin still broadcasting is kept over idle ones first seen after it")
    func activeOriginKept() {
        var seen = SeenWindows(capacity: 16)
        for origin in 0..<16 { _ = seen.insert(Self.id(0, NodeID(UInt64(origin)))) }
        for round in 0..<40 {
            #expect(seen.insert(Self.id(UInt32(round + 1), NodeID(0))) == .new)
            _ = seen.insert(Self.id(0, NodeID(UInt64(100 + round))))
        }
        #expect(seen.originCount == 16)
        #expect(seen.forgottenOrigins == 40)
        #expect(seen.standing(of: Self.id(1, NodeID(0))) == .seen, "the active origin was forgotten")
        #expect(seen.standing(of: Self.id(40, NodeID(0))) == .seen)
        #expect(seen.standing(of: Self.id(0, NodeID(139))) == .seen, "the newest origin is tracked")
    }
}
