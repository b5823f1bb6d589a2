import CASPaxos
import EventCore
import Testing
@testable import ChorusCLI

/// What `chorus demo`'s CASPaxos scenario accepts and how its summary
/// judges a run: a verdict that cannot fail would make the demo's PASS
/// mean nothing.
@Suite("chorus demo: CASPaxos")
struct CASPaxosDemoTests {
    static func options(_ arguments: [String]) throws -> CommandOptions {
        try CommandOptions(
            arguments[...], valued: CASPaxosDemo.valuedOptions, switches: [], environment: [:])
    }

    @Test("more clients than a counter value can hold is a usage error, not a run in which every increment fails")
    func clientsLimitedByValueSize() throws {
        let largest = CASPaxosConfiguration().maximumValueSize / 8 - 1
        #expect(throws: UsageError.self) {
            try CASPaxosDemo(options: try Self.options(["--proposers", "32", "--clients", "64"]))
        }
        let clients = largest / 16
        let demo = try CASPaxosDemo(options: try Self.options(["--proposers", "16", "--clients", "\(clients)"]))
        #expect(demo.proposers * demo.clientsPerProposer <= largest)
        // The largest counter value fits the proposers' limit.
        let value = DemoCounter(nil, clients: largest).bytes
        #expect(value.count <= CASPaxosConfiguration().maximumValueSize)
    }

    @Test("a counter not read, or read with a different total, fails the check; the table says which")
    func countersMatch() {
        let phase = CASPaxosDemoPhase(oneRoundTrip: true, startedAt: .zero, incrementsByProposer: [3])
        let read = CASPaxosDemoReport(phases: [phase], keys: ["a", "b"], finalValues: [3, 4], increments: [3, 4])
        #expect(read.countersMatch)
        let unread = CASPaxosDemoReport(phases: [phase], keys: ["a", "b"], finalValues: [], increments: [3, 4])
        #expect(!unread.countersMatch)
        #expect(unread.table.contains("unread"))
        let differs = CASPaxosDemoReport(phases: [phase], keys: ["a", "b"], finalValues: [3, nil], increments: [3, 4])
        #expect(!differs.countersMatch)
        #expect(differs.table.contains("MISMATCH"))
    }

    @Test("an increment applied again after an indeterminate outcome is counted once")
    func retriedIncrementCountedOnce() {
        let first = DemoCounter.increment(client: 1, sequence: 1, clients: 2)
        let once = first(nil)
        #expect(first(once) == once)
        let counter = DemoCounter(once, clients: 2)
        #expect(counter.total == 1 && counter.applied == [0, 1])
    }
}
