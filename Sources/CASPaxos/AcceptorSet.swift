/// A set of acceptors as positions in an ``AcceptorDirectory``, a bit
/// each, 512 inline (the union of two sets of 255, the most
/// ``AcceptorQuorums/validate()`` allows): what a proposal's attempt
/// records of who answered, without hashing endpoints or allocating.
struct AcceptorSet {
    private var words = InlineArray<8, UInt64>(repeating: 0)

    /// The empty set.
    init() {}

    var isEmpty: Bool { count == 0 }

    /// How many positions the set holds.
    var count: Int {
        var total = 0
        for word in 0..<8 { total &+= words[word].nonzeroBitCount }
        return total
    }

    func contains(_ position: Int) -> Bool {
        words[position &>> 6] & (1 &<< UInt64(position & 63)) != 0
    }

    mutating func insert(_ position: Int) {
        words[position &>> 6] |= 1 &<< UInt64(position & 63)
    }

    mutating func removeAll() {
        self = AcceptorSet()
    }

    /// How many positions this set shares with `other`.
    func countInCommon(with other: AcceptorSet) -> Int {
        var total = 0
        for word in 0..<8 { total &+= (words[word] & other.words[word]).nonzeroBitCount }
        return total
    }
}
