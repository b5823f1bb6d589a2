/// The AppendEntries a leader has sent to one follower and not yet seen
/// acknowledged, in the order sent: bounded in messages and in bytes, so a
/// slow follower cannot make the leader queue without limit.
struct InflightWindow {
    /// The last index and command bytes of each message in flight, oldest
    /// first (from `head` on).
    private var messages: [(lastIndex: UInt64, bytes: Int)] = []
    private var head = 0
    private(set) var bytes = 0
    let maximumMessages: Int
    let maximumBytes: Int

    init(maximumMessages: Int, maximumBytes: Int) {
        self.maximumMessages = maximumMessages
        self.maximumBytes = maximumBytes
    }

    /// Messages in flight.
    var count: Int { messages.count - head }

    /// Whether no more messages may be sent until some are acknowledged.
    var isFull: Bool { count >= maximumMessages || bytes >= maximumBytes }

    /// Records a message whose last entry is `lastIndex`.
    mutating func add(lastIndex: UInt64, bytes: Int) {
        messages.append((lastIndex, bytes))
        self.bytes += bytes
    }

    /// Forgets every message whose entries are all at or below `index`.
    mutating func free(through index: UInt64) {
        while head < messages.count, messages[head].lastIndex <= index {
            bytes -= messages[head].bytes
            head += 1
        }
        compact()
    }

    /// Forgets the oldest message (a heartbeat answer showed the follower
    /// alive while the window was full: that message was likely lost).
    mutating func freeOldest() {
        guard head < messages.count else { return }
        bytes -= messages[head].bytes
        head += 1
        compact()
    }

    /// Forgets everything.
    mutating func reset() {
        messages.removeAll(keepingCapacity: true)
        head = 0
        bytes = 0
    }

    private mutating func compact() {
        if head == messages.count {
            reset()
        } else if head >= 64 && head * 2 >= messages.count {
            messages.removeFirst(head)
            head = 0
        }
    }
}
