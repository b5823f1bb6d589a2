import Testing
@testable import ChorusCLI

@Suite("chorus selfcheck options")
struct SelfCheckOptionsTests {
    /// `chorus demo` reads `CHORUS_RATE` (1 ... 10,000); selfcheck's rate
    /// (1,000 ... 10,000,000) has a variable of its own, so exporting one
    /// cannot break the other command.
    @Test("selfcheck reads CHORUS_SELFCHECK_<NAME>, not the demo's CHORUS_<NAME>")
    func ownEnvironment() throws {
        let environment = ["CHORUS_RATE": "50", "CHORUS_SELFCHECK_RATE": "2000"]
        let options = try CommandOptions(
            [][...], valued: LoopbackSelfCheck.valuedOptions, switches: LoopbackSelfCheck.switches,
            environment: environment, environmentPrefix: LoopbackSelfCheck.environmentPrefix)
        #expect(try LoopbackSelfCheck(options: options).rate == 2_000)
        let demo = try CommandOptions(
            [][...], valued: DemoCommand.valuedOptions, switches: DemoCommand.switches, environment: environment)
        #expect(throws: Never.self) { try DemoCommand(options: demo) }
    }
}
