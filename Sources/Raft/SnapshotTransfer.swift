/// A leader's sending of its snapshot to one follower (Raft §7), in
/// chunks of a fixed size with a bounded number in flight. The follower
/// acknowledges the bytes it holds in order; a gap it reports, or a
/// heartbeat interval without progress, makes the leader resend from the
/// last acknowledged byte.
struct SnapshotTransfer {
    /// The snapshot's last index and term.
    let index: UInt64
    let term: UInt64
    /// The bytes sent, a ``SnapshotPayload``: `prefix` (the membership),
    /// then the snapshot's `data`, shared with the stored snapshot rather
    /// than copied once per transfer (a snapshot may be a gigabyte).
    private let prefix: [UInt8]
    private let data: [UInt8]
    let chunkSize: Int
    /// The first chunk not yet sent.
    private(set) var nextChunk = 0
    /// The bytes the follower confirmed holding, in order.
    private(set) var acknowledgedBytes = 0
    /// Whether an acknowledgement moved ``acknowledgedBytes`` since the
    /// last heartbeat.
    private var progressed = true
    /// ``acknowledgedBytes`` when a reported gap last made the leader
    /// resend: the reports of the other chunks that were in flight past the
    /// same gap ask for nothing more.
    private var resentAfter: Int?

    init(snapshot: RaftSnapshot, chunkSize: Int) {
        index = snapshot.index
        term = snapshot.term
        prefix = SnapshotPayload.prefix(snapshot.membership)
        data = snapshot.data
        self.chunkSize = chunkSize
    }

    /// The payload's length in bytes.
    var payloadCount: Int { prefix.count + data.count }

    /// Chunks in the snapshot (one, empty, for an empty snapshot).
    var chunkCount: Int { max(1, (payloadCount + chunkSize - 1) / chunkSize) }

    /// Chunks sent and not yet acknowledged.
    var chunksInFlight: Int { nextChunk - acknowledgedBytes / chunkSize }

    /// The next chunk to send, if one is due and the window has room; marks
    /// it sent.
    mutating func takeChunk(window: Int) -> (offset: Int, data: [UInt8])? {
        guard nextChunk < chunkCount, chunksInFlight < window else { return nil }
        let start = nextChunk * chunkSize
        let end = min(payloadCount, start + chunkSize)
        nextChunk += 1
        // The part of [start, end) in the prefix, then the part in the data.
        var chunk = Array(prefix[min(start, prefix.count)..<min(end, prefix.count)])
        chunk += data[max(start, prefix.count) - prefix.count..<max(end, prefix.count) - prefix.count]
        return (start, chunk)
    }

    /// The follower holds the first `receivedBytes`; with `outOfOrder` it
    /// missed a chunk, so sending resumes after what it holds, once per gap.
    ///
    /// The follower may hold more than this transfer sent (it kept the
    /// chunks of an earlier transfer of the snapshot, from a leader
    /// re-elected since): sending goes on after what it holds, keeping the
    /// window, rather than count the chunks it skips as in flight.
    mutating func acknowledge(receivedBytes: UInt64, outOfOrder: Bool) {
        let received = Int(min(receivedBytes, UInt64(payloadCount)))
        if received == 0, outOfOrder, acknowledgedBytes > 0 {
            // The follower holds none of it any more (it restarted, and the
            // chunks it had were in memory): sending starts again. A stale
            // report that says so costs a window of chunks sent twice.
            acknowledgedBytes = 0
            nextChunk = 0
            resentAfter = 0
            progressed = true
            return
        }
        if received > acknowledgedBytes {
            acknowledgedBytes = received
            nextChunk = max(nextChunk, received / chunkSize)
            progressed = true
        }
        // A report older than what was acknowledged is stale.
        if outOfOrder, received == acknowledgedBytes, resentAfter != acknowledgedBytes {
            rewind()
            resentAfter = acknowledgedBytes
        }
    }

    /// At a heartbeat: if nothing was acknowledged since the last one, the
    /// chunks in flight are presumed lost and are sent again.
    mutating func heartbeat() {
        if !progressed {
            rewind()
            resentAfter = nil
        }
        progressed = false
    }

    private mutating func rewind() {
        nextChunk = min(nextChunk, acknowledgedBytes / chunkSize)
    }
}
