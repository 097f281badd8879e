"""Seed 002's client, written from its README alone (../shared/seeds/002_*.txt), against two
gateways and two workers running SOCKET_DIALECT=seed002 (issue 16): register, log in, connect with
auth {token}, private_message both ways, typing {isTyping}, message_read, get_chat_history ->
chat_history, online_users / user_online / user_offline, GET /api/chat/history/:userId,
GET /api/users, GET /health."""

from __future__ import annotations


import pytest
import requests

from dialect_client import SeedClient
from support import start_cluster, unique

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def seed002(module_procs):
    return start_cluster(module_procs, gateway_env={"SOCKET_DIALECT": "seed002"})


def register_and_login(base: str) -> dict:
    name = unique("s2")
    email = f"{name.lower()}@example.com"
    resp = requests.post(base + "/api/auth/register", json={"username": name, "email": email, "password": "password-002"}, timeout=10)
    assert resp.status_code == 201, resp.text
    login = requests.post(base + "/api/auth/login", json={"email": email, "password": "password-002"}, timeout=10)
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    profile = requests.get(base + "/api/auth/profile", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert profile.status_code == 200
    return {"id": profile.json()["user"]["id"], "username": name, "token": token}


def test_the_seed_002_client_flows(seed002):
    gw1, gw2 = seed002.gateways[0].url, seed002.gateways[1].url
    assert requests.get(gw1 + "/health", timeout=5).status_code == 200
    alice, bob = register_and_login(gw1), register_and_login(gw2)
    a = SeedClient(gw1, alice["token"])
    b = SeedClient(gw2, bob["token"])
    try:
        a.wait("online_users")
        # Send a private message; ids may be strings, as the README's table says.
        a.emit("private_message", {"receiverId": str(bob["id"]), "message": "Hello there!"})
        got = b.wait("private_message")
        assert got["message"] == "Hello there!" and got["senderId"] == alice["id"] and got["receiverId"] == bob["id"], got
        assert got["isRead"] is False and got["timestamp"] and got["id"], got
        mine = a.wait("private_message")  # the sender's own copy
        assert mine["id"] == got["id"]
        # Typing indicator, on and off.
        b.emit("typing", {"receiverId": str(alice["id"]), "isTyping": True})
        typing = a.wait("typing", lambda d: d["isTyping"] is True)
        assert typing["senderId"] == bob["id"], typing
        b.emit("typing", {"receiverId": str(alice["id"]), "isTyping": False})
        a.wait("typing", lambda d: d["isTyping"] is False)
        # A reply, then the read receipt of Alice's message.
        b.emit("private_message", {"receiverId": alice["id"], "message": "Hi Alice"})
        reply = a.wait("private_message", lambda d: d["message"] == "Hi Alice")
        b.emit("message_read", {"messageId": str(got["id"])})
        read = a.wait("message_read")
        assert read["messageId"] == got["id"], read
        # History over the socket and over REST.
        a.emit("get_chat_history", {"otherUserId": str(bob["id"]), "limit": 10, "skip": 0})
        history = a.wait("chat_history")
        assert history["otherUserId"] == bob["id"]
        assert [m["message"] for m in history["messages"]] == ["Hello there!", "Hi Alice"], history
        a.emit("get_chat_history", {"otherUserId": bob["id"], "limit": 1, "skip": 1})
        skipped = a.wait("chat_history", lambda d: len(d["messages"]) == 1)
        assert skipped["messages"][0]["message"] == "Hello there!", skipped
        rest = requests.get(f"{gw2}/api/chat/history/{alice['id']}", headers={"Authorization": f"Bearer {bob['token']}"}, timeout=10)
        assert rest.status_code == 200, rest.text
        assert [(m["message"], m["senderId"]) for m in rest.json()] == [("Hello there!", alice["id"]), ("Hi Alice", bob["id"])]
        users = requests.get(gw1 + "/api/users", headers={"Authorization": f"Bearer {alice['token']}"}, timeout=10)
        assert users.status_code == 200
        # Presence: now contacts, Bob going and coming back is seen by Alice.
        b.close()
        off = a.wait("user_offline", lambda d: d["userId"] == bob["id"])
        assert off["username"] == bob["username"], off
        b = SeedClient(gw2, bob["token"])
        on = a.wait("user_online", lambda d: d["userId"] == bob["id"])
        assert on["username"] == bob["username"], on
        online = b.wait("online_users")
        assert any(u["userId"] == alice["id"] and u["username"] == alice["username"] for u in online), online
        # Errors come as {message, details}.
        a.emit("private_message", {"receiverId": alice["id"], "message": "to myself"})
        error = a.wait("error")
        assert error["message"] and error["details"], error
        assert reply["id"] > got["id"]
    finally:
        a.close()
        b.close()
