"""End-to-end: the operational side of `smtpscope proxy` (issue 3).

- `--proxy-protocol`: HAProxy (`send-proxy`, `send-proxy-v2`) and swaks (`--proxy-*`) in front of the
  proxy; the transcript's client is the address the header names. Connections without a valid header
  are closed without a greeting.
- `--implicit-tls-listen`: swaks `--tlsc`, curl `smtps://` and Python's `SMTP_SSL` on an SMTPS listener.
- `--metrics`: the Prometheus text at GET /metrics after real sessions.
- Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP re-reads the certificate without dropping sessions.

Every peer runs on loopback; addresses from documentation ranges appear only inside PROXY headers.
Nothing asserts on wall-clock times.
"""
import pathlib
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from proxy_support import (COMMAND_TIMEOUT, RawClient, check_records, delivered, free_port, listening,
                           read_records, sink_dumps, swaks, unverified_tls_context)

MESSAGE = b"From: a@client.test\r\nTo: b@upstream.test\r\nSubject: operations\r\n\r\nbody\r\n"
WAIT = 20


def wait_until(predicate, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def wait_listening(port):
    wait_until(lambda: listening(port), f"a listener on port {port}")


def proxy_log(run):
    return run.output()


def haproxy(processes, tmp_path, target_port, send_proxy):
    """HAProxy in TCP mode on a free loopback port, relaying to target_port with a PROXY header."""
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy not installed; run tools/setup")
    port = free_port()
    config = tmp_path / f"haproxy-{port}.cfg"
    config.write_text(f"""global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend smtp
    bind 127.0.0.1:{port}
    default_backend proxy
backend proxy
    server smtpscope 127.0.0.1:{target_port} {send_proxy}
""")
    processes.start(["haproxy", "-f", str(config), "-db"], "haproxy")
    wait_listening(port)
    return port


def only_record(run):
    records = run.records(1)
    assert len(records) == 1, f"expected one transcript record, got {len(records)}"
    return records[0]


# --------------------------------------------------------------------------------------------------
# PROXY protocol


@pytest.mark.parametrize("send_proxy", ["send-proxy", "send-proxy-v2"])
def test_haproxy_header_names_the_real_client(proxy, upstreams, processes, validate_record, tmp_path, send_proxy):
    host, port, dump = upstreams.smtp_sink()
    run = proxy((host, port), "--proxy-protocol")
    front = haproxy(processes, tmp_path, run.port, send_proxy)
    # The client connects from 127.0.0.2; HAProxy connects to the proxy from 127.0.0.1.
    swaks("127.0.0.1", front, "--local-interface", "127.0.0.2", "--from", "a@client.test", "--to", "b@upstream.test")
    assert len(sink_dumps(dump, wait_for=1)) == 1
    record = only_record(run)
    check_records([record], validate_record)
    assert record["client"]["ip"] == "127.0.0.2"
    assert record["server"] == {"ip": "127.0.0.1", "port": front}
    assert record["upstream"]["port"] == port
    assert delivered(record)
    assert record["outcome"] == "completed"


@pytest.mark.parametrize("version,family", [("1", "TCP4"), ("2", "AF_INET")])
def test_swaks_header_with_documentation_addresses(proxy, upstreams, validate_record, version, family):
    host, port, _ = upstreams.smtp_sink(dump=False)
    run = proxy((host, port), "--proxy-protocol")
    swaks(run.host, run.port, "--proxy-version", version, "--proxy-family", family,
          "--proxy-source", "192.0.2.10", "--proxy-source-port", "51234",
          "--proxy-dest", "198.51.100.5", "--proxy-dest-port", "25",
          "--from", "a@client.test", "--to", "b@upstream.test")
    record = only_record(run)
    check_records([record], validate_record)
    assert record["client"] == {"ip": "192.0.2.10", "port": 51234}
    assert record["server"] == {"ip": "198.51.100.5", "port": 25}
    assert delivered(record)


def test_swaks_v1_ipv6_header(proxy, upstreams, validate_record):
    host, port, _ = upstreams.smtp_sink(dump=False)
    run = proxy((host, port), "--proxy-protocol")
    swaks(run.host, run.port, "--proxy-version", "1", "--proxy-family", "TCP6",
          "--proxy-source", "2001:db8::10", "--proxy-source-port", "40000",
          "--proxy-dest", "2001:db8::25", "--proxy-dest-port", "587",
          "--from", "a@client.test", "--to", "b@upstream.test")
    record = only_record(run)
    check_records([record], validate_record)
    assert record["client"] == {"ip": "2001:db8::10", "port": 40000}
    assert record["server"] == {"ip": "2001:db8::25", "port": 587}


V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


@pytest.mark.parametrize("opening,why", [
    (b"EHLO client.test\r\n", "no PROXY protocol signature"),
    (b"PROXY TCP4 192.0.2.300 198.51.100.5 1 25\r\n", "malformed PROXY v1 header"),
    (b"PROXY TCP4 192.0.2.10 198.51.100.5 1 25\n", "bare LF"),
    (b"PROXY UNKNOWN " + b"a" * 200, "107 octets"),
    (V2_SIGNATURE + b"\x21\x11\x00\x08" + bytes(8), "address block"),
    (V2_SIGNATURE + b"\x21\x11\xff\xff", "above the limit"),
    (V2_SIGNATURE + b"\x31\x11\x00\x0c" + bytes(12), "version 3"),
])
def test_a_bad_header_closes_without_a_greeting(proxy, upstreams, opening, why):
    host, port, _ = upstreams.smtp_sink(dump=False)
    run = proxy((host, port), "--proxy-protocol")
    with socket.create_connection((run.host, run.port), timeout=WAIT) as client:
        client.sendall(opening)
        received = b""
        while True:
            try:
                chunk = client.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    assert received == b"", f"the proxy answered a connection without a valid header: {received!r}"
    wait_until(lambda: why in proxy_log(run), f"the log to say why ({why})")
    # No session began, so there is no transcript; the proxy still serves good connections.
    swaks(run.host, run.port, "--proxy-version", "2", "--proxy-family", "AF_INET",
          "--proxy-source", "192.0.2.10", "--proxy-source-port", "1", "--proxy-dest", "198.51.100.5",
          "--proxy-dest-port", "25", "--from", "a@client.test", "--to", "b@upstream.test")
    records = run.records(1)
    assert len(records) == 1 and records[0]["client"]["ip"] == "192.0.2.10"


def test_a_header_in_pieces_is_read_whole(proxy, upstreams, validate_record):
    """A v2 header dribbled three octets per write, as a slow balancer might send it."""
    host, port, _ = upstreams.smtp_sink(dump=False)
    run = proxy((host, port), "--proxy-protocol")
    header = (V2_SIGNATURE + b"\x21\x11\x00\x0c" + bytes([192, 0, 2, 10, 198, 51, 100, 5]) + (51234).to_bytes(2, "big")
              + (25).to_bytes(2, "big"))
    client = RawClient(run.host, run.port)
    try:
        for index in range(0, len(header), 3):
            client.send(header[index:index + 3])
            time.sleep(0.02)
        assert client.reply()[0] == 220
        assert client.command("EHLO client.test\r\n")[0] == 250
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    record = only_record(run)
    check_records([record], validate_record)
    assert record["client"] == {"ip": "192.0.2.10", "port": 51234}


def test_v2_local_keeps_the_real_connection(proxy, upstreams):
    host, port, _ = upstreams.smtp_sink(dump=False)
    run = proxy((host, port), "--proxy-protocol")
    client = RawClient(run.host, run.port)
    try:
        client.send(V2_SIGNATURE + b"\x20\x00\x00\x00")
        assert client.reply()[0] == 220
        assert client.command("QUIT\r\n")[0] == 221
        local_port = client.sock.getsockname()[1]
    finally:
        client.close()
    record = only_record(run)
    assert record["client"] == {"ip": "127.0.0.1", "port": local_port}
    assert record["server"] == {"ip": "127.0.0.1", "port": run.port}


def test_a_silent_client_is_closed_after_the_header_timeout(proxy, upstreams):
    host, port, _ = upstreams.smtp_sink(dump=False)
    run = proxy((host, port), "--proxy-protocol", "--proxy-protocol-timeout", "1")
    with socket.create_connection((run.host, run.port), timeout=WAIT) as client:
        client.sendall(b"PROXY TCP4 ")
        assert client.recv(4096) == b""
    wait_until(lambda: "no complete header" in proxy_log(run), "the timeout to be logged")


# --------------------------------------------------------------------------------------------------
# Implicit TLS (SMTPS, RFC 8314)


def implicit_proxy(proxy, upstream, tls_cert, *extra):
    tls_port = free_port()
    run = proxy(upstream, "--tls-cert", tls_cert[0], "--tls-key", tls_cert[1],
                "--implicit-tls-listen", f"127.0.0.1:{tls_port}", *extra)
    wait_listening(tls_port)
    return run, tls_port


def test_swaks_tls_on_connect(proxy, upstreams, validate_record, tls_cert):
    host, port, dump = upstreams.smtp_sink()
    run, tls_port = implicit_proxy(proxy, (host, port), tls_cert)
    completed = swaks(run.host, tls_port, "--tlsc", "--tls-sni", "mx.client.test",
                      "--from", "a@client.test", "--to", "b@upstream.test")
    assert "STARTTLS" not in completed.stdout.split("EHLO client.test", 1)[1]
    assert len(sink_dumps(dump, wait_for=1)) == 1
    record = only_record(run)
    check_records([record], validate_record)
    assert record["server"]["port"] == tls_port
    tls = record["tls"]
    assert tls["mode"] == "implicit"
    assert tls["established"] is True
    assert tls["version"] in ("TLSv1.2", "TLSv1.3")
    assert tls["cipher"]
    assert tls["sni"] == "mx.client.test"
    assert "STARTTLS" not in (record["extensions"] or [])
    assert delivered(record) and record["outcome"] == "completed"


def test_curl_smtps_and_the_plain_listener_side_by_side(proxy, upstreams, validate_record, tls_cert, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed; run tools/setup")
    host, port, dump = upstreams.smtp_sink()
    run, tls_port = implicit_proxy(proxy, (host, port), tls_cert)
    message = tmp_path / "message.eml"
    message.write_bytes(MESSAGE)
    subprocess.run(["curl", "-sS", "-k", f"smtps://127.0.0.1:{tls_port}", "--mail-from", "a@client.test",
                    "--mail-rcpt", "b@upstream.test", "-T", str(message)],
                   check=True, capture_output=True, timeout=COMMAND_TIMEOUT)
    swaks(run.host, run.port, "--from", "a@client.test", "--to", "b@upstream.test")
    assert len(sink_dumps(dump, wait_for=2)) == 2
    records = run.records(2)
    check_records(records, validate_record, count=2)
    modes = sorted((r["server"]["port"], r["tls"]["mode"]) for r in records)
    assert modes == sorted([(tls_port, "implicit"), (run.port, "none")])


def test_starttls_inside_implicit_tls_is_refused(proxy, upstreams, tls_cert):
    host, port, _ = upstreams.smtp_sink(dump=False)
    run, tls_port = implicit_proxy(proxy, (host, port), tls_cert)
    context = unverified_tls_context()
    with smtplib.SMTP_SSL("127.0.0.1", tls_port, context=context, local_hostname="localhost", timeout=WAIT) as client:
        client.ehlo("client.test")
        assert not client.has_extn("starttls")
        code, _ = client.docmd("STARTTLS")
        assert code == 554
        assert client.noop()[0] == 250
    # The transcript's view of a refused STARTTLS inside TLS is SessionRecorder's (SMTPTranscript).
    assert len(run.records(1)) == 1


def test_a_plaintext_client_on_the_smtps_port_fails_tls(proxy, upstreams, tls_cert):
    host, port, _ = upstreams.smtp_sink(dump=False)
    run, tls_port = implicit_proxy(proxy, (host, port), tls_cert)
    with socket.create_connection(("127.0.0.1", tls_port), timeout=WAIT) as client:
        client.sendall(b"EHLO client.test\r\n")
        received = b""
        while True:
            try:
                chunk = client.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    assert b"220" not in received
    record = only_record(run)
    assert record["tls"]["mode"] == "implicit"
    assert record["tls"]["established"] is False
    assert record["outcome"] == "tls_failed"


def test_haproxy_in_front_of_the_smtps_listener(proxy, upstreams, processes, validate_record, tls_cert, tmp_path):
    host, port, _ = upstreams.smtp_sink(dump=False)
    run, tls_port = implicit_proxy(proxy, (host, port), tls_cert, "--proxy-protocol")
    front = haproxy(processes, tmp_path, tls_port, "send-proxy-v2")
    swaks("127.0.0.1", front, "--tlsc", "--local-interface", "127.0.0.3", "--from", "a@client.test",
          "--to", "b@upstream.test")
    record = only_record(run)
    check_records([record], validate_record)
    assert record["client"]["ip"] == "127.0.0.3"
    assert record["server"]["port"] == front
    assert record["tls"]["mode"] == "implicit" and record["tls"]["established"] is True


def test_implicit_tls_without_a_certificate_is_a_usage_error(proxy_binary, tmp_path):
    completed = subprocess.run([str(proxy_binary), "proxy", "--implicit-tls-listen", f"127.0.0.1:{free_port()}",
                                "--transcripts", str(tmp_path)], capture_output=True, text=True,
                               timeout=COMMAND_TIMEOUT)
    assert completed.returncode == 2
    assert "--implicit-tls-listen" in completed.stderr and "--tls-cert" in completed.stderr


# --------------------------------------------------------------------------------------------------
# Metrics


def scrape(port, path="/metrics"):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=WAIT) as response:
            return response.status, response.headers.get("Content-Type"), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read().decode()


def metric(text, line_prefix):
    for line in text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.split()[-1])
    return None


def test_metrics_after_real_sessions(proxy, upstreams):
    host, port, _ = upstreams.smtp_sink(dump=False)
    metrics_port = free_port()
    run = proxy((host, port), "--metrics", f"127.0.0.1:{metrics_port}")
    wait_listening(metrics_port)
    swaks(run.host, run.port, "--from", "a@client.test", "--to", "b@upstream.test")
    swaks(run.host, run.port, "--pipeline", "--from", "a@client.test", "--to", "b@upstream.test")

    def two_sessions():
        status, _, text = scrape(metrics_port)
        return text if status == 200 and metric(text, 'smtpscope_sessions_total{outcome="completed"}') == 2 else None

    text = wait_until(two_sessions, "two completed sessions in the metrics")
    assert metric(text, 'smtpscope_messages_total{outcome="delivered"}') == 2
    assert metric(text, 'smtpscope_bytes_total{from="client"}') > 0
    assert metric(text, 'smtpscope_bytes_total{from="server"}') > 0
    assert metric(text, 'smtpscope_replies_total{leg="client",class="2xx"}') >= 10
    assert metric(text, 'smtpscope_replies_total{leg="upstream",class="3xx"}') == 2
    # EHLO, MAIL, RCPT, DATA and end of data are timed in each session; the upstream's 221 to QUIT
    # may come after the client's session has ended (the proxy answers QUIT itself).
    assert 10 <= metric(text, "smtpscope_upstream_reply_seconds_count") <= 12
    assert "# TYPE smtpscope_upstream_reply_seconds histogram" in text
    assert metric(text, "smtpscope_active_connections") == 0
    status, content_type, _ = scrape(metrics_port)
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert scrape(metrics_port, "/")[0] == 404
    assert scrape(metrics_port, "/metrics/x")[0] == 404


def test_metrics_count_refused_proxy_headers(proxy, upstreams):
    host, port, _ = upstreams.smtp_sink(dump=False)
    metrics_port = free_port()
    run = proxy((host, port), "--proxy-protocol", "--metrics", f"127.0.0.1:{metrics_port}")
    wait_listening(metrics_port)
    with socket.create_connection((run.host, run.port), timeout=WAIT) as client:
        client.sendall(b"EHLO client.test\r\n")
        assert client.recv(4096) == b""
    text = wait_until(lambda: (lambda t: t if metric(t, 'smtpscope_connections_refused_total{reason="proxy_protocol"}') == 1 else None)(scrape(metrics_port)[2]),
                      "the refused connection in the metrics")
    assert metric(text, "smtpscope_sessions_total") is None


def test_a_taken_metrics_port_is_a_runtime_error(proxy_binary, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics_port = taken.getsockname()[1]
        completed = subprocess.run([str(proxy_binary), "proxy", "--listen", f"127.0.0.1:{free_port()}",
                                    "--metrics", f"127.0.0.1:{metrics_port}", "--transcripts", str(tmp_path)],
                                   capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert completed.returncode == 1
    assert "--metrics" in completed.stderr


def test_a_bad_metrics_address_is_a_usage_error(proxy_binary, tmp_path):
    completed = subprocess.run([str(proxy_binary), "proxy", "--metrics", "nowhere", "--transcripts", str(tmp_path)],
                               capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert completed.returncode == 2 and "--metrics" in completed.stderr


# --------------------------------------------------------------------------------------------------
# Signals


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drains_an_open_session_and_exits_0(proxy, upstreams, validate_record, sig):
    host, port, dump = upstreams.smtp_sink()
    run = proxy((host, port))
    client = RawClient(run.host, run.port)
    try:
        assert client.reply()[0] == 220
        assert client.command("EHLO client.test\r\n")[0] == 250
        assert client.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
        run.process.send_signal(sig)
        # The listener closes first; the open session goes on.
        wait_until(lambda: not listening(run.port), "the listener to close")
        assert client.command("RCPT TO:<b@upstream.test>\r\n")[0] == 250
        assert client.command("DATA\r\n")[0] == 354
        assert client.command(MESSAGE + b".\r\n")[0] == 250
        assert client.command("QUIT\r\n")[0] == 221
    finally:
        client.close()
    assert run.process.wait(WAIT) == 0
    run.stopped = True
    assert len(sink_dumps(dump, wait_for=1)) == 1
    records = read_records(run.transcripts)
    check_records(records, validate_record, count=1)
    assert delivered(records[0]) and records[0]["outcome"] == "completed"
    log = run.output()
    assert "draining" in log and "transcripts flushed" in log


def test_the_drain_deadline_answers_open_sessions_421_and_closes_them(proxy, upstreams, validate_record):
    # RFC 5321 §3.8: a server shutting down answers 421 before it closes, even between commands.
    host, port, dump = upstreams.smtp_sink()
    run = proxy((host, port), "--drain-timeout", "1")
    idle = RawClient(run.host, run.port)
    sending = RawClient(run.host, run.port)
    try:
        assert idle.reply()[0] == 220
        assert sending.reply()[0] == 220
        assert sending.command("EHLO client.test\r\n")[0] == 250
        assert sending.command("MAIL FROM:<a@client.test>\r\n")[0] == 250
        assert sending.command("RCPT TO:<b@upstream.test>\r\n")[0] == 250
        assert sending.command("DATA\r\n")[0] == 354
        sending.send(b"Subject: cut short by the drain\r\n\r\nfirst line\r\n")
        run.process.send_signal(signal.SIGTERM)
        for client in (idle, sending):
            code, lines = client.reply()
            assert code == 421 and lines[-1].startswith("421 4.3.2 ") and "shutting down" in lines[-1]
            assert client.reply() == (None, []), "the proxy closes after its 421"
        assert run.process.wait(WAIT) == 0
        run.stopped = True
    finally:
        idle.close()
        sending.close()
    records = read_records(run.transcripts)
    check_records(records, validate_record, count=2)
    assert all(record["close"] == {"by": "proxy", "reason": "FIN"} for record in records)
    assert all(not delivered(record) for record in records)
    assert "drain deadline passed" in run.output()
    assert sink_dumps(dump, wait_for=0, timeout=1) == [], "the message cut short must not be delivered"


def peer_certificate(port):
    context = unverified_tls_context()
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
        with context.wrap_socket(raw) as tls:
            certificate = tls.getpeercert(binary_form=True)
            tls.recv(4096)
            return certificate


def der(path):
    return ssl.PEM_cert_to_DER_cert(pathlib.Path(path).read_text())


def make_certificate(directory, name):
    key, cert = directory / f"{name}-key.pem", directory / f"{name}-cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", f"/CN={name}"], check=True, capture_output=True, timeout=COMMAND_TIMEOUT)
    return cert, key


def test_sighup_reloads_the_certificate_without_dropping_sessions(proxy, upstreams, validate_record, tmp_path):
    host, port, dump = upstreams.smtp_sink()
    first = make_certificate(tmp_path, "first")
    second = make_certificate(tmp_path, "second")
    live_cert, live_key = tmp_path / "live-cert.pem", tmp_path / "live-key.pem"
    shutil.copy(first[0], live_cert)
    shutil.copy(first[1], live_key)
    run, tls_port = implicit_proxy(proxy, (host, port), (live_cert, live_key))
    assert peer_certificate(tls_port) == der(first[0])

    context = unverified_tls_context()
    open_session = smtplib.SMTP_SSL("127.0.0.1", tls_port, context=context, local_hostname="localhost", timeout=WAIT)
    try:
        open_session.ehlo("client.test")
        assert open_session.mail("a@client.test")[0] == 250

        shutil.copy(second[0], live_cert)
        shutil.copy(second[1], live_key)
        run.process.send_signal(signal.SIGHUP)
        wait_until(lambda: "TLS certificate re-read" in run.output(), "the reload to be logged")
        assert "reload: rules re-read" in run.output()
        assert peer_certificate(tls_port) == der(second[0])

        # A broken certificate keeps the one in use.
        live_cert.write_text("not a certificate\n")
        run.process.send_signal(signal.SIGHUP)
        wait_until(lambda: "keeping the previous one" in run.output(), "the failed reload to be logged")
        assert peer_certificate(tls_port) == der(second[0])

        # The session opened before both reloads was not dropped.
        assert open_session.rcpt("b@upstream.test")[0] == 250
        assert open_session.data(MESSAGE)[0] == 250
        open_session.quit()
    finally:
        open_session.close()
    assert run.process.poll() is None
    assert len(sink_dumps(dump, wait_for=1)) == 1
    records = run.records(4)
    check_records(records, validate_record)
    assert any(delivered(r) for r in records)
    assert run.stop() == 0


def test_sighup_with_an_ephemeral_certificate_keeps_serving_smtps(proxy, upstreams, validate_record):
    host, port, _ = upstreams.smtp_sink(dump=False)
    tls_port = free_port()
    run = proxy((host, port), "--tls-cert", "auto", "--implicit-tls-listen", f"127.0.0.1:{tls_port}")
    wait_listening(tls_port)
    before = peer_certificate(tls_port)
    run.process.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload: rules re-read" in run.output(), "the reload to be logged")
    assert "nothing on disk to re-read" in run.output()
    assert peer_certificate(tls_port) == before
    swaks(run.host, tls_port, "--tlsc", "--from", "a@client.test", "--to", "b@upstream.test")
    records = run.records(3)
    check_records(records, validate_record)
    assert any(r["tls"]["mode"] == "implicit" and delivered(r) for r in records)
    assert run.stop() == 0
