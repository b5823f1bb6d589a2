import EventCore

extension ConfigurationError {
    /// Throws an error for `field` unless `value` is in `range`; `allowed`
    /// describes the range in words when it depends on other fields.
    static func checkRange(
        _ field: String, _ value: Int, _ range: ClosedRange<Int>, _ allowed: String? = nil
    ) throws(ConfigurationError) {
        guard range.contains(value) else {
            throw ConfigurationError(
                field: field, value: "\(value)",
                allowedRange: allowed ?? "\(range.lowerBound) ... \(range.upperBound)")
        }
    }
}
