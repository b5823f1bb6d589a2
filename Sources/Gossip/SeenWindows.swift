import EventCore

/// Which broadcasts a node has already delivered: per origin, the highest
/// sequence number seen and a bitmap of the ``windowSize`` numbers below
/// it. A number further below is taken as seen (too old to tell), so
/// memory per origin is fixed.
///
/// At most `capacity` origins are tracked. To make room, an origin not
/// heard from lately is forgotten (the CLOCK approximation of least
/// recently used, O(1) amortized: a hand goes round the origins, sparing
/// once each one heard from since it last passed). An origin still
/// broadcasting is kept over idle ones, whatever order they were first
/// seen in: once forgotten, its messages still circulating (anti-entropy
/// retains them for a while) would be delivered again.
struct SeenWindows {
    /// Sequence numbers remembered below each origin's highest.
    static let windowSize = 1_024
    private static let wordCount = windowSize / 64

    private struct Window {
        var highest: UInt32
        var bits: [UInt64]
        /// Heard from since the eviction hand last passed.
        var isReferenced = false

        func contains(_ sequence: UInt32) -> Bool {
            let index = Int(sequence % UInt32(SeenWindows.windowSize))
            return bits[index >> 6] & (1 << UInt64(index & 63)) != 0
        }

        mutating func set(_ sequence: UInt32) {
            let index = Int(sequence % UInt32(SeenWindows.windowSize))
            bits[index >> 6] |= 1 << UInt64(index & 63)
        }

        mutating func clear(_ sequence: UInt32) {
            let index = Int(sequence % UInt32(SeenWindows.windowSize))
            bits[index >> 6] &= ~(1 << UInt64(index & 63))
        }

        /// Serial-number comparison (RFC 1982): ahead by less than 2³¹.
        func isAhead(_ sequence: UInt32) -> Bool {
            let ahead = sequence &- highest
            return ahead != 0 && ahead < 1 << 31
        }

        func standing(of sequence: UInt32) -> Standing {
            if isAhead(sequence) { return .new }
            guard highest &- sequence < UInt32(SeenWindows.windowSize) else { return .tooOld }
            return contains(sequence) ? .seen : .new
        }

        /// Records `sequence`, sliding the window forward if it is newer
        /// than the highest; returns where it stood before.
        mutating func record(_ sequence: UInt32) -> Standing {
            isReferenced = true
            let before = standing(of: sequence)
            guard before == .new else { return before }
            if isAhead(sequence) {
                if sequence &- highest >= UInt32(SeenWindows.windowSize) {
                    for word in bits.indices { bits[word] = 0 }
                } else {
                    var cleared = highest &+ 1
                    while cleared != sequence {
                        clear(cleared)
                        cleared &+= 1
                    }
                }
                highest = sequence
            }
            set(sequence)
            return .new
        }
    }

    /// Where a sequence number stands against an origin's window.
    enum Standing {
        /// Not seen: deliver it.
        case new
        /// Seen before.
        case seen
        /// Below the window: assumed seen.
        case tooOld
    }

    private var windows: [NodeID: Window] = [:]
    /// Tracked origins, as a ring the eviction hand goes round.
    private var order: [NodeID] = []
    /// The next origin the hand considers.
    private var hand = 0
    private let capacity: Int
    /// Origins forgotten to make room for new ones.
    private(set) var forgottenOrigins = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The number of origins tracked.
    var originCount: Int { windows.count }

    /// Where `id` stands, without recording it.
    func standing(of id: MessageID) -> Standing {
        windows[id.origin]?.standing(of: id.sequence) ?? .new
    }

    /// Records `id`; returns where it stood before.
    mutating func insert(_ id: MessageID) -> Standing {
        if let standing = windows[id.origin]?.record(id.sequence) { return standing }
        track(id)
        return .new
    }

    private mutating func track(_ id: MessageID) {
        if windows.count >= capacity {
            // Spares each origin heard from since the hand's last pass
            // once: at most one round before one is forgotten.
            while windows[order[hand]]?.isReferenced == true {
                windows[order[hand]]?.isReferenced = false
                hand = (hand + 1) % order.count
            }
            windows[order[hand]] = nil
            order[hand] = id.origin
            hand = (hand + 1) % order.count
            forgottenOrigins += 1
        } else {
            order.append(id.origin)
        }
        var window = Window(highest: id.sequence, bits: Array(repeating: 0, count: Self.wordCount))
        window.set(id.sequence)
        windows[id.origin] = window
    }
}
