/// A set of acceptors as positions in an ``AcceptorDirectory``, a bit
/// each, 512 inline (the union of two sets of 255, the most
/// ``AcceptorQuorums/validate()`` allows): what a proposal's attempt
/// records of who answered, without hashing endpoints or allocating.
struct AcceptorSet {
    private var words = InlineArray<8, UInt64>(repeating: 0)
    /// How many positions the set holds (kept, as quorums are counted on
    /// every answer).
    private(set) var count = 0

    /// The empty set.
    init() {}

    var isEmpty: Bool { count == 0 }

    func contains(_ position: Int) -> Bool {
        words[position &>> 6] & (1 &<< UInt64(position & 63)) != 0
    }

    mutating func insert(_ position: Int) {
        let bit: UInt64 = 1 &<< UInt64(position & 63)
        guard words[position &>> 6] & bit == 0 else { return }
        words[position &>> 6] |= bit
        count &+= 1
    }

    mutating func remove(_ position: Int) {
        let bit: UInt64 = 1 &<< UInt64(position & 63)
        guard words[position &>> 6] & bit != 0 else { return }
        words[position &>> 6] &= ~bit
        count &-= 1
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
