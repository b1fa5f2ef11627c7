import NIOCore
import SMTPCore
import Testing

/// Builds an expected summary from the defaults.
private func summary(_ configure: (inout TLSSummary) -> Void) -> TLSSummary {
    var summary = TLSSummary()
    configure(&summary)
    return summary
}

/// Observes whole, one byte at a time and coalesced, and checks the three agree.
private func observe(_ chunks: [TLSChunk], closedBy closes: [TLSPeer] = []) -> TLSSummary {
    let whole = TLSTestSupport.observeWhole(chunks, closedBy: closes)
    #expect(TLSTestSupport.observeDrip(chunks, closedBy: closes) == whole)
    #expect(TLSTestSupport.observeCoalesced(chunks, closedBy: closes) == whole)
    return whole
}

struct CapturedHandshakeCase: Sendable, CustomStringConvertible {
    var name: String
    var fixture: String
    var expected: TLSSummary
    var description: String { name }
}

@Suite struct TLSHandshakeObserverTests {
    static let capturedCases: [CapturedHandshakeCase] = [
        CapturedHandshakeCase(
            name: "openssl TLS 1.2",
            fixture: TLSCapturedHandshakes.opensslTLS12,
            expected: summary {
                $0.clientHelloSeen = true
                $0.serverHelloSeen = true
                $0.sni = "mx.example"
                $0.offeredVersions = ["TLSv1.2"]
                $0.version = "TLSv1.2"
                $0.cipher = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
                $0.established = true
            }
        ),
        CapturedHandshakeCase(
            name: "openssl TLS 1.2 CHACHA20",
            fixture: TLSCapturedHandshakes.opensslTLS12ChaCha20,
            expected: summary {
                $0.clientHelloSeen = true
                $0.serverHelloSeen = true
                $0.sni = "mx.example"
                $0.offeredVersions = ["TLSv1.2"]
                $0.version = "TLSv1.2"
                $0.cipher = "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
                $0.established = true
            }
        ),
        CapturedHandshakeCase(
            name: "openssl TLS 1.3 with ALPN",
            fixture: TLSCapturedHandshakes.opensslTLS13,
            expected: summary {
                $0.clientHelloSeen = true
                $0.serverHelloSeen = true
                $0.sni = "mx.example"
                $0.offeredVersions = ["TLSv1.3"]
                $0.offeredApplicationProtocols = ["smtp"]
                $0.version = "TLSv1.3"
                $0.cipher = "TLS_AES_256_GCM_SHA384"
                $0.established = true
            }
        ),
        CapturedHandshakeCase(
            name: "openssl TLS 1.3 HelloRetryRequest",
            fixture: TLSCapturedHandshakes.opensslTLS13HelloRetryRequest,
            expected: summary {
                $0.clientHelloSeen = true
                $0.serverHelloSeen = true
                $0.sni = "mx.example"
                $0.offeredVersions = ["TLSv1.3"]
                $0.version = "TLSv1.3"
                $0.cipher = "TLS_AES_256_GCM_SHA384"
                $0.helloRetryRequest = true
                $0.established = true
            }
        ),
        CapturedHandshakeCase(
            name: "openssl protocol_version alert",
            fixture: TLSCapturedHandshakes.opensslProtocolVersionAlert,
            expected: summary {
                $0.clientHelloSeen = true
                $0.sni = "mx.example"
                $0.offeredVersions = ["TLSv1.3"]
                $0.alert = TLSAlert(level: .fatal, descriptionCode: 70, sender: .server)
                $0.established = false
                $0.failure = "server sent fatal alert protocol_version"
            }
        ),
        // nDPI reports "TLSv1" and "Cipher: TLS_RSA_WITH_RC4_128_SHA"; its "Hostname/SNI:
        // mx.google.com" comes from the certificate, as the ClientHello has no server_name.
        CapturedHandshakeCase(
            name: "corpus nDPI Google MX TLS 1.0",
            fixture: TLSCapturedHandshakes.ndpiStartTLSGoogle,
            expected: summary {
                $0.clientHelloSeen = true
                $0.serverHelloSeen = true
                $0.offeredVersions = ["TLSv1.0"]
                $0.version = "TLSv1.0"
                $0.cipher = "TLS_RSA_WITH_RC4_128_SHA"
                $0.established = true
            }
        ),
        CapturedHandshakeCase(
            name: "corpus nDPI Dovecot TLS 1.2",
            fixture: TLSCapturedHandshakes.ndpiStartTLSDovecot,
            expected: summary {
                $0.clientHelloSeen = true
                $0.serverHelloSeen = true
                $0.sni = "dovecot.weberlab.de"
                $0.offeredVersions = ["TLSv1.2"]
                $0.version = "TLSv1.2"
                $0.cipher = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
                $0.established = true
            }
        ),
        // Zeek ssl.log: TLSv12, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, no server_name, established T.
        CapturedHandshakeCase(
            name: "corpus Zeek Google MX TLS 1.2",
            fixture: TLSCapturedHandshakes.zeekStartTLS,
            expected: summary {
                $0.clientHelloSeen = true
                $0.serverHelloSeen = true
                $0.offeredVersions = ["TLSv1.2"]
                $0.version = "TLSv1.2"
                $0.cipher = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
                $0.established = true
            }
        ),
        CapturedHandshakeCase(
            name: "corpus Suricata STARTTLS TLS 1.3",
            fixture: TLSCapturedHandshakes.suricataStartTLS13,
            expected: summary {
                $0.clientHelloSeen = true
                $0.serverHelloSeen = true
                $0.offeredVersions = ["TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1.0"]
                $0.version = "TLSv1.3"
                $0.cipher = "TLS_AES_256_GCM_SHA384"
                $0.established = true
            }
        ),
        CapturedHandshakeCase(
            name: "corpus plaintext SMTP on port 465",
            fixture: TLSCapturedHandshakes.suricataPlaintextOn465,
            expected: summary {
                $0.notTLS = true
                $0.established = false
                $0.failure = "server bytes are not TLS records (content type 50 is not a TLS record type)"
            }
        ),
        CapturedHandshakeCase(
            name: "corpus ClientHello answered by plaintext 220",
            fixture: TLSCapturedHandshakes.suricataPlaintextReplyToClientHello,
            expected: summary {
                $0.clientHelloSeen = true
                $0.offeredVersions = ["TLSv1.2"]
                $0.established = false
                $0.failure = "server sent bytes that are not a TLS record"
                $0.unparsedReason =
                    "server sent bytes that are not a TLS record: content type 50 is not a TLS record type"
            }
        ),
    ]

    @Test(arguments: capturedCases)
    func capturedHandshakeIsSummarisedTheSameWhateverTheChunking(_ testCase: CapturedHandshakeCase) {
        let chunks = TLSTestSupport.chunks(fromFixture: testCase.fixture)
        #expect(!chunks.isEmpty)
        #expect(observe(chunks) == testCase.expected)
    }

    @Test func capturedHandshakeStaysEstablishedWhenClosedAfterwards() {
        let chunks = TLSTestSupport.chunks(fromFixture: TLSCapturedHandshakes.opensslTLS13)
        let result = observe(chunks, closedBy: [.client, .server])
        #expect(result.established == true)
        #expect(result.failure == nil)
    }

    // MARK: - Alerts

    @Test func fatalAlertBeforeServerHelloFailsTheHandshake() {
        let result = observe([
            .client(TLSBytes.clientHelloRecord(TLSBytes.clientHelloBody(serverName: "mx.example"))),
            .server(TLSBytes.alert(level: 2, description: 40)),
        ])
        #expect(
            result
                == summary {
                    $0.clientHelloSeen = true
                    $0.sni = "mx.example"
                    $0.offeredVersions = ["TLSv1.2"]
                    $0.alert = TLSAlert(level: .fatal, descriptionCode: 40, sender: .server)
                    $0.established = false
                    $0.failure = "server sent fatal alert handshake_failure"
                }
        )
        #expect(result.alert?.descriptionName == "handshake_failure")
    }

    @Test func warningAlertIsRecordedWithoutFailingTheHandshake() {
        let result = observe([
            .client(TLSBytes.clientHelloRecord()),
            .server(
                TLSBytes.alert(level: 1, description: 112)
                    + TLSBytes.serverHelloRecord(TLSBytes.serverHelloBody(cipherSuite: 0xC02F))
            ),
        ])
        #expect(result.alert == TLSAlert(level: .warning, descriptionCode: 112, sender: .server))
        #expect(result.alert?.descriptionName == "unrecognized_name")
        #expect(result.established == nil)
        #expect(result.cipher == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    }

    @Test func clientCloseNotifyDuringHandshakeFailsIt() {
        let result = observe([
            .client(TLSBytes.clientHelloRecord()),
            .server(TLSBytes.serverHelloRecord(TLSBytes.serverHelloBody(cipherSuite: 0xC02F))),
            .client(TLSBytes.alert(level: 1, description: 0)),
        ])
        #expect(result.established == false)
        #expect(result.failure == "client sent close_notify before the TLS handshake completed")
    }

    @Test func encryptedAlertAfterChangeCipherSpecBeforeFinishedFailsTheHandshake() {
        // TLS 1.2: the server finished; the client rejects the server's Finished with an encrypted alert.
        let result = observe([
            .client(TLSBytes.clientHelloRecord()),
            .server(TLSBytes.serverHelloRecord(TLSBytes.serverHelloBody(cipherSuite: 0xC02F))),
            .client(TLSBytes.changeCipherSpec()),
            .client(TLSBytes.record(21, [UInt8](repeating: 0x33, count: 26))),
        ])
        #expect(result.alert == nil)
        #expect(result.established == false)
        #expect(result.failure == "client sent an encrypted alert before the TLS handshake completed")
    }

    @Test func alertLevelAndDescriptionOutsideTheRegistryAreFatalAndShownInHex() {
        let result = observe([
            .client(TLSBytes.clientHelloRecord()),
            .server(TLSBytes.alert(level: 7, description: 0x99)),
        ])
        #expect(result.alert == TLSAlert(level: .unknown(7), descriptionCode: 0x99, sender: .server))
        #expect(result.failure == "server sent fatal alert 0x99")
    }

    // MARK: - Outcome rules

    @Test func tls12NeedsChangeCipherSpecAndFinishedFromBothSides() {
        var chunks: [TLSChunk] = [
            .client(TLSBytes.clientHelloRecord(TLSBytes.clientHelloBody(legacyVersion: 0x0303))),
            .server(TLSBytes.serverHelloRecord(TLSBytes.serverHelloBody(cipherSuite: 0xC030))),
            .client(TLSBytes.changeCipherSpec() + TLSBytes.record(22, [UInt8](repeating: 1, count: 40))),
        ]
        #expect(observe(chunks).established == nil)
        chunks.append(.server(TLSBytes.changeCipherSpec()))
        #expect(observe(chunks).established == nil)
        chunks.append(.server(TLSBytes.record(22, [UInt8](repeating: 2, count: 40))))
        let result = observe(chunks)
        #expect(result.established == true)
        #expect(result.version == "TLSv1.2")
        #expect(result.cipher == "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
    }

    @Test func tls13ClientRejectingTheCertificateIsNotEstablished() {
        // After the ServerHello the client's alert is encrypted, so it looks like one application_data record.
        let chunks: [TLSChunk] = [
            .client(TLSBytes.clientHelloRecord(TLSBytes.clientHelloBody(supportedVersions: [0x0304, 0x0303]))),
            .server(
                TLSBytes.serverHelloRecord(TLSBytes.serverHelloBody(cipherSuite: 0x1301, selectedVersion: 0x0304))
                    + TLSBytes.changeCipherSpec() + TLSBytes.applicationData(900)
            ),
            .client(TLSBytes.changeCipherSpec() + TLSBytes.applicationData(19)),
        ]
        #expect(observe(chunks).established == nil)
        let closed = observe(chunks, closedBy: [.client])
        #expect(closed.established == false)
        #expect(closed.failure == "client closed the connection before the TLS handshake completed")
        #expect(closed.version == "TLSv1.3")
        #expect(closed.offeredVersions == ["TLSv1.3", "TLSv1.2"])
    }

    @Test func tls13IsEstablishedWhenTheServerAnswersAfterTheClientFinished() {
        let chunks: [TLSChunk] = [
            .client(TLSBytes.clientHelloRecord(TLSBytes.clientHelloBody(supportedVersions: [0x0304]))),
            .server(
                TLSBytes.serverHelloRecord(TLSBytes.serverHelloBody(cipherSuite: 0x1303, selectedVersion: 0x0304))
                    + TLSBytes.applicationData(900)
            ),
            .client(TLSBytes.applicationData(53)),
            .server(TLSBytes.applicationData(200)),
        ]
        let result = observe(chunks)
        #expect(result.established == true)
        #expect(result.cipher == "TLS_CHACHA20_POLY1305_SHA256")
    }

    @Test func tls13ZeroRTTDataBeforeServerHelloDoesNotCountAsFinished() {
        let chunks: [TLSChunk] = [
            .client(TLSBytes.clientHelloRecord(TLSBytes.clientHelloBody(supportedVersions: [0x0304]))),
            .client(TLSBytes.applicationData(40) + TLSBytes.applicationData(40)),
            .server(
                TLSBytes.serverHelloRecord(TLSBytes.serverHelloBody(cipherSuite: 0x1301, selectedVersion: 0x0304))
                    + TLSBytes.applicationData(900)
            ),
        ]
        #expect(observe(chunks).established == nil)
    }

    @Test func helloRetryRequestIsFollowedToTheRealServerHello() {
        let chunks: [TLSChunk] = [
            .client(
                TLSBytes.clientHelloRecord(TLSBytes.clientHelloBody(serverName: "mx.example", supportedVersions: [0x0304]))
            ),
            .server(
                TLSBytes.serverHelloRecord(
                    TLSBytes.serverHelloBody(
                        cipherSuite: 0x1302,
                        selectedVersion: 0x0304,
                        random: TLSBytes.helloRetryRequestRandom
                    )
                ) + TLSBytes.changeCipherSpec()
            ),
            .client(
                TLSBytes.changeCipherSpec()
                    + TLSBytes.clientHelloRecord(TLSBytes.clientHelloBody(supportedVersions: [0x0304]))
            ),
        ]
        let afterRetry = observe(chunks)
        #expect(afterRetry.helloRetryRequest)
        #expect(afterRetry.serverHelloSeen)
        #expect(afterRetry.version == "TLSv1.3")
        #expect(afterRetry.cipher == "TLS_AES_256_GCM_SHA384")
        #expect(afterRetry.established == nil)

        let finished = observe(
            chunks + [
                .server(
                    TLSBytes.serverHelloRecord(TLSBytes.serverHelloBody(cipherSuite: 0x1301, selectedVersion: 0x0304))
                        + TLSBytes.applicationData(800)
                ),
                .client(TLSBytes.applicationData(53) + TLSBytes.applicationData(30)),
            ]
        )
        #expect(finished.cipher == "TLS_AES_128_GCM_SHA256")
        #expect(finished.established == true)
        #expect(finished.sni == "mx.example")
    }

    // MARK: - Framing

    @Test func handshakeMessageFragmentedAcrossRecordsIsReassembled() {
        let message = TLSBytes.handshake(
            1,
            TLSBytes.clientHelloBody(
                serverName: "frag.example",
                supportedVersions: [0x0A0A, 0x0304, 0x0303],
                applicationProtocols: ["smtp", "h2"]
            )
        )
        let thirds = [message[0..<7], message[7..<60], message[60...]]
        let records = thirds.flatMap { TLSBytes.record(22, version: 0x0301, Array($0)) }
        let result = observe([.client(records)])
        #expect(result.clientHelloSeen)
        #expect(result.sni == "frag.example")
        #expect(result.offeredVersions == ["TLSv1.3", "TLSv1.2"])
        #expect(result.offeredApplicationProtocols == ["smtp", "h2"])
    }

    @Test func severalHandshakeMessagesInOneRecordAreRead() {
        // TLS 1.2 servers put ServerHello, Certificate and ServerHelloDone in one record.
        let flight =
            TLSBytes.handshake(2, TLSBytes.serverHelloBody(legacyVersion: 0x0302, cipherSuite: 0x0035))
            + TLSBytes.handshake(11, [UInt8](repeating: 0, count: 300)) + TLSBytes.handshake(14, [])
        let result = observe([
            .client(TLSBytes.clientHelloRecord(TLSBytes.clientHelloBody(legacyVersion: 0x0302))),
            .server(TLSBytes.record(22, version: 0x0302, flight)),
        ])
        #expect(result.version == "TLSv1.1")
        #expect(result.cipher == "TLS_RSA_WITH_AES_256_CBC_SHA")
        #expect(result.offeredVersions == ["TLSv1.1"])
        #expect(result.unparsedReason == nil)
    }

    @Test(arguments: [1, 4, 5, 9, 40])
    func truncatedRecordLeavesTheOutcomeOpen(prefixLength: Int) {
        let hello = TLSBytes.clientHelloRecord(TLSBytes.clientHelloBody(serverName: "mx.example"))
        let result = observe([.client(Array(hello.prefix(prefixLength)))])
        #expect(result == TLSSummary())
        let closed = observe([.client(Array(hello.prefix(prefixLength)))], closedBy: [.server])
        #expect(closed.established == false)
        #expect(closed.failure == "server closed the connection before the TLS handshake completed")
    }

    @Test(arguments: [
        Array("EHLO client.example\r\n".utf8),
        Array("220 mx.example ESMTP\r\n".utf8),
        [0x00, 0x01, 0x02, 0x03, 0x04, 0x05],
        [0x16, 0x04, 0x01, 0x00, 0x05],
        [0x16, 0x03, 0x09, 0x00, 0x05],
        [0x17, 0x03, 0x03, 0xFF, 0xFF],
    ])
    func garbageIsNotTLS(bytes: [UInt8]) {
        let result = observe([.client(bytes), .server(TLSBytes.alert(level: 2, description: 40))])
        #expect(result.notTLS)
        #expect(result.established == false)
        #expect(result.failure?.hasPrefix("client bytes are not TLS records") == true)
        #expect(result.alert == nil)
    }

    @Test func malformedRecordAfterTLSIsAFailureNotPlaintext() {
        let result = observe([
            .client(TLSBytes.clientHelloRecord() + Array("QUIT\r\n".utf8))
        ])
        #expect(!result.notTLS)
        #expect(result.clientHelloSeen)
        #expect(result.established == false)
        #expect(
            result.unparsedReason
                == "client sent bytes that are not a TLS record: content type 81 is not a TLS record type"
        )
    }

    @Test func sslv2CompatibleClientHelloIsRecognised() {
        // RFC 5246 §E.2: msg_type 1, version 3.1, cipher_spec_length 3, session_id_length 0,
        // challenge_length 16, one cipher spec (TLS_RSA_WITH_RC4_128_SHA), the challenge.
        let body: [UInt8] =
            [0x01, 0x03, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x05] + [UInt8](repeating: 9, count: 16)
        let hello: [UInt8] = [0x80 | UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        #expect(TLSHandshakeObserver.looksLikeTLSRecord(ByteBuffer(bytes: hello)) == true)
        let result = observe([
            .client(hello),
            .server(TLSBytes.serverHelloRecord(TLSBytes.serverHelloBody(legacyVersion: 0x0301, cipherSuite: 0x0005))),
            .client(TLSBytes.record(22, version: 0x0301, [16, 0, 0, 4, 1, 2, 3, 4]) + TLSBytes.changeCipherSpec()),
        ])
        #expect(!result.notTLS)
        #expect(result.clientHelloSeen)
        #expect(result.sslv2CompatibleClientHello)
        #expect(result.offeredVersions == ["TLSv1.0"])
        #expect(result.version == "TLSv1.0")
        #expect(result.cipher == "TLS_RSA_WITH_RC4_128_SHA")
    }

    @Test func sslv2ServerHelloIsReportedAndNotFollowed() {
        let body: [UInt8] = [0x04, 0x00, 0x01, 0x00, 0x02] + [UInt8](repeating: 0, count: 20)
        let result = observe([
            .client(
                [0x80, 0x1C, 0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10, 0x01, 0x00, 0x80]
                    + [UInt8](repeating: 1, count: 16)
            ),
            .server([0x80, UInt8(body.count)] + body),
        ])
        #expect(result.offeredVersions == ["SSLv2"])
        #expect(result.version == "SSLv2")
        #expect(result.serverHelloSeen)
        #expect(result.established == nil)
    }

    @Test func oversizedHandshakeMessageIsGivenUpGracefully() {
        // A ClientHello declaring 70 000 bytes, sent as five full records.
        let header = TLSBytes.u24(70_000)
        var bytes = TLSBytes.record(22, [1] + header + [UInt8](repeating: 0, count: 16_000))
        for _ in 0..<4 {
            bytes += TLSBytes.record(22, [UInt8](repeating: 0, count: 16_384))
        }
        let result = observe([.client(bytes)])
        #expect(!result.clientHelloSeen)
        #expect(result.unparsedReason == "client handshake message type 1 of 70000 bytes exceeds 65536")
        #expect(result.established == nil)
    }

    @Test func recordLongerThanTheLimitIsNotTLS() {
        let result = observe([.client([0x16, 0x03, 0x01, 0x48, 0x01])])
        #expect(result.notTLS)
        #expect(result.failure == "client bytes are not TLS records (record length 18433 exceeds 18432)")
    }

    @Test func malformedClientHelloIsSeenButReported() {
        var body = TLSBytes.clientHelloBody(serverName: "mx.example")
        body.removeLast(3)
        let result = observe([.client(TLSBytes.clientHelloRecord(body))])
        #expect(result.clientHelloSeen)
        #expect(result.sni == nil)
        #expect(result.unparsedReason == "malformed ClientHello: extensions is truncated")
    }

    @Test func serverNameWithControlBytesIsEscaped() {
        let hello = TLSBytes.clientHelloBody(serverName: "mx\r\n\u{7F}.example\\")
        let result = observe([.client(TLSBytes.clientHelloRecord(hello))])
        #expect(result.sni == "mx\\x0D\\x0A\\x7F.example\\x5C")
    }

    @Test func longEncryptedStreamIsSkippedRecordByRecord() {
        // 1 MiB each way; fed whole and coalesced (one byte at a time is covered by the short cases).
        var stream: [UInt8] = []
        for _ in 0..<64 {
            stream += TLSBytes.record(23, [UInt8](repeating: 0x5A, count: 16_384))
        }
        let handshake = TLSTestSupport.chunks(fromFixture: TLSCapturedHandshakes.opensslTLS12)
        let afterHandshake = handshake + [.client(stream), .server(stream)]
        #expect(TLSTestSupport.observeWhole(afterHandshake).established == true)

        // Still undecided: the server never sent its Finished, so every record header is read.
        let undecided: [TLSChunk] = [
            .client(TLSBytes.clientHelloRecord()),
            .server(TLSBytes.serverHelloRecord(TLSBytes.serverHelloBody(cipherSuite: 0xC02F))),
            .client(stream),
            .server(stream),
        ]
        let whole = TLSTestSupport.observeWhole(undecided)
        #expect(whole.established == nil)
        #expect(whole.unparsedReason == nil)
        #expect(TLSTestSupport.observeCoalesced(undecided) == whole)
    }

    // MARK: - Robustness

    @Test func everyCutOfARealHandshakeIsHandled() {
        // Cut the connection at every offset of the first two flights; nothing may trap.
        let chunks = TLSTestSupport.chunks(fromFixture: TLSCapturedHandshakes.opensslTLS13HelloRetryRequest)
        let flat = chunks.prefix(4)
        for (index, chunk) in flat.enumerated() {
            // The hellos sit in the first 200 bytes of each flight.
            for cut in 0...min(chunk.bytes.count, 200) {
                var truncated = Array(flat.prefix(index))
                truncated.append(TLSChunk(peer: chunk.peer, bytes: Array(chunk.bytes.prefix(cut))))
                _ = TLSTestSupport.observeWhole(truncated, closedBy: [.client])
            }
        }
    }

    @Test func corruptedHandshakesAreHandled() {
        // Deterministic single-byte corruptions of real hellos; nothing may trap or hang.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let original = TLSTestSupport.chunks(fromFixture: TLSCapturedHandshakes.suricataStartTLS13)
        for _ in 0..<400 {
            var chunks = original
            for _ in 0..<3 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let which = Int(state >> 33) % 3
                let offset = Int(state >> 40) % min(chunks[which].bytes.count, 600)
                chunks[which].bytes[offset] ^= UInt8(truncatingIfNeeded: state >> 24) | 1
            }
            let whole = TLSTestSupport.observeWhole(chunks)
            #expect(TLSTestSupport.observeCoalesced(chunks) == whole)
        }
    }
}

@Suite struct TLSRecordSniffingTests {
    @Test(arguments: [
        ([], nil),
        ([0x16], nil),
        ([0x16, 0x03, 0x01, 0x02], nil),
        ([0x16, 0x03, 0x01, 0x02, 0x00], true),
        ([0x16, 0x03, 0x03, 0x00, 0x31, 0x01], true),
        ([0x80], nil),
        ([0x80, 0x2E, 0x01, 0x03, 0x01], true),
        (Array("EHLO x\r\n".utf8), false),
        (Array("E".utf8), false),
        (Array("220 ".utf8), false),
        ([0x16, 0x02], false),
        ([0x16, 0x03, 0x05], false),
        ([0x17, 0x03, 0x03, 0x00, 0x10], false),
        ([0x15, 0x03, 0x03, 0x00, 0x02], false),
        ([0x16, 0x03, 0x01, 0xFF, 0xFF], false),
        ([0x80, 0x2E, 0x02], false),
    ] as [([UInt8], Bool?)])
    func firstBytesAreClassified(bytes: [UInt8], expected: Bool?) {
        #expect(TLSHandshakeObserver.looksLikeTLSRecord(ByteBuffer(bytes: bytes)) == expected)
    }
}
