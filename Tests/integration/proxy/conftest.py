"""Fixtures for the proxy's end-to-end tests (Tests/integration/proxy).

Every test starts `smtpscope proxy` between a real client (swaks, curl, smtplib, smtp-source or a raw
socket) and a real upstream (Postfix's smtp-sink or an aiosmtpd server from upstream_peer.py), on free
loopback ports, and stops everything in teardown (the parent conftest's `processes` fixture).

The tests skip, saying why, only when the binary has no `proxy` subcommand (`smtpscope proxy --help`
exits non-zero or prints the root's help instead); when the binary is missing they skip as the parent
conftest says.

Readiness of the proxy is read from /proc/net/tcp (a LISTEN socket on the port), never by connecting,
so that no probe session appears in the transcripts.
"""
import os
import subprocess
import time

import pytest

from proxy_support import COMMAND_TIMEOUT, ProxyRun, Upstreams, free_port, integration, listening


@pytest.fixture(scope="session")
def proxy_binary(smtpscope):
    completed = subprocess.run([str(smtpscope.path), "proxy", "--help"], capture_output=True, text=True,
                               timeout=COMMAND_TIMEOUT)
    if completed.returncode != 0:
        pytest.skip(f"{smtpscope.path} has no working `proxy` subcommand "
                    f"(`smtpscope proxy --help` exited {completed.returncode}: {completed.stderr.strip()[:200]})")
    # ArgumentParser answers `--help` with the root's help (exit 0) when `proxy` is not registered.
    if "smtpscope proxy" not in completed.stdout:
        pytest.skip(f"{smtpscope.path} has no `proxy` subcommand (`smtpscope proxy --help` shows the root help)")
    return smtpscope.path


@pytest.fixture
def proxy(proxy_binary, processes, tmp_path):
    """start(upstream=(host, port) or None, *extra_args, cwd=None, transcripts=None, env=None) -> ProxyRun."""
    counter = iter(range(100))

    def start(upstream, *extra, cwd=None, transcripts=None, env=None):
        port = free_port()
        transcripts = transcripts or tmp_path / f"transcripts-{next(counter)}"
        # An existing directory: `--transcripts` takes DIR or FILE, and a directory is unambiguous.
        transcripts.mkdir(parents=True, exist_ok=True)
        argv = [str(proxy_binary), "proxy", "--listen", f"127.0.0.1:{port}", "--transcripts", str(transcripts)]
        if upstream is not None:
            argv += ["--upstream", f"{upstream[0]}:{upstream[1]}"]
        argv += [str(a) for a in extra]
        process = processes.start(argv, "smtpscope proxy", cwd=cwd, **({"env": {**os.environ, **env}} if env else {}))
        deadline = time.monotonic() + integration.PEER_START_TIMEOUT
        while not listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                processes.stop(process)
                stdout, stderr = processes.output(process)
                raise AssertionError(f"smtpscope proxy did not listen on {port} (exit {process.returncode}):\n"
                                     f"{' '.join(argv)}\n{stdout}{stderr}")
            time.sleep(0.05)
        return ProxyRun(processes, process, port, transcripts)

    return start


@pytest.fixture
def upstreams(processes, tmp_path):
    return Upstreams(processes, tmp_path)


