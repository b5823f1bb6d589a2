@testable import Raft
import Testing

/// A leader's sending of one snapshot: the window holds whatever the
/// follower reports.
@Suite("SnapshotTransfer")
struct SnapshotTransferTests {
    static func transfer(chunks: Int) -> SnapshotTransfer {
        let snapshot = RaftSnapshot(index: 10, term: 2, data: [UInt8](repeating: 7, count: chunks * 16))
        return SnapshotTransfer(snapshot: snapshot, chunkSize: 16)
    }

    static func send(_ transfer: inout SnapshotTransfer, window: Int) -> [Int] {
        var offsets: [Int] = []
        while let chunk = transfer.takeChunk(window: window) { offsets.append(chunk.offset / 16) }
        return offsets
    }

    /// A follower that kept the chunks of an earlier transfer (its leader
    /// was re-elected) reports more than this one sent.
    @Test("a follower holding more than was sent: sending goes on after it, within the window")
    func followerAhead() {
        var transfer = Self.transfer(chunks: 1_000)
        #expect(Self.send(&transfer, window: 8) == Array(0..<8))
        transfer.acknowledge(receivedBytes: 500 * 16, outOfOrder: false)
        #expect(transfer.chunksInFlight == 0)
        #expect(Self.send(&transfer, window: 8) == Array(500..<508))
    }

    /// Every chunk in flight past a lost one is reported out of order with
    /// the same count held: the gap is resent once, not once per report.
    @Test("a gap is resent once for all the reports of the chunks past it; a stale report resends nothing")
    func gapResentOnce() {
        var transfer = Self.transfer(chunks: 100)
        #expect(Self.send(&transfer, window: 8) == Array(0..<8))
        transfer.acknowledge(receivedBytes: 2 * 16, outOfOrder: false)
        // Chunk 2 was lost: chunks 3 ... 7 each bring a report of 2 held.
        transfer.acknowledge(receivedBytes: 2 * 16, outOfOrder: true)
        #expect(Self.send(&transfer, window: 8) == Array(2..<10))
        for _ in 4...7 { transfer.acknowledge(receivedBytes: 2 * 16, outOfOrder: true) }
        #expect(Self.send(&transfer, window: 8).isEmpty)
        // The resent chunks arrive; an old report after them is stale.
        transfer.acknowledge(receivedBytes: 10 * 16, outOfOrder: false)
        transfer.acknowledge(receivedBytes: 2 * 16, outOfOrder: true)
        #expect(Self.send(&transfer, window: 8) == Array(10..<18))
        // A heartbeat with no progress resends what is in flight.
        transfer.heartbeat()
        transfer.heartbeat()
        #expect(Self.send(&transfer, window: 8) == Array(10..<18))
    }

    /// A follower that restarted lost the chunks it held (in memory) and
    /// reports holding none; sending from what it had acknowledged would
    /// never be taken (it takes chunks in order from the first).
    @Test("a follower that reports holding nothing after acknowledging some gets the snapshot from the start")
    func followerRestarted() {
        var transfer = Self.transfer(chunks: 100)
        #expect(Self.send(&transfer, window: 8) == Array(0..<8))
        transfer.acknowledge(receivedBytes: 5 * 16, outOfOrder: false)
        #expect(Self.send(&transfer, window: 8) == Array(8..<13))
        transfer.acknowledge(receivedBytes: 0, outOfOrder: true)
        #expect(Self.send(&transfer, window: 8) == Array(0..<8))
        // The other reports of the restart ask for nothing more.
        transfer.acknowledge(receivedBytes: 0, outOfOrder: true)
        #expect(Self.send(&transfer, window: 8).isEmpty)
    }
}
