/// An invalid configuration value: which field, the value given, and the
/// values it accepts. Every module's `Configuration.validate()` throws it.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The setting that was wrong, as a path from the configured value
    /// (`"maximumDatagramSize"`, `"delay.maximum"`).
    public var field: String
    /// The value that was given, printed.
    public var value: String
    /// The values the field accepts, in words (`"576 ... 65507"`).
    public var allowedRange: String

    /// Creates an error for `field`, which was given `value` but accepts only
    /// `allowedRange`.
    public init(field: String, value: String, allowedRange: String) {
        self.field = field
        self.value = value
        self.allowedRange = allowedRange
    }

    /// The field, the value and the allowed range, on one line.
    public var description: String {
        "invalid \(field): \(value) (allowed: \(allowedRange))"
    }
}
