"""End-to-end: the message trace on PostgreSQL. A throwaway PostgreSQL 15 (Debian's `postgresql`:
initdb and pg_ctl, as an unprivileged user, on a loopback port) holds one index; two `smtpscope proxy`
instances behind a real HAProxy (tools/deploy/haproxy.cfg, PROXY v2) write to it, and `smtpscope trace`
sees both. PostgreSQL stopped mid-run, then started again: no client is refused or kept waiting, and no
session is missing from the index once it is back.
"""
import os
import pathlib
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest

from proxy_support import COMMAND_TIMEOUT, free_port, integration, listening
from test_proxy_scaleout import haproxy, send_session  # noqa: F401 (the fixture is used by name)
from trace_support import trace_ids, wait_for_index

PG_BIN = pathlib.Path("/usr/lib/postgresql/15/bin")


class Postgres:
    """A throwaway cluster in a directory of its own; root runs it as the `postgres` user (initdb
    refuses root), anyone else as themselves."""

    def __init__(self, directory):
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.user = "trace"
        self.run_as = []
        if os.geteuid() == 0:
            account = "postgres" if _has_user("postgres") else "nobody"
            shutil.chown(directory, account)
            self.run_as = ["runuser", "-u", account, "--"]

    def command(self, *argv, check=True):
        completed = subprocess.run([*self.run_as, *map(str, argv)], capture_output=True, text=True,
                                   timeout=COMMAND_TIMEOUT)
        if check:
            assert completed.returncode == 0, f"{argv[0]} exited {completed.returncode}:\n{completed.stdout}{completed.stderr}"
        return completed

    def init(self):
        self.command(PG_BIN / "initdb", "-D", self.data, "-U", self.user, "--auth=trust", "-E", "UTF8",
                     "--locale=C.UTF-8")

    def start(self):
        self.command(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.directory / "server.log", "-w", "-o",
                     f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1", "start")

    def stop(self):
        self.command(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", check=False)

    def create_database(self, name):
        self.command(PG_BIN / "createdb", "-h", "127.0.0.1", "-p", self.port, "-U", self.user, name)

    def url(self, database):
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"


def _has_user(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture
def postgres():
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"{PG_BIN}/initdb not found (Debian package postgresql); run tools/setup")
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    directory = pathlib.Path(tempfile.mkdtemp(prefix="smtpscope-pg-", dir="/tmp"))
    server = Postgres(directory)
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_two_proxies_behind_haproxy_share_one_postgres_index_that_may_go_down(
        proxy, upstreams, haproxy, postgres, smtpscope):  # noqa: F811
    postgres.create_database("trace")
    url = postgres.url("trace")
    upstream = upstreams.aiosmtpd()[:2]
    runs = [proxy(upstream, "--proxy-protocol", "--index", url) for _ in range(2)]
    port = haproxy(*runs)

    for _ in range(6):
        _, mail = send_session(port, "127.0.0.1")
        assert mail[0] == 250
    wait_for_index(smtpscope, url, 6)
    per_instance = [len(run.records(3)) for run in runs]
    assert per_instance == [3, 3], per_instance

    # PostgreSQL down: every client is still served at once (each session is bounded, never waiting
    # for the database), and the transcripts keep every session.
    postgres.stop()
    for _ in range(6):
        _, mail = send_session(port, "127.0.0.1")
        assert mail[0] == 250
    assert sum(len(run.records(6)) for run in runs) == 12
    assert smtpscope.run("trace", "--index", url).returncode == 1

    postgres.start()
    ids = wait_for_index(smtpscope, url, 12, "--limit", "1000")
    recorded = sorted(record["session_id"] for run in runs for record in run.records(6))
    assert sorted(ids) == recorded
    assert sorted(trace_ids(smtpscope, url, "--client", "127.0.0.1", "--limit", "1000")) == recorded
    for run in runs:
        assert run.stop() == 0
        assert f"index:        postgres://trace@127.0.0.1:{postgres.port}/trace (PostgreSQL)" in run.output()
        logged = [line for line in run.output().splitlines() if "relaying and transcripts go on" in line]
        assert len(logged) == 1, run.output()


def test_postgres_index_is_idempotent_and_answers_as_sqlite(postgres, smtpscope, tmp_path):
    postgres.create_database("rebuild")
    url = postgres.url("rebuild")
    capture = integration.REPO_ROOT / "Tests/SMTPCaptureTests/Fixtures/corpus/suricata-verify/smtp-errors/smtperr.pcap"
    sqlite = tmp_path / "index.sqlite"
    for index in (url, url, sqlite):
        result = smtpscope.run("index", "--index", index, capture)
        assert result.returncode == 0, result.stderr
    assert "4 sessions read, 0 new" in smtpscope.run("index", "--index", url, capture).stdout
    hostile = "'; DROP TABLE session; --%_"
    for query in [(), ("--to", "*@yahoo.com"), ("--status", "tempfailed"), ("--status", "unknown"), ("--client", "10.0.0.0/8"),
                  ("--subject", hostile), ("--from", hostile), ("--limit", "2")]:
        postgres_answer = smtpscope.run("trace", "--index", url, "--format", "jsonl", *query)
        sqlite_answer = smtpscope.run("trace", "--index", sqlite, "--format", "jsonl", *query)
        assert postgres_answer.returncode == 0, postgres_answer.stderr
        assert postgres_answer.stdout == sqlite_answer.stdout, query
    assert len(trace_ids(smtpscope, url)) == 4


def _self_signed(directory, name):
    """A certificate for 127.0.0.1 (its own root), with its key."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=COMMAND_TIMEOUT)
    return cert, key


def test_postgres_index_over_tls_as_sslmode_says(postgres, smtpscope, tmp_path):
    """A server that accepts only TLS (pg_hba `hostssl`): `sslmode=disable` is refused by it, the
    default (`prefer`) and `require` encrypt, `verify-full` connects with the server's own root
    certificate and refuses another one, naming the failure."""
    cert, key = _self_signed(postgres.directory, "server")
    other, _ = _self_signed(postgres.directory, "stranger")
    if postgres.run_as:
        shutil.chown(key, postgres.run_as[2])
    os.chmod(key, 0o600)
    (postgres.data / "pg_hba.conf").write_text("local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
    with open(postgres.data / "postgresql.conf", "a") as conf:
        conf.write(f"ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n")
    postgres.stop()
    postgres.start()
    postgres.command(PG_BIN / "createdb", "-h", postgres.directory, "-p", postgres.port, "-U", postgres.user, "tls")
    capture = integration.REPO_ROOT / "Tests/SMTPCaptureTests/Fixtures/corpus/suricata-verify/smtp-errors/smtperr.pcap"
    base = postgres.url("tls")

    refused = smtpscope.run("index", "--index", base + "?sslmode=disable", capture)
    assert refused.returncode != 0
    assert "cannot connect" in refused.stderr and "sslmode=disable" in refused.stderr, refused.stderr

    for query in ("", "?sslmode=require", f"?sslmode=verify-full&sslrootcert={cert}"):
        result = smtpscope.run("index", "--index", base + query, capture)
        assert result.returncode == 0, (query, result.stderr)
    assert len(trace_ids(smtpscope, base + f"?sslmode=verify-full&sslrootcert={cert}")) == 4

    stranger = smtpscope.run("trace", "--index", base + f"?sslmode=verify-full&sslrootcert={other}")
    assert stranger.returncode != 0
    assert "cannot connect" in stranger.stderr, stranger.stderr
    # The password never reaches an error message; the mode does.
    secret = smtpscope.run("trace", "--index", f"postgres://trace:hunter2@127.0.0.1:{postgres.port}/tls?sslmode=disable")
    assert secret.returncode != 0 and "hunter2" not in secret.stderr
