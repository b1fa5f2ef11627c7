"""End-to-end: the console's quarantine. A rule of the real proxy quarantines two messages; in headless
Chromium the administrator lists them, views one and releases it, and it arrives at the aiosmtpd
upstream byte for byte with its envelope; the other is deleted. Both actions are in actions.jsonl.
A release POSTed without the session's CSRF token is refused (403) and releases nothing.
"""
import base64
import json
import smtplib
import time

from console_support import Console, free_port, start_proxy_with_console
from proxy_support import recorded

RULES = '''rule "hold-external" on message
  when size > 10
  quarantine "held for review"
'''

MESSAGE = (b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: <script>window.__pwned=1</script> held\r\n"
           b"\r\nA line\r\n.starts with a dot\r\nend\r\n")


def test_release_and_delete_from_the_quarantine_in_a_browser(proxy, upstreams, browser, artefacts, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    host, port, upstream_record = upstreams.aiosmtpd()
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-test.rules").write_text(RULES)
    quarantine = tmp_path / "quarantine"
    console = start_proxy_with_console(proxy, (host, port), "--rules", rules, "--quarantine", quarantine)
    for recipient in ("bob@example.org", "carol@example.org"):
        with smtplib.SMTP(console.run.host, console.run.port, local_hostname="client.test", timeout=20) as client:
            client.sendmail("alice@example.com", [recipient], MESSAGE)
    held = console.api("/api/quarantine")["messages"]
    assert [m["rcpt_to"] for m in held] == [["carol@example.org"], ["bob@example.org"]]
    assert all(m["reason"] == "held for review" and m["rules"] == ["hold-external"] for m in held)
    assert recorded(upstream_record) == []
    to_release = next(m for m in held if m["rcpt_to"] == ["bob@example.org"])
    to_delete = next(m for m in held if m["rcpt_to"] == ["carol@example.org"])

    # Without the CSRF token: refused, and nothing moves.
    cookie, _ = console.login()
    status, _, _ = console.request(f"/quarantine/{to_release['id']}/release", method="POST", cookie=cookie, data=b"")
    assert status == 403
    assert recorded(upstream_record) == [] and len(console.api("/api/quarantine")["messages"]) == 2
    # An id that names anything but a quarantined message is not found.
    assert console.request("/api/quarantine/..%2F..%2Fetc%2Fpasswd/delete", method="POST", token=console.token)[0] == 404

    browser.get(console.url + "/login")
    browser.find_element(By.NAME, "token").send_keys(console.token)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/sessions"))
    browser.find_element(By.LINK_TEXT, "Quarantine").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/quarantine"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#quarantine tbody tr")
    assert [row.get_attribute("data-quarantine") for row in rows] == [m["id"] for m in held]
    browser.save_screenshot(str(artefacts / "quarantine.png"))

    browser.get(console.url + f"/quarantine/{to_release['id']}")
    # The header section as text: the Subject's markup did nothing.
    assert browser.find_element(By.CSS_SELECTOR, "pre.headers").text == (
        "From: alice@example.com\nTo: bob@example.org\nSubject: <script>window.__pwned=1</script> held")
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    browser.save_screenshot(str(artefacts / "quarantine-message.png"))
    browser.find_element(By.CSS_SELECTOR, "form.release button").click()
    WebDriverWait(browser, 30).until(lambda b: "released=" in b.current_url)
    assert f"{to_release['id']} was released to the upstream." in browser.find_element(By.TAG_NAME, "main").text

    # It arrived upstream, byte for byte, with its envelope.
    deadline = time.monotonic() + 10
    while not recorded(upstream_record) and time.monotonic() < deadline:
        time.sleep(0.1)
    [arrived] = recorded(upstream_record)
    assert arrived["mail_from"] == "alice@example.com" and arrived["rcpt_tos"] == ["bob@example.org"]
    assert base64.b64decode(arrived["content"]) == MESSAGE

    browser.get(console.url + f"/quarantine/{to_delete['id']}")
    browser.find_element(By.CSS_SELECTOR, "form.delete button").click()
    WebDriverWait(browser, 10).until(lambda b: "deleted=" in b.current_url)
    assert browser.find_elements(By.CSS_SELECTOR, "#quarantine tbody tr") == []
    assert sorted(p.name for p in quarantine.iterdir()) == ["actions.jsonl"]
    assert len(recorded(upstream_record)) == 1

    actions = [json.loads(line) for line in (quarantine / "actions.jsonl").read_text().splitlines()]
    assert [(a["action"], a["id"]) for a in actions] == [("released", to_release["id"]), ("deleted", to_delete["id"])]
    assert actions[0]["upstream"] == f"127.0.0.1:{port}" and actions[0]["reply"].startswith("250")
    assert actions[0]["rcpt_to"] == ["bob@example.org"] and actions[1]["reply"] is None
    for entry in browser.get_log("browser"):
        assert "Content Security Policy" not in entry["message"], entry


def test_a_release_the_upstream_refuses_leaves_the_message_held(smtpscope, proxy, upstreams, processes, tmp_path):
    # `smtpscope console` on the proxy's quarantine, releasing to an upstream that refuses the
    # recipient: the release says so (502 with the reply), the message stays held, no action recorded.
    host, port, _ = upstreams.aiosmtpd()
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-test.rules").write_text(RULES)
    quarantine = tmp_path / "quarantine"
    run = proxy((host, port), "--rules", rules, "--quarantine", quarantine)
    with smtplib.SMTP(run.host, run.port, local_hostname="client.test", timeout=20) as client:
        client.sendmail("alice@example.com", ["bob@example.org"], MESSAGE)
    _, refusing_port, refusing_record = upstreams.aiosmtpd("--reject-rcpt", "bob@example.org")
    index = run.transcripts / "index.sqlite"
    deadline = time.monotonic() + 60
    while not index.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    console_port = free_port()
    token_file = tmp_path / "token"
    token_file.write_text("quarantine-test-token-0123456789\n")
    processes.start([str(smtpscope.path), "console", "--index", str(index), "--listen", f"127.0.0.1:{console_port}",
                     "--console-token-file", str(token_file), "--quarantine", str(quarantine),
                     "--upstream", f"127.0.0.1:{refusing_port}"], "smtpscope console", ready_line="Stop with")
    console = Console(f"http://127.0.0.1:{console_port}/", "quarantine-test-token-0123456789")
    [held] = console.api("/api/quarantine")["messages"]
    status, _, body = console.request(f"/api/quarantine/{held['id']}/release", method="POST", token=console.token)
    assert status == 502
    assert json.loads(body)["error"] == (f"127.0.0.1:{refusing_port} refused RCPT TO:<bob@example.org>: "
                                         "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown")
    assert console.api("/api/quarantine")["messages"] == [held]
    assert not (quarantine / "actions.jsonl").exists()
    assert [entry for entry in recorded(refusing_record) if "content" in entry] == []
