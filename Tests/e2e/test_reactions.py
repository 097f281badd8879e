"""Reactions (issue 14): a member adds or removes an emoji on a message of a conversation they are
in; every device of every member hears `reactionAdded` / `reactionRemoved` with the message's
counts; history, room history and sync show `reactions: [{emoji, count, me}]`; both operations are
idempotent; at most 20 different emoji per message; a deleted message takes none."""

from __future__ import annotations

from support import Api, ack_error, ack_message, create_user, expect_error, unique

ACK = 10
EVENT = 5


def counts(message) -> dict:
    return {r["emoji"]: (r["count"], r["me"]) for r in message["reactions"]}


def test_reactions_reach_every_device_and_read_paths(cluster, sio_session):
    api = Api(cluster.gw1.url)
    alice, bob, carol, dave = (create_user(api) for _ in range(4))
    a1 = sio_session(cluster.gw1.url).connect(token=alice.token)
    a2 = sio_session(cluster.gw2.url).connect(token=alice.token)
    b = sio_session(cluster.gw2.url).connect(token=bob.token)
    sent = ack_message(a1.call("sendMessage", {"receiverId": bob.id, "content": "react to me", "clientMsgId": "rx1"}, timeout=ACK))

    marks = {s: s.mark() for s in (a1, a2, b)}
    answer = b.call("addReaction", {"messageId": sent["id"], "emoji": "👍"}, timeout=ACK)
    assert counts(answer) == {"👍": (1, True)}, answer
    for s in (a1, a2, b):
        event = s.wait_for("reactionAdded", EVENT, since=marks[s]).args[0]
        assert (event["messageId"], event["userId"], event["emoji"]) == (sent["id"], bob.id, "👍"), event
        assert event["reactions"][0]["count"] == 1
    again = b.call("addReaction", {"messageId": sent["id"], "emoji": "👍"}, timeout=ACK)
    assert counts(again) == {"👍": (1, True)}, "adding twice is one reaction"
    added = api.request("PUT", f"/api/messages/{sent['id']}/reactions", alice.token, json={"emoji": "👍🏽"})
    assert added.status_code == 200, added.text
    history = api.get(f"/api/messages/conversation/{bob.id}", token=alice.token).json()
    assert counts(history[-1]) == {"👍": (1, False), "👍🏽": (1, True)}, history[-1]
    sync = api.get("/api/sync", token=bob.token).json()
    entry = next(c for c in sync["conversations"] if c["conversationId"] == sent["conversationId"])
    assert counts(entry["messages"][-1]) == {"👍": (1, True), "👍🏽": (1, False)}
    assert entry["version"] >= 2, "reactions advance the change version, so sync carries them"

    marks = {s: s.mark() for s in (a1, a2, b)}
    removed = api.request("DELETE", f"/api/messages/{sent['id']}/reactions", bob.token, params={"emoji": "👍"})
    assert removed.status_code == 200 and counts(removed.json()) == {"👍🏽": (1, False)}, removed.text
    for s in (a1, a2, b):
        s.wait_for("reactionRemoved", EVENT, since=marks[s], match=lambda e: e["emoji"] == "👍")
    assert api.request("DELETE", f"/api/messages/{sent['id']}/reactions", bob.token, params={"emoji": "👍"}).status_code == 200

    # A stranger cannot, a bad emoji is refused, at most 20 different emoji.
    expect_error(api.request("PUT", f"/api/messages/{sent['id']}/reactions", dave.token, json={"emoji": "👍"}), 404, "message_not_found")
    for bad in ("ok", "👍👍", ""):
        expect_error(api.request("PUT", f"/api/messages/{sent['id']}/reactions", bob.token, json={"emoji": bad}), 422, "validation_failed")
    many = ["😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎", "😍", "😘", "🥰", "😗", "😙", "😚", "🙂"]
    for emoji in many:  # 19 more: 20 with 👍🏽
        assert api.request("PUT", f"/api/messages/{sent['id']}/reactions", bob.token, json={"emoji": emoji}).status_code == 200
    code, _ = ack_error(b.call("addReaction", {"messageId": sent["id"], "emoji": "🙃"}, timeout=ACK))
    assert code == "too_many_reactions"
    assert api.request("PUT", f"/api/messages/{sent['id']}/reactions", alice.token, json={"emoji": "😀"}).status_code == 200, (
        "an emoji already there still takes more users")

    # Rooms: every member's devices; a deleted message takes no reaction.
    room = api.post("/api/rooms", {"name": unique("react")}, token=alice.token).json()
    assert api.post(f"/api/rooms/{room['id']}/members", {"userId": carol.id}, token=alice.token).status_code == 200
    c = sio_session(cluster.gw1.url).connect(token=carol.token)
    in_room = ack_message(a1.call("sendMessage", {"roomId": room["id"], "content": "room msg", "clientMsgId": "rx2"}, timeout=ACK))
    marks = {s: s.mark() for s in (a1, a2, c)}
    c.call("addReaction", {"messageId": in_room["id"], "emoji": "🎉"}, timeout=ACK)
    for s in (a1, a2, c):
        event = s.wait_for("reactionAdded", EVENT, since=marks[s]).args[0]
        assert event["roomId"] == room["id"] and event["emoji"] == "🎉"
    page = api.get(f"/api/rooms/{room['id']}/messages", token=carol.token).json()
    assert counts(page[-1]) == {"🎉": (1, True)}, page[-1]
    assert api.request("DELETE", f"/api/messages/{in_room['id']}", alice.token).status_code == 200
    code, _ = ack_error(c.call("addReaction", {"messageId": in_room["id"], "emoji": "👍"}, timeout=ACK))
    assert code == "message_deleted"
