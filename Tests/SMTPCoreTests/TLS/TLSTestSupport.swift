import NIOCore
import SMTPCore

/// One chunk of a recorded or hand-built connection.
struct TLSChunk: Sendable {
    var peer: TLSPeer
    var bytes: [UInt8]

    static func client(_ bytes: [UInt8]) -> TLSChunk { TLSChunk(peer: .client, bytes: bytes) }
    static func server(_ bytes: [UInt8]) -> TLSChunk { TLSChunk(peer: .server, bytes: bytes) }
}

enum TLSTestSupport {
    /// Reads the `C hex` / `S hex` lines of ``TLSCapturedHandshakes``.
    static func chunks(fromFixture text: String) -> [TLSChunk] {
        text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let hex = bytes(fromHex: parts[1]) else { return nil }
            return TLSChunk(peer: parts[0] == "C" ? .client : .server, bytes: hex)
        }
    }

    static func bytes(fromHex hex: Substring) -> [UInt8]? {
        var result: [UInt8] = []
        result.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8?
        for character in hex.utf8 {
            guard let nibble = nibble(character) else { return nil }
            if let first = high {
                result.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return high == nil ? result : nil
    }

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Feeds the chunks in order, each whole, then closes as asked.
    static func observeWhole(_ chunks: [TLSChunk], closedBy closes: [TLSPeer] = []) -> TLSSummary {
        var observer = TLSHandshakeObserver()
        for chunk in chunks {
            feed(&observer, chunk.peer, ByteBuffer(bytes: chunk.bytes))
        }
        for peer in closes {
            observer.receiveClose(from: peer)
        }
        return observer.summary
    }

    /// Feeds the chunks in the same order but one byte at a time.
    static func observeDrip(_ chunks: [TLSChunk], closedBy closes: [TLSPeer] = []) -> TLSSummary {
        var observer = TLSHandshakeObserver()
        for chunk in chunks {
            for byte in chunk.bytes {
                feed(&observer, chunk.peer, ByteBuffer(bytes: [byte]))
            }
        }
        for peer in closes {
            observer.receiveClose(from: peer)
        }
        return observer.summary
    }

    /// Feeds each run of same-direction chunks as one buffer, as a reassembler might deliver them.
    static func observeCoalesced(_ chunks: [TLSChunk], closedBy closes: [TLSPeer] = []) -> TLSSummary {
        var merged: [TLSChunk] = []
        for chunk in chunks {
            if let last = merged.last, last.peer == chunk.peer {
                merged[merged.count - 1].bytes += chunk.bytes
            } else {
                merged.append(chunk)
            }
        }
        return observeWhole(merged, closedBy: closes)
    }

    private static func feed(_ observer: inout TLSHandshakeObserver, _ peer: TLSPeer, _ buffer: ByteBuffer) {
        switch peer {
        case .client: observer.receiveFromClient(buffer)
        case .server: observer.receiveFromServer(buffer)
        }
    }
}

/// Builders for hand-made TLS bytes (RFC 8446 presentation language).
enum TLSBytes {
    static func u16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
    static func u24(_ value: Int) -> [UInt8] {
        [UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }
    static func vector8(_ bytes: [UInt8]) -> [UInt8] { [UInt8(bytes.count)] + bytes }
    static func vector16(_ bytes: [UInt8]) -> [UInt8] { u16(UInt16(bytes.count)) + bytes }

    static func record(_ contentType: UInt8, version: UInt16 = 0x0303, _ fragment: [UInt8]) -> [UInt8] {
        [contentType] + u16(version) + u16(UInt16(fragment.count)) + fragment
    }

    static func handshake(_ type: UInt8, _ body: [UInt8]) -> [UInt8] {
        [type] + u24(body.count) + body
    }

    static func changeCipherSpec() -> [UInt8] { record(20, [1]) }

    static func alert(level: UInt8, description: UInt8) -> [UInt8] { record(21, [level, description]) }

    static func applicationData(_ count: Int = 32) -> [UInt8] { record(23, [UInt8](repeating: 0xA5, count: count)) }

    static func extensionBlock(_ type: UInt16, _ data: [UInt8]) -> [UInt8] { u16(type) + vector16(data) }

    static func clientHelloBody(
        legacyVersion: UInt16 = 0x0303,
        cipherSuites: [UInt16] = [0x1301, 0xC02F],
        serverName: String? = nil,
        supportedVersions: [UInt16]? = nil,
        applicationProtocols: [String] = [],
        extraExtensions: [UInt8] = []
    ) -> [UInt8] {
        var extensions: [UInt8] = []
        if let serverName {
            extensions += extensionBlock(0, vector16([0] + vector16(Array(serverName.utf8))))
        }
        if let supportedVersions {
            extensions += extensionBlock(43, vector8(supportedVersions.flatMap(u16)))
        }
        if !applicationProtocols.isEmpty {
            extensions += extensionBlock(16, vector16(applicationProtocols.flatMap { vector8(Array($0.utf8)) }))
        }
        extensions += extraExtensions
        return u16(legacyVersion) + [UInt8](repeating: 0x42, count: 32) + vector8([UInt8](repeating: 7, count: 32))
            + vector16(cipherSuites.flatMap(u16)) + vector8([0]) + vector16(extensions)
    }

    static func clientHelloRecord(_ body: [UInt8] = clientHelloBody(), recordVersion: UInt16 = 0x0301) -> [UInt8] {
        record(22, version: recordVersion, handshake(1, body))
    }

    static let helloRetryRequestRandom: [UInt8] = [
        0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
        0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
    ]

    static func serverHelloBody(
        legacyVersion: UInt16 = 0x0303,
        cipherSuite: UInt16,
        selectedVersion: UInt16? = nil,
        random: [UInt8] = [UInt8](repeating: 0x11, count: 32)
    ) -> [UInt8] {
        var extensions: [UInt8] = []
        if let selectedVersion {
            extensions += extensionBlock(43, u16(selectedVersion))
        }
        return u16(legacyVersion) + random + vector8([UInt8](repeating: 7, count: 32)) + u16(cipherSuite) + [0]
            + (extensions.isEmpty ? [] : vector16(extensions))
    }

    static func serverHelloRecord(_ body: [UInt8]) -> [UInt8] {
        record(22, handshake(2, body))
    }
}
