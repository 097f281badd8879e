"""The executables as processes: --help, configuration checks, JSON logs, migrations, workers."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
import requests

from support import (
    FIRST_SHARD,
    consumer_group,
    database_url_for,
    free_port,
    merged_env,
    poll,
    psql,
    redis_client,
    run_binary,
    unique,
    wait_until_consumed,
)

GATEWAY_VARS = ["PORT", "HOST", "DATABASE_URL", "REDIS_URL", "JWT_SECRET", "LOG_LEVEL", "CHAT_ENV",
                "ACCESS_TOKEN_TTL_SECONDS", "REFRESH_TOKEN_TTL_SECONDS", "HTTP_MAX_BODY_BYTES",
                "HTTP_HEADER_TIMEOUT_MS", "HTTP_IDLE_TIMEOUT_MS"]
WORKER_VARS = ["ADMIN_PORT", "DATABASE_URL", "REDIS_URL", "LOG_LEVEL", "CHAT_ENV"]


@pytest.mark.parametrize("binary,variables", [("Gateway", GATEWAY_VARS), ("MessageWorker", WORKER_VARS)])
def test_help_lists_every_variable(settings, binary, variables):
    # No database or Redis in the environment: --help must not need them.
    proc = run_binary(settings, binary, ["--help"], {"DATABASE_URL": None, "REDIS_URL": None}, timeout=15)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    missing = [v for v in variables if v not in text]
    assert not missing, f"--help does not mention {missing}:\n{text}"


def run_until_exit(settings, binary: str, env: dict, timeout: float = 20) -> subprocess.CompletedProcess:
    try:
        return run_binary(settings, binary, [], env, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{binary} kept running with {env}; it should have refused the configuration")


def test_production_requires_jwt_secret(settings):
    proc = run_until_exit(settings, "Gateway", {"CHAT_ENV": "production", "JWT_SECRET": None,
                                                "PORT": str(free_port())})
    assert proc.returncode != 0
    assert "JWT_SECRET" in proc.stdout + proc.stderr


@pytest.mark.parametrize("secret", ["short", "x" * 31])
def test_production_refuses_a_short_secret(settings, secret):
    proc = run_until_exit(settings, "Gateway", {"CHAT_ENV": "production", "JWT_SECRET": secret,
                                                "PORT": str(free_port())})
    assert proc.returncode != 0
    assert "JWT_SECRET" in proc.stdout + proc.stderr


def test_production_accepts_a_32_byte_secret(procs):
    gw = procs.gateway({"CHAT_ENV": "production", "JWT_SECRET": "k" * 32})
    assert requests.get(gw.url + "/health", timeout=5).status_code == 200


def test_development_generates_a_secret_with_a_warning(procs):
    gw = procs.gateway({"CHAT_ENV": "development", "JWT_SECRET": None})
    assert requests.get(gw.url + "/health", timeout=5).status_code == 200
    poll(lambda: "JWT_SECRET" in gw.logs(), 5, what="a warning that names JWT_SECRET")


def test_invalid_port_is_refused(settings):
    proc = run_until_exit(settings, "Gateway", {"PORT": "not-a-port"})
    assert proc.returncode != 0
    assert "PORT" in proc.stdout + proc.stderr


def assert_json_lines(text: str, source: str) -> list[dict]:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"{source} line {number} is not JSON: {line!r}") from None
        assert isinstance(record, dict), f"{source} line {number} is not a JSON object: {line!r}"
        records.append(record)
    return records


def test_logs_are_json_lines(procs):
    gw = procs.gateway({"LOG_LEVEL": "info"})
    wk = procs.worker({"LOG_LEVEL": "info"})
    requests.get(gw.url + "/health", timeout=5)
    requests.get(gw.url + "/no-such-path-for-the-log", timeout=5)
    time.sleep(0.3)
    for cp in (gw, wk):
        code, killed = cp.stop()
        assert not killed
        out = assert_json_lines(cp.out_path.read_text(errors="replace"), f"{cp.name} stdout")
        err = assert_json_lines(cp.err_path.read_text(errors="replace"), f"{cp.name} stderr")
        assert out or err, f"{cp.name} logged nothing"
    gateway_log = gw.logs()
    assert "/no-such-path-for-the-log" in gateway_log, "one log line per request is expected"


@pytest.mark.parametrize("binary", ["Gateway", "MessageWorker"])
def test_sigterm_stops_promptly(procs, binary):
    cp = procs.gateway() if binary == "Gateway" else procs.worker()
    start = time.monotonic()
    code, killed = cp.stop(timeout=10)
    assert not killed, f"{binary} ignored SIGTERM for 10 s"
    assert code in (0, -signal.SIGTERM), f"{binary} exited with {code} on SIGTERM:\n{cp.log_tail()}"
    assert time.monotonic() - start < 10


# --- migrations ----------------------------------------------------------------------------------


@pytest.fixture
def fresh_database(settings):
    name = "e2e_" + unique("db").replace("-", "_").lower()
    psql(settings, f'CREATE DATABASE "{name}"')
    yield database_url_for(settings, name)
    psql(settings, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migration_rows(settings, url: str) -> list[str]:
    tables = [t for t in psql(settings,
                              "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                              "WHERE table_name ILIKE '%migration%' AND table_schema NOT IN "
                              "('pg_catalog', 'information_schema')", url).split() if t]
    assert len(tables) == 1, f"expected one migrations table, found {tables}"
    schema, table = tables[0].split(".", 1)
    columns = psql(settings,
                   "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                   f"'{schema}' AND table_name = '{table}' ORDER BY ordinal_position", url).split()
    column = "version" if "version" in columns else columns[0]
    rows = psql(settings, f'SELECT "{column}" FROM "{schema}"."{table}" ORDER BY 1', url).splitlines()
    return [row for row in rows if row]


@pytest.mark.parametrize("pair", [("Gateway", "Gateway"), ("Gateway", "MessageWorker")],
                         ids=["two-gateways", "gateway-and-worker"])
def test_concurrent_migrations(settings, fresh_database, pair):
    env = merged_env(settings, {"DATABASE_URL": fresh_database})
    running = [subprocess.Popen([str(settings.bin_dir / b), "--migrate-only"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                stdin=subprocess.DEVNULL)
               for b in pair]
    outputs = []
    for proc in running:
        out, _ = proc.communicate(timeout=60)
        outputs.append((proc.returncode, out))
    for (code, out), binary in zip(outputs, pair):
        assert code == 0, f"{binary} --migrate-only exited {code}:\n{out}"

    versions = migration_rows(settings, fresh_database)
    assert versions, "no migration recorded"
    assert len(versions) == len(set(versions)), f"a migration was recorded twice: {versions}"
    users = psql(settings, "SELECT to_regclass('users') IS NOT NULL", fresh_database).strip()
    assert users == "t", "the users table should exist after migrating"

    again = run_binary(settings, "Gateway", ["--migrate-only"], {"DATABASE_URL": fresh_database})
    assert again.returncode == 0, again.stdout + again.stderr
    assert migration_rows(settings, fresh_database) == versions, "a second run must change nothing"


# --- workers -------------------------------------------------------------------------------------


def test_two_workers_side_by_side(procs):
    first = procs.worker()
    second = procs.worker()
    assert first.port != second.port
    for wk in (first, second):
        assert requests.get(wk.url + "/health", timeout=5).status_code == 200
        poll(lambda: requests.get(wk.url + "/ready", timeout=5).status_code == 200, 10,
             what=f"worker on {wk.port} ready")


def test_worker_consumes_and_acknowledges(settings, procs):
    wk = procs.worker()
    r = redis_client(settings)
    poll(lambda: consumer_group(r) is not None, 10, what="the workers group on the first shard")
    before = consumer_group(r)
    last_id = None
    for n in range(3):
        last_id = r.xadd(FIRST_SHARD, {"type": "e2e.ping", "n": str(n)})
    group = wait_until_consumed(r, last_id, 5)
    if group.get("entries-read") is not None and before.get("entries-read") is not None:
        assert group["entries-read"] >= before["entries-read"] + 3
    assert wk.alive()
