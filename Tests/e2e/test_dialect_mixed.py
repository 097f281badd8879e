"""Sockets of different dialects in one conversation (issue 16): a native client, a seed-002 client
and a seed-004 client (each choosing its dialect with `dialect` in the CONNECT auth, the gateways
defaulting to native) share a room across two gateways; each one's messages reach the other two,
each in its own dialect."""

from __future__ import annotations

import pytest
import requests

from dialect_client import SeedClient
from support import Api, create_user, start_cluster

pytestmark = pytest.mark.timeout(120)


def test_native_seed002_and_seed004_clients_talk_in_one_room(module_procs):
    cluster = start_cluster(module_procs)
    gw1, gw2 = cluster.gateways[0].url, cluster.gateways[1].url
    api = Api(gw1)
    native_user, s2_user, s4_user = create_user(api), create_user(api), create_user(api)
    room = requests.post(gw1 + "/api/rooms", json={"name": "Mixed dialects"}, headers={"Authorization": f"Bearer {native_user.token}"},
                         timeout=10).json()
    for member in (s2_user, s4_user):
        added = requests.post(f"{gw1}/api/rooms/{room['id']}/members", json={"userId": member.id},
                              headers={"Authorization": f"Bearer {native_user.token}"}, timeout=10)
        assert added.status_code == 200, added.text
    native = SeedClient(gw1, native_user.token, dialect="native")
    s2 = SeedClient(gw2, s2_user.token, dialect="seed002")
    s4 = SeedClient(gw1, s4_user.token, dialect="seed004")
    try:
        s4.wait("welcome")
        native.client.call("sendMessage", {"roomId": room["id"], "content": "from native"}, timeout=10)
        assert s2.wait("private_message", lambda d: d["message"] == "from native")["roomId"] == room["id"]
        assert s4.wait("receive_message", lambda d: d["content"] == "from native")["senderId"] == native_user.id
        s2.emit("private_message", {"roomId": room["id"], "message": "from seed 002"})
        assert native.wait("receiveMessage", lambda d: d["content"] == "from seed 002")["senderId"] == s2_user.id
        assert s4.wait("receive_message", lambda d: d["content"] == "from seed 002")["senderId"] == s2_user.id
        s4.emit("send_message", {"roomId": room["id"], "content": "from seed 004"})
        assert native.wait("receiveMessage", lambda d: d["content"] == "from seed 004")["senderId"] == s4_user.id
        assert s2.wait("private_message", lambda d: d["message"] == "from seed 004")["senderId"] == s4_user.id
        # Each got the others' messages in its own dialect only.
        assert not native.named("private_message") and not native.named("receive_message")
        assert not s2.named("receiveMessage") and not s2.named("receive_message")
        assert not s4.named("receiveMessage") and not s4.named("private_message")
        # A dialect nobody serves is refused at CONNECT.
        with pytest.raises(Exception):
            SeedClient(gw1, native_user.token, dialect="seed999")
    finally:
        for client in (native, s2, s4):
            client.close()
