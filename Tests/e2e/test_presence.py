"""Presence across the cluster (issue 5): a user's first connection anywhere announces `userOnline`
to the user's contacts (users who share a conversation), the last disconnect everywhere announces
`userOffline` with `lastSeen` (persisted as users.last_seen_at), strangers hear nothing, `onlineUsers`
on connect, a gateway killed with -9 takes its users offline within the documented bound, and the
REST directory (/api/users/online, /api/users/:id, /api/users?query=)."""

from __future__ import annotations

import time
import uuid

import pytest

from support import (
    Api,
    check_public_user,
    create_user,
    expect_error,
    iso_ms,
    last_seen_ms,
    make_contacts,
    numsub,
    poll,
    presence_env,
    start_cluster,
    user_channel,
    user_of,
)

TTL_MS, HEARTBEAT_MS, SWEEP_MS = 2000, 500, 500
# Documented bound for a killed gateway: TTL + sweep. Asserted with room: 2 x TTL + 2 s.
KILL_BOUND = 2 * TTL_MS / 1000 + 2
DELIVERY = 5  # s for a presence event to reach a socket
QUIET = 1.0  # s to wait before asserting that nothing arrived
NOT_FOUND_ID = 9_000_000_000_000


@pytest.fixture(scope="module")
def chat_cluster(module_procs):
    """Two gateways with fast presence timings, two workers (conftest's `cluster` checks them)."""
    return start_cluster(module_procs, gateway_env=presence_env(TTL_MS, HEARTBEAT_MS, SWEEP_MS))


def online(settings, sio_session, gw, user):
    """Connects `user` to `gw` and waits until the connection is registered: its `onlineUsers`
    arrived and its gateway subscribes to the user's channel."""
    session = sio_session(gw.url).connect(token=user.token)
    session.wait_for("onlineUsers", DELIVERY)
    poll(lambda: numsub(settings, user_channel(user.id)) >= 1, 3, interval=0.05,
         what=f"{user.username}'s channel subscribed")
    return session


def about(user):
    return lambda data=None, *rest: isinstance(data, dict) and data.get("userId") == user.id


def mentions(session, user, since: int = 0) -> list:
    """Every presence event (userOnline / userOffline / onlineUsers) that names `user`."""
    found = []
    for ev in session.events[since:]:
        if ev.name in ("userOnline", "userOffline") and about(user)(*ev.args):
            found.append((ev.name, ev.args))
        elif ev.name == "onlineUsers" and ev.args and isinstance(ev.args[0], list):
            if any(isinstance(x, dict) and x.get("userId") == user.id for x in ev.args[0]):
                found.append((ev.name, ev.args))
    return found


def count(session, name: str, user, since: int = 0) -> int:
    return sum(1 for e in session.events[since:] if e.name == name and about(user)(*e.args))


def check_announcement(payload, user, event: str) -> dict:
    """userOnline {userId, username} / userOffline {userId, username, lastSeen}."""
    assert isinstance(payload, dict), f"{event} should carry an object: {payload!r}"
    assert payload.get("userId") == user.id and payload.get("username") == user.username, (
        f"{event} should carry {{userId: {user.id}, username: {user.username!r}}}: {payload!r}")
    assert not any("email" in k.lower() for k in payload), f"{event} must not carry an email: {payload!r}"
    if event == "userOffline":
        iso_ms(payload.get("lastSeen"))
    return payload


def entries(payload, what: str = "onlineUsers") -> dict:
    """onlineUsers [{userId, username}] as {userId: username}; asserts the shape, no repeats."""
    assert isinstance(payload, list), f"{what} should be an array: {payload!r}"
    result = {}
    for item in payload:
        assert isinstance(item, dict) and isinstance(item.get("userId"), int) and isinstance(
            item.get("username"), str), f"{what} items should be {{userId, username}}: {item!r}"
        assert item["userId"] not in result, f"{what} lists user {item['userId']} twice: {payload!r}"
        result[item["userId"]] = item["username"]
    return result


def wait_last_seen(settings, user, want_ms: int, timeout: float = 5) -> float:
    """Waits until users.last_seen_at equals want_ms (within 1 ms); returns the stored value."""
    deadline = time.monotonic() + timeout
    while True:
        stored = last_seen_ms(settings, user.id)
        if stored is not None and abs(stored - want_ms) <= 1:
            return stored
        if time.monotonic() > deadline:
            raise AssertionError(f"users.last_seen_at of {user.username} is {stored!r} ms, the userOffline "
                                 f"event said {want_ms} ms (they must agree within 1 ms)")
        time.sleep(0.1)


def get_user(gw, viewer, user_id):
    return Api(gw.url).get(f"/api/users/{user_id}", viewer.token)


def profile(gw, viewer, user) -> dict:
    """GET /api/users/:id of `user` as seen by `viewer`: 200 and the User shape."""
    resp = get_user(gw, viewer, user.id)
    assert resp.status_code == 200, f"GET /api/users/{user.id}: {resp.status_code} {resp.text}"
    return check_public_user(user_of(resp.json()), user)


# --- online / offline across gateways ----------------------------------------------------------------


def test_contacts_see_online_and_offline_across_gateways(settings, cluster, sio_session):
    gw1, gw2 = cluster.gw1, cluster.gw2
    api = Api(gw1.url)
    a, b = create_user(api), create_user(api)
    make_contacts(gw1.url, a, b)

    sb = online(settings, sio_session, gw2, b)
    assert a.id not in entries(sb.find("onlineUsers").args[0]), "A is not connected yet"

    # A's first device, on the other gateway: B hears userOnline; A's own onlineUsers lists B.
    mark = sb.mark()
    a1 = online(settings, sio_session, gw1, a)
    check_announcement(sb.wait_for("userOnline", DELIVERY, since=mark, match=about(a)).args[0], a, "userOnline")
    listed = entries(a1.find("onlineUsers").args[0])
    assert listed.get(b.id) == b.username, f"A's onlineUsers should list its online contact B: {listed!r}"

    # A's second device (gateway 2): A is already online, nothing new is announced.
    a2 = online(settings, sio_session, gw2, a)
    time.sleep(QUIET)
    assert count(sb, "userOnline", a) == 1, (
        f"a second device must not announce A again: {mentions(sb, a)!r}")

    # Closing one device of two: A stays online, no userOffline (and no flapping).
    mark = sb.mark()
    a1.client.disconnect()
    time.sleep(QUIET)
    assert mentions(sb, a, since=mark) == [], (
        f"A still has a device on gateway 2; B must hear nothing: {mentions(sb, a, since=mark)!r}")
    assert profile(gw1, b, a)["isOnline"] is True, "A is still online (one device left)"

    # Closing the last device: userOffline with lastSeen, persisted to the millisecond.
    before_ms = time.time() * 1000
    a2.client.disconnect()
    ev = sb.wait_for("userOffline", DELIVERY, since=mark, match=about(a))
    payload = check_announcement(ev.args[0], a, "userOffline")
    seen = iso_ms(payload["lastSeen"])
    assert before_ms - 2000 <= seen <= time.time() * 1000 + 2000, (
        f"lastSeen {payload['lastSeen']} should be the time of the last disconnect (about {before_ms:.0f} ms)")
    wait_last_seen(settings, a, seen)

    # REST agrees: offline, with the same lastSeen.
    shown = profile(gw2, b, a)
    assert shown["isOnline"] is False, f"A has no connection left: {shown!r}"
    assert shown["lastSeen"] is not None and abs(iso_ms(shown["lastSeen"]) - seen) <= 1, (
        f"lastSeen over REST {shown['lastSeen']!r} should equal the event's {payload['lastSeen']!r}")

    time.sleep(0.3)
    assert count(sb, "userOffline", a) == 1, f"one userOffline expected: {mentions(sb, a)!r}"
    assert sb.connected and sb.find("error") is None, f"B: {sb.find('error')!r}"


def test_a_stranger_hears_nothing_about_a(settings, cluster, sio_session):
    """C shares a conversation with B but not with A: C hears about B (the control), never about A."""
    gw1, gw2 = cluster.gw1, cluster.gw2
    api = Api(gw2.url)
    a, b, c = create_user(api), create_user(api), create_user(api)
    make_contacts(gw1.url, a, b)
    make_contacts(gw1.url, c, b)

    c1, c2 = online(settings, sio_session, gw1, c), online(settings, sio_session, gw2, c)
    sb = online(settings, sio_session, gw2, b)
    for session in (c1, c2):  # the control: C's sockets do receive presence about a contact
        check_announcement(session.wait_for("userOnline", DELIVERY, match=about(b)).args[0], b, "userOnline")

    sa = online(settings, sio_session, gw1, a)
    sb.wait_for("userOnline", DELIVERY, match=about(a))
    listed = entries(c1.call("getOnlineUsers"), "getOnlineUsers ack")
    assert a.id not in listed and listed.get(b.id) == b.username, (
        f"C's online contacts are B only (A is online but no contact of C): {listed!r}")

    sa.client.disconnect()
    sb.wait_for("userOffline", DELIVERY, match=about(a))
    time.sleep(0.5)  # C's gateways had as long as B's to deliver anything
    for session in (c1, c2):
        assert mentions(session, a) == [], f"a stranger received presence of A: {mentions(session, a)!r}"
        assert session.connected


def test_online_users_on_connect_and_on_request(settings, cluster, sio_session):
    """B connects while contacts A and D are online: onlineUsers lists exactly them (not the online
    stranger E, not the offline contact F, not B); getOnlineUsers answers the same."""
    gw1, gw2 = cluster.gw1, cluster.gw2
    api = Api(gw1.url)
    a, b, d, e, f = (create_user(api) for _ in range(5))
    make_contacts(gw1.url, a, b)
    make_contacts(gw1.url, b, d)
    make_contacts(gw1.url, f, b)
    make_contacts(gw1.url, e, a)  # E knows A, not B
    online(settings, sio_session, gw1, a)
    online(settings, sio_session, gw2, d)
    online(settings, sio_session, gw1, e)

    sb = sio_session(gw2.url).connect(token=b.token)
    ev = sb.wait_for("onlineUsers", DELIVERY)
    first = [x.name for x in sb.events if x.name != "connect"][:3]
    assert "onlineUsers" in first, f"onlineUsers should come right after CONNECT; first events: {first!r}"
    listed = entries(ev.args[0])
    assert listed == {a.id: a.username, d.id: d.username}, (
        f"onlineUsers should be exactly B's online contacts A ({a.id}) and D ({d.id}); not E ({e.id}, "
        f"online stranger), F ({f.id}, offline contact) or B ({b.id}): {ev.args[0]!r}")

    assert entries(sb.call("getOnlineUsers"), "getOnlineUsers ack") == listed, "getOnlineUsers (ack) differs"
    mark = sb.mark()
    sb.emit("getOnlineUsers")
    again = sb.wait_for("onlineUsers", DELIVERY, since=mark)
    assert entries(again.args[0]) == listed, "getOnlineUsers without an ack should answer with onlineUsers"


def test_kill_9_of_a_gateway_takes_its_users_offline(settings, cluster, procs, sio_session):
    gw1, gw2 = cluster.gw1, cluster.gw2
    doomed = procs.gateway(presence_env(TTL_MS, HEARTBEAT_MS, SWEEP_MS))
    api = Api(gw1.url)
    a, b = create_user(api), create_user(api)
    make_contacts(gw1.url, a, b)
    sb = online(settings, sio_session, gw2, b)
    online(settings, sio_session, doomed, a)
    sb.wait_for("userOnline", DELIVERY, match=about(a))
    assert profile(gw1, b, a)["isOnline"] is True

    mark = sb.mark()
    killed = time.monotonic()
    doomed.proc.kill()  # SIGKILL: no disconnects, no cleanup; only the expiring liveness key tells
    doomed.proc.wait(timeout=10)
    doomed.stopped = True
    ev = sb.wait_for("userOffline", KILL_BOUND + 10, since=mark, match=about(a))
    delay = ev.at - killed
    assert delay <= KILL_BOUND, (
        f"userOffline came {delay:.2f}s after kill -9 of A's gateway; bound {KILL_BOUND:.1f}s "
        f"(documented TTL + sweep = {(TTL_MS + SWEEP_MS) / 1000:.1f}s)")
    payload = check_announcement(ev.args[0], a, "userOffline")
    seen = iso_ms(payload["lastSeen"])
    assert abs(seen - time.time() * 1000) < 30_000, f"lastSeen {payload['lastSeen']} is not recent"
    wait_last_seen(settings, a, seen)

    shown = profile(gw1, b, a)
    assert shown["isOnline"] is False and shown["lastSeen"] is not None, (
        f"after its gateway died A is offline with a lastSeen (userOffline came {delay:.2f}s after the kill): {shown!r}")
    resp = Api(gw2.url).get("/api/users/online", b.token)
    assert resp.status_code == 200, resp.text
    assert all(u.get("id") != a.id for u in resp.json()["users"]), f"A still listed online: {resp.text}"
    print(f"\nuserOffline {delay:.2f}s after kill -9 (TTL {TTL_MS} ms, sweep {SWEEP_MS} ms)")


# --- REST ---------------------------------------------------------------------------------------


def test_rest_online_contacts_and_user_profile(settings, cluster, sio_session):
    gw1, gw2 = cluster.gw1, cluster.gw2
    api = Api(gw1.url)
    a, b, c = create_user(api), create_user(api), create_user(api)
    make_contacts(gw1.url, a, b)
    online(settings, sio_session, gw1, a)
    online(settings, sio_session, gw2, c)  # online, but no contact of B

    def online_of(viewer, gw):
        resp = Api(gw.url).get("/api/users/online", viewer.token)
        assert resp.status_code == 200, f"GET /api/users/online: {resp.status_code} {resp.text}"
        body = resp.json()
        assert isinstance(body, dict) and isinstance(body.get("users"), list), f"{{users: [...]}}: {body!r}"
        return [check_public_user(u, what="online user") for u in body["users"]]

    listed = poll(lambda: online_of(b, gw2) or None, 5, interval=0.2, what="A listed in B's online contacts")
    assert [u["id"] for u in listed] == [a.id], (
        f"B's online contacts are A only (C is online but no contact): {[u['username'] for u in listed]}")
    assert listed[0]["isOnline"] is True and listed[0]["username"] == a.username, listed[0]
    assert online_of(c, gw1) == [], "C has no conversations, so no online contacts"

    assert profile(gw2, b, a)["isOnline"] is True
    assert profile(gw1, a, b)["isOnline"] is False, "B never connected"

    expect_error(get_user(gw1, b, NOT_FOUND_ID), 404, "user_not_found")
    for path in (f"/api/users/{a.id}", "/api/users/online", "/api/users?query=a"):
        expect_error(Api(gw1.url).get(path), 401, "token_missing")


def search_pages(api, token, query, limit: int, max_pages: int = 50) -> list[list[dict]]:
    """Walks GET /api/users?query=&limit= through nextCursor; returns the pages."""
    pages, cursor = [], None
    for _ in range(max_pages):
        params = {"query": query, "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        resp = api.get("/api/users", token, params=params)
        assert resp.status_code == 200, f"GET /api/users {params}: {resp.status_code} {resp.text}"
        body = resp.json()
        assert isinstance(body, dict) and isinstance(body.get("users"), list) and "nextCursor" in body, (
            f"expected {{users: [...], nextCursor}}: {body!r}")
        assert len(body["users"]) <= limit, f"page of {len(body['users'])} users for limit {limit}"
        pages.append([check_public_user(u, what="search result") for u in body["users"]])
        cursor = body["nextCursor"]
        if cursor is None:
            return pages
        assert isinstance(cursor, str) and cursor, f"nextCursor should be an opaque string or null: {body!r}"
    raise AssertionError(f"still a nextCursor after {max_pages} pages of query {query!r}")


def test_user_search_by_username_prefix(cluster):
    api = Api(cluster.gw2.url)
    tag = f"Sx{uuid.uuid4().hex[:8]}"  # a prefix nobody else has; mixed case on purpose
    caller = create_user(Api(cluster.gw1.url), username=f"{tag}_caller")
    members = [f"{tag}_alpha", f"{tag}_Beta", f"{tag}_delta", f"{tag}_Echo", f"{tag}_gamma"]
    hyphen, middle = f"{tag}-hyphen", f"m{tag}_middle"
    for name in [*members, hyphen, middle]:
        create_user(api, login=False, username=name)

    # Case-insensitive prefix, the caller excluded, ordered by lowercased username, two per page.
    pages = search_pages(api, caller.token, f"{tag.lower()}_", limit=2)
    names = [u["username"] for page in pages for u in page]
    assert len(names) == len(set(names)), f"a user appears on two pages: {names}"
    assert names == sorted(members, key=str.lower), (
        f"query {tag.lower()}_ should give {sorted(members, key=str.lower)} in order (the caller excluded, "
        f"'_' taken literally so {hyphen} is not matched), got {names} in pages {[len(p) for p in pages]}")
    assert all(len(p) == 2 for p in pages[:-1]), f"every page but the last should be full: {[len(p) for p in pages]}"

    for query in (tag.upper(), tag):
        found = [u["username"] for page in search_pages(api, caller.token, query, limit=100) for u in page]
        assert sorted(found) == sorted([*members, hyphen]), (
            f"query {query!r}: expected {sorted([*members, hyphen])} (not {middle}: prefix only; not the caller), "
            f"got {sorted(found)}")

    resp = api.get("/api/users", caller.token, params={"limit": 3})
    assert resp.status_code == 200, f"no query lists everybody: {resp.status_code} {resp.text}"
    body = resp.json()
    assert len(body["users"]) == 3 and isinstance(body.get("nextCursor"), str), (
        f"more than 3 users exist: a full page and a cursor expected: {body!r}")
    assert caller.id not in [check_public_user(u)["id"] for u in body["users"]], "the caller is excluded"

    assert api.get("/api/users", caller.token, params={"query": "a" * 64}).status_code == 200, (
        "a 64-character query is allowed")
    for params in ({"query": "a" * 65}, {"query": tag, "limit": 0}, {"query": tag, "limit": 101},
                   {"query": tag, "limit": "many"}):
        resp = api.get("/api/users", caller.token, params=params)
        assert resp.status_code == 422, f"GET /api/users {params}: expected 422, got {resp.status_code} {resp.text}"
