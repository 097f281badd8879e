"""Seed 003's client, written from its README alone (../shared/seeds/003_*.txt), against two
gateways and two workers running SOCKET_DIALECT=seed003 (issue 16): the `/api/chat/*` table with
its `{success, data}` envelopes, pages and snake_case fields, and the socket events
(join_conversation, send_message -> new_message + message_notification, typing / stop_typing ->
user_typing / user_stopped_typing, mark_as_read -> messages_read). Accounts come from the native
`/api/auth/*` (the README documents only the chat module)."""

from __future__ import annotations

import pytest
import requests

from dialect_client import SeedClient
from support import Api, create_user, start_cluster

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def seed003(module_procs):
    return start_cluster(module_procs, gateway_env={"SOCKET_DIALECT": "seed003"})


def auth(user) -> dict:
    return {"Authorization": f"Bearer {user.token}"}


def test_the_seed_003_client_flows(seed003):
    gw1, gw2 = seed003.gateways[0].url, seed003.gateways[1].url
    alice, bob = create_user(Api(gw1)), create_user(Api(gw2))
    sent = requests.post(gw1 + "/api/chat/send", json={"receiverId": bob.id, "content": "Hello! How are you?"}, headers=auth(alice),
                         timeout=10)
    assert sent.status_code in (200, 201), sent.text
    body = sent.json()
    assert body["success"] is True and body["message"] == "Message sent", body
    first = body["data"]
    assert (first["sender_id"], first["receiver_id"], first["content"], first["is_read"]) == (alice.id, bob.id, "Hello! How are you?", False)
    assert first["attachment_url"] is None and first["conversation_id"] and first["createdAt"], first
    conversation_id = first["conversation_id"]
    listed = requests.get(gw2 + "/api/chat/conversations?page=1&limit=20", headers=auth(bob), timeout=10).json()
    assert listed["success"] is True and listed["data"]["total"] == 1 and listed["data"]["page"] == 1 and listed["data"]["totalPages"] == 1
    conversation = listed["data"]["conversations"][0]
    assert conversation["id"] == conversation_id and conversation["last_message"] == "Hello! How are you?", conversation
    assert {conversation["participant_1_id"], conversation["participant_2_id"]} == {alice.id, bob.id}, conversation
    # Sockets: both join the conversation's room; Bob answers over the socket.
    a = SeedClient(gw1, alice.token)
    b = SeedClient(gw2, bob.token)
    try:
        for client in (a, b):
            client.emit("join_conversation", {"conversationId": conversation_id})
            client.emit("join_personal_room")
        b.emit("send_message", {"receiverId": alice.id, "conversationId": conversation_id, "content": "Hello!"})
        got = a.wait("new_message")
        assert (got["senderId"], got["receiverId"], got["conversationId"], got["content"]) == (bob.id, alice.id, conversation_id, "Hello!")
        assert got["sender"]["id"] == bob.id and got["isRead"] is False and got["createdAt"], got
        notification = a.wait("message_notification")
        assert notification == {**notification, "from": bob.id, "conversationId": conversation_id, "content": "Hello!"}, notification
        a.emit("typing", {"conversationId": conversation_id})
        assert b.wait("user_typing") == {"userId": alice.id, "conversationId": conversation_id}
        a.emit("stop_typing", {"conversationId": conversation_id})
        assert b.wait("user_stopped_typing") == {"userId": alice.id, "conversationId": conversation_id}
        a.emit("mark_as_read", {"conversationId": conversation_id})
        assert b.wait("messages_read") == {"conversationId": conversation_id, "userId": alice.id}
        a.emit("mark_as_read", {"conversationId": 999999999})
        assert a.wait("error")["code"] == "conversation_not_found"
    finally:
        a.close()
        b.close()
    # The rest of the REST table.
    page = requests.get(f"{gw1}/api/chat/conversations/{conversation_id}/messages?page=1&limit=50", headers=auth(alice), timeout=10).json()
    assert page["success"] is True and page["data"]["total"] == 2 and page["data"]["totalPages"] == 1, page
    assert [(m["sender_id"], m["content"]) for m in page["data"]["messages"]] == [(alice.id, "Hello! How are you?"), (bob.id, "Hello!")]
    second = requests.get(f"{gw1}/api/chat/conversations/{conversation_id}/messages?page=2&limit=1", headers=auth(alice), timeout=10).json()
    assert [m["content"] for m in second["data"]["messages"]] == ["Hello!"] and second["data"]["totalPages"] == 2, second
    # (Bob's reply moved his own read pointer: a new message makes one unread.)
    again = requests.post(gw1 + "/api/chat/send", json={"receiverId": bob.id, "content": "one more"}, headers=auth(alice), timeout=10)
    assert again.status_code in (200, 201), again.text
    unread = requests.get(gw2 + "/api/chat/unread-count", headers=auth(bob), timeout=10).json()
    assert unread["success"] is True and unread["data"]["unreadCount"] == 1, unread
    assert requests.get(gw2 + "/api/chat/unread", headers=auth(bob), timeout=10).json()["success"] is True
    read = requests.put(f"{gw2}/api/chat/conversations/{conversation_id}/read", headers=auth(bob), timeout=10)
    assert read.status_code == 200 and read.json()["success"] is True, read.text
    assert requests.get(gw2 + "/api/chat/unread-count", headers=auth(bob), timeout=10).json()["data"]["unreadCount"] == 0
    found = requests.get(f"{gw1}/api/chat/conversations/{conversation_id}/search?q=how%20are", headers=auth(alice), timeout=10).json()
    assert found["success"] is True and [m["content"] for m in found["data"]["messages"]] == ["Hello! How are you?"], found
    deleted = requests.delete(f"{gw1}/api/chat/messages/{first['id']}", headers=auth(alice), timeout=10)
    assert deleted.status_code == 200 and deleted.json()["success"] is True, deleted.text
    missing = requests.get(f"{gw1}/api/chat/conversations/999999999/messages", headers=auth(alice), timeout=10)
    assert missing.status_code == 404 and missing.json()["success"] is False and missing.json()["error"]["code"] == "conversation_not_found"
