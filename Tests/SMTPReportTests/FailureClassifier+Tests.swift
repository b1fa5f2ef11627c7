import Testing

@testable import SMTPReport

/// Real reply texts from real servers, and the cause a postmaster would file each under.
struct ClassifierCase: CustomTestStringConvertible, Sendable {
    var stage: String
    var code: Int
    var enhanced: String?
    var text: String
    var expected: FailureCause

    init(_ stage: String, _ code: Int, _ enhanced: String?, _ text: String, _ expected: FailureCause) {
        self.stage = stage
        self.code = code
        self.enhanced = enhanced
        self.text = text
        self.expected = expected
    }

    var testDescription: String { "\(code) \(enhanced ?? "-") \(text.prefix(50))" }
}

let realReplies: [ClassifierCase] = [
    // Postfix
    .init("rcpt", 550, "5.1.1", "<x@example.net>: Recipient address rejected: User unknown in local recipient table", .mailboxUnknown),
    .init("rcpt", 550, "5.1.1", "<x@example.net>: Recipient address rejected: User unknown in virtual mailbox table", .mailboxUnknown),
    .init("rcpt", 554, "5.7.1", "<x@example.org>: Relay access denied", .relayDenied),
    .init("rcpt", 553, "5.7.1", "<a@example.com>: Sender address rejected: not logged in", .authenticationRequired),
    .init("rcpt", 554, "5.7.1", "Client host rejected: Access denied", .policyRejection),
    .init("rcpt", 450, "4.7.1", "Client host rejected: cannot find your hostname, [203.0.113.7]", .policyRejection),
    .init("rcpt", 554, "5.7.1", "Service unavailable; Client host [203.0.113.7] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/203.0.113.7", .blocklisted),
    .init("rcpt", 450, "4.2.0", "<x@example.net>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.net.html", .greylisted),
    .init("end-of-data", 552, "5.3.4", "Message size exceeds fixed limit", .messageTooLarge),
    .init("data", 554, "5.5.1", "Error: improper command pipelining after DATA from client[192.0.2.10]", .pipeliningMisuse),
    .init("rcpt", 452, "4.5.3", "Error: too many recipients", .rateLimited),
    .init("rcpt", 450, "4.1.8", "<a@nonexistent.example>: Sender address rejected: Domain not found", .senderRejected),
    .init("helo", 504, "5.5.2", "<localhost>: Helo command rejected: need fully-qualified hostname", .policyRejection),
    .init("rcpt", 503, "5.5.1", "Error: need MAIL command", .protocolError),
    .init("connect", 421, "4.7.0", "mx.example.net Error: too many connections from 203.0.113.7", .rateLimited),
    .init("data", 421, "4.4.2", "mx.example.net Error: timeout exceeded", .timeout),
    .init("mail", 530, "5.7.0", "Must issue a STARTTLS command first", .tlsRequired),
    .init("auth", 535, "5.7.8", "Error: authentication failed: authentication failure", .authenticationFailed),
    .init("rcpt", 452, "4.2.2", "<x@example.net>: Recipient address rejected: Mailbox full", .mailboxFull),
    // Exim
    .init("rcpt", 550, nil, "Unrouteable address", .mailboxUnknown),
    .init("rcpt", 550, nil, "relay not permitted", .relayDenied),
    .init("rcpt", 550, nil, "Verification failed for <a@example.com>\nUnrouteable address\nSender verify failed", .policyRejection),
    .init("data", 554, nil, "SMTP synchronization error", .pipeliningMisuse),
    .init("rcpt", 550, nil, "rejected because 203.0.113.7 is in a black list at zen.spamhaus.org", .blocklisted),
    .init("end-of-data", 552, nil, "Message size exceeds maximum permitted", .messageTooLarge),
    .init("rcpt", 451, nil, "Temporary local problem - please try later", .serviceUnavailable),
    .init("end-of-data", 550, nil, "This message was classified as SPAM and may not be delivered", .contentRejected),
    .init("end-of-data", 550, nil, "This message contains a virus (Eicar-Test-Signature) and has been rejected", .contentRejected),
    // Exchange / Microsoft 365
    .init("mail", 530, "5.7.1", "Client was not authenticated", .authenticationRequired),
    .init("connect", 550, "5.7.708", "Service unavailable. Access denied, traffic not accepted from this IP.", .blocklisted),
    .init("rcpt", 550, "5.7.606", "Access denied, banned sending IP [203.0.113.7]. To request removal from this list please visit https://sender.office.com/", .blocklisted),
    .init("rcpt", 550, "5.7.1", "Unfortunately, messages from [203.0.113.7] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3140).", .blocklisted),
    .init("mail", 530, "5.7.57", "Client not authenticated to send mail. [AM0PR01CA0001.eurprd01.prod.exchangelabs.com]", .authenticationRequired),
    .init("rcpt", 550, "5.1.10", "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", .mailboxUnknown),
    .init("rcpt", 550, "5.7.1", "Unable to relay", .relayDenied),
    .init("connect", 451, "4.7.500", "Server busy. Please try again later from [203.0.113.7].", .rateLimited),
    // Gmail
    .init("end-of-data", 550, "5.7.26", "Unauthenticated email from example.com is not accepted due to domain's\nDMARC policy. Please contact the administrator of example.com domain if\nthis was a legitimate mail.", .dmarcFailure),
    .init("end-of-data", 550, "5.7.26", "This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked. The sender must authenticate with at least one of SPF or DKIM.", .dmarcFailure),
    .init("end-of-data", 421, "4.7.28", "Our system has detected an unusual rate of unsolicited mail originating from your IP address.", .rateLimited),
    .init("end-of-data", 550, "5.7.25", "The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not point to the sending IP.", .policyRejection),
    .init("rcpt", 450, "4.2.1", "The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.", .rateLimited),
    .init("rcpt", 552, "5.2.2", "The email account that you tried to reach is over quota and inactive.", .mailboxFull),
    .init("rcpt", 550, "5.1.1", "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces.", .mailboxUnknown),
    .init("end-of-data", 552, "5.3.4", "Your message exceeded Google's message size limits.", .messageTooLarge),
    .init("end-of-data", 550, "5.7.1", "Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked.", .contentRejected),
    .init("end-of-data", 550, "5.7.23", "The message was not sent because the SPF check failed for example.com.", .spfFailure),
    .init("end-of-data", 550, "5.7.20", "No passing DKIM signature found.", .dkimFailure),
    .init("mail", 530, "5.7.0", "Authentication Required. Learn more at https://support.google.com/mail/?p=WantAuthError", .authenticationRequired),
    .init("auth", 535, "5.7.8", "Username and Password not accepted. Learn more at https://support.google.com/mail/?p=BadCredentials", .authenticationFailed),
    // Yahoo / AOL
    .init("connect", 421, "4.7.0", "[TSS04] Messages from 203.0.113.7 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes", .rateLimited),
    .init("rcpt", 553, "5.7.1", "[BL21] Connections will not be accepted from 203.0.113.7, because the ip is in Spamhaus's list; see https://postmaster.yahooinc.com/error-codes", .blocklisted),
    .init("rcpt", 553, "5.7.1", "<a@example.com>: Sender address rejected: not logged in", .authenticationRequired),
    // Yahoo's reputation deferral, sent without a reply code (suricata-verify smtp-errors/smtperr.pcap).
    .init("end-of-data", 0, "4.7.0", "[IPTS04] Messages from 173.166.146.112 temporarily deferred due to user complaints - 4.16.55.1", .blocklisted),
    // Postfix reject_sender_login_mismatch: the login may not use this sender, nothing about DNS.
    .init("rcpt", 553, "5.7.1", "<bob@example.com>: Sender address rejected: not owned by user alice", .senderLoginMismatch),
    .init("end-of-data", 521, "5.2.1", "AOL will not accept delivery of this message.", .contentRejected),
    .init("end-of-data", 521, "5.2.1", "IMAGE PUZZLE", .contentRejected),
    .init("rcpt", 554, "5.7.9", "Message not accepted for policy reasons. See https://postmaster.yahooinc.com/error-codes", .authenticationFailed),
    // Codes alone, and replies outside the standard
    .init("rcpt", 550, nil, "No", .mailboxUnknown),
    .init("connect", 421, nil, "Try again", .serviceUnavailable),
    .init("rcpt", 599, nil, "Computer says no", .nonStandardReply),
    .init("rcpt", 550, "4.7.1", "Go away", .nonStandardReply),
    .init("end-of-data", 554, "5.6.0", "Message content not acceptable", .contentRejected),
    .init("mail", 550, "5.7.0", "Sender denied", .policyRejection),
]

@Suite struct FailureClassifierTests {
    @Test(arguments: realReplies)
    func classifiesRealServerReplies(_ reply: ClassifierCase) {
        let cause = FailureClassifier.classify(stage: reply.stage, code: reply.code, enhanced: reply.enhanced, text: reply.text)
        #expect(cause == reply.expected)
    }

    @Test func hasAtLeastFortyRealReplies() {
        #expect(realReplies.count >= 40)
    }

    @Test func matchesTextCaseInsensitively() {
        #expect(FailureClassifier.classify(stage: "rcpt", code: 554, enhanced: nil, text: "RELAY ACCESS DENIED") == .relayDenied)
    }

    @Test func decisiveEnhancedCodeWinsOverText() {
        // 5.2.2 names the cause even when the text mentions "user unknown".
        #expect(FailureClassifier.classify(stage: "rcpt", code: 552, enhanced: "5.2.2", text: "user unknown or full") == .mailboxFull)
    }

    @Test func scansOnlyABoundedPrefixOfHugeTexts() {
        let text = String(repeating: "x", count: 100_000) + " user unknown"
        #expect(FailureClassifier.classify(stage: "mail", code: 451, enhanced: nil, text: text) == .other)
    }

    @Test(arguments: FailureCause.allCases)
    func everyCauseHasAOneLineHint(_ cause: FailureCause) {
        #expect(!cause.hint.isEmpty)
        #expect(!cause.hint.contains("\n"))
        #expect(!cause.label.isEmpty)
    }
}
