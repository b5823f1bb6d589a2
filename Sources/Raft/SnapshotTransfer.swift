/// A leader's sending of its snapshot to one follower (Raft §7), in
/// chunks of a fixed size with a bounded number in flight. The follower
/// acknowledges the bytes it holds in order; a gap it reports, or a
/// heartbeat interval without progress, makes the leader resend from the
/// last acknowledged byte.
struct SnapshotTransfer {
    let snapshot: RaftSnapshot
    let chunkSize: Int
    /// The first chunk not yet sent.
    private(set) var nextChunk = 0
    /// The bytes the follower confirmed holding, in order.
    private(set) var acknowledgedBytes = 0
    /// Whether an acknowledgement moved ``acknowledgedBytes`` since the
    /// last heartbeat.
    private var progressed = true

    init(snapshot: RaftSnapshot, chunkSize: Int) {
        self.snapshot = snapshot
        self.chunkSize = chunkSize
    }

    /// Chunks in the snapshot (one, empty, for an empty snapshot).
    var chunkCount: Int { max(1, (snapshot.data.count + chunkSize - 1) / chunkSize) }

    /// Chunks sent and not yet acknowledged.
    var chunksInFlight: Int { nextChunk - acknowledgedBytes / chunkSize }

    /// The next chunk to send, if one is due and the window has room; marks
    /// it sent.
    mutating func takeChunk(window: Int) -> (offset: Int, data: ArraySlice<UInt8>)? {
        guard nextChunk < chunkCount, chunksInFlight < window else { return nil }
        let start = nextChunk * chunkSize
        let end = min(snapshot.data.count, start + chunkSize)
        nextChunk += 1
        return (start, snapshot.data[start..<end])
    }

    /// The follower holds the first `receivedBytes`; with `outOfOrder` it
    /// missed a chunk, so sending resumes after what it holds.
    mutating func acknowledge(receivedBytes: UInt64, outOfOrder: Bool) {
        let received = Int(min(receivedBytes, UInt64(snapshot.data.count)))
        if received > acknowledgedBytes {
            acknowledgedBytes = received
            progressed = true
        }
        if outOfOrder { rewind() }
    }

    /// At a heartbeat: if nothing was acknowledged since the last one, the
    /// chunks in flight are presumed lost and are sent again.
    mutating func heartbeat() {
        if !progressed { rewind() }
        progressed = false
    }

    private mutating func rewind() {
        nextChunk = min(nextChunk, acknowledgedBytes / chunkSize)
    }
}
