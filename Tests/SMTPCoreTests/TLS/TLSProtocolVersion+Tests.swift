import SMTPCore
import Testing

@Suite struct TLSProtocolVersionTests {
    @Test(arguments: [
        (0x0002, "SSLv2"),
        (0x0300, "SSLv3"),
        (0x0301, "TLSv1.0"),
        (0x0302, "TLSv1.1"),
        (0x0303, "TLSv1.2"),
        (0x0304, "TLSv1.3"),
        (0x7F1C, "TLSv1.3-draft-28"),
        (0x0305, "0x0305"),
    ] as [(UInt16, String)])
    func versionHasItsName(rawValue: UInt16, name: String) {
        #expect(TLSProtocolVersion(rawValue: rawValue).name == name)
    }

    @Test(arguments: [(0x0A0A, true), (0xFAFA, true), (0x0A1A, false), (0x0303, false)] as [(UInt16, Bool)])
    func greaseValuesAreRecognised(rawValue: UInt16, isGREASE: Bool) {
        #expect(TLSProtocolVersion(rawValue: rawValue).isGREASE == isGREASE)
    }
}
