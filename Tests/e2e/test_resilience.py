"""PostgreSQL and Redis go away and come back: clear 503s meanwhile, recovery without restarts."""

from __future__ import annotations

import time

import requests

from support import (
    FIRST_SHARD,
    Api,
    consumer_group,
    create_user,
    error_of,
    poll,
    redis_client,
    unique,
    wait_until_consumed,
)

OUTAGE_ANSWER_SECONDS = 8  # an outage must be reported this fast, never by hanging
RECOVERY_SECONDS = 15
# /ready answers 200 "degraded" while a dependency is down for less than this, 503 after (issue 18).
READY_GRACE = {"READY_DEPENDENCY_GRACE_MS": "3000"}


def status_of(url: str) -> int | None:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return None


def timed(call):
    start = time.monotonic()
    resp = call()
    elapsed = time.monotonic() - start
    assert elapsed < OUTAGE_ANSWER_SECONDS, f"took {elapsed:.1f}s: an outage must not make requests hang"
    return resp


def wait_for_error(call, status: int, code: str, timeout: float = 5):
    """Polls a request until it answers status/code (each try bounded); returns the response."""

    def attempt():
        resp = timed(call)
        if resp.status_code == status and error_of(resp)[0] == code:
            return resp
        return None

    return poll(attempt, timeout, what=f"{status} {code}")


def readiness(url: str) -> tuple[int, str] | None:
    try:
        resp = requests.get(url + "/ready", timeout=5)
        return resp.status_code, resp.json().get("status")
    except (requests.RequestException, ValueError):
        return None


def degraded_then_not_ready(url: str, what: str) -> None:
    """A short outage keeps the process in rotation (200 degraded); a long one takes it out."""
    poll(lambda: readiness(url) == (200, "degraded"), 2, interval=0.1, what=f"/ready 200 degraded while {what} is down")
    poll(lambda: readiness(url) == (503, "not_ready"), 8, what=f"/ready 503 once {what} is down past the grace")


def test_ready_when_everything_runs(procs):
    gw = procs.gateway()
    resp = requests.get(gw.url + "/ready", timeout=5)
    assert resp.status_code == 200, resp.text


def test_postgres_outage_and_recovery(procs, restore_services):
    services = restore_services
    gw = procs.gateway(env=READY_GRACE)
    api = Api(gw.url)
    user = create_user(api, login=False)

    services.pg_stop()
    degraded_then_not_ready(gw.url, "PostgreSQL")

    name = unique()
    wait_for_error(lambda: api.signup(name, f"{name}@example.com", "password123"), 503, "database_unavailable")
    wait_for_error(lambda: api.login(user.password, email=user.email), 503, "database_unavailable")
    assert status_of(gw.url + "/health") == 200, "/health is liveness only"

    services.pg_start()

    poll(lambda: api.login(user.password, email=user.email).status_code == 200, RECOVERY_SECONDS,
         what="login works again after PostgreSQL restarted")
    name = unique()
    resp = api.signup(name, f"{name}@example.com", "password123")
    assert resp.status_code == 201, resp.text
    poll(lambda: status_of(gw.url + "/ready") == 200, RECOVERY_SECONDS, what="/ready 200 again")
    assert gw.alive()


def test_redis_outage_and_recovery(procs, restore_services):
    services = restore_services
    gw = procs.gateway(env=READY_GRACE)
    api = Api(gw.url)
    user = create_user(api)
    assert api.profile(user.token).status_code == 200

    services.redis_stop()
    degraded_then_not_ready(gw.url, "Redis")

    # The revocation check needs Redis: fail closed with a clear code.
    wait_for_error(lambda: api.profile(user.token), 503, "redis_unavailable")
    assert status_of(gw.url + "/health") == 200

    services.redis_start()

    poll(lambda: api.profile(user.token).status_code == 200, RECOVERY_SECONDS,
         what="profile works again after Redis restarted")
    poll(lambda: status_of(gw.url + "/ready") == 200, RECOVERY_SECONDS, what="/ready 200 again")
    # Logout (a Redis write) works on the new connection too.
    assert api.logout(user.token).status_code == 200
    assert api.profile(user.token).status_code == 401
    assert gw.alive()


def test_worker_readiness_follows_postgres(procs, restore_services):
    services = restore_services
    wk = procs.worker(env=READY_GRACE)
    poll(lambda: status_of(wk.url + "/ready") == 200, 10, what="worker /ready 200")
    services.pg_stop()
    degraded_then_not_ready(wk.url, "PostgreSQL")
    assert status_of(wk.url + "/health") == 200
    services.pg_start()
    poll(lambda: status_of(wk.url + "/ready") == 200, RECOVERY_SECONDS, what="worker /ready 200 again")
    assert wk.alive()


def test_worker_consumes_again_after_redis_restart(settings, procs, restore_services):
    """Redis here keeps no data across a restart, so the worker must recreate its group too."""
    services = restore_services
    wk = procs.worker(env=READY_GRACE)
    r = redis_client(settings)
    poll(lambda: consumer_group(r) is not None, 10, what="consumer group created")

    services.redis_stop()
    poll(lambda: status_of(wk.url + "/ready") == 503, 10, what="worker /ready 503 while Redis is down")
    services.redis_start()
    poll(lambda: status_of(wk.url + "/ready") == 200, RECOVERY_SECONDS, what="worker /ready 200 again")

    r = redis_client(settings)
    poll(lambda: consumer_group(r) is not None, RECOVERY_SECONDS, what="consumer group recreated")
    last_id = None
    for n in range(3):
        last_id = r.xadd(FIRST_SHARD, {"type": "e2e.ping", "n": str(n)})
    wait_until_consumed(r, last_id, 10)
    assert wk.alive()
