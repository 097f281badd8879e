"""Sessions across gateways: one user on two gateway processes, one Redis subscription per gateway,
events fanned out to both, subscriptions dropped after each gateway's last local socket, and a
`resync` event when the Redis subscription comes back after an outage."""

from __future__ import annotations

import time

import pytest

from support import Api, connect_error_code, create_user, numsub, poll, publish_to_user, user_channel

DELIVERY_SECONDS = 5
UNSUBSCRIBE_SECONDS = 2
RESYNC_SECONDS = 20  # Redis restart + the gateway's reconnect backoff
RECOVERY_SECONDS = 15  # as in test_resilience: everything works again this long after a restart


def connect_when_ready(sio_session, url: str, token: str, timeout: float):
    """Connects, retrying refusals (e.g. redis_unavailable while Redis reconnects) until timeout."""
    import socketio

    deadline = time.monotonic() + timeout
    while True:
        try:
            return sio_session(url).connect(token=token)
        except socketio.exceptions.ConnectionError as error:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not connect within {timeout}s after the restart: {error}") from None
        time.sleep(0.25)


@pytest.fixture(scope="module")
def two_gateways(module_procs):
    return module_procs.gateway(), module_procs.gateway()


def test_one_publish_reaches_the_user_on_both_gateways(settings, two_gateways, sio_session):
    gw1, gw2 = two_gateways
    user = create_user(Api(gw1.url))
    channel = user_channel(user.id)
    on1 = sio_session(gw1.url).connect(token=user.token)
    on2 = sio_session(gw2.url).connect(token=user.token)
    poll(lambda: numsub(settings, channel) == 2, UNSUBSCRIBE_SECONDS, interval=0.05,
         what=f"NUMSUB {channel} = 2 (one subscriber connection per gateway)")

    receivers = publish_to_user(settings, user.id, "hello", {"x": 1})
    assert receivers == 2, f"PUBLISH reached {receivers} subscriber connections, expected 2 gateways"
    for session in (on1, on2):
        event = session.wait_for("hello", DELIVERY_SECONDS)
        assert event.args == ({"x": 1},), event.args

    # A token issued by gateway 1 is valid on gateway 2 (shared secret): whoami agrees on both.
    assert on1.call("whoami")["userId"] == on2.call("whoami")["userId"] == user.id


def test_each_gateway_unsubscribes_after_its_last_local_socket(settings, two_gateways, sio_session):
    gw1, gw2 = two_gateways
    user = create_user(Api(gw1.url))
    channel = user_channel(user.id)
    on1 = sio_session(gw1.url).connect(token=user.token)
    on2a = sio_session(gw2.url).connect(token=user.token)
    poll(lambda: numsub(settings, channel) == 2, UNSUBSCRIBE_SECONDS, interval=0.05, what="NUMSUB = 2")

    on2b = sio_session(gw2.url).connect(token=user.token)
    on2b.call("ping")
    assert numsub(settings, channel) == 2, "a second socket on gateway 2 must not add a subscription"

    on1.client.disconnect()
    poll(lambda: numsub(settings, channel) == 1, UNSUBSCRIBE_SECONDS, interval=0.05,
         what=f"NUMSUB {channel} = 1 after the user left gateway 1")
    assert publish_to_user(settings, user.id, "still_here", {}) == 1
    on2a.wait_for("still_here", DELIVERY_SECONDS)
    on2b.wait_for("still_here", DELIVERY_SECONDS)
    assert on1.find("still_here") is None

    on2a.client.disconnect()
    time.sleep(0.5)
    assert numsub(settings, channel) == 1, "gateway 2 still has a socket of this user"

    on2b.client.disconnect()
    poll(lambda: numsub(settings, channel) == 0, UNSUBSCRIBE_SECONDS, interval=0.05,
         what=f"NUMSUB {channel} = 0 after the user's last socket anywhere")
    import redis as redis_lib

    r = redis_lib.Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=5)
    assert channel not in r.pubsub_channels(channel), "PUBSUB CHANNELS still lists the user's channel"
    r.close()


def test_many_users_on_two_gateways(settings, two_gateways, sio_session):
    """Subscriptions are per user: ten users spread over both gateways each get only their own events."""
    gw1, gw2 = two_gateways
    api = Api(gw1.url)
    users = [create_user(api) for _ in range(10)]
    sessions = [sio_session((gw1, gw2)[n % 2].url).connect(token=u.token) for n, u in enumerate(users)]
    for u in users:
        poll(lambda: numsub(settings, user_channel(u.id)) == 1, UNSUBSCRIBE_SECONDS, interval=0.05,
             what=f"subscription of {u.username}")
    for n, u in enumerate(users):
        publish_to_user(settings, u.id, "mine", {"n": n})
    for n, session in enumerate(sessions):
        event = session.wait_for("mine", DELIVERY_SECONDS)
        assert event.args == ({"n": n},), f"user {n} got {event.args!r}"
    time.sleep(0.3)
    for n, session in enumerate(sessions):
        got = [e.args for e in session.events if e.name == "mine"]
        assert got == [({"n": n},)], f"user {n} received {got!r}"


# --- Redis outage ------------------------------------------------------------------------------


def test_resync_after_redis_restart(settings, procs, restore_services, sio_session):
    services = restore_services
    gw1, gw2 = procs.gateway(), procs.gateway()
    user = create_user(Api(gw1.url))
    channel = user_channel(user.id)
    sessions = [sio_session(gw1.url).connect(token=user.token),
                sio_session(gw1.url).connect(token=user.token),
                sio_session(gw2.url).connect(token=user.token)]
    poll(lambda: numsub(settings, channel) == 2, UNSUBSCRIBE_SECONDS, interval=0.05, what="NUMSUB = 2")
    marks = [s.mark() for s in sessions]

    services.redis_stop()
    # Meanwhile a new connection cannot check revocation: refused with a clear code, not a hang.
    code, payload = connect_error_code(sio_session(gw1.url), token=user.token, wait_timeout=8)
    assert code == "redis_unavailable", f"CONNECT during a Redis outage: {payload!r}"
    for s in sessions:
        assert s.connected, "a Redis outage must not disconnect clients"
    services.redis_start()

    for s, mark in zip(sessions, marks):
        event = s.wait_for("resync", RESYNC_SECONDS, since=mark)
        assert event.args == ({"reason": "subscription_restored"},), (
            f"resync should carry {{'reason': 'subscription_restored'}}: {event.args!r}")
    for s in sessions:
        assert s.connected, "clients must stay connected through the Redis restart"
        assert s.find("disconnect") is None, "a client was disconnected during the Redis restart"
        assert s.call("ping")["pong"] is True

    # The subscriptions are back (one per gateway), and a publication after the restart arrives.
    poll(lambda: numsub(settings, channel) == 2, 5, interval=0.1, what="NUMSUB = 2 after the restart")
    assert publish_to_user(settings, user.id, "after_restart", {"ok": True}) == 2
    for s in sessions:
        s.wait_for("after_restart", DELIVERY_SECONDS)
    for s, mark in zip(sessions, marks):
        count = sum(1 for e in s.events[mark:] if e.name == "resync")
        assert count == 1, f"one resync per reconnect expected, got {count}"

    # A user who connects after the restart is subscribed as usual (the gateway's command
    # connection to Redis, which checks revocation, may need a moment longer to reconnect).
    late = create_user(Api(gw2.url))
    late_session = connect_when_ready(sio_session, gw2.url, late.token, RECOVERY_SECONDS)
    poll(lambda: numsub(settings, user_channel(late.id)) == 1, UNSUBSCRIBE_SECONDS, interval=0.05,
         what="subscription of a user who connected after the restart")
    publish_to_user(settings, late.id, "welcome", 1)
    late_session.wait_for("welcome", DELIVERY_SECONDS)
