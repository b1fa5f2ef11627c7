import MailMessage

extension RuleMessageFacts {
    /// The `message` stage's facts from a MIME reading of the message. The one builder of message
    /// facts: the proxy gives it the spooled message's reading, `pcap --rules` and `rules test`
    /// the capture's, so both judge the same message alike.
    public init(_ summary: MessageSummary, size: Int?, bodyKept: Bool = true) {
        self.init()
        headers = summary.header.fields.map { (name: $0.name, value: $0.value) }
        subject = summary.subject
        from = summary.from.map(\.address)
        messageID = summary.messageID
        self.size = size ?? summary.size
        body = summary.bodyText
        bodyKnown = bodyKept
        attachments = summary.attachments
    }
}
