"""Start-up that does not crash-loop (issue 18, item 5): both processes answer `/health` on their
admin port at once and `/ready` 503 with the reason while they wait for PostgreSQL or for the
schema; with `MIGRATIONS=wait` they leave the migrations to a job (`--migrate-only`) and wait for
the version they need."""

from __future__ import annotations

import time

import requests

from support import database_url_for, poll, psql, run_binary, unique

STARTUP_ANSWER_SECONDS = 5  # the admin port answers this fast, whatever Postgres does


def get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=3)
    except requests.RequestException:
        return None


def ready_reason(cp) -> str | None:
    resp = get(cp.admin_url + "/ready")
    if resp is None or resp.status_code != 503:
        return None
    return resp.json().get("reason")


def test_processes_answer_probes_while_postgres_is_down_and_serve_once_it_is_back(procs, restore_services):
    services = restore_services
    services.pg_stop()
    gateway = procs.gateway(wait=False)
    worker = procs.worker(wait=False)
    started = time.monotonic()
    for cp in (gateway, worker):
        poll(lambda cp=cp: (r := get(cp.admin_url + "/health")) is not None and r.status_code == 200,
             STARTUP_ANSWER_SECONDS, what=f"{cp.name} /health on the admin port during the outage")
        reason = poll(lambda cp=cp: ready_reason(cp), STARTUP_ANSWER_SECONDS,
                      what=f"{cp.name} /ready 503 with a reason during the outage")
        assert reason.startswith("waiting for postgres"), reason
    assert time.monotonic() - started < 2 * STARTUP_ANSWER_SECONDS
    # The public port opens only once the process can serve: a balancer sees it down meanwhile.
    assert get(gateway.url + "/health") is None
    time.sleep(2)
    assert gateway.alive() and worker.alive(), "a process waiting for Postgres must not exit"

    services.pg_start()
    for cp, url in ((gateway, gateway.url), (worker, worker.admin_url)):
        poll(lambda url=url: (r := get(url + "/ready")) is not None and r.status_code == 200, 30,
             what=f"{cp.name} ready once Postgres is back")
    assert get(gateway.admin_url + "/ready").json()["status"] == "ready"


def test_with_migrations_wait_processes_wait_for_the_migration_job(settings, procs):
    name = "e2e_" + unique("wait").replace("-", "_").lower()
    psql(settings, f'CREATE DATABASE "{name}"')
    try:
        url = database_url_for(settings, name)
        env = {"DATABASE_URL": url, "MIGRATIONS": "wait"}
        gateway = procs.gateway(env=env, wait=False)
        worker = procs.worker(env=dict(env), wait=False)
        for cp in (gateway, worker):
            reason = poll(lambda cp=cp: (r := ready_reason(cp)) and r.startswith("waiting for schema version") and r,
                          10, what=f"{cp.name} waiting for the schema")
            assert "the database is at 0" in reason and "--migrate-only" in reason, reason
        # Nothing was applied by the waiting processes.
        assert psql(settings, "SELECT to_regclass('users') IS NULL", url).strip() == "t"

        job = run_binary(settings, "Gateway", ["--migrate-only"], {"DATABASE_URL": url})
        assert job.returncode == 0, job.stdout + job.stderr
        for cp, probe in ((gateway, gateway.url), (worker, worker.admin_url)):
            poll(lambda probe=probe: (r := get(probe + "/ready")) is not None and r.status_code == 200, 15,
                 what=f"{cp.name} ready after the migration job")
        signup = requests.post(gateway.url + "/api/auth/signup", timeout=10, json={
            "username": unique("u"), "email": f"{unique('e')}@example.com", "password": "password123"})
        assert signup.status_code == 201, signup.text
    finally:
        for cp in list(procs.started):
            if not cp.stopped:
                cp.stop()
        psql(settings, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_unknown_migrations_mode_is_a_configuration_error(settings):
    result = run_binary(settings, "Gateway", [], {"MIGRATIONS": "sometimes"})
    assert result.returncode == 78, result.stdout + result.stderr
    assert "MIGRATIONS" in result.stdout + result.stderr
