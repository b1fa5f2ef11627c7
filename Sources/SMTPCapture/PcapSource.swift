import CPcap
import TCPReassembly

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a capture could not be opened or read.
public enum PcapError: Error, Hashable, Sendable, CustomStringConvertible {
    case fileNotFound(path: String)
    case permissionDenied(path: String)
    /// The file is neither pcap nor pcapng (nor a gzip-compressed one of those).
    case notACaptureFile(path: String)
    /// The file ends in the middle of a packet or block. Every complete packet before that point was
    /// delivered, so this is a warning about the tail, not a loss of what was read.
    case truncatedFile(path: String, packetsRead: Int)
    /// The capture's link type is not one `TCPReassembly.LinkType.supported` lists.
    case unsupportedLinkType(Int32, name: String?)
    /// pcap_compile rejected the BPF filter; `message` is libpcap's.
    case invalidFilter(String, message: String)
    /// Any other failure to open a file or interface; `message` is libpcap's or the system's.
    case cannotOpen(String, message: String)
    /// libpcap failed while reading.
    case readFailed(String, message: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): file not found"
        case .permissionDenied(let path):
            return "\(path): permission denied"
        case .notACaptureFile(let path):
            return "\(path): not a pcap or pcapng file"
        case .truncatedFile(let path, let packetsRead):
            return "\(path): file is truncated; \(packetsRead) complete packets were read before the cut"
        case .unsupportedLinkType(let value, let name):
            let supported = LinkType.supported.sorted().map(String.init).joined(separator: ", ")
            return "unsupported link type \(value)\(name.map { " (\($0))" } ?? ""); supported: \(supported)"
        case .invalidFilter(let filter, let message):
            return "invalid capture filter \"\(filter)\": \(message)"
        case .cannotOpen(let source, let message):
            return "\(source): \(message)"
        case .readFailed(let source, let message):
            return "\(source): read error: \(message)"
        }
    }
}

/// A stop request for `PcapSource.forEachPacket`, safe to set from another thread or a signal handler.
public final class PcapStopFlag: @unchecked Sendable {
    // Accessed only through the C atomic builtins in shim.h; never freed before the flag is.
    private let storage: UnsafeMutablePointer<Int32>

    public init() {
        storage = .allocate(capacity: 1)
        storage.initialize(to: 0)
    }

    deinit {
        storage.deallocate()
    }

    /// Asks the read loop to stop; it returns within about `PcapSource.liveReadTimeoutMilliseconds`.
    public func requestStop() {
        smtpscope_flag_set(storage)
    }

    public var isStopRequested: Bool {
        smtpscope_flag_get(storage) != 0
    }
}

/// Packets from a capture file (pcap or pcapng, optionally gzip-compressed) or a live interface,
/// read through libpcap (https://www.tcpdump.org/manpages/pcap.3pcap.html). This is the only file of
/// the project that touches libpcap.
public final class PcapSource {
    /// Bytes captured per packet on a live interface: enough for the largest offloaded segment.
    public static let liveSnapshotLength: Int32 = 262_144
    /// How long a live read waits for packets before checking the stop flag again.
    public static let liveReadTimeoutMilliseconds: Int32 = 250

    private let handle: OpaquePointer
    private let gzip: gzFile?
    private let name: String
    private let isFile: Bool

    /// The link type as `pcap_datalink` reports it; see `TCPReassembly.LinkType`.
    public let linkType: Int32
    /// libpcap's name for the link type (`EN10MB`), if it has one.
    public let linkTypeName: String?
    /// Size of the capture file on disk; nil for a live capture.
    public let fileSize: Int64?
    /// Set it (from any thread) to make `forEachPacket` return early.
    public let stopFlag: PcapStopFlag
    /// Packets delivered so far.
    public private(set) var packetsRead = 0

    private init(handle: OpaquePointer, gzip: gzFile?, name: String, isFile: Bool, fileSize: Int64?, stopFlag: PcapStopFlag) {
        self.handle = handle
        self.gzip = gzip
        self.name = name
        self.isFile = isFile
        self.fileSize = fileSize
        self.stopFlag = stopFlag
        self.linkType = pcap_datalink(handle)
        self.linkTypeName = pcap_datalink_val_to_name(pcap_datalink(handle)).map { String(cString: $0) }
    }

    deinit {
        // Closes the FILE too, and through it the zlib stream.
        pcap_close(handle)
    }

    /// Whether `TCPReassembly.PacketDecoder` understands this capture's link type.
    public var isLinkTypeSupported: Bool { LinkType.supported.contains(linkType) }

    /// Throws `.unsupportedLinkType` unless the link type is supported.
    public func checkLinkType() throws(PcapError) {
        guard isLinkTypeSupported else { throw .unsupportedLinkType(linkType, name: linkTypeName) }
    }

    /// Bytes of the file consumed so far (compressed bytes for a gzip file), for a progress display;
    /// 0 for a live capture.
    public var bytesRead: Int64 {
        guard isFile else { return 0 }
        return max(0, smtpscope_capture_file_offset(pcap_file(handle), gzip))
    }

    /// Packets the kernel or libpcap dropped on a live capture (`pcap_stats`); nil for a file.
    public var packetsDropped: Int? {
        guard !isFile else { return nil }
        var stats = pcap_stat()
        guard pcap_stats(handle, &stats) == 0 else { return nil }
        return Int(stats.ps_drop) + Int(stats.ps_ifdrop)
    }

    /// Opens a capture file. Timestamps are read with microsecond precision, whatever the file's
    /// (nanosecond pcaps are converted by libpcap).
    public static func openFile(path: String, filter: String? = nil, stopFlag: PcapStopFlag = PcapStopFlag())
        throws(PcapError) -> PcapSource
    {
        let opened = smtpscope_open_capture_file(path)
        guard let stream = opened.stream else {
            switch opened.error {
            case ENOENT, ENOTDIR: throw .fileNotFound(path: path)
            case EACCES, EPERM: throw .permissionDenied(path: path)
            default: throw .cannotOpen(path, message: String(cString: strerror(opened.error)))
            }
        }
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        let handle = pcap_fopen_offline_with_tstamp_precision(
            stream,
            UInt32(PCAP_TSTAMP_PRECISION_MICRO),
            &errorBuffer
        )
        guard let handle else {
            fclose(stream)
            let message = errorText(errorBuffer)
            // libpcap says "truncated dump file" when even the file header is cut short.
            if message.contains("truncated"), opened.size >= 24 || opened.gzip != nil {
                throw .truncatedFile(path: path, packetsRead: 0)
            }
            throw .notACaptureFile(path: path)
        }
        let source = PcapSource(
            handle: handle,
            gzip: opened.gzip,
            name: path,
            isFile: true,
            fileSize: opened.size,
            stopFlag: stopFlag
        )
        if let filter { try source.setFilter(filter) }
        return source
    }

    /// Starts a live capture on `interface`: not promiscuous, immediate delivery, an optional BPF
    /// filter (pcap-filter(7) syntax).
    public static func openLive(interface: String, filter: String?, stopFlag: PcapStopFlag = PcapStopFlag())
        throws(PcapError) -> PcapSource
    {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let handle = pcap_create(interface, &errorBuffer) else {
            throw .cannotOpen(interface, message: errorText(errorBuffer))
        }
        pcap_set_snaplen(handle, liveSnapshotLength)
        pcap_set_promisc(handle, 0)
        pcap_set_immediate_mode(handle, 1)
        pcap_set_timeout(handle, liveReadTimeoutMilliseconds)
        pcap_set_tstamp_precision(handle, Int32(PCAP_TSTAMP_PRECISION_MICRO))
        let status = pcap_activate(handle)
        if status < 0 {
            let detail = String(cString: pcap_geterr(handle))
            let statusText = String(cString: pcap_statustostr(status))
            pcap_close(handle)
            switch status {
            case PCAP_ERROR_PERM_DENIED:
                throw .cannotOpen(interface, message: "permission denied (capturing needs root or CAP_NET_RAW): \(detail)")
            case PCAP_ERROR_NO_SUCH_DEVICE:
                throw .cannotOpen(interface, message: "no such capture device")
            default:
                throw .cannotOpen(interface, message: detail.isEmpty ? statusText : detail)
            }
        }
        let source = PcapSource(
            handle: handle,
            gzip: nil,
            name: interface,
            isFile: false,
            fileSize: nil,
            stopFlag: stopFlag
        )
        if let filter { try source.setFilter(filter) }
        // In immediate mode a blocking read can wait forever on a quiet interface (libpcap 1.10 on
        // Linux ignores the timeout then), so reads are non-blocking and the loop polls with a timeout.
        guard pcap_setnonblock(handle, 1, &errorBuffer) == 0 else {
            throw .cannotOpen(interface, message: errorText(errorBuffer))
        }
        return source
    }

    /// The NUL-terminated message libpcap wrote into an error buffer.
    private static func errorText(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func setFilter(_ filter: String) throws(PcapError) {
        var program = bpf_program()
        guard pcap_compile(handle, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            throw .invalidFilter(filter, message: String(cString: pcap_geterr(handle)))
        }
        defer { pcap_freecode(&program) }
        guard pcap_setfilter(handle, &program) == 0 else {
            throw .invalidFilter(filter, message: String(cString: pcap_geterr(handle)))
        }
    }

    /// Calls `body` for each packet with its capture time (microseconds since the epoch), its captured
    /// bytes (valid only during the call) and its original length on the wire. Returns when the file
    /// ends, `body` returns false, or a stop is requested.
    ///
    /// - Throws: `.truncatedFile` after delivering every complete packet of a file that is cut short;
    ///   `.readFailed` for other libpcap errors.
    public func forEachPacket(
        _ body: (_ timestampMicros: Int64, _ packet: UnsafeRawBufferPointer, _ originalLength: Int) -> Bool
    ) throws(PcapError) {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        while !stopFlag.isStopRequested {
            let status = pcap_next_ex(handle, &header, &data)
            switch status {
            case 1:
                guard let header, let data else { continue }
                let time = Int64(header.pointee.ts.tv_sec) * 1_000_000 + Int64(header.pointee.ts.tv_usec)
                let packet = UnsafeRawBufferPointer(start: data, count: Int(header.pointee.caplen))
                packetsRead += 1
                if !body(time, packet, Int(header.pointee.len)) { return }
            case 0:
                // Nothing to read on a live capture: wait a little, then check the stop flag again.
                waitForPackets()
            case PCAP_ERROR_BREAK:
                // End of file, or pcap_breakloop.
                return
            default:
                let message = String(cString: pcap_geterr(handle))
                if isFile, message.contains("truncated") {
                    throw .truncatedFile(path: name, packetsRead: packetsRead)
                }
                throw .readFailed(name, message: message)
            }
        }
    }

    private func waitForPackets() {
        let descriptor = pcap_get_selectable_fd(handle)
        guard descriptor >= 0 else { return }
        var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        _ = poll(&request, 1, Self.liveReadTimeoutMilliseconds)
    }
}

@available(*, unavailable)
extension PcapSource: Sendable {}
