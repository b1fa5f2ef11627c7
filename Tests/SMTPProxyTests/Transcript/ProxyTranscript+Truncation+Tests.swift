import NIOCore
import SMTPCore
@testable import SMTPProxy
import SMTPTranscript
import Testing

/// A message cut at the size limit (issue 14): the record keeps what its header said, but no digest
/// of the part, which would name a message nobody sent, and no MIME findings caused by the cut.
@Suite struct ProxyTranscriptTruncationTests {
    typealias H = RelayHarness

    static func record(of h: H) -> SessionRecord {
        let start = Timestamp(microsecondsSinceEpoch: 1_000_000)
        var transcript = ProxyTranscript(sessionID: "01JD0000000000000000000000", start: start, client: nil, server: nil)
        for (index, event) in h.events.enumerated() {
            transcript.record(event, at: Timestamp(microsecondsSinceEpoch: 1_000_000 + Int64(index)))
        }
        return transcript.finish(at: Timestamp(microsecondsSinceEpoch: 2_000_000))
    }

    static let multipart = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\nSubject: big\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
        + String(repeating: "y", count: 70) + "\r\n"

    @Test func aMessageCutAtTheSizeLimitHasNoDigestAndNoMIMEFindings() {
        var configuration = RelayConfiguration()
        configuration.limits.maxMessageOctets = 200
        var h = H.inData(configuration: configuration)
        h.client(Self.multipart + String(repeating: String(repeating: "y", count: 70) + "\r\n", count: 10) + "--b1--\r\n.\r\n")
        #expect(h.takeClient() == "552 5.3.4 Error: message file too big\r\n")
        let record = Self.record(of: h)
        let message = record.transactions.first?.message
        #expect(message?.subject == "big")
        #expect(message?.sha256 == nil)
        let kinds = record.anomalies.map(\.kind)
        #expect(kinds == ["message_truncated"])
    }

    /// The control: the same message under the limit is read whole, digest included.
    @Test func aWholeMessageKeepsItsDigest() {
        var h = H.inData()
        h.client(Self.multipart + "--b1--\r\n.\r\n")
        h.upstream("250 2.0.0 queued\r\n")
        let record = Self.record(of: h)
        #expect(record.transactions.first?.message?.sha256?.count == 64)
        #expect(!record.anomalies.map(\.kind).contains("message_truncated"))
    }
}
