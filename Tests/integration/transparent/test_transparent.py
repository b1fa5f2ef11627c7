"""`smtpscope proxy --transparent` on a gateway, in network namespaces (README, "Deploy as a transparent
gateway").

A client sends to the server's own address; the gateway's firewall (the nftables rulesets shipped in
tools/deploy/) hands the connection to the proxy, which relays it to that original destination.
Checked for IPv4 and IPv6: the mail reaches the server, the server sees the expected source
address, and the transcript names the client, the original destination and what was connected.
"""
import json
import shlex
import shutil
import subprocess

import pytest

from transparent_support import (CLIENT, DEPLOY, FAMILIES, GATEWAY_INSIDE, GATEWAY_OUTSIDE, PROXY_PORT, SERVER, client_address,
                                 sink_dumps, wait_for_records)


def send_through(gateway, family, subject):
    completed = gateway.swaks(SERVER[family], 25, "--header", f"Subject: {subject}")
    assert completed.returncode == 0, (f"swaks to {SERVER[family]}:25 failed ({completed.returncode}):\n"
                                       f"{completed.stdout}{completed.stderr}\nproxy:\n{gateway.proxy_output()}")
    return completed


def check_relayed(gateway, dumps, transcripts, validate_record, expected_source):
    """Both families went through the proxy to their original destination."""
    records = wait_for_records(transcripts, len(FAMILIES))
    assert len(records) == len(FAMILIES), f"expected {len(FAMILIES)} records, got {records}\n{gateway.proxy_output()}"
    for family in FAMILIES:
        delivered = sink_dumps(dumps[family], 1, containing=f"Subject: transparent {family}")
        assert len(delivered) == 1, f"{family}: {len(delivered)} messages at {SERVER[family]}"
        assert f"Subject: transparent {family}" in delivered[0]
        seen = client_address(delivered[0])
        assert seen == expected_source[family], f"{family}: the server saw {seen}, expected {expected_source[family]}"

        [record] = [r for r in records if r["client"] and r["client"]["ip"] == CLIENT[family]]
        validate_record(record)
        assert record["server"] == {"ip": SERVER[family], "port": 25}, record["server"]
        assert record["upstream"] == {"ip": SERVER[family], "port": 25}, record["upstream"]
        assert record["outcome"] == "completed", record
        assert record["transactions"][0]["data"]["reply"]["code"] == 250
        assert "proxy_loop" not in [a["kind"] for a in record["anomalies"]]


def firewall_available(firewall):
    if firewall == "iptables" and shutil.which("iptables-restore") is None:
        pytest.skip("iptables not installed; run tools/setup")


FIREWALLS = ("nftables", "iptables")


@pytest.mark.parametrize("firewall", FIREWALLS)
def test_redirect_relays_each_connection_to_its_original_destination(lab, gateway, validate_record, firewall):
    firewall_available(firewall)
    lab.load_firewall(firewall, "redirect")
    dumps = gateway.sinks()
    transcripts = gateway.proxy()
    for family in FAMILIES:
        send_through(gateway, family, f"transparent {family}")
    # REDIRECT: the upstream leg leaves from the gateway's own outside address.
    check_relayed(gateway, dumps, transcripts, validate_record, GATEWAY_OUTSIDE)


@pytest.mark.parametrize("firewall", FIREWALLS)
def test_tproxy_relays_each_connection_to_its_original_destination(lab, gateway, validate_record, firewall):
    firewall_available(firewall)
    lab.tproxy_routing()
    lab.load_firewall(firewall, "tproxy")
    dumps = gateway.sinks()
    transcripts = gateway.proxy()
    for family in FAMILIES:
        send_through(gateway, family, f"transparent {family}")
    check_relayed(gateway, dumps, transcripts, validate_record, GATEWAY_OUTSIDE)


@pytest.mark.parametrize("firewall", FIREWALLS)
def test_tproxy_with_spoof_source_connects_from_the_clients_address(lab, gateway, validate_record, firewall):
    firewall_available(firewall)
    lab.tproxy_routing()
    lab.load_firewall(firewall, "tproxy")
    dumps = gateway.sinks()
    transcripts = gateway.proxy("--spoof-source")
    for family in FAMILIES:
        send_through(gateway, family, f"transparent {family}")
    # The server sees the client itself; its replies return through the gateway's TPROXY rule.
    check_relayed(gateway, dumps, transcripts, validate_record, CLIENT)


def test_tls_passthrough_reaches_the_original_destination_end_to_end(lab, gateway, validate_record):
    """A transparent gateway holds no keys for the servers behind it: with `--client-tls
    passthrough` the client's STARTTLS reaches the original destination, whose certificate the
    client verifies, and the gateway records the handshake it relayed blind."""
    lab.tproxy_routing()
    lab.load_firewall("nftables", "tproxy")
    certificate, delivered = gateway.tls_servers()
    transcripts = gateway.proxy("--client-tls", "passthrough")
    for family in FAMILIES:
        completed = gateway.swaks(SERVER[family], 25, "--tls", "--tls-verify", "--tls-ca-path", certificate,
                                  "--tls-sni", "mx.test", "--header", f"Subject: passthrough {family}")
        assert completed.returncode == 0, f"{completed.stdout}{completed.stderr}\nproxy:\n{gateway.proxy_output()}"
        assert "TLS started" in completed.stdout
    records = wait_for_records(transcripts, len(FAMILIES))
    for family in FAMILIES:
        [message] = [json.loads(line) for line in delivered[family].read_text().splitlines()]
        assert message["tls"]["sni"] == "mx.test" and message["tls"]["version"] == "TLSv1.3"
        [record] = [r for r in records if r["client"]["ip"] == CLIENT[family]]
        validate_record(record)
        assert record["upstream"] == {"ip": SERVER[family], "port": 25}
        assert record["tls"]["mode"] == "passthrough" and record["tls"]["established"] is True
        assert record["tls"]["sni"] == "mx.test" and record["tls"]["version"] == "TLSv1.3"
        assert record["outcome"] == "completed"


@pytest.mark.parametrize("family", FAMILIES)
def test_a_client_connecting_straight_to_the_proxy_is_refused_as_a_loop(lab, gateway, validate_record, family):
    lab.load_nft("nftables-redirect.nft")
    transcripts = gateway.proxy()
    completed = gateway.swaks(GATEWAY_INSIDE[family], PROXY_PORT)
    assert completed.returncode != 0
    assert "<** 554 5.4.6 gw.test" in completed.stdout, completed.stdout
    # RFC 5321 §3.1: the refused client may still QUIT and is answered.
    assert "221 2.0.0" in completed.stdout, completed.stdout

    [record] = wait_for_records(transcripts, 1)
    validate_record(record)
    assert record["client"]["ip"] == CLIENT[family]
    assert record["server"] == {"ip": GATEWAY_INSIDE[family], "port": PROXY_PORT}
    assert record["upstream"] is None
    assert record["greeting"]["code"] == 554 and record["greeting"]["enhanced"] == "5.4.6"
    [loop] = [a for a in record["anomalies"] if a["kind"] == "proxy_loop"]
    assert f"{GATEWAY_INSIDE[family]}:{PROXY_PORT}" in loop["detail"]
    assert record["outcome"] == "rejected"
    assert record["close"] == {"by": "client", "reason": "QUIT"}


def unit_exec_start():
    unit = (DEPLOY / "smtpscope.service").read_text()
    [line] = [l for l in unit.splitlines() if l.startswith("ExecStart=")]
    return shlex.split(line[len("ExecStart="):])


def test_the_shipped_systemd_unit_verifies(smtpscope, tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    unit = (DEPLOY / "smtpscope.service").read_text()
    for setting in ("User=smtpscope", "NoNewPrivileges=yes",
                    "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
                    "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE"):
        assert setting in unit.splitlines(), setting
    # `verify` insists that ExecStart's binary exists: point it at the one under test.
    local = tmp_path / "smtpscope.service"
    local.write_text(unit.replace(unit_exec_start()[0], str(smtpscope.path)))
    completed = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and not completed.stderr.strip(), completed.stderr


def test_the_shipped_unit_command_line_starts_a_transparent_proxy(lab, gateway, tmp_path):
    argv = unit_exec_start()
    assert argv[1:3] == ["proxy", "--transparent"], argv
    options = argv[2:]
    # The unit's directories belong to systemd (StateDirectory=, LogsDirectory=); here, tmp_path.
    for flag, name in (("--transcripts", "transcripts"), ("--quarantine", "quarantine")):
        options[options.index(flag) + 1] = str(tmp_path / name)
    (tmp_path / "transcripts").mkdir()
    process = gateway.processes.start(lab.exec(lab.gateway, gateway.binary, "proxy", *options), "unit command line",
                                      ready_line="Stop with", cwd=tmp_path)
    lab.wait_listening(lab.gateway, PROXY_PORT, process)
    assert gateway.processes.stop(process) == 0


@pytest.mark.parametrize("args, message", [
    (["--spoof-source"], "--spoof-source needs --transparent"),
    (["--transparent", "--upstream", "127.0.0.1:25"], "--upstream and --transparent exclude each other"),
    (["--transparent", "--proxy-protocol"], "--proxy-protocol and --transparent exclude each other"),
    (["--transparent", "--implicit-tls-listen", "127.0.0.1:0", "--tls-cert", "auto"],
     "--implicit-tls-listen and --transparent exclude each other"),
])
def test_flags_that_contradict_transparent_mode_are_usage_errors(smtpscope, tmp_path, args, message):
    completed = subprocess.run([str(smtpscope.path), "proxy", "--listen", "127.0.0.1:0", "--transcripts", str(tmp_path), *args],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2, (completed.returncode, completed.stdout, completed.stderr)
    assert message in completed.stderr, completed.stderr
