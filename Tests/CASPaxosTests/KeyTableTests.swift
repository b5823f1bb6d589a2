@testable import CASPaxos
import EventCore
import Testing

/// The proposer's per-key table: proposals on one key run one at a time,
/// and the cached ballots stay within their limit, the least recently
/// cached key dropped first.
@Suite("Key table")
struct KeyTableTests {
    static let ballot = Ballot(counter: 1, proposer: NodeID(1))

    @Test("proposals on one key run in turn, each taking the ballot the one before left")
    func queueing() {
        var table = KeyTable(maximumCached: 8)
        for (proposal, runs) in [(UInt64(1), true), (2, false), (3, false)] {
            let added = table.add(proposal, key: [7])
            #expect(added.runs == runs && added.cached == nil)
        }
        let next = table.finish(1, key: [7], caching: CachedBallot(ballot: Self.ballot, value: [1], acceptedAt: .zero))
        #expect(next?.next == 2 && next?.cached?.ballot == Self.ballot && next?.cached?.value == [1])
        #expect(table.cachedCount == 0)
        // A queued proposal that ends (its deadline) leaves the queue.
        #expect(table.finish(3, key: [7], caching: nil) == nil)
        #expect(table.finish(2, key: [7], caching: CachedBallot(ballot: Self.ballot, value: nil, acceptedAt: .zero)) == nil)
        #expect(table.cachedCount == 1)
        #expect(table.add(4, key: [7]).cached?.value == .some(nil))
    }

    @Test("at the limit the least recently cached key is dropped (fixed seed, against a model)")
    func eviction() {
        var random = SeededRandomGenerator(seed: 13)
        let limit = 5
        var table = KeyTable(maximumCached: limit)
        var model: [UInt8: UInt64] = [:]  // key -> when it was last cached
        var clock: UInt64 = 0
        var proposal: UInt64 = 0
        var disagreements = 0
        for _ in 0..<20_000 {
            let key = UInt8.random(in: 0..<12, using: &random)
            proposal += 1
            switch Int.random(in: 0..<10, using: &random) {
            case 0:
                table.dropCached([key])
                model[key] = nil
            case 1:
                if (table.takeCached([key]) != nil) != (model.removeValue(forKey: key) != nil) { disagreements += 1 }
            case 2:
                // A proposal that fails: it takes the ballot and caches nothing.
                let taken = table.add(proposal, key: [key]).cached != nil
                if taken != (model.removeValue(forKey: key) != nil) { disagreements += 1 }
                _ = table.finish(proposal, key: [key], caching: nil)
            default:
                let taken = table.add(proposal, key: [key]).cached != nil
                if taken != (model.removeValue(forKey: key) != nil) { disagreements += 1 }
                _ = table.finish(proposal, key: [key], caching: CachedBallot(ballot: Self.ballot, value: [key], acceptedAt: .zero))
                clock += 1
                model[key] = clock
                if model.count > limit, let oldest = model.min(by: { $0.value < $1.value })?.key { model[oldest] = nil }
            }
            if table.cachedCount != model.count { disagreements += 1 }
        }
        for key in UInt8(0)..<12 where (table.takeCached([key]) != nil) != (model[key] != nil) { disagreements += 1 }
        #expect(disagreements == 0)
        table.removeAllCached()
        #expect(table.cachedCount == 0)
    }
}
