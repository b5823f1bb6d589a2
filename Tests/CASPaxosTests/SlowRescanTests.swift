import CASPaxos
import EventCore
import Simulation
import Testing

/// A membership change's re-scan over links whose round trip is longer
/// than ``CASPaxosConfiguration/maintenanceRetryInterval`` (50 ms) but well
/// within ``CASPaxosConfiguration/attemptTimeout`` (100 ms), where writes
/// work. Each listing request was sent again every 50 ms under a new ID,
/// and the answer to the one before was then stale: no page was ever taken
/// and the change timed out, each time it was called (found by review).
@Suite("Re-scans over slow links")
struct SlowRescanTests {
    @Test("adding an acceptor over a 60 ms round trip finishes, its re-scan taking every page, and every key reads back")
    func slowListing() throws {
        var configuration = CASPaxosConfiguration()
        configuration.maximumKeysPerListing = 4
        let cluster = try SimulatedCASCluster(
            seed: 41, link: LinkConditions(delay: .constant(.milliseconds(30))), configuration: configuration)
        let keys = (0..<10).map { Array("key-\($0)".utf8) }
        var written = 0
        for key in keys {
            cluster.proposers[0].propose(key: key, change: { _ in key }) { result in
                if case .success = result { written += 1 }
            }
        }
        cluster.network.run(for: .seconds(2))
        #expect(written == keys.count)
        let added = cluster.addAcceptor()
        var result: Result<Void, CASPaxosError>?
        cluster.proposers[0].changeMembership(to: cluster.acceptorNodes.map(\.localEndpoint)) { result = $0 }
        cluster.network.run(for: .seconds(10))
        #expect(result.map { if case .success = $0 { true } else { false } } == true, "\(String(describing: result))")
        let acceptor = try #require(cluster.acceptors.last??.acceptor)
        #expect(cluster.acceptorNodes.last === added)
        for key in keys { #expect(acceptor.register(key) != nil, "the re-scan copied every key to the new acceptor") }
        var read: [[UInt8]: [UInt8]] = [:]
        for key in keys { cluster.proposers[1].read(key: key) { read[key] = (try? $0.get()) ?? nil } }
        cluster.network.run(for: .seconds(2))
        #expect(read == Dictionary(uniqueKeysWithValues: keys.map { ($0, $0) }))
    }
}
