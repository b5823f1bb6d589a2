import EventCore
import Foundation

/// A bad command line: what was wrong, for the usage message. The process
/// exits with status 64 (`EX_USAGE`).
struct UsageError: Error, CustomStringConvertible {
    var description: String
}

/// The `--name value` options and bare `--flag`s of one command, parsed from
/// the arguments after the command's name, with `CHORUS_<NAME>` environment
/// variables as fallbacks (as Smudge reads `SMUDGE_*`; a command may use a
/// longer prefix, as `chorus swim` reads `CHORUS_SWIM_<NAME>`).
struct CommandOptions {
    private var values: [String: [String]] = [:]
    private var flags: Set<String> = []
    private let environment: [String: String]
    private let environmentPrefix: String

    /// Parses `arguments`, accepting only the option names in `valued`
    /// (which take a value) and `switches` (which do not).
    init(
        _ arguments: ArraySlice<String>, valued: Set<String>, switches: Set<String>,
        environment: [String: String], environmentPrefix: String = "CHORUS_"
    ) throws(UsageError) {
        self.environment = environment
        self.environmentPrefix = environmentPrefix
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            if argument == "-h" && switches.contains("help") {
                flags.insert("help")
                continue
            }
            guard argument.hasPrefix("--") else {
                throw UsageError(description: "unexpected argument '\(argument)'")
            }
            var name = String(argument.dropFirst(2))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if switches.contains(name) {
                guard inlineValue == nil else { throw UsageError(description: "option --\(name) takes no value") }
                flags.insert(name)
            } else if valued.contains(name) {
                guard let value = inlineValue ?? rest.popFirst() else {
                    throw UsageError(description: "option --\(name) needs a value")
                }
                values[name, default: []].append(value)
            } else {
                throw UsageError(description: "unknown option --\(name)")
            }
        }
    }

    /// Whether `--name` was given.
    func isSet(_ name: String) -> Bool { flags.contains(name) }

    /// The value of `--name` (the last, if given more than once), else of
    /// `CHORUS_NAME` (upper-cased, `-` as `_`).
    func value(_ name: String) -> String? {
        if let value = values[name]?.last { return value }
        return environment[variable(name)]
    }

    /// Every value of a repeatable `--name`, else those of `CHORUS_NAME`
    /// separated by commas (spaces around them ignored).
    func allValues(_ name: String) -> [String] {
        if let given = values[name] { return given }
        guard let text = environment[variable(name)] else { return [] }
        return text.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// How an error names where `--name`'s value came from: the option,
    /// or its environment variable when the command line did not give it
    /// (a variable left exported must not read as a flag never typed).
    func origin(_ name: String) -> String {
        values[name] == nil && environment[variable(name)] != nil
            ? "\(variable(name)) (from the environment)" : "--\(name)"
    }

    /// The environment variable read for `--name`.
    func variable(_ name: String) -> String {
        environmentPrefix + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The decimal value of `--name` in `range`, or `fallback` if absent.
    func number(_ name: String, in range: ClosedRange<Double>, default fallback: Double) throws(UsageError) -> Double {
        guard let text = value(name) else { return fallback }
        guard let number = Double(text), range.contains(number) else {
            throw UsageError(
                description: "\(origin(name)) must be a number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
        }
        return number
    }

    /// An endpoint `HOST:PORT` given as `--name`, or nil if absent.
    func endpoint(_ name: String) throws(UsageError) -> Endpoint? {
        guard let text = value(name) else { return nil }
        return try parseEndpoint(text, option: name)
    }

    /// Every endpoint of a repeatable `--name`.
    func endpoints(_ name: String) throws(UsageError) -> [Endpoint] {
        var endpoints: [Endpoint] = []
        for text in allValues(name) { endpoints.append(try parseEndpoint(text, option: name)) }
        return endpoints
    }

    /// Every endpoint of a repeatable `--name` whose values are comma
    /// lists (`HOST:PORT,HOST:PORT`).
    func endpointLists(_ name: String) throws(UsageError) -> [Endpoint] {
        var endpoints: [Endpoint] = []
        for list in allValues(name) {
            for text in list.split(separator: ",") { endpoints.append(try parseEndpoint(String(text), option: name)) }
        }
        return endpoints
    }

    /// The endpoints of a repeatable `--name` (seeds), each of `bind`'s
    /// address family: a socket sends to its own family only, and a seed
    /// of the other would fail every send.
    func seeds(_ name: String, reachableFrom bind: Endpoint) throws(UsageError) -> [Endpoint] {
        let seeds = try endpoints(name)
        if let stranger = seeds.first(where: { $0.isIPv6 != bind.isIPv6 }) {
            throw UsageError(
                description: "\(origin(name)) \(stranger) is \(stranger.isIPv6 ? "IPv6" : "IPv4"), and \(origin("bind")) "
                    + "\(bind) is not: a socket sends to its own address family only")
        }
        return seeds
    }

    /// A 64-bit node ID given in hexadecimal as `--name`, or nil if absent.
    func nodeID(_ name: String) throws(UsageError) -> NodeID? {
        guard let text = value(name) else { return nil }
        guard let id = NodeID(text) else {
            throw UsageError(description: "\(origin(name)) must be 1 to 16 hexadecimal digits (a 64-bit ID), not '\(text)'")
        }
        return id
    }

    private func parseEndpoint(_ text: String, option: String) throws(UsageError) -> Endpoint {
        do throws(EndpointParseError) {
            return try Endpoint(parsing: text)
        } catch {
            throw UsageError(description: "\(origin(option)): \(error)")
        }
    }

    /// The integer value of `--name` in `range`, or `fallback` if absent.
    func integer(_ name: String, in range: ClosedRange<Int>, default fallback: Int) throws(UsageError) -> Int {
        guard let text = value(name) else { return fallback }
        guard let number = Int(text), range.contains(number) else {
            throw UsageError(
                description: "\(origin(name)) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
        }
        return number
    }
}
