"""Seed 001's client, written from its README alone (../shared/seeds/001_*.txt), against two
gateways and two workers running SOCKET_DIALECT=seed001 (issue 16): register with displayName (no
username), log in, connect WITHOUT a token and then `auth:login {token}` (answered `auth:ok` /
`auth:error`; nothing else allowed before; closed after a deadline), `message:private` ->
`message:new`, `user:online [ids]`, `user:offline id`, GET /api/messages, POST /api/messages/send.
Passwords follow the product's rules (at least 8 characters; the README's example has 6)."""

from __future__ import annotations

import pytest
import requests

from dialect_client import SeedClient
from support import start_cluster, unique

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def seed001(module_procs):
    return start_cluster(module_procs, gateway_env={"SOCKET_DIALECT": "seed001", "SOCKETIO_CONNECT_TIMEOUT_MS": "2000"})


def register_and_login(base: str) -> dict:
    email = f"{unique('s1').lower()}@example.com"
    resp = requests.post(base + "/api/auth/register", json={"email": email, "password": "password-001", "displayName": "John Doe"},
                         timeout=10)
    assert resp.status_code == 201, resp.text
    login = requests.post(base + "/api/auth/login", json={"email": email, "password": "password-001"}, timeout=10)
    assert login.status_code == 200, login.text
    return {"id": login.json()["user"]["id"], "token": login.json()["token"]}


class Seed001Client(SeedClient):
    """`io(url)` with no auth, then `auth:login`, as the README's example does."""

    def __init__(self, url: str):
        super().__init__(url, None)

    def login(self, token: str):
        self.emit("auth:login", {"token": token})
        return self.wait("auth:ok")


def test_the_seed_001_client_flows(seed001):
    gw1, gw2 = seed001.gateways[0].url, seed001.gateways[1].url
    alice, bob = register_and_login(gw1), register_and_login(gw2)
    a, b = Seed001Client(gw1), Seed001Client(gw2)
    try:
        # Nothing but auth:login before logging in.
        a.emit("message:private", {"toUserId": bob["id"], "content": "too early"})
        assert a.wait("error")["code"] == "not_connected"
        a.emit("auth:login", {"token": "not-a-token"})
        assert a.wait("auth:error")["message"]
        a.login(alice["token"])
        b.login(bob["token"])
        a.emit("message:private", {"toUserId": bob["id"], "content": "Hello!"})
        got = b.wait("message:new")
        assert (got["senderId"], got["receiverId"], got["content"]) == (alice["id"], bob["id"], "Hello!") and got["id"], got
        # Online users: contacts now; Bob leaving and coming back.
        b.close()
        assert a.wait("user:offline", lambda d: d == bob["id"]) == bob["id"]
        b = Seed001Client(gw2)
        b.login(bob["token"])
        assert bob["id"] in a.wait("user:online", lambda d: bob["id"] in d)
        assert alice["id"] in b.wait("user:online", lambda d: alice["id"] in d)
        # REST: send and list.
        sent = requests.post(gw2 + "/api/messages/send", json={"toUserId": alice["id"], "content": "Hello World"},
                             headers={"Authorization": f"Bearer {bob['token']}"}, timeout=10)
        assert sent.status_code == 201, sent.text
        assert a.wait("message:new", lambda d: d["content"] == "Hello World")["senderId"] == bob["id"]
        listed = requests.get(gw1 + "/api/messages", headers={"Authorization": f"Bearer {alice['token']}"}, timeout=10)
        assert listed.status_code == 200, listed.text
        assert [m["content"] for m in listed.json()] == ["Hello!", "Hello World"], listed.text
        assert requests.get(gw1 + "/api/messages", timeout=10).status_code == 401
    finally:
        a.close()
        b.close()


def test_a_socket_that_never_logs_in_is_closed(seed001):
    lurker = Seed001Client(seed001.gateways[0].url)
    try:
        lurker.wait("disconnect", timeout=10)
    finally:
        lurker.close()
