"""End-to-end: the web console. A real proxy (with `--console`) relays mail from swaks and smtplib to an
aiosmtpd upstream and indexes it; the console serves the sessions from that index. Plain HTTP requests
check the access rules (token, cookie, CSRF, headers); a headless Chromium logs in, searches, opens a
session's ladder, watches a new session arrive live, and proves that hostile values in a Subject, a From
display name and an attachment's file name stay text.
"""
import json
import pathlib
import smtplib
import time
import urllib.parse
from email.headerregistry import Address
from email.message import EmailMessage

import pytest

from console_support import Console, assert_security_headers, free_port, start_proxy_with_console
from proxy_support import integration
from proxy_support import swaks
from test_trace_postgres import postgres  # noqa: F401 (the fixture is used by name)
from trace_support import transcript_lines

REPO_ROOT = integration.REPO_ROOT

# Each payload would set window.__pwned (and the title) if it ever ran. The From display name is
# mailed too, though the record keeps only From's addresses (the test checks it stays out).
SUBJECT_PAYLOAD = "<script>window.__pwned='subject';document.title='pwned'</script> quarterly"
FROM_NAME_PAYLOAD = "\"><img src=x onerror=\"window.__pwned='from';document.title='pwned'\">"
FILENAME_PAYLOAD = "\"><img src=x onerror=window.__pwned='file'>.txt"


def hostile_message():
    message = EmailMessage()
    message["From"] = Address(display_name=FROM_NAME_PAYLOAD, addr_spec="mallory@evil.example")
    message["To"] = "bob@example.net"
    message["Subject"] = SUBJECT_PAYLOAD
    message["Message-Id"] = "<hostile@evil.example>"
    message.set_content("see attached\n")
    message.add_attachment(b"hello\n", maintype="text", subtype="plain", filename=FILENAME_PAYLOAD)
    return message


RULES = '''rule "no-spam-domain" on mail
  when mail_from.domain == "spam.example"
  reject 550 5.7.1 "Sender domain refused"
'''


def send_traffic(run):
    """Three sessions: delivered (STARTTLS on the client leg), delivered with the payloads, refused by
    the rule at MAIL."""
    swaks(run.host, run.port, "--from", "alice@example.org", "--to", "bob@example.net", "--tls",
          "--header", "Subject: Quarterly report")
    with smtplib.SMTP(run.host, run.port, local_hostname="client.test", timeout=20) as client:
        client.send_message(hostile_message(), from_addr="mallory@evil.example", to_addrs=["bob@example.net"])
    swaks(run.host, run.port, "--from", "spammer@spam.example", "--to", "bob@example.net", expect_success=False)


@pytest.fixture
def console(proxy, upstreams, tmp_path):
    host, port, _ = upstreams.aiosmtpd()
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-test.rules").write_text(RULES)
    console = start_proxy_with_console(proxy, (host, port), "--rules", rules, "--tls-cert", "auto")
    send_traffic(console.run)
    console.wait_for_sessions(3)
    return console


def test_every_request_needs_the_token_and_every_post_its_csrf_token(console):
    # No token: 401 for the API, a redirect to the login for a page; the headers on both.
    status, headers, body = console.request("/api/sessions")
    assert status == 401 and json.loads(body)["error"]
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert_security_headers(headers, "401")
    status, headers, _ = console.request("/sessions")
    assert (status, headers["Location"]) == (303, "/login")
    assert_security_headers(headers, "redirect")
    for path in ("/api/stats", "/api/sessions/x", "/sessions/x", "/overview", "/assets/console.js", "/"):
        assert console.request(path)[0] in (401, 303), path
    assert console.request("/api/sessions", token="0" * 64)[0] == 401
    # A wrong token at the login form: 401, no cookie.
    data = urllib.parse.urlencode({"token": "0" * 64}).encode()
    status, headers, _ = console.request("/login", method="POST", data=data)
    assert status == 401 and "Set-Cookie" not in headers

    cookie, set_cookie = console.login()
    assert set_cookie.endswith("; HttpOnly; SameSite=Strict; Path=/")
    status, headers, page = console.request("/sessions", cookie=cookie)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert_security_headers(headers, "page")
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert len(csrf) == 64

    # A POST with the cookie but no CSRF token, or another's: 403, and the session stays open.
    assert console.request("/logout", method="POST", cookie=cookie, data=b"")[0] == 403
    assert console.request("/logout", method="POST", cookie=cookie, data=b"csrf=" + b"0" * 64)[0] == 403
    assert console.request("/sessions", cookie=cookie)[0] == 200
    # With it, the logout ends the session on the server.
    status, headers, _ = console.request("/logout", method="POST", cookie=cookie, data=f"csrf={csrf}".encode())
    assert (status, headers["Location"]) == (303, "/login")
    assert "Max-Age=0" in headers["Set-Cookie"]
    assert console.request("/sessions", cookie=cookie)[0] == 303


def test_the_api_gives_the_records_as_the_transcript_has_them(console):
    status, headers, body = console.request("/api/sessions", token=console.token)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert_security_headers(headers, "api")
    sessions = json.loads(body)["sessions"]
    lines = transcript_lines(console.run.transcripts)
    assert [s["session_id"] for s in sessions] == sorted(lines, key=lambda i: json.loads(lines[i])["start"], reverse=True)
    for record in sessions:
        # The stored line itself, not a re-encoding.
        assert lines[record["session_id"]] in body
    hostile = next(s for s in sessions if s["transactions"][0]["mail_from"]["address"] == "mallory@evil.example")
    assert console.api(f"/api/sessions/{hostile['session_id']}") == hostile
    status, headers, body = console.request("/api/sessions/no-such-session", token=console.token)
    assert status == 404 and "no session" in json.loads(body)["error"]
    assert_security_headers(headers, "404")

    found = console.api("/api/sessions?from=alice%40example.org")["sessions"]
    assert [s["transactions"][0]["mail_from"]["address"] for s in found] == ["alice@example.org"]
    assert console.api("/api/sessions?subject=%3Cscript%3E")["sessions"] == [hostile]
    assert console.api("/api/sessions?status=delivered&limit=1")["sessions"] == [
        s for s in sessions if s["outcome"] == "completed"][:1]
    assert [s["outcome"] for s in console.api("/api/sessions?rule=no-spam-domain")["sessions"]] == ["rejected"]
    assert console.api("/api/sessions?until=1h")["sessions"] == []
    status, _, body = console.request("/api/sessions?sender=alice", token=console.token)
    assert status == 400 and "unknown parameter 'sender'" in json.loads(body)["error"]

    stats = console.api("/api/stats?since=1h")
    assert stats["sessions"] == {"completed": 2, "rejected": 1}
    assert stats["messages"] == {"delivered": 2, "rejected": 1}
    assert stats["refusals"] == {"by_cause": {"550 5.7.1": 1}, "by_rule": {"no-spam-domain": 1}}
    assert stats["top"] == {"senders": {"alice@example.org": 1, "mallory@evil.example": 1, "spammer@spam.example": 1},
                            "recipient_domains": {"example.net": 2}}
    assert console.api("/api/stats?until=1h")["sessions"] == {}
    status, _, body = console.request("/api/stats?since=yesterday", token=console.token)
    assert status == 400 and "since 'yesterday'" in json.loads(body)["error"]


def ladder_lines(browser):
    """Each arrow's full text (its <title>), top to bottom."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.ladder g.arrow'), g => g.querySelector('title').textContent);")


def csp_violations(browser):
    return [entry for entry in browser.get_log("browser") if "Content Security Policy" in entry["message"]]


def test_in_a_browser_log_in_search_open_a_session_and_watch_one_arrive(console, browser, artefacts):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(console.url + "/sessions")
    assert browser.current_url == console.url + "/login"
    browser.save_screenshot(str(artefacts / "login.png"))
    browser.find_element(By.NAME, "token").send_keys(console.token)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url == console.url + "/sessions")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")) == 3
    # The hostile values are in the list, as text.
    assert SUBJECT_PAYLOAD in browser.find_element(By.ID, "sessions").text

    # Search by sender.
    browser.find_element(By.NAME, "from").send_keys("alice@example.org")
    browser.find_element(By.CSS_SELECTOR, "form.search button").click()
    WebDriverWait(browser, 10).until(lambda b: "from=alice%40example.org" in b.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")
    assert [row.find_elements(By.TAG_NAME, "td")[2].text for row in rows] == ["alice@example.org"]
    browser.save_screenshot(str(artefacts / "sessions-search.png"))

    # The hostile session's page: the ladder lists every command and reply of the record, in order.
    hostile = console.api("/api/sessions?from=mallory%40evil.example")["sessions"][0]
    browser.get(console.url + "/sessions/" + hostile["session_id"])
    assert ladder_lines(browser) == [event["text"] for event in hostile["events"]]
    assert any(line.startswith("MAIL FROM:<mallory@evil.example>") for line in ladder_lines(browser))
    classes = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.ladder g.arrow'), g => g.getAttribute('class'));")
    assert "arrow reply r2xx" in classes and "arrow reply r3xx" in classes and "arrow command" in classes
    page_text = browser.find_element(By.TAG_NAME, "main").text
    message = hostile["transactions"][0]["message"]
    assert message["subject"] == SUBJECT_PAYLOAD
    assert [a["filename"] for a in message["attachments"]] == [FILENAME_PAYLOAD]
    # Shown as the record has them, character for character.
    for value in (SUBJECT_PAYLOAD, FILENAME_PAYLOAD):
        assert value in page_text, value
    # The record keeps From's addresses, not its display name: that payload never reaches the console.
    assert message["from"] == ["mallory@evil.example"]
    assert "onerror=\"window.__pwned='from'" not in browser.page_source
    # Nothing ran: no payload set its global or the title, none made an element.
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    assert browser.title.startswith("Session ")
    assert browser.find_elements(By.CSS_SELECTOR, "main img") == []
    assert browser.execute_script("return document.querySelectorAll('script').length") == 1
    browser.save_screenshot(str(artefacts / "session.png"))
    print(f"session page screenshot: {artefacts / 'session.png'}")
    # The payloads never reached the page as markup, so the policy had nothing to block.
    assert csp_violations(browser) == []

    # alice's session: TLS marked where it started, after the 220 to STARTTLS on the client leg.
    alice = console.api("/api/sessions?from=alice%40example.org")["sessions"][0]
    browser.get(console.url + "/sessions/" + alice["session_id"])
    assert ladder_lines(browser) == [event["text"] for event in alice["events"]]
    marks = browser.execute_script("""return Array.from(document.querySelectorAll('svg.ladder > g'),
        g => [g.getAttribute('class'), (g.querySelector('title') || g.querySelector('text:last-of-type')).textContent]);""")
    tls = [i for i, (kind, _) in enumerate(marks) if kind == "mark mark-tls"]
    assert len(tls) == 1 and marks[tls[0]][1] == "TLS starts: client leg"
    assert marks[tls[0] - 1][0] == "arrow reply r2xx" and marks[tls[0] - 1][1].startswith("220")
    assert [text for _, text in marks[:tls[0]] if text.upper() == "STARTTLS"] == ["STARTTLS"]
    assert "starttls, established" in browser.find_element(By.CSS_SELECTOR, "aside.facts").text

    # The refused session: the rule's verdict after the client's MAIL, the 550 in red, on the client leg only.
    refused = console.api("/api/sessions?rule=no-spam-domain")["sessions"][0]
    browser.get(console.url + "/sessions/" + refused["session_id"])
    assert ladder_lines(browser) == [event["text"] for event in refused["events"]]
    rows = browser.execute_script("""return Array.from(document.querySelectorAll('svg.ladder > g'),
        g => [g.getAttribute('class'), (g.querySelector('title') || g.querySelector('text:last-of-type')).textContent]);""")
    mark = next(i for i, (kind, _) in enumerate(rows) if kind == "mark mark-rule")
    assert rows[mark][1].startswith("rule no-spam-domain: reject")
    assert rows[mark - 1][1].startswith("MAIL FROM:<spammer@spam.example>")
    assert rows[mark + 1] == ["arrow reply r5xx", "550 5.7.1 Sender domain refused"]
    assert not any(text.startswith("MAIL") and kind == "arrow command" for kind, text in rows[mark + 1:])
    browser.save_screenshot(str(artefacts / "session-refused.png"))

    # The overview: the period's counts as charts, from the same index.
    browser.find_element(By.LINK_TEXT, "Overview").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url == console.url + "/overview")
    browser.find_element(By.LINK_TEXT, "1h").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/overview?period=1h"))
    bars = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.chart g.bar'), g => [g.getAttribute('class'), g.querySelector('title').textContent]);")
    for bar in (["bar o-completed", "completed: 2"], ["bar o-rejected", "rejected: 1"], ["bar o-delivered", "delivered: 2"],
                ["bar r5xx", "550 5.7.1: 1"], ["bar rule", "no-spam-domain: 1"]):
        assert bar in bars, (bar, bars)
    # The time chart: every message in a bar of the last hour.
    per_minute = [int(title.rsplit(": ", 1)[1]) for kind, title in bars if title[:4].isdigit() and "T" in title]
    assert sum(per_minute) == 3
    assert "3 messages (transactions) in the period." in browser.find_element(By.TAG_NAME, "main").text
    browser.save_screenshot(str(artefacts / "overview.png"))
    assert csp_violations(browser) == []

    # The live list: a new session appears without a reload.
    browser.get(console.url + "/sessions")
    # A sliding window, read by the API against its own clock: each poll asks for little.
    assert browser.find_element(By.ID, "sessions").get_attribute("data-live-since") == "10m"
    browser.execute_script("window.__sameDocument = 42;")
    with smtplib.SMTP(console.run.host, console.run.port, local_hostname="client.test", timeout=20) as client:
        client.sendmail("erin@live.example", ["bob@example.net"], "From: erin@live.example\r\nSubject: live\r\n\r\nhi\r\n")
    WebDriverWait(browser, 30).until(
        lambda b: "erin@live.example" in b.find_element(By.CSS_SELECTOR, "#sessions tbody tr").text)
    assert browser.execute_script("return window.__sameDocument") == 42
    assert len(browser.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")) == 4
    assert "new" in browser.find_element(By.CSS_SELECTOR, "#sessions tbody tr").get_attribute("class")
    browser.save_screenshot(str(artefacts / "sessions-live.png"))
    assert csp_violations(browser) == []
    for entry in browser.get_log("browser"):
        assert entry["level"] != "SEVERE", entry


def test_the_console_command_serves_an_index_with_a_token_from_a_file(smtpscope, proxy, upstreams, processes, tmp_path):
    host, port, _ = upstreams.aiosmtpd()
    run = proxy((host, port))
    swaks(run.host, run.port, "--from", "alice@example.org", "--to", "bob@example.net")
    index = run.transcripts / "index.sqlite"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "1 session" not in smtpscope.run("trace", "--index", index).stdout:
        time.sleep(0.2)
    token_file = tmp_path / "token"
    token_file.write_text("a-token-from-a-file-0123456789\n")
    console_port = free_port()
    process = processes.start([str(smtpscope.path), "console", "--index", str(index), "--listen", f"127.0.0.1:{console_port}",
                               "--console-token-file", str(token_file)], "smtpscope console", ready_line="Stop with")
    stdout, _ = processes.output(process)
    assert f"url:    http://127.0.0.1:{console_port}/" in stdout
    assert f"token:  from {token_file}" in stdout and "a-token-from-a-file" not in stdout
    console = Console(f"http://127.0.0.1:{console_port}/", "a-token-from-a-file-0123456789")
    assert [s["transactions"][0]["mail_from"]["address"] for s in console.api("/api/sessions")["sessions"]] == ["alice@example.org"]
    assert console.request("/api/sessions")[0] == 401
    processes.stop(process)
    assert process.returncode == 0

    short = tmp_path / "short"
    short.write_text("short\n")
    result = smtpscope.run("console", "--index", index, "--console-token-file", short)
    assert result.returncode == 2 and "at least 16" in result.stderr
    result = smtpscope.run("console", "--index", tmp_path / "missing.sqlite")
    assert result.returncode == 1 and "no index at" in result.stderr


def test_a_console_off_loopback_is_warned_about(smtpscope, proxy, upstreams, processes):
    host, port, _ = upstreams.aiosmtpd()
    run = proxy((host, port))
    swaks(run.host, run.port, "--from", "alice@example.org", "--to", "bob@example.net")
    index = run.transcripts / "index.sqlite"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not pathlib.Path(index).exists():
        time.sleep(0.2)
    # Bound to every address, but spoken to only on loopback.
    process = processes.start([str(smtpscope.path), "console", "--index", str(index), "--listen", "0.0.0.0:0"],
                              "smtpscope console", ready_line="Stop with")
    deadline = time.monotonic() + 10
    stdout, stderr = processes.output(process)
    while "warning" not in stderr and time.monotonic() < deadline:
        time.sleep(0.05)
        stdout, stderr = processes.output(process)
    assert "warning: --listen 0.0.0.0:0 is not a loopback address" in stderr
    assert "plain HTTP" in stderr
    token = stdout.split("token:  ", 1)[1].split()[0]
    assert len(token) == 64
    processes.stop(process)


def test_an_index_that_cannot_be_reached_is_a_503_saying_why(proxy, upstreams):
    # PostgreSQL on a loopback port where nothing listens: the proxy relays and writes transcripts,
    # the console answers 503 with the reason, and no password in it.
    host, port, _ = upstreams.aiosmtpd()
    nowhere = free_port()
    console = start_proxy_with_console(proxy, (host, port), "--index", f"postgres://smtpscope:s3cret@127.0.0.1:{nowhere}/trace")
    status, headers, body = console.request("/api/sessions", token=console.token)
    assert status == 503, body
    error = json.loads(body)["error"]
    assert f"127.0.0.1:{nowhere}" in error and "s3cret" not in error
    assert_security_headers(headers, "503")
    cookie, _ = console.login()
    status, headers, page = console.request("/sessions", cookie=cookie)
    assert status == 503 and "The index is unavailable" in page and "s3cret" not in page
    assert headers["Content-Type"] == "text/html; charset=utf-8"


def test_the_html_report_of_a_capture_with_a_refusal_in_a_browser(smtpscope, browser, artefacts, tmp_path):
    from selenium.webdriver.common.by import By

    capture = REPO_ROOT / "Tests" / "SMTPCaptureTests" / "Fixtures" / "corpus" / "arkime" / "smtp-data-521.pcap"
    records = [json.loads(line) for line in smtpscope.run("pcap", capture).stdout.splitlines() if line]
    refused = [r for r in records if r["outcome"] != "completed" or any(t["outcome"] != "delivered" for t in r["transactions"])]
    assert refused, "the capture has a refused message"
    result = smtpscope.run("pcap", capture, "--report-format", "html")
    assert result.returncode == 0, result.stderr
    report = tmp_path / "report.html"
    report.write_text(result.stdout)
    assert "<script" not in result.stdout
    text = smtpscope.run("pcap", capture, "--report").stdout
    browser.get(report.as_uri())
    # One ladder per session that did not go through, each with its record's lines in order.
    ladders = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.ladder'), svg => Array.from(svg.querySelectorAll('g.arrow > title'), t => t.textContent));")
    assert ladders == [[event["text"] for event in record["events"]] for record in refused]
    assert any(line.startswith("5") for line in ladders[0])
    # The text report, whole, as text.
    assert browser.find_element(By.CSS_SELECTOR, "pre.report").text.strip() == text.strip()
    assert browser.execute_script("return document.querySelectorAll('script').length") == 0
    browser.save_screenshot(str(artefacts / "report.png"))
    assert csp_violations(browser) == []


def test_a_console_address_in_use_stops_the_proxy_at_start_up(proxy_binary, tmp_path):
    import socket
    import subprocess
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([str(proxy_binary), "proxy", "--listen", f"127.0.0.1:{free_port()}", "--transcripts",
                                 str(tmp_path / "t"), "--console", f"127.0.0.1:{port}"],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"cannot listen: --console 127.0.0.1:{port}: the address is already in use" in result.stderr
    assert "listening:" not in result.stdout


def test_postgresql_and_sqlite_give_the_console_the_same_answers(postgres, smtpscope, processes, tmp_path):
    # The throwaway PostgreSQL of the trace tests (imported, not copied) and a SQLite file, both
    # filled from one capture with errors: the console's sessions and counts are the same from each.
    postgres.create_database("console")
    capture = REPO_ROOT / "Tests" / "SMTPCaptureTests" / "Fixtures" / "corpus" / "suricata-verify" / "smtp-errors" / "smtperr.pcap"
    token_file = tmp_path / "token"
    token_file.write_text("same-answers-token-0123456789\n")
    answers = []
    for index in (postgres.url("console"), tmp_path / "index.sqlite"):
        result = smtpscope.run("index", "--index", index, capture)
        assert result.returncode == 0, result.stderr
        port = free_port()
        process = processes.start([str(smtpscope.path), "console", "--index", str(index), "--listen", f"127.0.0.1:{port}",
                                   "--console-token-file", str(token_file)], "smtpscope console", ready_line="Stop with")
        console = Console(f"http://127.0.0.1:{port}/", "same-answers-token-0123456789")
        answers.append([console.api(path) for path in (
            "/api/sessions", "/api/stats?bucket=3600", "/api/stats?since=2000-01-01T00:00:00Z&until=2030-01-01T00:00:00Z",
            "/api/sessions?status=tempfailed")])
        processes.stop(process)
    assert answers[0] == answers[1]
    sessions, stats, _, tempfailed = answers[1]
    assert len(sessions["sessions"]) == 4 and tempfailed["sessions"]
    assert sum(stats["messages_per_bucket"].values()) == sum(stats["messages"].values()) > 0
    assert stats["refusals"]["by_cause"]
