import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// The `smtpscope` command (README "Command line"). Exit codes: 0 success, 1 runtime failure,
/// 2 usage error.
@main
struct SmtpScope: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smtpscope",
        abstract: "SMTP proxy and traffic inspector: transcripts, policy, and why mail did not get through.",
        version: SmtpScope.version,
        subcommands: [PcapCommand.self, ReportCommand.self, ShowCommand.self, ProxyCommand.self, RulesCommand.self, SinkCommand.self, TraceCommand.self, IndexCommand.self, PolicyCommand.self, ConsoleCommand.self]
    )

    /// Printed by `--version`.
    static let version = "smtpscope 0.1.0 (transcript schema smtpscope.session/1)"

    static func main() async {
        do {
            var command = try parseAsRoot()
            // `proxy` and `console` run their services in Swift concurrency; the others are synchronous.
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch let exit as ExitCode {
            Glibc.exit(exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            // ArgumentParser says 64 (EX_USAGE) for usage errors; smtpscope's contract says 2.
            FileHandleStandardError.write(fullMessage(for: error) + "\n" + "Run 'smtpscope help' for usage.\n")
            Glibc.exit(code == .validationFailure ? 2 : 1)
        }
    }
}

/// Unbuffered writes to standard error for diagnostics.
enum FileHandleStandardError {
    static func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { return }
            offset += written
        }
    }
}

/// A runtime failure: the message is printed, and the process exits 1.
struct RuntimeFailure: Error, CustomStringConvertible {
    var description: String
}

func fail(_ message: String) -> ExitCode {
    FileHandleStandardError.write("smtpscope: \(message)\n")
    return ExitCode(1)
}

/// A usage error found only when acting on it (a host name that does not resolve): exit 2.
func usageFailure(_ message: String) -> ExitCode {
    FileHandleStandardError.write("smtpscope: \(message)\n")
    return ExitCode(2)
}
