/// A data directory of `chorus node` that cannot be used: what is wrong,
/// and where.
struct NodeDataError: Error, CustomStringConvertible {
    var path: String
    var problem: String
    var description: String { "\(path): \(problem)" }
}
