"""Rooms (issue 13), the REST side so far: create, look up, join by id or invite code, list, members,
roles, leave (the last admin's departure promotes the oldest member), update, rotate, delete; each
refusal with its code; membership events on the members' sockets. Two gateways, two workers: every
write is a room command applied by the worker holding the room's shard."""

from __future__ import annotations

import pytest

from support import Api, create_user, numsub, poll, unique, user_channel

EVENT = 5  # seconds for a membership event to reach a socket


def error_code(resp) -> str:
    return resp.json().get("error", {}).get("code", "")


@pytest.fixture
def people(cluster, sio_session, settings):
    api1, api2 = Api(cluster.gw1.url), Api(cluster.gw2.url)
    alice, bob, carol = create_user(api1), create_user(api1), create_user(api1)
    sessions = {u.username: sio_session(gw.url).connect(token=u.token)
                for u, gw in ((alice, cluster.gw1), (bob, cluster.gw2), (carol, cluster.gw1))}
    for u in (alice, bob, carol):
        poll(lambda: numsub(settings, user_channel(u.id)) == 1, 3, interval=0.05, what=f"{u.username} subscribed")
    return api1, api2, alice, bob, carol, sessions


def test_a_public_room_is_created_joined_listed_and_left(people):
    api1, api2, alice, bob, carol, sessions = people
    resp = api1.post("/api/rooms", {"name": "  Design  ", "description": "all things design"}, token=alice.token)
    assert resp.status_code == 201, resp.text
    room = resp.json()
    assert room["name"] == "Design" and room["role"] == "admin" and room["memberCount"] == 1 and room["isPrivate"] is False
    rid = room["id"]
    sessions[alice.username].wait_for("roomJoined", EVENT, match=lambda r: r["id"] == rid)

    mark = sessions[alice.username].mark()
    resp = api2.post(f"/api/rooms/{rid}/join", token=bob.token)  # through the other gateway
    assert resp.status_code == 200 and resp.json()["memberCount"] == 2 and resp.json()["role"] == "member", resp.text
    joined = sessions[alice.username].wait_for("memberJoined", EVENT, since=mark).args[0]
    assert joined["userId"] == bob.id and joined["roomId"] == rid
    sessions[bob.username].wait_for("roomJoined", EVENT, match=lambda r: r["id"] == rid)
    assert error_code(api2.post(f"/api/rooms/{rid}/join", token=bob.token)) == "already_a_member"

    mine = api2.get("/api/rooms", token=bob.token).json()
    assert [r["id"] for r in mine["rooms"]] == [rid] and mine["rooms"][0]["unreadCount"] == 0
    assert mine["rooms"][0]["role"] == "member" and "inviteCode" not in mine["rooms"][0]
    found = api1.get("/api/rooms/public", token=carol.token, params={"query": "desi"}).json()["rooms"]
    assert rid in [r["id"] for r in found]
    assert api1.get(f"/api/rooms/{rid}", token=carol.token).json()["memberCount"] == 2, "a public room can be looked at"
    members = api1.get(f"/api/rooms/{rid}/members", token=alice.token).json()["members"]
    assert {(m["userId"], m["role"]) for m in members} == {(alice.id, "admin"), (bob.id, "member")}
    assert all("email" not in m for m in members)

    # Members act; non-members and members without the role are refused with codes.
    assert error_code(api1.request("PATCH", f"/api/rooms/{rid}", carol.token, json={"name": "x"})) == "not_a_member"
    assert error_code(api2.request("PATCH", f"/api/rooms/{rid}", bob.token, json={"name": "x"})) == "admin_required"
    resp = api1.request("PATCH", f"/api/rooms/{rid}", alice.token, json={"name": "Design team", "description": None})
    assert resp.status_code == 200 and resp.json()["name"] == "Design team" and resp.json()["description"] is None, resp.text
    sessions[bob.username].wait_for("roomUpdated", EVENT, match=lambda r: r["name"] == "Design team")

    # The only admin leaves: the oldest member (bob) becomes admin.
    mark = sessions[bob.username].mark()
    resp = api1.post(f"/api/rooms/{rid}/leave", token=alice.token)
    assert resp.status_code == 200 and resp.json()["promoted"] == bob.id, resp.text
    sessions[bob.username].wait_for("memberRoleChanged", EVENT, since=mark, match=lambda c: c["userId"] == bob.id)
    assert api2.get(f"/api/rooms/{rid}", token=bob.token).json()["role"] == "admin"
    assert error_code(api1.post(f"/api/rooms/{rid}/leave", token=alice.token)) == "not_a_member"


def test_a_private_room_is_found_only_by_its_members_and_its_code(people):
    api1, api2, alice, bob, carol, sessions = people
    room = api1.post("/api/rooms", {"name": "Secret plans", "isPrivate": True}, token=alice.token).json()
    rid, code = room["id"], room["inviteCode"]
    assert isinstance(code, str) and len(code) == 22

    for path in (f"/api/rooms/{rid}", f"/api/rooms/{rid}/members"):
        assert error_code(api2.get(path, token=bob.token)) == "room_not_found", path
    assert error_code(api2.post(f"/api/rooms/{rid}/join", token=bob.token)) == "room_not_found"
    assert rid not in [r["id"] for r in api2.get("/api/rooms/public", token=bob.token, params={"query": "secret"}).json()["rooms"]]
    assert error_code(api2.post("/api/rooms/join", {"inviteCode": "A" * 22}, token=bob.token)) == "invite_invalid"
    assert error_code(api2.post("/api/rooms/join", {"inviteCode": "short"}, token=bob.token)) == "invite_invalid"

    preview = api2.get(f"/api/rooms/invite/{code}", token=bob.token)
    assert preview.status_code == 200 and preview.json()["name"] == "Secret plans" and "inviteCode" not in preview.json()
    resp = api2.post("/api/rooms/join", {"inviteCode": code}, token=bob.token)
    assert resp.status_code == 200 and resp.json()["id"] == rid and "inviteCode" not in resp.json(), resp.text
    assert "inviteCode" not in api2.get(f"/api/rooms/{rid}", token=bob.token).json(), "members do not see the code"

    # An admin rotates the code: the old one stops working.
    assert error_code(api2.post(f"/api/rooms/{rid}/invite", token=bob.token)) == "admin_required"
    rotated = api1.post(f"/api/rooms/{rid}/invite", token=alice.token).json()["inviteCode"]
    assert rotated != code
    assert error_code(api1.post("/api/rooms/join", {"inviteCode": code}, token=carol.token)) == "invite_invalid"

    # Admins add and remove members and change roles.
    assert error_code(api2.post(f"/api/rooms/{rid}/members", {"userId": carol.id}, token=bob.token)) == "admin_required"
    resp = api1.post(f"/api/rooms/{rid}/members", {"userId": carol.id}, token=alice.token)
    assert resp.status_code == 200, resp.text
    sessions[carol.username].wait_for("roomJoined", EVENT, match=lambda r: r["id"] == rid)
    resp = api1.request("PATCH", f"/api/rooms/{rid}/members/{bob.id}", alice.token, json={"role": "admin"})
    assert resp.status_code == 200 and resp.json()["role"] == "admin", resp.text
    mark = sessions[carol.username].mark()
    resp = api2.request("DELETE", f"/api/rooms/{rid}/members/{carol.id}", bob.token)
    assert resp.status_code == 200 and resp.json()["reason"] == "removed", resp.text
    sessions[carol.username].wait_for("roomLeft", EVENT, since=mark, match=lambda e: e["roomId"] == rid)
    assert error_code(api1.get(f"/api/rooms/{rid}", token=carol.token)) == "room_not_found"
    assert error_code(api1.request("PATCH", f"/api/rooms/{rid}/members/{carol.id}", alice.token,
                                   json={"role": "owner"})) == "validation_failed"

    # An admin deletes the room: gone for everyone, members told.
    mark = sessions[bob.username].mark()
    resp = api1.request("DELETE", f"/api/rooms/{rid}", alice.token)
    assert resp.status_code == 200, resp.text
    left = sessions[bob.username].wait_for("roomLeft", EVENT, since=mark).args[0]
    assert left == {"roomId": rid, "reason": "deleted", "by": alice.id}
    assert error_code(api1.get(f"/api/rooms/{rid}", token=alice.token)) == "room_not_found"
    assert rid not in [r["id"] for r in api1.get("/api/rooms", token=alice.token).json()["rooms"]]


def test_room_bodies_are_validated(people):
    api1, _api2, alice, _bob, _carol, _sessions = people
    for body, field in (({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 101}, "name"),
                        ({"name": "ok", "isPrivate": "yes"}, "isPrivate"), ({"name": "ok", "description": "d" * 1001}, "description")):
        resp = api1.post("/api/rooms", body, token=alice.token)
        assert resp.status_code == 422 and resp.json()["error"].get("field") == field, (body, resp.text)
    assert api1.post("/api/rooms", {"name": "no token"}).status_code == 401
    assert error_code(api1.get("/api/rooms/999999999", token=alice.token)) == "room_not_found"
    assert api1.get("/api/rooms", token=alice.token, params={"cursor": "nonsense"}).status_code == 422


def test_room_messages_reach_every_member_device_once_and_stop_at_removal(cluster, sio_session, settings):
    """A private room with three members over both gateways, one member with two devices: each
    message reaches every other member's devices once (the sender's as messageSent); a
    non-member's send and history read are refused; after a removal the removed member's devices
    on both gateways get nothing more; history and sync hold the room's messages."""
    from support import ack_error, ack_message

    api1, api2 = Api(cluster.gw1.url), Api(cluster.gw2.url)
    alice, bob, carol, dave = (create_user(api1) for _ in range(4))
    room = api1.post("/api/rooms", {"name": "Ops", "isPrivate": True}, token=alice.token).json()
    rid = room["id"]
    for user in (bob, carol):
        assert api1.post(f"/api/rooms/{rid}/members", {"userId": user.id}, token=alice.token).status_code == 200
    devices = {
        "alice": sio_session(cluster.gw1.url).connect(token=alice.token),
        "bob1": sio_session(cluster.gw1.url).connect(token=bob.token),
        "bob2": sio_session(cluster.gw2.url).connect(token=bob.token),
        "carol": sio_session(cluster.gw2.url).connect(token=carol.token),
        "dave": sio_session(cluster.gw1.url).connect(token=dave.token),
    }
    poll(lambda: numsub(settings, user_channel(bob.id)) == 2, 3, interval=0.05, what="bob on both gateways")
    for user in (alice, carol, dave):
        poll(lambda: numsub(settings, user_channel(user.id)) == 1, 3, interval=0.05, what=f"{user.username} subscribed")

    marks = {name: d.mark() for name, d in devices.items()}
    before_send = marks
    sent = ack_message(devices["alice"].call("sendMessage", {"roomId": rid, "content": "hello team", "clientMsgId": "r1"}, timeout=10))
    assert sent["roomId"] == rid and sent["conversationId"] == rid and sent["receiverId"] is None and sent["seq"] == 1
    for name in ("bob1", "bob2", "carol"):
        got = devices[name].wait_for("receiveMessage", EVENT, since=marks[name], match=lambda m: m.get("clientMsgId") == "r1")
        assert got.args[0]["id"] == sent["id"]
    devices["alice"].wait_for("messageSent", EVENT, since=marks["alice"], match=lambda m: m.get("id") == sent["id"])
    code, _ = ack_error(devices["dave"].call("sendMessage", {"roomId": rid, "content": "let me in", "clientMsgId": "d1"}, timeout=10))
    assert code == "room_not_found", "a private room does not exist for a non-member"
    assert error_code(api1.get(f"/api/rooms/{rid}/messages", token=dave.token)) == "room_not_found"

    reply = ack_message(devices["carol"].call("sendMessage", {"roomId": rid, "content": "on it", "clientMsgId": "c1"}, timeout=10))
    assert reply["seq"] == 2

    # Unread counts per member: sending marks what came before as read (so carol has none), the
    # others count the messages after their pointer.
    def unread(user) -> int:
        rooms = api1.get("/api/rooms", token=user.token).json()["rooms"]
        return next(r["unreadCount"] for r in rooms if r["id"] == rid)
    assert (unread(alice), unread(bob), unread(carol)) == (1, 2, 0)
    history = api2.get(f"/api/rooms/{rid}/messages", token=bob.token)
    assert [m["content"] for m in history.json()] == ["hello team", "on it"] and history.headers["X-Has-More"] == "false"

    # Receipts. A room message's frame asks for a Socket.IO ack, and python-socketio acks every
    # such event: the ack of bob's and carol's devices confirmed delivery with no client event (the
    # gateway turns acks into one pointer move per member and room per second). carol reads; the
    # sender hears both (coalesced events) and the counts say so.
    for user in (bob, carol):
        got = devices["alice"].wait_for("memberDelivered", EVENT, since=before_send["alice"],
                                        match=lambda d, u=user: d["userId"] == u.id).args[0]
        assert got["roomId"] == rid and got["lastDeliveredSeq"] >= 1, got
    marks = {name: d.mark() for name, d in devices.items()}
    # The client event still confirms too (idempotent: the pointer only moves forward).
    assert devices["bob2"].call("messageDelivered", {"roomId": rid, "seq": 1}, timeout=10) == {"roomId": rid, "seq": 1}
    devices["carol"].call("messageRead", {"messageId": sent["id"]}, timeout=10)
    got = devices["alice"].wait_for("memberRead", EVENT, since=marks["alice"], match=lambda r: r["userId"] == carol.id).args[0]
    assert got["lastReadSeq"] >= 1
    devices["alice"].call("messageRead", {"messageId": reply["id"]}, timeout=10)
    assert (unread(alice), unread(bob), unread(carol)) == (0, 2, 0), "alice read carol's message"
    receipts = api1.get(f"/api/rooms/{rid}/messages/{sent['id']}/receipts", token=alice.token).json()
    assert receipts == {"messageId": sent["id"], "roomId": rid, "seq": 1, "members": 2, "delivered": 2, "read": 1}, receipts
    assert devices["carol"].find("memberRead", since=marks["carol"], match=lambda r: r["userId"] == carol.id) is None, (
        "a member does not hear its own receipt")
    devices["carol"].wait_for("memberRead", EVENT, since=marks["carol"], match=lambda r: r["userId"] == alice.id)

    # Typing reaches the room's other members' devices (not the typist's, not a non-member's).
    marks = {name: d.mark() for name, d in devices.items()}
    assert devices["carol"].call("typing", {"roomId": rid}, timeout=10) == {"ok": True}
    for name in ("alice", "bob1", "bob2"):
        got = devices[name].wait_for("typing", EVENT, since=marks[name]).args[0]
        assert got == {"senderId": carol.id, "roomId": rid}
    devices["alice"].wait_for("stopTyping", 8, since=marks["alice"], match=lambda t: t.get("roomId") == rid)  # automatic stop
    for name in ("carol", "dave"):
        assert devices[name].find("typing", since=marks[name]) is None, f"{name} got the room's typing"
    assert ack_error(devices["dave"].call("typing", {"roomId": rid}, timeout=10))[0] == "room_not_found"

    # Removal: bob's devices on both gateways get roomLeft, then nothing from the room.
    marks = {name: d.mark() for name, d in devices.items()}
    assert api1.request("DELETE", f"/api/rooms/{rid}/members/{bob.id}", alice.token).status_code == 200
    for name in ("bob1", "bob2"):
        devices[name].wait_for("roomLeft", 1.0, since=marks[name], match=lambda e: e["roomId"] == rid)
    after = ack_message(devices["alice"].call("sendMessage", {"roomId": rid, "content": "bob is gone", "clientMsgId": "r2"}, timeout=10))
    devices["carol"].wait_for("receiveMessage", EVENT, since=marks["carol"], match=lambda m: m.get("id") == after["id"])
    for name in ("bob1", "bob2"):
        assert devices[name].find("receiveMessage", since=marks[name]) is None, f"{name} got a message after the removal"
    code, _ = ack_error(devices["bob1"].call("sendMessage", {"roomId": rid, "content": "still here?", "clientMsgId": "b9"}, timeout=10))
    assert code == "room_not_found"

    # Sync holds the room with its messages for a member.
    synced = api2.get("/api/sync", token=carol.token).json()
    convs = {c["conversationId"]: c for c in synced["conversations"]}
    assert [m["seq"] for m in convs[rid]["messages"]] == [1, 2, 3]


def test_every_room_request_has_a_socket_twin_with_an_ack(cluster, sio_session, settings):
    from support import ack_error

    api = Api(cluster.gw1.url)
    alice, bob = create_user(api), create_user(api)
    sa = sio_session(cluster.gw1.url).connect(token=alice.token)
    sb = sio_session(cluster.gw2.url).connect(token=bob.token)

    room = sa.call("createRoom", {"name": "Socket room", "isPrivate": True}, timeout=10)
    assert room["role"] == "admin" and len(room["inviteCode"]) == 22, room
    rid = room["id"]
    assert ack_error(sb.call("getRoom", {"roomId": rid}, timeout=10))[0] == "room_not_found"
    assert ack_error(sb.call("joinRoom", {"inviteCode": "B" * 22}, timeout=10))[0] == "invite_invalid"
    joined = sb.call("joinRoom", {"inviteCode": room["inviteCode"]}, timeout=10)
    assert joined["id"] == rid and joined["role"] == "member" and "inviteCode" not in joined
    assert ack_error(sb.call("joinRoom", {"roomId": rid}, timeout=10))[0] == "already_a_member"
    assert ack_error(sb.call("updateRoom", {"roomId": rid, "name": "mine now"}, timeout=10))[0] == "admin_required"
    assert sa.call("updateRoom", {"roomId": rid, "name": "Renamed"}, timeout=10)["name"] == "Renamed"
    assert sa.call("setRoomMemberRole", {"roomId": rid, "userId": bob.id, "role": "admin"}, timeout=10)["role"] == "admin"
    members = sb.call("getRoomMembers", {"roomId": rid}, timeout=10)["members"]
    assert {(m["userId"], m["role"]) for m in members} == {(alice.id, "admin"), (bob.id, "admin")}
    mine = sb.call("getMyRooms", {}, timeout=10)
    assert rid in [r["id"] for r in mine["rooms"]]
    mark = sb.mark()
    sent = sa.call("sendMessage", {"roomId": rid, "content": "over the socket", "clientMsgId": "s1"}, timeout=10)
    # bob joined after connecting: its gateway subscribed the room's channel on roomJoined.
    assert sb.wait_for("receiveMessage", 5, since=mark).args[0]["id"] == sent["id"]
    page = sb.call("getRoomMessages", {"roomId": rid, "limit": 10}, timeout=10)
    assert [m["id"] for m in page["messages"]] == [sent["id"]] and page["hasMore"] is False
    # Without an ack, a get answers with an event of its own name.
    mark = sb.mark()
    sb.emit("getRoom", {"roomId": rid})
    assert sb.wait_for("getRoom", 5, since=mark).args[0]["name"] == "Renamed"
    assert ack_error(sb.call("getRoom", {}, timeout=10))[0] == "validation_failed"
    rotated = sb.call("rotateRoomInvite", {"roomId": rid, "revoke": True}, timeout=10)
    assert rotated["inviteCode"] is None
    left = sb.call("leaveRoom", {"roomId": rid}, timeout=10)
    assert left["reason"] == "left" and "promoted" not in left
    assert sa.call("deleteRoom", {"roomId": rid}, timeout=10)["deleted"] is True
    assert ack_error(sa.call("getRoom", {"roomId": rid}, timeout=10))[0] == "room_not_found"
    public = sa.call("createRoom", {"name": "Open socket room"}, timeout=10)
    assert public["id"] in [r["id"] for r in sb.call("getPublicRooms", {"query": "open socket"}, timeout=10)["rooms"]]
    assert sb.call("joinRoom", {"roomId": public["id"]}, timeout=10)["memberCount"] == 2


def test_room_limits_refuse_with_their_codes(cluster, procs):
    """Room creations per user per window (RATE_LIMIT_ROOM_CREATE, here 2/1h on a gateway of its
    own): 429 rate_limited with limit roomCreate; the rate limit is per user."""
    gw = procs.gateway({"RATE_LIMIT_ROOM_CREATE": "2/1h"})
    api = Api(gw.url)
    alice, bob = create_user(api), create_user(api)
    for n in range(2):
        assert api.post("/api/rooms", {"name": f"r{n}"}, token=alice.token).status_code == 201
    refused = api.post("/api/rooms", {"name": "one too many"}, token=alice.token)
    assert refused.status_code == 429 and refused.json()["error"]["limit"] == "roomCreate", refused.text
    assert refused.headers.get("Retry-After")
    assert api.post("/api/rooms", {"name": "bob's"}, token=bob.token).status_code == 201


def test_room_members_follow_each_others_presence_by_subscription(cluster, sio_session, settings):
    """Presence at room scale: no contact rule between room members; a socket subscribes to the
    users it shows (people it shares a conversation or room with) and hears only them; a room
    says how many members are online."""
    from support import ack_error

    api = Api(cluster.gw1.url)
    alice, bob, carol = create_user(api), create_user(api), create_user(api)
    rid = api.post("/api/rooms", {"name": unique("presence")}, token=alice.token).json()["id"]
    assert api.post(f"/api/rooms/{rid}/join", token=bob.token).status_code == 200
    sa = sio_session(cluster.gw1.url).connect(token=alice.token)

    answer = sa.call("presenceSubscribe", {"userIds": [bob.id, carol.id]}, timeout=10)
    assert answer == {"users": [{"userId": bob.id, "isOnline": False}], "refused": [carol.id]}, answer
    mark = sa.mark()
    sb = sio_session(cluster.gw2.url).connect(token=bob.token)
    got = sa.wait_for("userOnline", EVENT, since=mark, match=lambda u: u.get("userId") == bob.id).args[0]
    assert got["username"] == bob.username
    sc = sio_session(cluster.gw2.url).connect(token=carol.token)
    poll(lambda: numsub(settings, user_channel(carol.id)) == 1, 3, interval=0.05, what="carol subscribed")
    presence = sa.call("getRoomPresence", {"roomId": rid}, timeout=10)
    assert presence["online"] == 2 and {m["userId"] for m in presence["members"]} == {alice.id, bob.id}, presence
    assert api.get(f"/api/rooms/{rid}/presence", token=bob.token).json()["online"] == 2
    mark = sa.mark()
    sb.close()
    sa.wait_for("userOffline", EVENT, since=mark, match=lambda u: u.get("userId") == bob.id)
    assert all(e.args[0].get("userId") != carol.id for e in sa.events if e.name in ("userOnline", "userOffline"))
    assert ack_error(sa.call("presenceSubscribe", {"userIds": "all"}, timeout=10))[0] == "validation_failed"
    assert ack_error(sa.call("presenceSubscribe", {"userIds": list(range(1, 502))}, timeout=10))[0] == "validation_failed"
    sc.close()
