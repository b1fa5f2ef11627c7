import Foundation
import NIOCore
import Testing

@testable import MailMessage

/// Feeds `message` to a fresh inspector in chunks of `chunkSize` octets (all at once when nil).
func inspect(_ message: [UInt8], chunkSize: Int? = nil, limits: MessageLimits = MessageLimits()) -> MessageSummary {
    var inspector = MessageInspector(limits: limits)
    let step = chunkSize ?? max(1, message.count)
    var start = 0
    while start < message.count {
        let end = min(start + step, message.count)
        inspector.receive(ByteBuffer(bytes: message[start..<end]))
        start = end
    }
    return inspector.finish()
}

func inspect(_ message: String, chunkSize: Int? = nil, limits: MessageLimits = MessageLimits()) -> MessageSummary {
    inspect(Array(message.utf8), chunkSize: chunkSize, limits: limits)
}

/// Inspects whole and one octet at a time, expects both to agree, and returns the summary.
func inspectWholeAndDripped(
    _ message: [UInt8],
    limits: MessageLimits = MessageLimits(),
    sourceLocation: SourceLocation = #_sourceLocation
) -> MessageSummary {
    let whole = inspect(message, limits: limits)
    let dripped = inspect(message, chunkSize: 1, limits: limits)
    #expect(whole == dripped, sourceLocation: sourceLocation)
    return whole
}

func inspectWholeAndDripped(
    _ message: String,
    limits: MessageLimits = MessageLimits(),
    sourceLocation: SourceLocation = #_sourceLocation
) -> MessageSummary {
    inspectWholeAndDripped(Array(message.utf8), limits: limits, sourceLocation: sourceLocation)
}

/// Joins lines with CRLF and ends with CRLF, as message content arrives from DATA.
func crlf(_ lines: String...) -> String {
    lines.joined(separator: "\r\n") + "\r\n"
}

func fixture(_ name: String) throws -> [UInt8] {
    let url = try #require(Bundle.module.url(forResource: name, withExtension: "eml", subdirectory: "Fixtures"))
    return Array(try Data(contentsOf: url))
}

extension MessageSummary {
    func hasAnomaly(_ kind: String) -> Bool {
        anomalies.contains { $0.kind == kind }
    }
}
