import Foundation
import NIOCore
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// What the CLI says about an error from a library, in the user's terms: what failed and what to do.
/// A library's own description (`bind(descriptor:ptr:bytes:): Address already in use) (errno: 98)`,
/// `NSCocoaErrorDomain Code=513`) names the library's insides, not the flag or file at fault.
enum ErrorDescription {
    /// Why listening on `address` (given with `flag`) failed, and how to fix it.
    static func listening(on address: String, flag: String, _ error: any Error) -> String {
        if let io = error as? IOError {
            let port = address.split(separator: ":").last.map(String.init) ?? "PORT"
            switch io.errnoCode {
            case EADDRINUSE:
                return "\(flag) \(address): the address is already in use; another process listens there (ss -ltnp 'sport = :\(port)' names it)"
            case EACCES:
                return "\(flag) \(address): permission denied; a port below 1024 needs root or CAP_NET_BIND_SERVICE"
            case EADDRNOTAVAIL:
                return "\(flag) \(address): no interface of this machine has that address"
            default:
                return "\(flag) \(address): \(String(cString: strerror(io.errnoCode)))"
            }
        }
        return "\(flag) \(address): \(describe(error))"
    }

    /// True when the error says a host name does not resolve: a usage error (exit 2).
    static func isUnknownHost(_ error: any Error) -> Bool {
        if error is SocketAddressError.UnknownHost { return true }
        if case .unknown? = error as? SocketAddressError { return true }
        return false
    }

    /// A library error in a few words, without its type names.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let unknown as SocketAddressError.UnknownHost:
            return "cannot resolve the host name \(unknown.host)"
        case let address as SocketAddressError:
            if case .unknown(let host, _) = address { return "cannot resolve the host name \(host)" }
            return "not a usable address (\(address))"
        case let io as IOError:
            return String(cString: strerror(io.errnoCode))
        case let tls as NIOSSLError:
            switch tls {
            case .failedToLoadCertificate: return "not a PEM certificate (or not readable)"
            case .failedToLoadPrivateKey: return "not a PEM private key (or not readable)"
            default: return "TLS set-up failed (\(tls))"
            }
        default:
            break
        }
        if let cocoa = error as? CocoaError {
            // Foundation's file errors: the path is named by the caller's flag already.
            switch cocoa.code {
            case .fileWriteNoPermission, .fileReadNoPermission: return "permission denied"
            case .fileNoSuchFile, .fileReadNoSuchFile: return "no such file or directory"
            case .fileWriteOutOfSpace: return "no space left on the device"
            case .fileWriteVolumeReadOnly: return "the file system is read-only"
            default:
                // Foundation wraps the system call's errno (ENOTDIR for a path through a file).
                if let underlying = cocoa.userInfo[NSUnderlyingErrorKey] as? any Error {
                    let posix = underlying as NSError
                    if posix.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(posix.code))) }
                }
                return cocoa.localizedDescription
            }
        }
        return "\(error)"
    }
}
