import EventCore
import Testing

@testable import ChorusCLI

@Suite("chorus node's bootstrap tag")
struct BootstrapTagTests {
    @Test("the tag round trips, is the same for a list in any order, differs with the first members, and other metadata is no tag")
    func roundTrip() throws {
        let endpoints = try ["127.0.0.1:7961", "127.0.0.1:7962", "127.0.0.1:7963"].map { try Endpoint(parsing: $0) }
        let before = BootstrapTag(list: endpoints, first: nil)
        #expect(before == BootstrapTag(list: endpoints.reversed(), first: nil))
        #expect(BootstrapTag(decoding: before.encoded) == before)
        let first = NodeDataDirectory.FirstMembership(
            group: 1, joining: false, members: endpoints.enumerated().map { .init(id: NodeID(UInt64($0 + 1)), endpoint: $1) })
        let started = BootstrapTag(list: endpoints, first: first)
        #expect(started.list == before.list && started.first != nil)
        #expect(BootstrapTag(decoding: started.encoded) == started)
        var replaced = first
        replaced.members[2].id = NodeID(99)
        #expect(BootstrapTag(list: endpoints, first: replaced).first != started.first)
        for other in ["", "role=a", "bootstrap", "bootstrap zz", "bootstrap 1 2 3", "bootstrap 1 zz"] {
            #expect(BootstrapTag(decoding: Array(other.utf8)) == nil, "\(other)")
        }
    }
}
