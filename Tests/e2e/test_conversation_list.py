"""The conversation list and unread counts (issue 14): direct conversations and rooms in one list,
most recent activity first, paginated by cursor, each with its last message (a deleted one without
its text), unread count, partner (never the email) or room summary; unread counts grouped by
conversation and the total; the same over the socket (`getConversations`, `getUnreadCounts`)."""

from __future__ import annotations

from support import Api, ack_message, create_user, expect_error, unique

ACK = 10


def test_direct_conversations_and_rooms_in_one_list_with_unread_counts(cluster, sio_session):
    api = Api(cluster.gw1.url)
    alice, bob, carol = create_user(api), create_user(api), create_user(api)
    room = api.post("/api/rooms", {"name": unique("list")}, token=alice.token).json()
    assert api.post(f"/api/rooms/{room['id']}/members", {"userId": bob.id}, token=alice.token).status_code == 200

    a = sio_session(cluster.gw1.url).connect(token=alice.token)
    b = sio_session(cluster.gw2.url).connect(token=bob.token)
    c = sio_session(cluster.gw2.url).connect(token=carol.token)
    # Activity order, oldest first: alice→bob direct, alice→carol direct, the room.
    to_bob = ack_message(a.call("sendMessage", {"receiverId": bob.id, "content": "hi bob", "clientMsgId": "l1"}, timeout=ACK))
    ack_message(c.call("sendMessage", {"receiverId": alice.id, "content": "hi alice", "clientMsgId": "l2"}, timeout=ACK))
    ack_message(c.call("sendMessage", {"receiverId": alice.id, "content": "again", "clientMsgId": "l3"}, timeout=ACK))
    in_room = ack_message(b.call("sendMessage", {"roomId": room["id"], "content": "team hello", "clientMsgId": "l4"}, timeout=ACK))

    page = api.get("/api/conversations", token=alice.token)
    assert page.status_code == 200, page.text
    body = page.json()
    kinds = [(e["kind"], e["partner"]["id"] if e["partner"] else e["room"]["id"]) for e in body["conversations"]]
    assert kinds == [("room", room["id"]), ("direct", carol.id), ("direct", bob.id)], kinds
    first, second, third = body["conversations"]
    assert first["room"]["name"] == room["name"] and first["room"]["role"] == "admin" and first["partner"] is None
    assert first["lastMessage"]["content"] == "team hello" and first["unreadCount"] == 1
    assert second["partner"]["username"] == carol.username and "email" not in second["partner"]
    assert second["lastMessage"]["content"] == "again" and second["unreadCount"] == 2
    assert third["unreadCount"] == 0 and third["lastMessage"]["id"] == to_bob["id"]
    assert body["totalUnread"] == 3 and body["nextCursor"] is None
    for entry in body["conversations"]:
        assert {"conversationId", "kind", "lastSeq", "lastReadSeq", "version", "activityAt"} <= entry.keys(), entry

    # Pages of one: the cursor walks the same order.
    seen = []
    cursor = None
    for _ in range(4):
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = api.get("/api/conversations", token=alice.token, params=params).json()
        seen += [e["conversationId"] for e in page["conversations"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [e["conversationId"] for e in body["conversations"]], seen

    # Unread grouped by conversation, over REST and the socket.
    unread = api.get("/api/conversations/unread", token=alice.token).json()
    assert unread["totalUnread"] == 3 and unread["hasMore"] is False
    assert {e["conversationId"]: e["unreadCount"] for e in unread["conversations"]} == {
        first["conversationId"]: 1, second["conversationId"]: 2}
    assert a.call("getUnreadCounts", None, timeout=ACK) == unread
    over_socket = a.call("getConversations", {"limit": 2}, timeout=ACK)
    assert [e["conversationId"] for e in over_socket["conversations"]] == seen[:2] and over_socket["nextCursor"]

    # A deleted last message shows as deleted, without its text.
    assert api.request("DELETE", f"/api/messages/{in_room['id']}", bob.token).status_code == 200
    last = api.get("/api/conversations", token=alice.token).json()["conversations"][0]["lastMessage"]
    assert last["isDeleted"] is True and last["content"] == "", last

    # Bad pages are refused with their field named.
    for params in ({"limit": 0}, {"limit": 101}, {"cursor": "nope"}, {"cursor": "1_0"}):
        expect_error(api.get("/api/conversations", token=alice.token, params=params), 422, "validation_failed")
