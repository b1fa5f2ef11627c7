"""Fixtures of the interop matrix (Tests/integration/interop): real MTAs through `smtpscope proxy`.

Upstreams live for the module (one of each kind; pytest orders the cells so each starts once), and
each cell reads only what its witnesses wrote after the cell began (`mark`). The proxy and the
client MTAs are started per cell: an MTA's configuration names the proxy's port.

Peers come from tools/setup (Postfix, swaks, curl, msmtp, aiosmtpd) and tools/setup-peers (Exim
and OpenSMTPD, unpacked beside Postfix). A missing peer fails a cell under CI=true and skips it
elsewhere, naming the install step. The cells need root (throwaway MTA instances, users, mount
namespaces).
"""
import shutil
import signal
import subprocess
import time

import pytest

from aiosmtpd_upstream import AiosmtpdUpstream
from exim_peer import EximUpstream
from interop_support import COMMAND_TIMEOUT, integration, peer_folder, read_records
from opensmtpd_peer import OpenSMTPDUpstream
from postfix_instance import PostfixUpstream

REPO_ROOT = integration.REPO_ROOT


@pytest.fixture(scope="module")
def module_processes():
    registry = integration.Processes()
    yield registry
    registry.stop_all()


@pytest.fixture(scope="module")
def peer_cert():
    """A certificate the peers can read after dropping privileges (pytest's tmp_path is 0700)."""
    directory = peer_folder("interop-tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost"],
                   check=True, capture_output=True, timeout=COMMAND_TIMEOUT)
    key.chmod(0o644)
    yield cert, key
    shutil.rmtree(directory, ignore_errors=True)


def _start_upstream(name, processes, cert):
    if name == "postfix":
        return PostfixUpstream(processes, cert)
    if name == "exim":
        return EximUpstream(processes, cert)
    if name == "aiosmtpd":
        return AiosmtpdUpstream(processes, cert)
    if name == "opensmtpd":
        return OpenSMTPDUpstream(processes, AiosmtpdUpstream(processes))
    raise ValueError(name)


@pytest.fixture(scope="module")
def upstream(request, module_processes, peer_cert):
    """The upstream named by the cell's `upstream` parameter (indirect), started once per module."""
    started = _start_upstream(request.param, module_processes, peer_cert)
    yield started
    started.stop()


@pytest.fixture(scope="session")
def proxy_binary(smtpscope):
    return smtpscope.path


class ProxyRun:
    def __init__(self, processes, process, port, transcripts, argv):
        self.processes = processes
        self.process = process
        self.port = port
        self.transcripts = transcripts
        self.argv = argv

    def stop(self):
        """SIGTERM: the proxy drains (a few seconds at most) and writes every record."""
        self.processes.stop(self.process, sig=signal.SIGTERM, timeout=30)
        return self.process.returncode

    def records(self):
        return read_records(self.transcripts)

    def output(self):
        stdout, stderr = self.processes.output(self.process)
        return stdout + stderr


def listening(port):
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[1].endswith(wanted) and fields[3] == "0A":
                return True
    return False


@pytest.fixture
def start_proxy(proxy_binary, processes, tmp_path):
    """start_proxy(port, upstream_address, rules) -> ProxyRun; rules is "shipped" (the repository's
    rules/) or "none". The proxy offers STARTTLS (`--tls-cert auto`) in every cell, and negotiates
    it upstream when offered (`--upstream-tls opportunistic`, the default)."""

    def start(port, upstream_address, rules):
        transcripts = tmp_path / "transcripts"
        transcripts.mkdir(exist_ok=True)
        argv = [str(proxy_binary), "proxy", "--listen", f"127.0.0.1:{port}",
                "--upstream", f"{upstream_address[0]}:{upstream_address[1]}",
                "--transcripts", str(transcripts), "--tls-cert", "auto", "--drain-timeout", "5",
                "--rules", str(REPO_ROOT / "rules") if rules == "shipped" else "none"]
        process = processes.start(argv, "smtpscope proxy", cwd=tmp_path)
        deadline = time.monotonic() + integration.PEER_START_TIMEOUT
        while not listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                processes.stop(process)
                stdout, stderr = processes.output(process)
                raise AssertionError(f"smtpscope proxy did not listen on {port}:\n{' '.join(argv)}\n{stdout}{stderr}")
            time.sleep(0.05)
        return ProxyRun(processes, process, port, transcripts, argv)

    return start
