"""Fixtures for transparent mode's end-to-end tests (Tests/integration/transparent).

Each test builds its own client, gateway and server network namespaces (transparent_support.Lab),
runs smtp-sink on the server's address, `smtpscope proxy --transparent` in the gateway behind the
shipped nftables rules, and swaks in the client. Everything is stopped and the namespaces deleted in
teardown, even when the test fails. The tests skip, saying why, when the namespaces cannot be made
(no CAP_NET_ADMIN) or a tool is missing.
"""
import os
import pathlib
import shutil
import subprocess

import pytest

from transparent_support import COMMAND_TIMEOUT, PROXY_PORT, REPO_ROOT, SERVER, Lab, hostport

UPSTREAM_PEER = REPO_ROOT / "Tests" / "integration" / "proxy" / "upstream_peer.py"

PYTEST_TOOLS = ("ip", "nft", "ss", "sysctl", "smtp-sink", "swaks")


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CAP_NET_ADMIN)")
    missing = [tool for tool in PYTEST_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}; run tools/setup")
    lab = Lab()
    try:
        completed = lab.create_first()
        if completed.returncode != 0:
            pytest.skip(f"cannot create a network namespace (needs CAP_NET_ADMIN): {completed.stderr.strip()}")
        lab.build()
        yield lab
    finally:
        lab.destroy()


class Gateway:
    """Starts the lab's peers: smtp-sink on the server's addresses, the proxy in the gateway."""

    def __init__(self, lab, processes, binary, tmp_path):
        self.lab = lab
        self.processes = processes
        self.binary = binary
        self.tmp_path = tmp_path
        self.proxy_process = None

    def sinks(self):
        """One smtp-sink per family on port 25 of the server's address; returns {family: dump dir}."""
        dumps = {}
        for family, address in SERVER.items():
            directory = self.tmp_path / f"sink-{family}"
            directory.mkdir()
            # smtp-sink drops to the postfix user, which cannot enter pytest's private tmp_path.
            os.chmod(directory, 0o777)
            for parent in directory.parents:
                if parent == pathlib.Path("/tmp"):
                    break
                os.chmod(parent, os.stat(parent).st_mode | 0o711)
            argv = self.lab.exec(self.lab.server, "smtp-sink", "-u", "postfix", "-d", f"{directory}/%M.",
                                 hostport(address, 25), "256")
            process = self.processes.start(argv, f"smtp-sink {family}")
            dumps[family] = directory
            # smtp-sink prints nothing when ready: poll for its listening socket.
            self.lab.wait_listening(self.lab.server, 25, process, host=address)
        return dumps

    def tls_servers(self):
        """An aiosmtpd offering STARTTLS with its own certificate (CN and SAN mx.test) on port 25 of
        each server address; returns (certificate path, {family: record path})."""
        certificate, key = self.tmp_path / "mx-cert.pem", self.tmp_path / "mx-key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                        "-out", str(certificate), "-days", "2", "-subj", "/CN=mx.test",
                        "-addext", "subjectAltName=DNS:mx.test"],
                       check=True, capture_output=True, timeout=COMMAND_TIMEOUT)
        records = {}
        for family, address in SERVER.items():
            records[family] = self.tmp_path / f"tls-server-{family}.jsonl"
            argv = self.lab.exec(self.lab.server, "/usr/bin/python3", UPSTREAM_PEER, "--host", address, "--port", "25",
                                 "--record", records[family], "--pipelining", "--tls-cert", certificate, "--tls-key", key)
            self.processes.start(argv, f"aiosmtpd TLS {family}", ready_line="READY")
        return certificate, records

    def proxy(self, *extra):
        """`smtpscope proxy --transparent` on 0.0.0.0 and [::] port 10025 in the gateway; returns
        the transcripts directory."""
        transcripts = self.tmp_path / "transcripts"
        transcripts.mkdir(exist_ok=True)
        argv = self.lab.exec(self.lab.gateway, self.binary, "proxy", "--transparent",
                             "--listen", f"0.0.0.0:{PROXY_PORT}", "--listen", f"[::]:{PROXY_PORT}",
                             "--transcripts", transcripts, "--rules", "none", "--hostname", "gw.test", *extra)
        self.proxy_process = self.processes.start(argv, "smtpscope proxy --transparent", ready_line="Stop with",
                                                  cwd=self.tmp_path)
        return transcripts

    def proxy_output(self):
        stdout, stderr = self.processes.output(self.proxy_process)
        return stdout + stderr

    def swaks(self, server, port, *args):
        """swaks in the client namespace; returns the completed process (not checked)."""
        return self.lab.run(self.lab.client, "swaks", "--server", server, "--port", port,
                            "--from", "sender@example.org", "--to", "rcpt@example.net",
                            "--helo", "client.test", "--timeout", "20", *args, check=False, timeout=90)


@pytest.fixture
def gateway(lab, processes, smtpscope, tmp_path):
    return Gateway(lab, processes, smtpscope.path, tmp_path)
