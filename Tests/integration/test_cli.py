"""The command line contract of `smtpscope pcap`, `report`, `proxy` and `sink`.

Exit codes: 0 success, 1 runtime failure, 2 usage error. Errors name the file or the flag.
"""
import json
import socket
import struct
import subprocess
import time

import pytest

from integration_support import CORPUS, parse_jsonl

RICH_CAPTURE = CORPUS / "arkime" / "smtp-data-521.pcap"


def pcap_file(path, linktype, packets):
    """A classic little-endian pcap with the given link type and raw packet bytes."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for index, packet in enumerate(packets):
            out.write(struct.pack("<IIII", 1_700_000_000 + index, 0, len(packet), len(packet)))
            out.write(packet)
    return path


def tcp_session(payload_from_client, payload_from_server=b""):
    """Ethernet/IPv4/TCP packets of one connection to port 25 carrying these payloads (scapy)."""
    from scapy.all import IP, TCP, Ether, raw

    client, server = "192.0.2.10", "198.51.100.5"
    cport, sport = 40000, 25
    c_seq, s_seq = 1000, 5000

    def packet(src, dst, sp, dp, flags, seq, ack, data=b""):
        return raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=src, dst=dst) /
                   TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack) / data)

    packets = [
        packet(client, server, cport, sport, "S", c_seq, 0),
        packet(server, client, sport, cport, "SA", s_seq, c_seq + 1),
        packet(client, server, cport, sport, "A", c_seq + 1, s_seq + 1),
    ]
    c_seq += 1
    s_seq += 1
    if payload_from_server:
        packets.append(packet(server, client, sport, cport, "PA", s_seq, c_seq, payload_from_server))
        s_seq += len(payload_from_server)
    packets.append(packet(client, server, cport, sport, "PA", c_seq, s_seq, payload_from_client))
    c_seq += len(payload_from_client)
    packets.append(packet(client, server, cport, sport, "FA", c_seq, s_seq))
    packets.append(packet(server, client, sport, cport, "FA", s_seq, c_seq + 1))
    packets.append(packet(client, server, cport, sport, "A", c_seq + 1, s_seq + 1))
    return packets


def test_missing_file_is_a_runtime_failure_naming_it(smtpscope, tmp_path):
    missing = tmp_path / "no-such-capture.pcap"
    result = smtpscope.run("pcap", missing)
    assert result.returncode == 1
    assert "no-such-capture.pcap" in result.stderr
    assert result.stdout == ""


def test_non_capture_file_is_a_runtime_failure(smtpscope, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("this is not a capture\n" * 10)
    result = smtpscope.run("pcap", text)
    assert result.returncode == 1
    assert "notes.txt" in result.stderr


def test_truncated_capture_is_processed_with_a_warning(smtpscope, tmp_path):
    data = RICH_CAPTURE.read_bytes()
    truncated = tmp_path / "truncated.pcap"
    truncated.write_bytes(data[: len(data) * 2 // 3 + 7])  # cut inside a packet record
    result = smtpscope.run("pcap", truncated)
    assert result.returncode == 0, result.stderr
    assert "truncat" in result.stderr.lower()
    records = parse_jsonl(result.stdout)
    assert len(records) == 1
    assert records[0]["helo"] is not None


def test_unsupported_link_type_is_reported(smtpscope, tmp_path):
    # LINKTYPE 147 is DLT_USER0: nothing smtpscope can decode (Sources/TCPReassembly/LinkType.swift
    # lists the supported ones).
    capture = pcap_file(tmp_path / "user0.pcap", 147, [b"\x00" * 60])
    result = smtpscope.run("pcap", capture)
    assert result.returncode == 1
    assert "147" in result.stderr or "link" in result.stderr.lower()
    assert "user0.pcap" in result.stderr


def test_garbage_payload_on_port_25_is_flagged_not_fatal(smtpscope, tmp_path):
    garbage = bytes(range(256)) * 8 + b"\x00\xff\r\n\x16\x03\x01"
    capture = pcap_file(tmp_path / "garbage.pcap", 1, tcp_session(garbage, b"220 mx.example ESMTP\r\n"))
    result = smtpscope.run("pcap", capture)
    assert result.returncode == 0, result.stderr
    records = parse_jsonl(result.stdout)
    assert len(records) == 1
    record = records[0]
    assert record["server"] == {"ip": "198.51.100.5", "port": 25}
    assert record["anomalies"], "garbage from the client should leave an anomaly (e.g. unparsed_bytes)"
    assert record["transactions"] == []


def test_empty_capture_gives_no_records(smtpscope, tmp_path):
    capture = pcap_file(tmp_path / "empty.pcap", 1, [])
    result = smtpscope.run("pcap", capture)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(("args", "flag"), [
    (["pcap", str(RICH_CAPTURE), "--bogus-flag"], "--bogus-flag"),
    (["pcap", str(RICH_CAPTURE), "--format", "xml"], "--format"),
    (["pcap", str(RICH_CAPTURE), "--ports", "25,notaport"], "--ports"),
    (["pcap", str(RICH_CAPTURE), "--ports", "70000"], "--ports"),
    (["pcap"], None),
    (["no-such-subcommand"], "no-such-subcommand"),
], ids=["unknown-flag", "bad-format", "bad-port-list", "port-out-of-range", "no-input", "unknown-subcommand"])
def test_usage_errors_exit_2_and_name_the_flag(smtpscope, args, flag):
    result = smtpscope.run(*args)
    assert result.returncode == 2, (result.returncode, result.stderr)
    if flag:
        assert flag in result.stderr
    assert result.stdout == ""


def test_transcripts_file_takes_the_records(smtpscope, tmp_path):
    transcripts = tmp_path / "out.jsonl"
    result = smtpscope.run("pcap", RICH_CAPTURE, "--transcripts", transcripts)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    records = parse_jsonl(transcripts.read_text())
    assert len(records) == 1 and records[0]["schema"] == "smtpscope.session/1"


def test_report_with_transcripts_writes_both(smtpscope, tmp_path):
    transcripts = tmp_path / "out.jsonl"
    result = smtpscope.run("pcap", RICH_CAPTURE, "--report", "--transcripts", transcripts)
    assert result.returncode == 0, result.stderr
    assert "521" in result.stdout and "5.2.1" in result.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout.splitlines()[0])
    assert len(parse_jsonl(transcripts.read_text())) == 1


def test_report_subcommand_reads_transcript_files(smtpscope, tmp_path):
    transcripts = tmp_path / "out.jsonl"
    transcripts.write_text(smtpscope.run("pcap", RICH_CAPTURE).stdout)
    result = smtpscope.run("report", transcripts)
    assert result.returncode == 0, result.stderr
    assert "521" in result.stdout and "5.2.1" in result.stdout
    direct = smtpscope.run("pcap", RICH_CAPTURE, "--report").stdout
    assert result.stdout == direct, "the report from transcripts should equal the report from the capture"


def test_report_on_a_missing_transcript_file(smtpscope, tmp_path):
    result = smtpscope.run("report", tmp_path / "missing.jsonl")
    assert result.returncode == 1
    assert "missing.jsonl" in result.stderr


def test_report_on_a_bad_transcript_line_names_file_and_line(smtpscope, tmp_path):
    transcripts = tmp_path / "bad.jsonl"
    good = smtpscope.run("pcap", RICH_CAPTURE).stdout.strip()
    transcripts.write_text(good + "\n{not json\n")
    result = smtpscope.run("report", transcripts)
    assert result.returncode == 1
    assert "bad.jsonl" in result.stderr and "2" in result.stderr


def test_text_format_is_human_readable(smtpscope):
    result = smtpscope.run("pcap", RICH_CAPTURE, "--format", "text")
    assert result.returncode == 0, result.stderr
    assert "521" in result.stdout and "Urgent Trip." in result.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout.splitlines()[0])


def test_several_files_in_one_run(smtpscope):
    first = CORPUS / "arkime" / "smtp-data-521.pcap"
    second = CORPUS / "arkime" / "smtp-rcpt-553.pcap"
    result = smtpscope.run("pcap", first, second)
    assert result.returncode == 0, result.stderr
    assert len(parse_jsonl(result.stdout)) == 2


# Start-up failures of `proxy` and `sink`: what failed and how to fix it, in the user's words. A
# library's own text (`bind(descriptor:ptr:bytes:)`, `errno: 98`, `failedToLoadCertificate`,
# `SocketAddressError`, `NSCocoaErrorDomain`) never reaches the user (issue 15).
LIBRARY_WORDS = ("bind(descriptor", "errno", "failedToLoad", "SocketAddressError", "NSCocoaErrorDomain", "Error Domain")


def assert_no_library_words(text):
    assert not [word for word in LIBRARY_WORDS if word in text], text


@pytest.fixture
def taken_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("command", ["proxy", "sink"])
def test_a_taken_port_says_so_and_how_to_find_the_holder(smtpscope, tmp_path, taken_port, command):
    extra = ["--rules", "none", "--transcripts", tmp_path / "t"] if command == "proxy" else []
    result = smtpscope.run(command, "--listen", f"127.0.0.1:{taken_port}", *extra)
    assert result.returncode == 1, result.stderr
    assert f"--listen 127.0.0.1:{taken_port}: the address is already in use" in result.stderr
    assert f"sport = :{taken_port}" in result.stderr
    assert_no_library_words(result.stderr)


@pytest.mark.parametrize("command", ["proxy", "sink"])
def test_a_listen_host_that_does_not_resolve_is_a_usage_error(smtpscope, tmp_path, command):
    extra = ["--rules", "none", "--transcripts", tmp_path / "t"] if command == "proxy" else []
    result = smtpscope.run(command, "--listen", "no-such-host.invalid:2525", *extra)
    assert result.returncode == 2, result.stderr
    assert "--listen no-such-host.invalid:2525: cannot resolve the host name no-such-host.invalid" in result.stderr
    assert_no_library_words(result.stderr)


def test_a_certificate_that_is_not_pem_names_the_flag_and_file(smtpscope, tmp_path):
    not_pem = tmp_path / "cert.pem"
    not_pem.write_text("not a certificate\n")
    result = smtpscope.run("proxy", "--listen", "127.0.0.1:0", "--rules", "none", "--transcripts", tmp_path / "t",
                           "--tls-cert", not_pem, "--tls-key", not_pem)
    assert result.returncode == 1, result.stderr
    assert f"--tls-cert {not_pem}: not a PEM certificate chain" in result.stderr
    assert_no_library_words(result.stderr)
    missing = smtpscope.run("proxy", "--listen", "127.0.0.1:0", "--rules", "none", "--transcripts", tmp_path / "t",
                            "--tls-cert", tmp_path / "missing.pem", "--tls-key", not_pem)
    assert missing.returncode == 1 and "missing.pem: no such file" in missing.stderr, missing.stderr


def test_a_store_that_cannot_be_a_directory_names_the_flag_and_the_reason(smtpscope, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    result = smtpscope.run("sink", "--listen", "127.0.0.1:0", "--store", a_file / "messages")
    assert result.returncode == 1, result.stderr
    assert f"--store {a_file / 'messages'}: Not a directory" in result.stderr
    assert_no_library_words(result.stderr)


def test_listen_on_a_bare_port_means_every_ipv4_address(smtpscope, tmp_path):
    port = free_port()
    process = subprocess.Popen([str(smtpscope.path), "proxy", "--listen", f":{port}", "--rules", "none",
                                "--transcripts", str(tmp_path / "t")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                    assert client.recv(100).startswith(b"220")
                break
            except ConnectionRefusedError:
                assert process.poll() is None, process.stdout.read()
                time.sleep(0.1)
        else:
            pytest.fail(f"nothing listened on :{port}")
    finally:
        process.terminate()
        output = process.communicate(timeout=60)[0]
    assert f"listening:    0.0.0.0:{port}" in output, output


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
