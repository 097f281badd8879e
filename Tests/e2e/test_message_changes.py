"""Editing and deleting messages (issue 14, first slice) across two gateways and two workers: the
socket events `editMessage` / `deleteMessage` with acks and their REST twins `PATCH` / `DELETE
/api/messages/:id`; `messageEdited` / `messageDeleted` reach every device of every member of the
conversation once; who may change what (the sender edits, the sender or a room admin deletes);
a deleted message keeps its id and seq but loses its text everywhere, the database row included;
sync carries the changes a device missed while it was offline (the conversation's `version`).

The edit window (EDIT_WINDOW_MS, 48 h by default) cannot be reached in a shared cluster; it is
covered by the unit tests."""

from __future__ import annotations

import time

from support import (
    connect,
    subscribed,
    ISO_MS,
    Api,
    Messages,
    ack_error,
    ack_message,
    check_message,
    check_sync_body,
    create_user,
    expect_error,
    numsub,
    poll,
    psql_rows,
    unique,
    user_channel,
)

EVENT = 5  # seconds for an event to reach a socket (worker round trip included)
ACK = 10  # seconds for an ack
SUBSCRIBE = 3
SETTLE = 0.3  # seconds to wait for a duplicate before counting events
NOT_FOUND_ID = 9_000_000_000_000
MAX_CONTENT = 4000
# What an edit or a delete never changes.
FIXED_KEYS = ("id", "conversationId", "seq", "senderId", "receiverId", "clientMsgId", "createdAt", "type")
CHANGE_KEYS = ("editedAt", "isDeleted", "deletedAt", "version")


# --- helpers -----------------------------------------------------------------------------------


def by_id(message_id):
    return lambda m, *rest: isinstance(m, dict) and m.get("id") == message_id


def count_events(session, name: str, message_id, since: int = 0) -> int:
    return sum(1 for e in session.events[since:] if e.name == name and by_id(message_id)(*e.args))


def check_iso(value, what: str) -> str:
    assert isinstance(value, str) and ISO_MS.match(value), (
        f"{what} should be ISO 8601 UTC with milliseconds (2024-01-15T10:30:00.000Z): {value!r}")
    return value


def check_fields(msg, original: dict | None = None, **expected) -> dict:
    """The message JSON with the new fields (editedAt, isDeleted, deletedAt, version); when given,
    the same message as `original` (id, seq, sender, createdAt... unchanged)."""
    check_message(msg, **expected)
    missing = [k for k in CHANGE_KEYS if k not in msg]
    assert not missing, f"message lacks {missing}: {msg!r}"
    assert isinstance(msg["isDeleted"], bool), msg
    assert isinstance(msg["version"], int) and not isinstance(msg["version"], bool) and msg["version"] >= 0, msg
    if original is not None:
        changed = {k: (original.get(k), msg.get(k)) for k in FIXED_KEYS if msg.get(k) != original.get(k)}
        assert not changed, f"an edit or delete must keep these fields (before, after): {changed!r}"
    return msg


def check_unchanged(msg, **expected) -> dict:
    """A message never edited nor deleted: editedAt/deletedAt null, isDeleted false, version 0."""
    check_fields(msg, **expected)
    assert msg["editedAt"] is None and msg["deletedAt"] is None and msg["isDeleted"] is False, msg
    assert msg["version"] == 0, f"a never changed message has version 0: {msg!r}"
    assert msg["updatedAt"] == msg["createdAt"], f"updatedAt = createdAt before any edit: {msg!r}"
    return msg


def check_edited(msg, original: dict, content: str, version: int) -> dict:
    check_fields(msg, original, content=content, isDeleted=False, deletedAt=None, version=version)
    check_iso(msg["editedAt"], "editedAt")
    assert msg["updatedAt"] == msg["editedAt"], f"updatedAt = editedAt after an edit: {msg!r}"
    return msg


def check_deleted(msg, original: dict, version: int) -> dict:
    check_fields(msg, original, content="", attachmentUrl=None, isDeleted=True, version=version)
    check_iso(msg["deletedAt"], "deletedAt")
    return msg


def item(history: list, message_id) -> dict:
    found = [m for m in history if m.get("id") == message_id]
    assert len(found) == 1, f"history should list message {message_id} once: {[m.get('id') for m in history]}"
    return found[0]


def entry(body: dict, conversation_id: int) -> dict:
    """The sync answer's entry for one conversation, with its `version` and `changes`."""
    found = [c for c in body["conversations"] if c["conversationId"] == conversation_id]
    assert len(found) == 1, f"sync should list conversation {conversation_id} once: {body!r}"
    conv = found[0]
    assert isinstance(conv.get("version"), int) and not isinstance(conv["version"], bool), (
        f"a sync entry carries the conversation's version: {conv!r}")
    assert isinstance(conv.get("changes"), list), f"a sync entry carries changes: {conv!r}"
    for change in conv["changes"]:
        check_fields(change, conversationId=conversation_id)
    return conv


def patch(api: Api, message_id, body, token):
    return api.request("PATCH", f"/api/messages/{message_id}", token, json=body)


def delete(api: Api, message_id, token):
    return api.request("DELETE", f"/api/messages/{message_id}", token)


def same_answer(again: dict, first: dict) -> None:
    keys = ("id", "seq", "content", "attachmentUrl", "isDeleted", "deletedAt", "version")
    diff = {k: (first.get(k), again.get(k)) for k in keys if again.get(k) != first.get(k)}
    assert not diff, f"deleting again should answer as the first delete did (first, again): {diff!r}"


# --- direct conversation, over the socket ------------------------------------------------------


def test_direct_edit_and_delete_reach_every_device_and_history(settings, cluster, sio_session):
    """alice (devices on both gateways) edits and deletes a message to bob (devices on both
    gateways): acks carry the changed message, every device of both users gets messageEdited /
    messageDeleted once, history shows the change; bob may neither edit nor delete alice's
    message; a deleted message keeps its seq (the next one follows it), cannot be edited, can be
    deleted again with the same answer, and its text is gone from the database row."""
    gw1, gw2 = cluster.gw1, cluster.gw2
    alice, bob = create_user(Api(gw1.url)), create_user(Api(gw2.url))
    devices = {
        "alice1": connect(sio_session, gw1, alice),
        "alice2": connect(sio_session, gw2, alice),
        "bob1": connect(sio_session, gw1, bob),
        "bob2": connect(sio_session, gw2, bob),
    }
    subscribed(settings, alice, 2)
    subscribed(settings, bob, 2)
    a1, a2, b1, b2 = (devices[n] for n in ("alice1", "alice2", "bob1", "bob2"))
    ma, mb = Messages(gw1.url, alice), Messages(gw2.url, bob)

    marker = unique("draft")
    original = ack_message(a1.call("sendMessage", {"receiverId": bob.id, "content": f"first draft {marker}",
                                                   "clientMsgId": unique("chg")}, timeout=ACK),
                           senderId=alice.id, receiverId=bob.id, seq=1)
    check_unchanged(original)
    mid = original["id"]
    for session in (b1, b2):
        session.wait_for("receiveMessage", EVENT, match=by_id(mid))

    # alice edits: the ack, then messageEdited on all four devices (the editor's own included).
    marks = {name: d.mark() for name, d in devices.items()}
    new_text = f"final text {unique('edit')}"
    edited = check_edited(ack_message(a1.call("editMessage", {"messageId": mid, "content": new_text}, timeout=ACK)),
                          original, new_text, version=1)
    for name, device in devices.items():
        got = device.wait_for("messageEdited", EVENT, since=marks[name], match=by_id(mid)).args[0]
        check_edited(got, original, new_text, version=1)
        assert got["editedAt"] == edited["editedAt"], f"{name}: editedAt differs from the ack: {got!r}"
    time.sleep(SETTLE)
    for name, device in devices.items():
        assert count_events(device, "messageEdited", mid, since=marks[name]) == 1, f"{name}: messageEdited not exactly once"
    for history in (ma.history(bob.id), mb.history(alice.id)):
        shown = check_edited(item(history, mid), original, new_text, version=1)
        assert shown["editedAt"] == edited["editedAt"], shown

    # bob may not change alice's message; nothing changes and nobody hears anything.
    before_refusals = {name: d.mark() for name, d in devices.items()}
    code, _ = ack_error(b1.call("editMessage", {"messageId": mid, "content": "bob's version"}, timeout=ACK))
    assert code == "not_message_sender", f"the receiver editing the sender's message: {code}"
    code, _ = ack_error(b2.call("deleteMessage", {"messageId": mid}, timeout=ACK))
    assert code == "not_message_sender", f"the receiver deleting the sender's message in a direct conversation: {code}"
    check_edited(item(mb.history(alice.id), mid), original, new_text, version=1)

    # alice deletes (from her other gateway): content "" everywhere, same id and seq.
    marks = {name: d.mark() for name, d in devices.items()}
    deleted = check_deleted(ack_message(a2.call("deleteMessage", {"messageId": mid}, timeout=ACK)), original, version=2)
    for name, device in devices.items():
        got = device.wait_for("messageDeleted", EVENT, since=marks[name], match=by_id(mid)).args[0]
        check_deleted(got, original, version=2)
        assert got["deletedAt"] == deleted["deletedAt"], f"{name}: deletedAt differs from the ack: {got!r}"
    time.sleep(SETTLE)
    for name, device in devices.items():
        assert count_events(device, "messageDeleted", mid, since=marks[name]) == 1, f"{name}: messageDeleted not exactly once"
        assert device.find("messageEdited", since=before_refusals[name]) is None, (
            f"{name} got messageEdited after refused attempts and a delete")

    # No gap: the next message takes the following seq; history keeps the deleted one in place.
    later = ack_message(a1.call("sendMessage", {"receiverId": bob.id, "content": "after the delete",
                                                "clientMsgId": unique("chg")}, timeout=ACK),
                        seq=original["seq"] + 1, conversationId=original["conversationId"])
    check_unchanged(later)
    for history in (ma.history(bob.id), mb.history(alice.id)):
        assert [m["seq"] for m in history] == [1, 2] and [m["id"] for m in history] == [mid, later["id"]], history
        check_deleted(history[0], original, version=2)
        check_unchanged(history[1], content="after the delete")

    # A deleted message cannot be edited; deleting it again succeeds with the same answer.
    code, _ = ack_error(a1.call("editMessage", {"messageId": mid, "content": "resurrected"}, timeout=ACK))
    assert code == "message_deleted", f"editing a deleted message: {code}"
    again = check_deleted(ack_message(a1.call("deleteMessage", {"messageId": mid}, timeout=ACK)), original, version=2)
    same_answer(again, deleted)

    # No trace of the text in the row (neither the first draft nor the edit).
    assert psql_rows(settings, f"SELECT id, content = '' FROM messages WHERE id = {int(mid)}") == [[str(mid), "t"]], (
        "the deleted message's row should remain with content ''")
    leftovers = psql_rows(settings, "SELECT count(*) FROM messages WHERE content LIKE "
                                    f"'%{marker}%' OR content = '{new_text}'")
    assert leftovers == [["0"]], "the deleted message's text is still stored"
    for session in devices.values():
        assert session.connected and session.find("error") is None, session.find("error")


# --- the REST twins ----------------------------------------------------------------------------


def test_rest_patch_and_delete_with_their_status_codes(settings, cluster, sio_session):
    """PATCH / DELETE /api/messages/:id: 200 with the message (and the live events), 403
    not_message_sender for the receiver, 404 message_not_found for a stranger and for an id that
    does not exist, 422 validation_failed for an empty, missing or too long content, 409
    message_deleted for editing a deleted message; the same content again changes nothing;
    deleting twice answers the same."""
    gw1, gw2 = cluster.gw1, cluster.gw2
    api1, api2 = Api(gw1.url), Api(gw2.url)
    alice, bob, carol = create_user(api1), create_user(api1), create_user(api1)
    sb = connect(sio_session, gw2, bob)
    subscribed(settings, bob, 1)
    original = Messages(gw1.url, alice).send_ok(bob.id, "typo heer", unique("rest"))
    check_unchanged(original)
    mid = original["id"]
    sb.wait_for("receiveMessage", EVENT, match=by_id(mid))

    # The sender edits (through the other gateway): 200 with the edited message, bob hears it.
    mark = sb.mark()
    resp = patch(api2, mid, {"content": "typo here"}, alice.token)
    assert resp.status_code == 200, f"PATCH by the sender: {resp.status_code} {resp.text}"
    edited = check_edited(resp.json(), original, "typo here", version=1)
    got = sb.wait_for("messageEdited", EVENT, since=mark, match=by_id(mid)).args[0]
    check_edited(got, original, "typo here", version=1)

    # The same content again: 200, nothing changes (no new version, same editedAt).
    resp = patch(api1, mid, {"content": "typo here"}, alice.token)
    assert resp.status_code == 200, f"PATCH with the current content: {resp.status_code} {resp.text}"
    same = check_edited(resp.json(), original, "typo here", version=1)
    assert same["editedAt"] == edited["editedAt"], f"an edit to the same content changes nothing: {same!r}"

    # Refusals, each with its status and code; none changes the message.
    expect_error(patch(api1, mid, {"content": "bob was here"}, bob.token), 403, "not_message_sender")
    expect_error(delete(api2, mid, bob.token), 403, "not_message_sender")
    expect_error(patch(api1, mid, {"content": "carol was here"}, carol.token), 404, "message_not_found")
    expect_error(delete(api1, mid, carol.token), 404, "message_not_found")
    expect_error(patch(api1, NOT_FOUND_ID, {"content": "nobody"}, alice.token), 404, "message_not_found")
    expect_error(delete(api1, NOT_FOUND_ID, alice.token), 404, "message_not_found")
    for body in ({"content": ""}, {}, {"content": "x" * (MAX_CONTENT + 1)}):
        resp = patch(api1, mid, body, alice.token)
        shown = {k: (v[:20] + "..." if isinstance(v, str) and len(v) > 20 else v) for k, v in body.items()}
        assert resp.status_code == 422, f"PATCH {shown}: expected 422 validation_failed, got {resp.status_code} {resp.text}"
        assert resp.json()["error"]["code"] == "validation_failed", resp.text
    for bad in ("abc", "0"):
        for resp in (patch(api1, bad, {"content": "x"}, alice.token), delete(api1, bad, alice.token)):
            assert resp.status_code in (400, 422), f"{resp.request.method} /api/messages/{bad}: {resp.status_code} {resp.text}"
            assert resp.json()["error"]["code"] == "validation_failed", resp.text
    assert patch(api1, mid, {"content": "no token"}, None).status_code == 401
    assert delete(api1, mid, None).status_code == 401
    shown = item(Messages(gw2.url, bob).history(alice.id), mid)
    check_edited(shown, original, "typo here", version=1)

    # The sender deletes: 200, bob hears it; editing now is 409; deleting again answers the same.
    mark = sb.mark()
    resp = delete(api1, mid, alice.token)
    assert resp.status_code == 200, f"DELETE by the sender: {resp.status_code} {resp.text}"
    deleted = check_deleted(resp.json(), original, version=2)
    check_deleted(sb.wait_for("messageDeleted", EVENT, since=mark, match=by_id(mid)).args[0], original, version=2)
    expect_error(patch(api2, mid, {"content": "back again"}, alice.token), 409, "message_deleted")
    resp = delete(api2, mid, alice.token)
    assert resp.status_code == 200, f"DELETE of a deleted message is idempotent: {resp.status_code} {resp.text}"
    same_answer(check_deleted(resp.json(), original, version=2), deleted)
    check_deleted(item(Messages(gw1.url, alice).history(bob.id), mid), original, version=2)
    assert sb.connected


# --- rooms -------------------------------------------------------------------------------------


def test_room_sender_edits_admin_deletes_members_hear(settings, cluster, sio_session):
    """A private room (alice admin; bob and carol members, over both gateways; dave outside): bob
    edits his message and every member's devices hear it; neither the admin nor another member
    may edit it; carol (neither sender nor admin) may not delete it; alice as admin deletes it and
    every member's devices hear messageDeleted; then bob cannot edit it; dave, not a member, gets
    message_not_found and hears nothing."""
    gw1, gw2 = cluster.gw1, cluster.gw2
    api1, api2 = Api(gw1.url), Api(gw2.url)
    alice, bob, carol, dave = (create_user(api1) for _ in range(4))
    resp = api1.post("/api/rooms", {"name": unique("changes"), "isPrivate": True}, token=alice.token)
    assert resp.status_code == 201, resp.text
    rid = resp.json()["id"]
    for user in (bob, carol):
        resp = api1.post(f"/api/rooms/{rid}/members", {"userId": user.id}, token=alice.token)
        assert resp.status_code == 200, resp.text
    devices = {
        "alice": connect(sio_session, gw1, alice),
        "bob1": connect(sio_session, gw1, bob),
        "bob2": connect(sio_session, gw2, bob),
        "carol": connect(sio_session, gw2, carol),
        "dave": connect(sio_session, gw1, dave),
    }
    subscribed(settings, bob, 2)
    for user in (alice, carol, dave):
        subscribed(settings, user, 1)
    members = ("alice", "bob1", "bob2", "carol")
    start = {name: d.mark() for name, d in devices.items()}

    sent = ack_message(devices["bob1"].call("sendMessage", {"roomId": rid, "content": "draft minutes",
                                                            "clientMsgId": unique("room")}, timeout=ACK),
                       roomId=rid, senderId=bob.id, seq=1)
    check_unchanged(sent)
    mid = sent["id"]
    for name in ("alice", "carol"):
        devices[name].wait_for("receiveMessage", EVENT, since=start[name], match=by_id(mid))

    # The sender edits (from his other gateway): every member's devices hear it once.
    marks = {name: d.mark() for name, d in devices.items()}
    edited = check_edited(ack_message(devices["bob2"].call("editMessage", {"messageId": mid, "content": "final minutes"},
                                                           timeout=ACK)), sent, "final minutes", version=1)
    assert edited["roomId"] == rid, edited
    for name in members:
        got = devices[name].wait_for("messageEdited", EVENT, since=marks[name], match=by_id(mid)).args[0]
        check_edited(got, sent, "final minutes", version=1)

    # Editing is the sender's alone, admin or not; deleting is the sender's or an admin's.
    code, _ = ack_error(devices["alice"].call("editMessage", {"messageId": mid, "content": "admin's words"}, timeout=ACK))
    assert code == "not_message_sender", f"an admin editing a member's message: {code}"
    code, _ = ack_error(devices["carol"].call("editMessage", {"messageId": mid, "content": "carol's words"}, timeout=ACK))
    assert code == "not_message_sender", f"a member editing another member's message: {code}"
    code, _ = ack_error(devices["carol"].call("deleteMessage", {"messageId": mid}, timeout=ACK))
    assert code == "not_message_sender", f"a member (not admin) deleting another member's message: {code}"
    history = api2.get(f"/api/rooms/{rid}/messages", token=carol.token)
    assert history.status_code == 200, history.text
    check_edited(item(history.json(), mid), sent, "final minutes", version=1)

    # The admin deletes bob's message: every member's devices hear it once.
    marks = {name: d.mark() for name, d in devices.items()}
    deleted = check_deleted(ack_message(devices["alice"].call("deleteMessage", {"messageId": mid}, timeout=ACK)),
                            sent, version=2)
    assert deleted["roomId"] == rid, deleted
    for name in members:
        got = devices[name].wait_for("messageDeleted", EVENT, since=marks[name], match=by_id(mid)).args[0]
        check_deleted(got, sent, version=2)
    time.sleep(SETTLE)
    for name in members:
        assert count_events(devices[name], "messageEdited", mid, since=start[name]) == 1, f"{name}: messageEdited not once"
        assert count_events(devices[name], "messageDeleted", mid, since=start[name]) == 1, f"{name}: messageDeleted not once"
    code, _ = ack_error(devices["bob1"].call("editMessage", {"messageId": mid, "content": "undo"}, timeout=ACK))
    assert code == "message_deleted", f"the sender editing a message an admin deleted: {code}"
    history = api2.get(f"/api/rooms/{rid}/messages", token=carol.token)
    assert history.status_code == 200, history.text
    check_deleted(item(history.json(), mid), sent, version=2)

    # dave is not a member: the message does not exist for him, and he heard nothing of it.
    code, _ = ack_error(devices["dave"].call("editMessage", {"messageId": mid, "content": "hi"}, timeout=ACK))
    assert code == "message_not_found", f"a non-member editing a room message: {code}"
    code, _ = ack_error(devices["dave"].call("deleteMessage", {"messageId": mid}, timeout=ACK))
    assert code == "message_not_found", f"a non-member deleting a room message: {code}"
    expect_error(delete(api1, mid, dave.token), 404, "message_not_found")
    for name in ("messageEdited", "messageDeleted", "receiveMessage"):
        assert devices["dave"].find(name, since=start["dave"]) is None, f"dave (not a member) got {name}"
    for session in devices.values():
        assert session.connected


# --- offline devices catch up through sync -------------------------------------------------------


def test_sync_carries_the_changes_an_offline_device_missed(settings, cluster, sio_session):
    """bob's device holds messages 1..3 and the conversation's version v; while it is offline
    alice edits message 2, deletes message 3 and sends message 4. Reconnected, a sync with
    {seq: 3, version: v} answers message 4 in `messages` and messages 2 (edited) and 3 (deleted)
    in `changes`, oldest change first, with version v + 2; REST ?since=<cid>:3:<v> says the same;
    a cursor without a version counts as version 0; with the new version nothing is changed."""
    gw1, gw2 = cluster.gw1, cluster.gw2
    alice, bob = create_user(Api(gw1.url)), create_user(Api(gw1.url))
    sa = connect(sio_session, gw1, alice)
    sb = connect(sio_session, gw1, bob)
    subscribed(settings, bob, 1)
    sent = [ack_message(sa.call("sendMessage", {"receiverId": bob.id, "content": f"note {n}",
                                                "clientMsgId": unique("sync")}, timeout=ACK),
                        senderId=alice.id, receiverId=bob.id, seq=n)
            for n in (1, 2, 3)]
    m1, m2, m3 = sent
    cid = m1["conversationId"]
    for m in sent:
        sb.wait_for("receiveMessage", EVENT, match=by_id(m["id"]))

    # While bob is online alice edits message 1; his first sync learns the version (1).
    mark = sb.mark()
    check_edited(ack_message(sa.call("editMessage", {"messageId": m1["id"], "content": "note 1, fixed"}, timeout=ACK)),
                 m1, "note 1, fixed", version=1)
    sb.wait_for("messageEdited", EVENT, since=mark, match=by_id(m1["id"]))
    first = entry(check_sync_body(sb.call("sync", {"since": {str(cid): {"seq": 3, "version": 0}}}, timeout=ACK)), cid)
    assert first["version"] == 1, f"one edit so far: {first!r}"
    assert first["messages"] == [] and first["lastSeq"] == 3, first
    assert [c["id"] for c in first["changes"]] == [m1["id"]], first
    check_edited(first["changes"][0], m1, "note 1, fixed", version=1)
    v = first["version"]
    sb.close()
    poll(lambda: numsub(settings, user_channel(bob.id)) == 0, SUBSCRIBE, interval=0.05, what="bob offline")

    # bob is away: alice edits message 2 (socket), deletes message 3 (REST), sends message 4.
    check_edited(ack_message(sa.call("editMessage", {"messageId": m2["id"], "content": "note 2, fixed"}, timeout=ACK)),
                 m2, "note 2, fixed", version=v + 1)
    resp = delete(Api(gw2.url), m3["id"], alice.token)
    assert resp.status_code == 200, resp.text
    check_deleted(resp.json(), m3, version=v + 2)
    m4 = ack_message(sa.call("sendMessage", {"receiverId": bob.id, "content": "note 4",
                                             "clientMsgId": unique("sync")}, timeout=ACK), seq=4)

    def check_catch_up(conv: dict, what: str) -> None:
        assert conv["version"] == v + 2, f"{what}: version should be {v + 2}: {conv!r}"
        assert [m["id"] for m in conv["messages"]] == [m4["id"]], f"{what}: messages after seq 3: {conv!r}"
        assert conv["lastSeq"] == 4, f"{what}: {conv!r}"
        assert [c["id"] for c in conv["changes"]] == [m2["id"], m3["id"]], (
            f"{what}: changes should be messages 2 then 3 (oldest change first): {conv['changes']!r}")
        check_edited(conv["changes"][0], m2, "note 2, fixed", version=v + 1)
        check_deleted(conv["changes"][1], m3, version=v + 2)

    # bob comes back on the other gateway and syncs with what he holds.
    sb2 = connect(sio_session, gw2, bob)
    body = check_sync_body(sb2.call("sync", {"since": {str(cid): {"seq": 3, "version": v}}}, timeout=ACK))
    check_catch_up(entry(body, cid), "socket sync {seq: 3, version: v}")
    mb = Messages(gw2.url, bob)
    check_catch_up(entry(mb.sync({cid: f"3:{v}"}), cid), f"GET /api/sync?since={cid}:3:{v}")

    # Without a version the cursor counts as version 0: every change so far, oldest first.
    for body, what in ((check_sync_body(sb2.call("sync", {"since": {str(cid): 3}}, timeout=ACK)), "socket {cid: 3}"),
                       (mb.sync({cid: 3}), f"GET /api/sync?since={cid}:3")):
        conv = entry(body, cid)
        assert conv["version"] == v + 2, f"{what}: {conv!r}"
        assert [c["id"] for c in conv["changes"]] == [m1["id"], m2["id"], m3["id"]], f"{what}: {conv['changes']!r}"

    # Holding the new version, nothing is changed any more.
    body = check_sync_body(sb2.call("sync", {"since": {str(cid): {"seq": 3, "version": v + 2}}}, timeout=ACK))
    conv = entry(body, cid)
    assert conv["changes"] == [] and conv["version"] == v + 2, conv
    conv = entry(mb.sync({cid: f"4:{v + 2}"}), cid)
    assert conv["changes"] == [] and conv["messages"] == [] and conv["version"] == v + 2, conv
    assert sb2.connected
