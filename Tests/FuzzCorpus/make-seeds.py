#!/usr/bin/env python3
"""Writes the hand-made seeds of Tests/FuzzCorpus (README, "Fuzzing and sanitizers"): the hostile-input
cases (README, Security) for SMTPCoreFuzzer and RelayFuzzer, message samples for MailMessageFuzzer and
the shipped rules for RulesFuzzer. Chunks are joined by the marker FuzzInput.marker. Run from the
repository root; seeds the fuzzers found themselves (hash names) are kept as they are."""
import glob
import os

MARKER = bytes([0xF0, 0x0D, 0xCA, 0xFE])
ROOT = "Tests/FuzzCorpus"


def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


def joined(chunks):
    return MARKER.join(chunks)


P = b"MAIL FROM:<s@x>\r\nRCPT TO:<v@y>\r\nDATA\r\n\r\nsmuggled\r\n.\r\n"
HEAD = b"From: a@x\r\nSubject: hi\r\n\r\nbody\r\n"
# Hostile-input cases 1-4 and 6: content, then the client's end of data.
CONTENT = {
    "01-lf-dot-lf": HEAD + b"\n.\n" + P,
    "02-lf-dot-crlf": HEAD + b"\n.\r\n" + P,
    "02-crlf-dot-lf": HEAD + b"\r\n.\n" + P,
    "03-cr-dot-cr": HEAD + b"\r.\r" + P,
    "03-cr-dot-lf": HEAD + b"\r.\n" + P,
    "03-lf-dot-cr": HEAD + b"\n.\r" + P,
    "03-cr-dot-crlf": HEAD + b"\r.\r\n" + P,
    "04-nul-before-dot": HEAD + b"\r\n\0.\r\n" + P,
    "04-nul-after-dot": HEAD + b"\r\n.\0\r\n" + P,
    "06-dot-stuffed": HEAD + b"..foo\r\n.\r\n\r\n",
    "plain": HEAD + b"\r\n",
}
END = b".\r\n"

GREETING = b"220 up ESMTP\r\n"
EHLO_REPLY = b"250-up\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250-SIZE 1000000\r\n250-STARTTLS\r\n250-XCLIENT ADDR PORT NAME HELO PROTO\r\n250 AUTH PLAIN LOGIN\r\n"


def relay(flags, pairs):
    """pairs: (upstream, client) in order; the upstream speaks first."""
    chunks = []
    for upstream, client in pairs:
        chunks += [upstream, client]
    return bytes([flags]) + joined(chunks)


def cut_through(content, flags=0x00):
    return relay(flags, [
        (GREETING, b"EHLO c\r\n"), (EHLO_REPLY, b"MAIL FROM:<a@x>\r\n"), (b"250 ok\r\n", b"RCPT TO:<b@y>\r\n"),
        (b"250 ok\r\n", b"DATA\r\n"), (b"354 go\r\n", content + END), (b"250 queued\r\n", b"QUIT\r\n"), (b"221 bye\r\n", b""),
    ])


def spooled(content, flags=0x01):
    # With message rules the proxy answers DATA itself and sends DATA upstream after the end of data.
    return relay(flags, [
        (GREETING, b"EHLO c\r\n"), (EHLO_REPLY, b"MAIL FROM:<a@x>\r\n"), (b"250 ok\r\n", b"RCPT TO:<b@y>\r\n"),
        (b"250 ok\r\n", b"DATA\r\n"), (b"", content + END), (b"354 go\r\n", b""), (b"250 queued\r\n", b"QUIT\r\n"), (b"221 bye\r\n", b""),
    ])


def core(client_then_server):
    return joined(client_then_server)


for name, content in CONTENT.items():
    write("RelayFuzzer", f"security-{name}", cut_through(content))
    write("RelayFuzzer", f"security-{name}-spooled", spooled(content))
    write("SMTPCoreFuzzer", f"security-{name}", core([
        b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", GREETING + b"250 up\r\n250 ok\r\n250 ok\r\n354 go\r\n",
        content + END, b"250 queued\r\n"]))
    # SMTPCoreHarness also reads the whole input as DATA content and as BDAT octets.
    write("SMTPCoreFuzzer", f"content-{name}", joined([content[:len(content) // 2], content[len(content) // 2:] + END]))

# Edited spooled messages: the fixed rule set edits headers when the subject holds "x".
write("RelayFuzzer", "spooled-edits", spooled(b"From: a@x\r\nSubject: x marks\r\nX-Remove: 1\r\n\r\n.body\r\n"))
write("RelayFuzzer", "spooled-discard", spooled(b"Subject: discard\r\n\r\nb\r\n"))
write("RelayFuzzer", "spooled-quarantine", spooled(b"Subject: quarantine\r\n\r\nb\r\n"))
write("RelayFuzzer", "spooled-redirect", spooled(b"Subject: redirect\r\n\r\nb\r\n"))
write("RelayFuzzer", "spooled-refuse", spooled(b"Subject: y\r\n\r\nrefuse\r\n"))
# Row 7: content before 354, a command before the greeting.
write("RelayFuzzer", "security-07-early-content", relay(0, [
    (GREETING, b"EHLO c\r\n"), (EHLO_REPLY, b"MAIL FROM:<a@x>\r\n"), (b"250 ok\r\n", b"RCPT TO:<b@y>\r\n"),
    (b"250 ok\r\n", b"DATA\r\nSubject: early\r\n\r\n.\r\n"), (b"354 go\r\n", b""), (b"250 ok\r\n", b"")]))
write("RelayFuzzer", "security-07-before-greeting", bytes([0]) + joined([b"", b"EHLO c\r\n", GREETING]))
# Row 8: the upstream refuses DATA while the client streams content.
write("RelayFuzzer", "security-08-data-refused", relay(0, [
    (GREETING, b"EHLO c\r\n"), (EHLO_REPLY, b"MAIL FROM:<a@x>\r\n"), (b"250 ok\r\n", b"RCPT TO:<b@y>\r\n"),
    (b"250 ok\r\n", b"DATA\r\n"), (b"554 no\r\n", b"RSET\r\nMAIL FROM:<s@x>\r\n.\r\n"), (b"250 ok\r\n250 ok\r\n", b"QUIT\r\n")]))
# Row 9: long command lines with the small limits (flag 0x10).
write("RelayFuzzer", "security-09-long-line", relay(0x10, [
    (GREETING, b"EHLO " + b"a" * 100 + b"\r\nEHLO c\r\n"), (EHLO_REPLY, b"NOOP\r\n")]))
# Row 11: SIZE.
write("RelayFuzzer", "security-11-size", relay(0, [
    (GREETING, b"EHLO c\r\n"), (EHLO_REPLY, b"MAIL FROM:<a@x> SIZE=99999999999999999999\r\nMAIL FROM:<a@x> SIZE=abc\r\nMAIL FROM:<a@x> SIZE=10\r\n"),
    (b"250 ok\r\n", b"RCPT TO:<b@y>\r\n"), (b"250 ok\r\n", b"DATA\r\n"), (b"354 go\r\n", b"x" * 50 + b"\r\n.\r\n"), (b"250 ok\r\n", b"")]))
# Row 17: BDAT.
for name, client in {
    "17-bdat-last": b"BDAT 12 LAST\r\nSubject: b\r\n\r\n",
    "17-bdat-chunks": b"BDAT 10\r\n0123456789BDAT 5 LAST\r\n\r\n.\r\n",
    "17-bdat-short": b"BDAT 10\r\n" + b"x" * 20 + b"\r\n",
    "17-bdat-overflow": b"BDAT 18446744073709551616\r\nBDAT -1\r\nBDAT 0\r\nDATA\r\n",
    "17-bdat-bare-lf": b"BDAT 9 LAST\r\nab\n.\ncd\r\n",
}.items():
    for flags, suffix in [(0, ""), (1, "-spooled")]:
        write("RelayFuzzer", f"security-{name}{suffix}", relay(flags, [
            (GREETING, b"EHLO c\r\n"), (EHLO_REPLY, b"MAIL FROM:<a@x>\r\n"), (b"250 ok\r\n", b"RCPT TO:<b@y>\r\n"),
            (b"250 ok\r\n", client), (b"354 go\r\n", b""), (b"250 ok\r\n", b"QUIT\r\n"), (b"221 bye\r\n", b"")]))
# Row 17 with an upstream that offers CHUNKING: each chunk relayed raw as BDAT, then the proxy's LAST.
CHUNKED = b".a\r\n..b\r\n\r\n"
write("RelayFuzzer", "security-17-chunking-pipelined", relay(0, [
    (GREETING, b"EHLO c\r\n"), (EHLO_REPLY, b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"), (b"250 ok\r\n250 ok\r\n",
     b"BDAT 10\r\n0123456789BDAT %d LAST\r\n" % len(CHUNKED) + CHUNKED), (b"250 ok\r\n250 ok\r\n250 queued\r\n", b"QUIT\r\n"),
    (b"221 bye\r\n", b"")]))
write("RelayFuzzer", "security-17-chunking-refused", relay(0, [
    (GREETING, b"EHLO c\r\n"), (EHLO_REPLY, b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"), (b"250 ok\r\n250 ok\r\n", b"BDAT 4\r\nab\r\n"),
    (b"554 no\r\n", b"BDAT 4 LAST\r\ncd\r\nRSET\r\n"), (b"250 ok\r\n250 ok\r\n", b"")]))
# An upstream without PIPELINING (RFC 2920 §3.1): the client's group goes one command at a time, and
# BDAT goes as DATA even though the upstream offers CHUNKING.
UNPIPELINED_EHLO = b"250-up\r\n250 CHUNKING\r\n"
write("RelayFuzzer", "unpipelined-upstream", relay(0, [
    (GREETING, b"EHLO c\r\n"), (UNPIPELINED_EHLO, b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nNOOP\r\nRCPT TO:<c@y>\r\nBDAT 4 LAST\r\nab\r\nRSET\r\n"),
    (b"250 ok\r\n", b""), (b"250 ok\r\n", b""), (b"550 no\r\n", b""), (b"354 go\r\n", b""), (b"250 queued\r\n250 ok\r\n", b"QUIT\r\n"),
    (b"221 bye\r\n", b"")]))
# Row 20: AUTH (dummy credentials), cancel, and the auth rule.
write("RelayFuzzer", "security-20-auth", relay(0, [
    (GREETING, b"EHLO c\r\n"), (EHLO_REPLY, b"AUTH LOGIN\r\n"), (b"334 VXNlcm5hbWU6\r\n", b"dXNlcg==\r\n"),
    (b"334 UGFzc3dvcmQ6\r\n", b"*\r\n"), (b"501 cancelled\r\n", b"AUTH PLAIN AGJhZABiYWQ=\r\n"), (b"235 ok\r\n", b"QUIT\r\n")]))
write("RelayFuzzer", "security-20-auth-rule", relay(1, [
    (GREETING, b"EHLO c\r\n"), (EHLO_REPLY, b"AUTH PLAIN AGJhZABiYWQ=\r\n"), (b"235 ok\r\n", b"MAIL FROM:<a@x>\r\n"), (b"250 ok\r\n", b"")]))
# Rows 21-23: STARTTLS on both legs, XCLIENT.
write("RelayFuzzer", "security-21-starttls", relay(0x0E, [
    (GREETING, b"EHLO c\r\n"), (EHLO_REPLY, b""), (b"220 go ahead\r\n", b""), (EHLO_REPLY, b""), (b"250 ok\r\n", b""),
    (EHLO_REPLY, b"STARTTLS\r\nRSET\r\n"), (b"", b"EHLO c\r\nMAIL FROM:<a@x>\r\n"), (b"250 ok\r\n", b"")]))
write("RelayFuzzer", "security-23-starttls-refused", relay(0x04, [
    (GREETING, b"EHLO c\r\n"), (EHLO_REPLY, b"MAIL FROM:<a@x>\r\n"), (b"454 no tls\r\n", b"")]))
# --client-tls passthrough (flag 0x80): plaintext pipelined behind STARTTLS on both sides.
write("RelayFuzzer", "passthrough-starttls", relay(0x80, [
    (GREETING, b"EHLO c\r\n"), (EHLO_REPLY, b"STARTTLS\r\nMAIL FROM:<a@x>\r\n"),
    (b"220 go ahead\r\n250 injected\r\n", b"\x16\x03\x01\x00\x05hello")]))
# Row 24: upstream protocol errors.
write("RelayFuzzer", "security-24-mixed-codes", relay(0, [(GREETING, b"EHLO c\r\n"), (b"250-up\r\n251 x\r\n", b"NOOP\r\n")]))
write("RelayFuzzer", "security-24-unsolicited", relay(0, [(GREETING + b"250 extra\r\n", b"EHLO c\r\n"), (EHLO_REPLY, b"")]))
write("RelayFuzzer", "rules-envelope", relay(1, [
    (GREETING, b"EHLO c\r\n"), (EHLO_REPLY, b"MAIL FROM:<rewrite@x>\r\n"), (b"250 ok\r\n", b"RCPT TO:<rewrite@y>\r\nRCPT TO:<later@y>\r\nRCPT TO:<c@y>\r\n"),
    (b"250 ok\r\n250 ok\r\n", b"DATA\r\n"), (b"", b"Subject: x\r\n\r\nb\r\n.\r\n"), (b"250 ok\r\n354 go\r\n", b""), (b"250 ok\r\n", b"")]))

# MailMessageFuzzer: edits chunk, then the message in two pieces.
EDITS = b"aX-Added:value \x01injected: yes\nsX-Set:\xc3\xa9t\xc3\xa9\nrX-Remove\np[EXT] "
for path in sorted(glob.glob("Tests/MailMessageTests/Fixtures/*.eml")):
    data = open(path, "rb").read()
    if len(data) > 16384:
        continue
    name = os.path.basename(path)
    write("MailMessageFuzzer", name, data)
    write("MailMessageFuzzer", name + ".edits", joined([EDITS, data[: len(data) // 3], data[len(data) // 3:]]))
MESSAGES = {
    "rfc2047": b"Subject: =?UTF-8?B?w6l0w6k=?= =?ISO-8859-1?Q?caf=E9?=\r\nFrom: =?utf-8?q?J=C3=B6rg?= <j@x>\r\n\r\nb\r\n",
    "multipart": b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 b"Content-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9\r\n--b1\r\nContent-Type: application/octet-stream; name*0=\"a\"; name*1=\".exe\"\r\n"
                 b"Content-Disposition: attachment; filename*=utf-8''%C3%A9.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b1--\r\n",
    "security-19-no-colon": b"Subject ok\r\nFrom: evil@x\r\nFrom: second@x\r\n\r\nb\r\n",
    "folded": b"Subject: a\r\n b\r\n\tc\r\nX-Remove: 1\r\nX-Remove: 2\r\n\r\n",
}
for name, data in MESSAGES.items():
    write("MailMessageFuzzer", name, data)
    write("MailMessageFuzzer", name + ".edits", joined([EDITS, data[:7], data[7:]]))
write("MailMessageFuzzer", "security-18-crlf-in-value", joined([b"aX-Evil:a\rb\x01c\0d\nsSubject:" + b"w" * 1200, MESSAGES["folded"]]))

# RulesFuzzer: the shipped rules, each with the list files' text.
lists = open("rules/our-domains.txt", "rb").read()
for path in sorted(glob.glob("rules/*.rules")):
    write("RulesFuzzer", os.path.basename(path), joined([open(path, "rb").read(), lists]))
write("RulesFuzzer", "templates.rules", joined([
    b'rule "t" on message\n  when subject matches /(?i)(x+)/\n  add_header "X-T" "${subject} ${1} ${mail_from}"\n'
    b'  reject 550 5.7.1 "no ${helo}"\nrule "l" on rcpt\n  when rcpt.domain in [example.com, "x"]\n  log "${rcpt}"\n',
    b"", b"a\r\nb"]))
