"""PostgreSQL over TLS (issue 18, item 4, the Postgres half), on loopback.

The module starts its own PostgreSQL 15 (in a tmp dir, owned and run like scripts/lib/services.sh
runs the project's: as the `postgres` user when we are root) with `ssl=on`, a server certificate
for `localhost` / 127.0.0.1 from a throw-away CA, and a pg_hba.conf that has `hostssl` lines only:

    database chat, chat_refused   hostssl ... trust
    database chat_cert            hostssl ... cert clientcert=verify-full   (client certificate, CN = chat)

The processes get libpq's own parameters in DATABASE_URL (`sslmode`, `sslrootcert`, `sslcert`,
`sslkey`), which they pass to libpq unchanged:
  (a) verify-full against the right CA: a gateway migrates, is ready, signs up and logs in; its
      connections show up in pg_stat_ssl as TLS;
  (b) verify-full against another CA: no connection is made, the gateway keeps waiting (alive,
      never ready) and its log names the certificate failure;
  (c) client-certificate authentication: a worker and a gateway carry one message end to end;
  (d) sslmode=disable: the hostssl-only server refuses (no pg_hba.conf entry), the gateway is never
      ready.
Redis is the suite's (TEST_REDIS_URL); (c) uses a private command stream so no other worker reads it.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest
import requests

from support import Api, Messages, check_message, create_user, free_port, poll, stop_process, unique, worker_env
from tls_support import TLSMaterial, TLSSetupError, create_tls_material, install_file

START_TIMEOUT = 60  # seconds for initdb + the server to accept connections
STOP_TIMEOUT = 30  # seconds for the server to stop on SIGINT before SIGKILL
PSQL_TIMEOUT = 30
READY_TIMEOUT = 30  # seconds for a started gateway / worker to answer /ready 200
REFUSED_WINDOW = 8.0  # seconds a refused gateway is watched (its retry backoff reaches 5 s)
ROLE = "chat"  # the role the processes log in as; the client certificate's CN


class PostgresSetupError(Exception):
    pass


# Runs beside pytest (its own session, so a Ctrl-C in the terminal does not reach it): when pytest
# is gone without having stopped the server (killed, os._exit), it stops the postmaster by pid
# and deletes the server's directory. argv: pytest's pid, the postmaster's pid, the directory.
WATCHDOG = """
import os, shutil, signal, sys, time
parent, pid, home = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def is_postgres():
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().startswith("postgres")
    except OSError:
        return False
while os.getppid() == parent:
    time.sleep(1)
for sig, wait in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
    if is_postgres():
        os.kill(pid, sig)
    deadline = time.monotonic() + wait
    while is_postgres() and time.monotonic() < deadline:
        time.sleep(0.1)
shutil.rmtree(home, ignore_errors=True)
"""


def _is_root() -> bool:
    return os.geteuid() == 0


class TLSPostgres:
    """A private PostgreSQL 15 with TLS on 127.0.0.1:<port>. Stop it with stop() (idempotent)."""

    def __init__(self, pg_bin: pathlib.Path, tls: TLSMaterial, log_dir: pathlib.Path):
        self.pg_bin = pg_bin
        self.tls = tls
        self.log_path = log_dir / "postgres-tls.log"
        self.home: pathlib.Path | None = None
        self.port: int | None = None
        self.pid: int | None = None  # the postmaster
        self.launcher: subprocess.Popen | None = None
        self.watchdog: subprocess.Popen | None = None
        # psql as a client needs a HOME without ~/.postgresql (libpq would pick up files there).
        self.client_home = pathlib.Path(tempfile.mkdtemp(prefix="chat-pg-tls-client."))

    # --- start ---------------------------------------------------------------------------------

    def _as_server_user(self, args: list[str]) -> list[str]:
        # initdb and postgres refuse to run as root: like services.sh, run them as `postgres`.
        return ["runuser", "-u", "postgres", "--", *args] if _is_root() else args

    def _own(self, path: pathlib.Path) -> None:
        if _is_root():
            shutil.chown(path, "postgres", "postgres")

    def start(self) -> None:
        for binary in ("initdb", "postgres", "psql", "pg_isready"):
            if not os.access(self.pg_bin / binary, os.X_OK):
                raise PostgresSetupError(f"{self.pg_bin / binary} is missing: install PostgreSQL 15 (or set PG_BIN)")
        if _is_root():
            if shutil.which("runuser") is None:
                raise PostgresSetupError("runuser is missing: as root the server must run as `postgres`")
            try:
                import pwd

                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresSetupError("the 'postgres' system user is missing (install the postgresql package)") from None
        # A private directory under /tmp, as services.sh does when the postgres user cannot reach
        # the tests' own tmp dirs (pytest's are 0700 root).
        self.home = pathlib.Path(tempfile.mkdtemp(prefix="chat-pg-tls."))
        os.chmod(self.home, 0o700)
        self._own(self.home)
        data, socket_dir, tls_dir = self.home / "data", self.home / "socket", self.home / "tls"
        for directory in (socket_dir, tls_dir):
            directory.mkdir(mode=0o700)
            self._own(directory)
        with open(self.log_path, "ab") as log:
            proc = subprocess.run(
                self._as_server_user([str(self.pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                                      "-E", "UTF8", "--locale=C", "--no-sync"]),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=START_TIMEOUT)
        if proc.returncode != 0:
            raise PostgresSetupError(f"initdb failed ({proc.returncode}):\n{self.log_tail()}")

        # The server's copies: readable by the server's user only for the key (PostgreSQL refuses a
        # key file with group/other permissions).
        owner = "postgres" if _is_root() else None
        server = self.tls.server.install(tls_dir, owner=owner)
        client_ca = install_file(self.tls.ca.cert, tls_dir / "client-ca.crt", owner=owner, mode=0o644)
        hba = data / "pg_hba.conf"
        hba.write_text(
            "# TYPE   DATABASE      USER      ADDRESS        METHOD\n"
            "local    all           postgres                 trust\n"
            "hostssl  chat_cert     all       127.0.0.1/32   cert clientcert=verify-full\n"
            "hostssl  chat,chat_refused  all  127.0.0.1/32   trust\n"
            # No `host` lines: plain TCP is refused; nothing on ::1 (the server listens on 127.0.0.1).
        )
        os.chmod(hba, 0o600)
        self._own(hba)

        last = ""
        for _attempt in range(3):
            self.port = free_port()
            args = [str(self.pg_bin / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(socket_dir),
                    "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=60", "-c", "logging_collector=off",
                    "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                    "-c", "ssl=on", "-c", f"ssl_cert_file={server.cert}", "-c", f"ssl_key_file={server.key}",
                    "-c", f"ssl_ca_file={client_ca}", "-c", "log_connections=on", "-c", "log_line_prefix=%m [%p] "]
            with open(self.log_path, "ab") as log:
                self.launcher = subprocess.Popen(self._as_server_user(args), stdout=log, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL, start_new_session=True)
            if self._wait_ready(data, socket_dir):
                self.watchdog = subprocess.Popen(
                    [sys.executable, "-c", WATCHDOG, str(os.getpid()), str(self.pid), str(self.home)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True)
                self._bootstrap(socket_dir)
                return
            last = self.log_tail()
            self._stop_server()
            if "could not bind" not in last and "already in use" not in last:
                break
        raise PostgresSetupError(f"PostgreSQL with TLS did not start (log {self.log_path}):\n{last}")

    def _wait_ready(self, data: pathlib.Path, socket_dir: pathlib.Path) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.launcher.poll() is not None:
                return False
            ready = subprocess.run([str(self.pg_bin / "pg_isready"), "-q", "-h", str(socket_dir), "-p", str(self.port),
                                    "-t", "1"], stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
            if ready.returncode == 0:
                try:
                    self.pid = int((data / "postmaster.pid").read_text().splitlines()[0])
                except (OSError, ValueError, IndexError):
                    self.pid = None
                return self.pid is not None
            time.sleep(0.2)
        return False

    def _bootstrap(self, socket_dir: pathlib.Path) -> None:
        sql = (f"CREATE ROLE {ROLE} LOGIN CREATEDB;\n"
               + "".join(f"CREATE DATABASE {db} OWNER {ROLE};\n" for db in ("chat", "chat_cert", "chat_refused")))
        proc = subprocess.run([str(self.pg_bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(socket_dir),
                               "-p", str(self.port), "-U", "postgres", "-d", "postgres"],
                              input=sql, capture_output=True, text=True, timeout=PSQL_TIMEOUT,
                              env=self.client_env())
        if proc.returncode != 0:
            raise PostgresSetupError(f"bootstrap failed: {proc.stderr}")

    # --- stop ----------------------------------------------------------------------------------

    def _pid_is_postgres(self) -> bool:
        if self.pid is None:
            return False
        try:
            return pathlib.Path(f"/proc/{self.pid}/comm").read_text().startswith("postgres")
        except OSError:
            return False

    def _stop_server(self) -> None:
        """Fast shutdown (SIGINT) of the postmaster by its pid, SIGKILL after STOP_TIMEOUT."""
        if self._pid_is_postgres():
            os.kill(self.pid, signal.SIGINT)
            deadline = time.monotonic() + STOP_TIMEOUT
            while self._pid_is_postgres() and time.monotonic() < deadline:
                time.sleep(0.1)
            if self._pid_is_postgres():
                os.kill(self.pid, signal.SIGKILL)
                deadline = time.monotonic() + 10
                while self._pid_is_postgres() and time.monotonic() < deadline:
                    time.sleep(0.1)
        if self.launcher is not None and self.launcher.poll() is None:
            # No postmaster (it never wrote its pid): the launcher is ours alone.
            try:
                self.launcher.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.launcher.kill()
                self.launcher.wait(timeout=10)
        self.pid = None

    def stop(self) -> None:
        try:
            self._stop_server()
        finally:
            if self.watchdog is not None:
                stop_process(self.watchdog)
            if self.home is not None:
                shutil.rmtree(self.home, ignore_errors=True)
                self.home = None
            shutil.rmtree(self.client_home, ignore_errors=True)

    # --- clients -------------------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def url(self, database: str, host: str = "localhost", **params: str | pathlib.Path) -> str:
        query = "&".join(f"{key}={urllib.parse.quote(str(value), safe='/')}" for key, value in params.items())
        return f"postgresql://{ROLE}@{host}:{self.port}/{database}" + (f"?{query}" if query else "")

    def verified_url(self, database: str = "chat", client_cert: bool = False) -> str:
        """verify-full to 127.0.0.1 (the certificate's IP SAN) for psql checks."""
        params: dict[str, str | pathlib.Path] = {"sslmode": "verify-full", "sslrootcert": self.tls.ca.cert}
        if client_cert:
            params.update(sslcert=self.tls.client.cert, sslkey=self.tls.client.key)
        return self.url(database, host="127.0.0.1", **params)

    def client_env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.client_home),
                "LANG": "C.UTF-8", "PGCONNECT_TIMEOUT": "10"}

    def psql(self, url: str, sql: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.pg_bin / "psql"), "-X", "-q", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1",
                               "-d", url, "-c", sql], capture_output=True, text=True, timeout=PSQL_TIMEOUT,
                              stdin=subprocess.DEVNULL, env=self.client_env())

    def rows(self, url: str, sql: str) -> list[list[str]]:
        proc = self.psql(url, sql)
        assert proc.returncode == 0, f"psql ({sql!r}) failed: {proc.stderr}"
        return [line.split("|") for line in proc.stdout.splitlines() if line]


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> TLSMaterial:
    try:
        return create_tls_material(tmp_path_factory.mktemp("pg-tls-certs"), dns_names=["localhost"],
                                   ips=["127.0.0.1"], client_common_name=ROLE)
    except TLSSetupError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def tls_pg(settings, tls, tmp_path_factory):
    server = TLSPostgres(settings.pg_bin, tls, tmp_path_factory.mktemp("pg-tls-server"))
    try:
        try:
            server.start()
        except (PostgresSetupError, subprocess.TimeoutExpired, OSError) as error:
            pytest.fail(f"cannot start the TLS PostgreSQL: {error}", pytrace=False)
        yield server
    finally:
        server.stop()


# --- helpers -----------------------------------------------------------------------------------


def log_entries(cp) -> list[dict]:
    """The JSON log lines of a chat process (non-JSON lines as {"msg": line})."""
    entries = []
    for line in cp.logs().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            entry = {"msg": line}
        entries.append(entry if isinstance(entry, dict) else {"msg": line})
    return entries


def database_errors(cp, needle: str) -> list[dict]:
    """Log entries whose error field (or message) contains `needle`."""
    return [e for e in log_entries(cp) if needle in str(e.get("error", "")) + str(e.get("msg", ""))]


def wait_ready(cp, timeout: float = READY_TIMEOUT) -> dict:
    def ready():
        if not cp.alive():
            raise AssertionError(f"{cp.name} exited ({cp.proc.returncode}):\n{cp.log_tail()}")
        resp = requests.get(cp.admin_url + "/ready", timeout=5)
        return resp.json() if resp.status_code == 200 else None

    return poll(ready, timeout, interval=0.2, what=f"{cp.name} /ready 200")


def high_user_ids(server: TLSPostgres, url: str) -> None:
    """User ids far from the suite's own (the chat:user:<id> channels of the shared Redis are
    global): a message here must not reach another test's socket."""
    start = 7_000_000_000_000 + secrets.randbelow(10**12)
    server.rows(url, f"ALTER TABLE users ALTER COLUMN id RESTART WITH {start}")


def watch_refused(cp, server: TLSPostgres, needle: str, database: str, log_mark: int) -> dict:
    """For a gateway whose Postgres connections fail: it keeps retrying (alive), logs `needle`
    on each attempt, is never ready, and no connection reaches the database. Returns facts for
    the report."""
    def logged():
        assert cp.alive(), f"the gateway exited ({cp.proc.returncode}) instead of waiting:\n{cp.log_tail()}"
        return bool(database_errors(cp, needle))

    poll(logged, 20, interval=0.2, what=f"a log line about {needle!r}")
    started = time.monotonic()
    ready_answers = []
    last_ready = None
    while time.monotonic() - started < REFUSED_WINDOW:
        assert cp.alive(), f"the gateway exited ({cp.proc.returncode}) instead of waiting:\n{cp.log_tail()}"
        try:
            resp = requests.get(cp.admin_url + "/ready", timeout=3)
            ready_answers.append(resp.status_code)
            last_ready = resp.text
            assert resp.status_code != 200, f"/ready said 200 without a database: {resp.text}"
        except requests.RequestException:
            ready_answers.append("refused")  # the admin port is not listening (yet)
        try:
            health = requests.get(cp.url + "/api/auth/profile", timeout=3)
            assert health.status_code != 200, f"the public port served without a database: {health.text}"
        except requests.RequestException:
            pass
        time.sleep(0.5)
    assert cp.alive(), f"the gateway exited ({cp.proc.returncode}) instead of waiting:\n{cp.log_tail()}"
    failures = database_errors(cp, needle)
    assert len(failures) >= 3, (f"the gateway should keep retrying and log each failure; only {len(failures)} "
                                f"line(s) mention {needle!r}:\n{cp.log_tail()}")
    assert all(e.get("retrying") in (True, None) for e in failures), f"it gave up: {failures[-1]!r}"

    # Nothing reached the database: no authorized connection in the server log since the start,
    # no session, no table.
    new_log = server.log_text()[log_mark:]
    authorized = [line for line in new_log.splitlines()
                  if "connection authorized" in line and f"database={database}" in line]
    assert not authorized, f"a connection to {database} succeeded:\n" + "\n".join(authorized)
    sessions = server.rows(server.verified_url("chat"),
                           f"SELECT pid, application_name FROM pg_stat_activity WHERE datname = '{database}'")
    assert sessions == [], f"sessions on {database}: {sessions}"
    tables = server.rows(server.verified_url(database),
                         "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    assert tables == [], f"{database} should be untouched, has {tables}"

    code, killed = cp.stop()
    assert not killed, "the waiting gateway ignored SIGTERM for 10 s"
    return {"log": failures[0], "attempts": len(failures), "ready": sorted(set(map(str, ready_answers))),
            "ready_body": last_ready, "exit": code, "server_log": new_log}


# --- tests -------------------------------------------------------------------------------------


def test_gateway_verify_full_tls(procs, tls_pg, tls):
    """(a) sslmode=verify-full with the right CA: migrations, /ready, sign-up and login; every
    gateway connection is TLS."""
    url = tls_pg.url("chat", sslmode="verify-full", sslrootcert=tls.ca.cert)
    mark = len(tls_pg.log_text())
    gw = procs.gateway({"DATABASE_URL": url})
    migrated = [e for e in log_entries(gw) if e.get("msg") == "database schema is current"]
    assert migrated, f"no 'database schema is current' line:\n{gw.log_tail()}"
    assert migrated[0].get("applied"), f"the gateway should have applied the migrations itself: {migrated[0]!r}"
    check = tls_pg.verified_url("chat")
    assert tls_pg.rows(check, "SELECT to_regclass('users') IS NOT NULL") == [["t"]], "no users table"

    ready = wait_ready(gw)
    assert ready.get("checks", {}).get("postgres") == "up", f"/ready: {ready!r}"

    high_user_ids(tls_pg, check)
    api = Api(gw.url)
    user = create_user(api)  # sign-up + login
    profile = api.profile(user.token)
    assert profile.status_code == 200, profile.text
    assert tls_pg.rows(check, f"SELECT count(*) FROM users WHERE username = '{user.username}'") == [["1"]]

    connections = tls_pg.rows(check, "SELECT ssl, version FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
                                     "WHERE application_name LIKE 'gateway%'")
    assert connections, "no gateway connection in pg_stat_activity"
    assert all(ssl == "t" and version.startswith("TLSv1.") for ssl, version in connections), connections
    authorized = [line for line in tls_pg.log_text()[mark:].splitlines()
                  if "connection authorized" in line and "application_name=gateway" in line]
    assert authorized and all("SSL enabled" in line for line in authorized), authorized
    print(f"\ngateway connections: {connections}; server log: {authorized[0]}")


def test_gateway_refuses_untrusted_server_certificate(procs, tls_pg, tls):
    """(b) verify-full with a CA that did not sign the server's certificate: no connection; the
    gateway waits (alive, not ready) and says why in its log."""
    url = tls_pg.url("chat_refused", sslmode="verify-full", sslrootcert=tls.other_ca.cert)
    mark = len(tls_pg.log_text())
    gw = procs.gateway({"DATABASE_URL": url}, wait=False)
    facts = watch_refused(gw, tls_pg, "certificate verify failed", "chat_refused", mark)
    error = str(facts["log"].get("error", ""))
    assert "SSL error" in error or "certificate" in error, facts["log"]
    print(f"\nlog: {json.dumps(facts['log'])}\nattempts in {REFUSED_WINDOW + 1:.0f}+ s: {facts['attempts']}; "
          f"/ready: {facts['ready']} {facts['ready_body']}; exit after SIGTERM: {facts['exit']}")
    server_side = [line for line in facts["server_log"].splitlines() if "SSL" in line or "ssl" in line][:2]
    print("server log: " + " | ".join(server_side))


def test_worker_with_client_certificate(settings, procs, tls_pg, tls):
    """(c) hostssl ... cert clientcert=verify-full: without a client certificate psql is refused;
    with sslcert/sslkey a worker and a gateway carry a message end to end."""
    no_cert = tls_pg.psql(tls_pg.verified_url("chat_cert"), "SELECT 1")
    assert no_cert.returncode != 0 and "certificate" in no_cert.stderr, (
        f"chat_cert must require a client certificate: rc {no_cert.returncode} {no_cert.stdout} {no_cert.stderr}")

    url = tls_pg.url("chat_cert", sslmode="verify-full", sslrootcert=tls.ca.cert,
                     sslcert=tls.client.cert, sslkey=tls.client.key)
    stream = unique("tlscmd")  # a private command stream: no other test's worker reads it
    wk = procs.worker(worker_env({"DATABASE_URL": url, "COMMAND_STREAM": stream,
                                  "DEAD_LETTER_STREAM": stream + ":dead"}))
    wait_ready(wk)
    check = tls_pg.verified_url("chat_cert", client_cert=True)
    high_user_ids(tls_pg, check)
    gw = procs.gateway({"DATABASE_URL": url, "COMMAND_STREAM": stream})
    wait_ready(gw)

    api = Api(gw.url)
    a, b = create_user(api), create_user(api)
    content = f"over verified TLS {unique('m')}"
    sent = Messages(gw.url, a).send_ok(b.id, content)  # 201: the worker stored it and answered
    history = Messages(gw.url, b).history(a.id)
    assert [m["id"] for m in history] == [sent["id"]], history
    check_message(history[0], content=content, senderId=a.id, receiverId=b.id)
    assert tls_pg.rows(check, f"SELECT content FROM messages WHERE id = {int(sent['id'])}") == [[content]]

    connections = tls_pg.rows(check, "SELECT a.application_name, s.ssl, s.version, s.client_dn "
                                     "FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                                     "WHERE a.application_name LIKE 'worker%' OR a.application_name LIKE 'gateway%'")
    names = {row[0] for row in connections}
    assert any(n.startswith("worker") for n in names) and any(n.startswith("gateway") for n in names), connections
    assert all(ssl == "t" and re.search(rf"CN={ROLE}\b", dn) for _n, ssl, _v, dn in connections), connections
    print(f"\nconnections: {connections}")


def test_plaintext_refused_by_hostssl_only_server(procs, tls_pg):
    """(d) sslmode=disable: the server has no pg_hba.conf entry for a plain connection; the gateway
    is never ready."""
    url = tls_pg.url("chat_refused", sslmode="disable")
    direct = tls_pg.psql(url, "SELECT 1")
    assert direct.returncode != 0 and "no pg_hba.conf entry" in direct.stderr, direct.stderr
    mark = len(tls_pg.log_text())
    gw = procs.gateway({"DATABASE_URL": url}, wait=False)
    facts = watch_refused(gw, tls_pg, "no pg_hba.conf entry", "chat_refused", mark)
    assert "no encryption" in str(facts["log"].get("error", "")), facts["log"]
    assert "no pg_hba.conf entry" in facts["server_log"], "the server should log the refusal"
    print(f"\nlog: {json.dumps(facts['log'])}\nattempts: {facts['attempts']}; /ready: {facts['ready']} {facts['ready_body']}; "
          f"exit after SIGTERM: {facts['exit']}")
