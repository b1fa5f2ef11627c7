"""End-to-end: `smtpscope policy` behind a real Postfix smtpd (`check_policy_service`).

A throwaway Postfix (proxy/postfix_peer.py: its own main.cf, queue and log, a loopback port) asks the
policy service at MAIL (smtpd_sender_restrictions, with smtpd_delay_reject=no so the state is MAIL)
and at the end of each message (smtpd_end_of_data_restrictions). A refused sender gets the rule's
reply from Postfix, a messages budget holds across Postfix sessions, Postfix's log shows the policy's
action, and every decision is a smtpscope.policy/1 line.
"""
import smtplib
import socket

RULES = """
limit "sender-hourly" counts messages per mail_from over 1h max 2

rule "no-evil" on mail
  when mail_from.domain == "evil.test"
  reject 550 5.7.1 "Sender ${mail_from} is not welcome"

rule "throttle-sender" on message
  when over_limit("sender-hourly")
  tempfail 451 4.7.1 "${mail_from} has sent enough mail this hour"
"""


def start(tmp_path, policy, postfix):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-policy.rules").write_text(RULES)
    service = policy(rules)
    check = f"check_policy_service inet:127.0.0.1:{service.port}"
    server = postfix(main={
        "smtpd_delay_reject": "no",
        "smtpd_sender_restrictions": check,
        "smtpd_end_of_data_restrictions": check,
    })
    return service, server


def send(server, sender):
    with smtplib.SMTP("127.0.0.1", server.port, local_hostname="client.test", timeout=30) as client:
        try:
            client.sendmail(sender, ["bob@example.org"], b"Subject: hi\r\n\r\nhello\r\n")
            return "sent"
        except smtplib.SMTPSenderRefused as error:
            return (error.smtp_code, error.smtp_error.decode())
        except smtplib.SMTPDataError as error:
            return (error.smtp_code, error.smtp_error.decode())


def test_a_refused_sender_gets_the_rules_reply_from_postfix(tmp_path, policy, postfix):
    service, server = start(tmp_path, policy, postfix)
    # Postfix puts its own words before the policy's text, as for any access(5) reply.
    assert send(server, "mallory@evil.test") == (
        550, "5.7.1 <mallory@evil.test>: Sender address rejected: Sender mallory@evil.test is not welcome")
    decisions = service.decisions(1)
    refused = [d for d in decisions if d.get("rule") == "no-evil"]
    assert len(refused) == 1
    assert refused[0]["schema"] == "smtpscope.policy/1"
    assert refused[0]["protocol_state"] == "MAIL" and refused[0]["stage"] == "mail"
    assert refused[0]["action"] == "550 5.7.1 Sender mallory@evil.test is not welcome"
    assert refused[0]["sender"] == "mallory@evil.test" and refused[0]["client_address"] == "127.0.0.1"
    assert "reject: MAIL from" in server.log_text() and "Sender mallory@evil.test is not welcome" in server.log_text()


def test_a_budget_holds_across_postfix_sessions(tmp_path, policy, postfix):
    service, server = start(tmp_path, policy, postfix)
    outcomes = [send(server, "alice@example.com") for _ in range(4)]
    assert outcomes[:2] == ["sent", "sent"]
    assert outcomes[2:] == [(451, "4.7.1 <END-OF-MESSAGE>: End-of-data rejected: alice@example.com has sent enough mail this hour")] * 2
    assert send(server, "carol@example.com") == "sent"
    ends = [d for d in service.decisions(10) if d.get("protocol_state") == "END-OF-MESSAGE"]
    assert [d["action"] for d in ends] == ["DUNNO", "DUNNO", "451 4.7.1 alice@example.com has sent enough mail this hour",
                                           "451 4.7.1 alice@example.com has sent enough mail this hour", "DUNNO"]
    assert [d.get("counted") for d in ends] == [{"sender-hourly": 1}, {"sender-hourly": 1}, None, None, {"sender-hourly": 1}]
    assert all(d.get("queue_id") for d in ends)
    log = server.log_text()
    assert log.count("reject: END-OF-MESSAGE from") == 2
    assert "451 4.7.1 <END-OF-MESSAGE>: End-of-data rejected: alice@example.com has sent enough mail this hour" in log


def test_hostile_requests_close_the_connection_and_the_service_goes_on(tmp_path, policy):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-policy.rules").write_text(RULES)
    service = policy(rules)
    # A line without an end: the service closes the connection at its limit, it does not grow.
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as hostile:
        try:
            for _ in range(64):
                hostile.sendall(b"x" * 1024)
            closed = hostile.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        assert closed
    # A million attributes: closed as well.
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as hostile:
        try:
            for chunk in range(100):
                hostile.sendall(b"".join(b"a%d=x\n" % (chunk * 10000 + i) for i in range(10000)))
            closed = hostile.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        assert closed
    # A well-formed request on a connection of its own, twice on one connection (Postfix reuses it).
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as client:
        request = b"request=smtpd_access_policy\nprotocol_state=MAIL\nsender=x@evil.test\nclient_address=192.0.2.1\n\n"
        client.sendall(request + request)
        answer = b""
        while answer.count(b"\n\n") < 2:
            data = client.recv(4096)
            assert data, answer
            answer += data
        assert answer == b"action=550 5.7.1 Sender x@evil.test is not welcome\n\n" * 2
    assert "connection closed" in service.output()


def ask(port, requests):
    """Sends requests on one connection (as Postfix does) and returns each action."""
    actions = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        for attributes in requests:
            client.sendall("".join(f"{k}={v}\n" for k, v in attributes.items()).encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n\n"):
                data = client.recv(4096)
                assert data, answer
                answer += data
            actions.append(answer.decode().removeprefix("action=").strip())
    return actions


def test_a_reload_keeps_the_counters_of_a_kept_limit(tmp_path, policy):
    import signal
    import time
    rules = tmp_path / "rules"
    rules.mkdir()
    text = """
limit "sender-recipients" counts recipients per mail_from over 1h max 2

rule "cap" on rcpt
  when over_limit("sender-recipients")
  tempfail 452 4.5.3 "too many recipients"
"""
    (rules / "10-policy.rules").write_text(text)
    service = policy(rules)

    def rcpt(recipient, instance):
        return {"request": "smtpd_access_policy", "protocol_state": "RCPT", "sender": "alice@example.com",
                "recipient": recipient, "client_address": "192.0.2.1", "instance": instance}

    assert ask(service.port, [rcpt("a@example.org", "1"), rcpt("b@example.org", "1")]) == ["DUNNO", "DUNNO"]
    (rules / "10-policy.rules").write_text(text.replace("too many recipients", "reloaded"))
    service.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "rules re-read" not in service.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "rules re-read" in service.output()
    assert ask(service.port, [rcpt("c@example.org", "2")]) == ["452 4.5.3 reloaded"]
