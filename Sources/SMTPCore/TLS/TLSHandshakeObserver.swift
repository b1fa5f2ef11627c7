import NIOCore

/// A passive observer of one TLS handshake, fed the bytes of each direction separately, in chunks of
/// any size; used after STARTTLS (RFC 3207 §4) and on implicit-TLS ports (RFC 8314 §3.3).
///
/// It reads record headers (RFC 8446 §5.1), the ClientHello and ServerHello (RFC 8446 §4.1.2,
/// §4.1.3), clear-text alerts (§6) and ChangeCipherSpec records (RFC 5246 §7.1), and reports them in
/// ``summary``. Once the hellos are read it only reads record headers and skips bodies without
/// buffering them, and once ``TLSSummary/established`` is decided it ignores everything, so a long
/// encrypted stream costs almost nothing. Memory is bounded by ``TLSObserverDefaults``.
///
/// Feed both directions in capture order: the TLS 1.3 rule for ``TLSSummary/established`` looks at
/// which side's records came after which. The result does not depend on how each direction's bytes
/// are split into chunks.
public struct TLSHandshakeObserver: Sendable {
    /// What the observer follows in one direction.
    private struct Direction: Sendable {
        /// What the body bytes of the current record are for.
        enum CurrentRecord: Sendable {
            case skipped
            case handshake
            /// The first octet of an alert, once it has arrived.
            case alert(level: UInt8?)
        }

        var reader: TLSRecordReader
        /// Present while this direction's hello has yet to be read.
        var handshake: TLSHandshakeReassembler?
        var currentRecord = CurrentRecord.skipped
        var sentChangeCipherSpec = false
        /// Handshake records after this side's ChangeCipherSpec: its encrypted Finished (TLS ≤ 1.2).
        var handshakeRecordsAfterChangeCipherSpec = 0
        /// application_data records after the ServerHello (TLS 1.3).
        var applicationDataRecords = 0

        init(sslv2MessageType: UInt8) {
            reader = TLSRecordReader(sslv2MessageType: sslv2MessageType)
            handshake = TLSHandshakeReassembler()
        }
    }

    private var client = Direction(sslv2MessageType: 1)
    private var server = Direction(sslv2MessageType: 4)
    public private(set) var summary = TLSSummary()

    /// The version from the ServerHello or HelloRetryRequest.
    private var negotiatedVersion: TLSProtocolVersion?
    /// A ServerHello that is not a HelloRetryRequest was read; TLS 1.3 encrypts from here on.
    private var finalServerHelloSeen = false
    /// Server application_data records seen after the client's first one: in TLS 1.3 only a client
    /// that finished can be answered so.
    private var serverRecordsAfterClientApplicationData = 0
    /// Some TLS record was seen in either direction, so later garbage is a broken TLS stream, not a
    /// stream that never was TLS.
    private var sawTLSRecord = false
    /// Once ``TLSSummary/established`` is decided nothing more can be learnt.
    private var isFinished = false

    public init() {}

    public mutating func receiveFromClient(_ bytes: ByteBuffer) {
        receive(bytes, from: .client)
    }

    public mutating func receiveFromServer(_ bytes: ByteBuffer) {
        receive(bytes, from: .server)
    }

    /// The peer closed (FIN or RST). Before the handshake completed that is a failure.
    public mutating func receiveClose(from peer: TLSPeer) {
        decide(established: false, failure: "\(peer) closed the connection before the TLS handshake completed")
    }

    /// True when the first client bytes look like a TLS record carrying a handshake (content type 22,
    /// version 0x03xx, RFC 8446 §5.1) or an SSLv2-compatible CLIENT-HELLO (RFC 5246 §E.2); `false`
    /// as soon as they cannot be one (`EHLO`, `220 `); `nil` when more bytes are needed.
    ///
    /// Tells TLS from plaintext after a `220` to STARTTLS, and on port 465.
    public static func looksLikeTLSRecord(_ firstBytes: ByteBuffer) -> Bool? {
        let verdict = TLSRecordPrefixVerdict.judge(
            firstBytes.readableBytesView,
            sslv2MessageType: 1,
            requiredContentType: .handshake
        )
        switch verdict {
        case .needMoreBytes: return nil
        case .tls, .sslv2: return true
        case .invalid: return false
        }
    }

    // MARK: - Records

    private mutating func receive(_ bytes: ByteBuffer, from peer: TLSPeer) {
        var input = bytes
        while !isFinished {
            guard let event = withDirection(peer, { $0.reader.next(&input) }) else { return }
            handle(event, from: peer)
        }
    }

    private mutating func handle(_ event: TLSRecordReader.Event, from peer: TLSPeer) {
        switch event {
        case .header(let header):
            sawTLSRecord = true
            receiveRecordHeader(header, from: peer)
        case .sslv2Header(let header):
            sawTLSRecord = true
            receiveSSLv2Header(header, from: peer)
        case .body(let fragment):
            receiveRecordBody(fragment, from: peer)
        case .recordEnd:
            withDirection(peer) { $0.currentRecord = .skipped }
        case .invalid(let reason, let isFirstRecord):
            if isFirstRecord && !sawTLSRecord {
                summary.notTLS = true
                decide(established: false, failure: "\(peer) bytes are not TLS records (\(reason))")
            } else {
                noteUnparsed("\(peer) sent bytes that are not a TLS record: \(reason)")
                decide(established: false, failure: "\(peer) sent bytes that are not a TLS record")
            }
        }
    }

    private mutating func receiveRecordHeader(_ header: TLSRecordHeader, from peer: TLSPeer) {
        switch header.contentType {
        case .handshake:
            let parsing = withDirection(peer) { direction in
                if direction.handshake != nil {
                    direction.reader.deliverRecordBody()
                    direction.currentRecord = .handshake
                    return true
                }
                if direction.sentChangeCipherSpec {
                    direction.handshakeRecordsAfterChangeCipherSpec += 1
                }
                return false
            }
            if !parsing {
                evaluateEstablished()
            }

        case .changeCipherSpec:
            withDirection(peer) { $0.sentChangeCipherSpec = true }

        case .alert:
            // A clear alert is 2 octets. After ChangeCipherSpec a longer one is encrypted (TLS ≤ 1.2;
            // TLS 1.3 hides alerts in application_data). Before it, several alerts may share a record.
            let encrypted = withDirection(peer) { direction in
                guard header.length > 0 else { return false }
                if header.length == 2 || !direction.sentChangeCipherSpec {
                    direction.reader.deliverRecordBody()
                    direction.currentRecord = .alert(level: nil)
                    return false
                }
                return true
            }
            if encrypted {
                decide(
                    established: false,
                    failure: "\(peer) sent an encrypted alert before the TLS handshake completed"
                )
            }

        case .applicationData:
            switch peer {
            case .client:
                // 0-RTT data before the ServerHello says nothing about the handshake's outcome.
                if finalServerHelloSeen {
                    client.applicationDataRecords += 1
                }
            case .server:
                server.applicationDataRecords += 1
                if client.applicationDataRecords > 0 {
                    serverRecordsAfterClientApplicationData += 1
                }
            }
            evaluateEstablished()

        case .heartbeat:
            break
        }
    }

    private mutating func receiveRecordBody(_ fragment: ByteBuffer, from peer: TLSPeer) {
        let current = withDirection(peer) { $0.currentRecord }
        switch current {
        case .skipped:
            withDirection(peer) { $0.reader.skipRestOfRecord() }
        case .handshake:
            receiveHandshakeFragment(fragment, from: peer)
        case .alert(let level):
            var fragment = fragment
            var level = level
            while let byte = fragment.readInteger(as: UInt8.self) {
                guard let alertLevel = level else {
                    level = byte
                    continue
                }
                // Only the first alert of a record is read; it is the one that matters.
                withDirection(peer) {
                    $0.currentRecord = .skipped
                    $0.reader.skipRestOfRecord()
                }
                receiveAlert(TLSAlert(level: .init(code: alertLevel), descriptionCode: byte, sender: peer))
                return
            }
            withDirection(peer) { $0.currentRecord = .alert(level: level) }
        }
    }

    /// An alert sent in clear text (RFC 8446 §6).
    private mutating func receiveAlert(_ alert: TLSAlert) {
        if summary.alert == nil {
            summary.alert = alert
        }
        guard alert.endsConnection else { return }
        switch alert.level {
        case .fatal, .unknown:
            decide(established: false, failure: "\(alert.sender) sent fatal alert \(alert.descriptionName)")
        case .warning:
            decide(
                established: false,
                failure: "\(alert.sender) sent \(alert.descriptionName) before the TLS handshake completed"
            )
        }
    }

    /// The stream's first record was an SSLv2 CLIENT-HELLO or SERVER-HELLO (RFC 5246 §E.2).
    private mutating func receiveSSLv2Header(_ header: TLSSSLv2RecordHeader, from peer: TLSPeer) {
        switch peer {
        case .client:
            summary.clientHelloSeen = true
            summary.sslv2CompatibleClientHello = true
            summary.offeredVersions = [TLSProtocolVersion(rawValue: header.versionField).name]
            client.handshake = nil
        case .server:
            summary.serverHelloSeen = true
            summary.version = TLSProtocolVersion.sslv2.name
            noteUnparsed("server answered in SSLv2, which is not followed further")
            isFinished = true
        }
    }

    // MARK: - Handshake messages

    private mutating func receiveHandshakeFragment(_ fragment: ByteBuffer, from peer: TLSPeer) {
        withDirection(peer) { $0.handshake?.append(fragment) }
        while let output = withDirection(peer, { $0.handshake?.nextMessage() }) {
            switch output {
            case .message(let type, let body):
                receiveHandshakeMessage(type: type, body: body, from: peer)
            case .messageTooLong(let type, let length):
                noteUnparsed(
                    "\(peer) handshake message type \(type) of \(length) bytes exceeds "
                        + "\(TLSObserverDefaults.maximumHandshakeMessageLength)"
                )
                stopReadingHandshake(from: peer)
            }
        }
    }

    /// `enum { client_hello(1), server_hello(2), ... } HandshakeType;` (RFC 8446 §4)
    private mutating func receiveHandshakeMessage(type: UInt8, body: ByteBuffer, from peer: TLSPeer) {
        switch (peer, type) {
        case (.client, 1):
            summary.clientHelloSeen = true
            do {
                let hello = try TLSClientHello.parse(body)
                summary.sni = hello.serverName
                summary.offeredVersions =
                    hello.supportedVersions.isEmpty
                    ? [hello.legacyVersion.name] : hello.supportedVersions.map(\.name)
                summary.offeredApplicationProtocols = hello.applicationProtocols
            } catch {
                noteUnparsed("malformed ClientHello: \(error.reason)")
            }
            stopReadingHandshake(from: .client)

        case (.server, 0):
            // hello_request (TLS ≤ 1.2) may precede anything; it carries nothing.
            break

        case (.server, 2):
            summary.serverHelloSeen = true
            do {
                let hello = try TLSServerHello.parse(body)
                negotiatedVersion = hello.negotiatedVersion
                summary.version = hello.negotiatedVersion.name
                summary.cipher = hello.cipherSuite.name
                if hello.isHelloRetryRequest {
                    // The real ServerHello follows the client's second ClientHello.
                    summary.helloRetryRequest = true
                    return
                }
                finalServerHelloSeen = true
            } catch {
                noteUnparsed("malformed ServerHello: \(error.reason)")
            }
            stopReadingHandshake(from: .server)
            evaluateEstablished()

        case (.client, _), (.server, _):
            let expected = peer == .client ? "ClientHello" : "ServerHello"
            noteUnparsed("\(peer) sent handshake message type \(type) before its \(expected)")
            stopReadingHandshake(from: peer)
        }
    }

    private mutating func stopReadingHandshake(from peer: TLSPeer) {
        withDirection(peer) {
            $0.handshake = nil
            $0.currentRecord = .skipped
            $0.reader.skipRestOfRecord()
        }
    }

    // MARK: - Outcome

    /// Decides ``TLSSummary/established`` once both sides are seen to finish.
    private mutating func evaluateEstablished() {
        guard summary.established == nil else { return }
        if let negotiatedVersion, negotiatedVersion.usesTLS13Handshake {
            // RFC 8446 §2: after the ServerHello everything is application_data on the wire. The
            // client's first record may be its Finished or an encrypted alert rejecting the
            // certificate; a second record, or a server record after it, shows it finished.
            guard finalServerHelloSeen, client.applicationDataRecords > 0, server.applicationDataRecords > 0,
                client.applicationDataRecords > 1 || serverRecordsAfterClientApplicationData > 0
            else { return }
            decide(established: true, failure: nil)
        } else {
            // RFC 5246 §7.3: each side sends ChangeCipherSpec and then its encrypted Finished.
            guard client.handshakeRecordsAfterChangeCipherSpec > 0,
                server.handshakeRecordsAfterChangeCipherSpec > 0
            else { return }
            decide(established: true, failure: nil)
        }
    }

    /// Settles the outcome once; after that the observer ignores further bytes.
    private mutating func decide(established: Bool, failure: String?) {
        guard !isFinished, summary.established == nil else { return }
        summary.established = established
        summary.failure = failure
        isFinished = true
        // Nothing more will be read, so drop any partial hello.
        client.handshake = nil
        server.handshake = nil
    }

    private mutating func noteUnparsed(_ reason: String) {
        if summary.unparsedReason == nil {
            summary.unparsedReason = reason
        }
    }

    private mutating func withDirection<Result>(
        _ peer: TLSPeer,
        _ body: (inout Direction) -> Result
    ) -> Result {
        switch peer {
        case .client: body(&client)
        case .server: body(&server)
        }
    }
}
