import SMTPCore
import Testing

@Suite struct TLSCipherSuiteTests {
    @Test(arguments: [
        (0x1301, "TLS_AES_128_GCM_SHA256"),
        (0x1302, "TLS_AES_256_GCM_SHA384"),
        (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
        (0x1304, "TLS_AES_128_CCM_SHA256"),
        (0x1305, "TLS_AES_128_CCM_8_SHA256"),
        (0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        (0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
        (0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
        (0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
        (0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"),
        (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
        (0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
        (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
        (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
        (0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5"),
        (0x0007, "TLS_RSA_WITH_IDEA_CBC_SHA"),
        (0x0096, "TLS_RSA_WITH_SEED_CBC_SHA"),
        (0x00FF, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"),
        (0x5600, "TLS_FALLBACK_SCSV"),
        (0xC0FF, "0xC0FF"),
        (0x0A0A, "0x0A0A"),
    ] as [(UInt16, String)])
    func cipherSuiteHasItsIANAName(rawValue: UInt16, name: String) {
        #expect(TLSCipherSuite(rawValue: rawValue).name == name)
    }
}
