import Foundation

/// A fresh directory under the system's temporary directory for one test,
/// with the file surgery the storage tests do on it; ``remove()`` deletes
/// it and everything in it.
public struct TemporaryDirectory: Sendable {
    /// The directory's path.
    public let path: String

    public init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// The names in the directory with `suffix`, sorted.
    public func names(endingWith suffix: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(suffix) }.sorted()
    }

    /// The paths of the log segments, in creation order.
    public func segments() throws -> [String] {
        try names(endingWith: ".log").map { path + "/" + $0 }
    }

    public func bytes(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    }

    public func write(_ bytes: [UInt8], to file: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: file))
    }

    /// Replaces the byte at `offset` of `file` with its complement.
    public func flipByte(_ file: String, at offset: Int) throws {
        var contents = try bytes(file)
        contents[offset] = ~contents[offset]
        try write(contents, to: file)
    }
}
