/// Lines of a record that are not text: the bytes of another protocol, ciphertext read as commands,
/// or a server quoting such bytes back in its reply. Printed as they are (even escaped) they are
/// noise that hides the dialogue, so a reader is shown their readable start and told what was left
/// out. A line with a few terminal controls (an escape sequence tried on purpose) is not binary: it
/// is escaped where printed, so the attempt stays visible.
public enum NotText {
    /// More terminal controls than this in one line make it binary rather than text.
    static let maxControlsInText = 3

    /// The line as shown to a person: nil when it is text, else its readable start followed by
    /// "[N characters that are not text]". Control characters left in the start are the caller's
    /// to escape.
    public static func summary(of line: String) -> String? {
        var controls = 0
        var binary = false
        var firstBad: String.UnicodeScalarView.Index?
        let scalars = line.unicodeScalars
        for index in scalars.indices {
            let scalar = scalars[index]
            let isReplacement = scalar == "\u{FFFD}"
            guard isReplacement || isControl(scalar) else { continue }
            if isReplacement || !isTerminalControl(scalar) { binary = true } else { controls += 1 }
            if firstBad == nil { firstBad = index }
        }
        guard let firstBad, binary || controls > maxControlsInText else { return nil }
        let start = String(scalars[..<firstBad])
        let left = scalars.distance(from: firstBad, to: scalars.endIndex)
        let note = "[\(left) character\(left == 1 ? "" : "s") that \(left == 1 ? "is" : "are") not text]"
        return start.isEmpty ? note : start + note
    }

    /// C0 controls other than HT, DEL and C1 controls.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09: false
        case 0x00..<0x20, 0x7F...0x9F: true
        default: false
        }
    }

    /// Controls with a meaning on a terminal (BEL, BS, CR, FF, ESC): a few of them are an attempt
    /// on the reader's terminal, escaped where printed; any other control is a sign of binary.
    static func isTerminalControl(_ scalar: Unicode.Scalar) -> Bool {
        [0x07, 0x08, 0x0C, 0x0D, 0x1B].contains(scalar.value)
    }
}
