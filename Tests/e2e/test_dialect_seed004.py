"""Seed 004's client, written from its README alone (../shared/seeds/004_*.txt), against two
gateways and two workers running SOCKET_DIALECT=seed004 (issue 16): /api/v1/auth/register with
fullName, /api/v1/auth/login, /api/v1/rooms, then sockets with auth {token}: welcome, join_room,
send_message -> receive_message, edit_message -> message_edited, delete_message ->
message_deleted, mark_message_read -> message_read, typing {roomId, isTyping}, user_status.
Room members see each other's status here because the deployment sets PRESENCE_ROOM_CONTACTS=on
(docs/DIALECTS.md)."""

from __future__ import annotations

import time

import pytest
import requests

from dialect_client import SeedClient
from support import start_cluster, unique

pytestmark = pytest.mark.timeout(120)

API = "/api/v1"


@pytest.fixture(scope="module")
def seed004(module_procs):
    return start_cluster(module_procs, gateway_env={"SOCKET_DIALECT": "seed004", "PRESENCE_ROOM_CONTACTS": "on"})


def register_and_login(base: str) -> dict:
    name = unique("s4")
    email = f"{name.lower()}@example.com"
    resp = requests.post(base + API + "/auth/register", json={
        "username": name, "email": email, "password": "password123", "fullName": "Test User"}, timeout=10)
    assert resp.status_code == 201, resp.text
    login = requests.post(base + API + "/auth/login", json={"email": email, "password": "password123"}, timeout=10)
    assert login.status_code == 200, login.text
    user = login.json()["user"]
    assert user["displayName"] == "Test User", user
    return {"id": user["id"], "username": name, "token": login.json()["token"]}


def test_the_seed_004_client_flows(seed004):
    gw1, gw2 = seed004.gateways[0].url, seed004.gateways[1].url
    alice, bob = register_and_login(gw1), register_and_login(gw2)
    room = requests.post(gw1 + API + "/rooms", json={"name": "Test Room", "description": "A test room", "isPrivate": False},
                         headers={"Authorization": f"Bearer {alice['token']}"}, timeout=10)
    assert room.status_code == 201, room.text
    room_id = room.json()["id"]
    a = SeedClient(gw1, alice["token"])
    b = SeedClient(gw2, bob["token"])
    try:
        assert a.wait("welcome")["message"] == f"Hello, User {alice['id']}"
        assert b.wait("welcome")["message"] == f"Hello, User {bob['id']}"
        a.emit("join_room", {"roomId": str(room_id)})  # already a member: no error
        b.emit("join_room", {"roomId": str(room_id)})
        deadline = time.monotonic() + 10
        while True:  # join_room has no answer in seed 004: its effect shows in the room list
            mine = requests.get(gw2 + API + "/rooms", headers={"Authorization": f"Bearer {bob['token']}"}, timeout=10)
            assert mine.status_code == 200, mine.text
            if room_id in [r["id"] for r in mine.json()["rooms"]] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert room_id in [r["id"] for r in mine.json()["rooms"]], mine.text
        b.emit("send_message", {"roomId": str(room_id), "content": "Hello, world!"})
        got = a.wait("receive_message")
        assert got["content"] == "Hello, world!" and got["roomId"] == room_id and got["senderId"] == bob["id"], got
        assert got["messageType"] == "text" and got["isEdited"] is False, got
        assert b.wait("receive_message")["id"] == got["id"]  # the sender's own copy, as a room broadcast
        b.emit("edit_message", {"messageId": str(got["id"]), "content": "Updated content"})
        edited = a.wait("message_edited")
        assert edited["content"] == "Updated content" and edited["isEdited"] is True, edited
        a.emit("typing", {"roomId": room_id, "isTyping": True})
        typing = b.wait("typing", lambda d: d["isTyping"] is True)
        assert typing["userId"] == alice["id"] and typing["roomId"] == room_id, typing
        a.emit("typing", {"roomId": room_id, "isTyping": False})
        b.wait("typing", lambda d: d["isTyping"] is False)
        a.emit("mark_message_read", {"messageId": got["id"]})
        read = b.wait("message_read")
        assert read["userId"] == alice["id"] and read["roomId"] == room_id, read
        b.emit("delete_message", {"messageId": got["id"]})
        deleted = a.wait("message_deleted")
        assert deleted["messageId"] == got["id"], deleted
        # Presence of room members.
        b.close()
        status = a.wait("user_status", lambda d: d["userId"] == bob["id"] and d["isOnline"] is False)
        assert status["username"] == bob["username"], status
        b = SeedClient(gw2, bob["token"])
        a.wait("user_status", lambda d: d["userId"] == bob["id"] and d["isOnline"] is True)
        # Errors come as {message, code}.
        b.emit("send_message", {"roomId": "999999999", "content": "nowhere"})
        error = b.wait("error")
        assert error["message"] and error["code"], error
    finally:
        a.close()
        b.close()
