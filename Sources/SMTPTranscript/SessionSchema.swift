import Foundation

/// The normative JSON Schema (draft 2020-12) of `smtpscope.session/1`, shipped as a resource so the
/// CLI can print or install it next to the transcripts it writes.
public enum SessionSchema {
    /// Where the schema file lies in the module's resource bundle.
    public static var url: URL? {
        Bundle.module.url(forResource: "session.v1.schema", withExtension: "json")
    }
}
