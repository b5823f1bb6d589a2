@testable import CASPaxos
import EventCore
import Testing

/// The proposer's pending proposals with their wake-up instants in a heap:
/// ``Proposer/nextDeadline`` reads the earliest instead of walking them all.
@Suite("Proposal table")
struct ProposalTableTests {
    @Test("the earliest wake-up and the due proposals agree with a walk of every proposal")
    func agreesWithWalk() {
        var random = SeededRandomGenerator(seed: 11)
        var table = ProposalTable()
        var model: [UInt64: Proposal] = [:]
        func instant() -> Instant { Instant(nanoseconds: UInt64.random(in: 0..<1_000, using: &random)) }
        // Rounds where the table disagreed with the walk (checked once at
        // the end: an expectation per round would dominate the run time).
        var disagreements: [Int] = []
        for round in 0..<5_000 {
            let id = UInt64.random(in: 1...120, using: &random)
            if model[id] != nil && Int.random(in: 0..<4, using: &random) == 0 {
                var removed: UInt64?
                table.remove(id, reading: { removed = $0.id })
                if removed != id { disagreements.append(round) }
                model[id] = nil
            } else {
                let phase: Proposal.Phase
                switch Int.random(in: 0..<4, using: &random) {
                case 0: phase = .queued
                case 1: phase = .backingOff(until: instant())
                case 2: phase = .preparing
                default: phase = .accepting
                }
                let attemptDeadline = instant()
                if model[id] == nil {
                    let proposal = Proposal(
                        id: id, key: [UInt8(id % 7)], change: { $0 }, deadline: instant(), needsEveryAcceptor: false,
                        isIdentity: false)
                    table.insert(proposal)
                    model[id] = proposal
                }
                table.update(id) { proposal in
                    proposal.phase = phase
                    proposal.attemptDeadline = attemptDeadline
                }
                model[id]?.phase = phase
                model[id]?.attemptDeadline = attemptDeadline
            }
            var agrees = table.count == model.count && table.earliestWakeUp == model.values.map(\.wakeUp).min()
            if round % 20 == 0 {
                let now = instant()
                agrees = agrees && table.due(at: now) == model.values.filter { $0.wakeUp <= now }.map(\.id).sorted()
                agrees = agrees && table.sortedIDs == model.keys.sorted()
            }
            if !agrees { disagreements.append(round) }
        }
        #expect(disagreements.isEmpty)
        #expect(table.count > 50)
        let removedAbsent = table.remove(1_000)
        #expect(!removedAbsent)
        #expect(table.update(1_000) { _ in } == nil)
    }

    @Test("a removed proposal's slot releases its change closure, and the slot's next proposal starts clean")
    func removalReleasesReferences() {
        final class Captured: Sendable {}
        var table = ProposalTable()
        weak var captured: Captured?
        let key: [UInt8] = Array("key".utf8)
        do {
            let object = Captured()
            captured = object
            var proposal = Proposal(
                id: 1, key: key, change: { _ in withExtendedLifetime(object) { [1] } }, deadline: .zero,
                needsEveryAcceptor: false, isIdentity: false)
            proposal.newValue = [1]
            proposal.current = [2]
            proposal.sentAccepts.append((.zero, ([1], [1])))
            table.insert(proposal)
        }
        #expect(captured != nil)
        var removedKey: [UInt8]?
        let removed = table.remove(1, reading: { removedKey = $0.key })
        #expect(removed && removedKey == key)
        #expect(captured == nil)
        // The slot is reused by the next proposal, which must not see the last one's state.
        table.insert(
            Proposal(id: 2, key: [9], change: { $0 }, deadline: .zero, needsEveryAcceptor: false, isIdentity: false))
        #expect(table[2]?.key == [9])
        #expect(table[2]?.sentAccepts.isEmpty == true)
    }
}
