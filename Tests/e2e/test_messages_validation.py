"""Validation and idempotency of messages (issue 4, deliverables 5-6): the same clientMsgId twice is
one message and one row; content is 1-4000 Unicode scalars; unknown receivers and self-messages are
refused with codes; malformed socket payloads get an `error` event or an error ack, and the
connection stays up."""

from __future__ import annotations

import json
import threading

import pytest

from support import (
    Api,
    Messages,
    ack_error,
    ack_message,
    check_message,
    create_user,
    error_of,
    psql,
    unique,
)

ACK = 10
DELIVERY = 5
MAX_CONTENT = 4000
NOT_FOUND_ID = 9_000_000_000_000
VALIDATION = (400, 422)  # a validation error's status (422 preferred; 400 for unparsable bodies)


@pytest.fixture
def pair(cluster):
    """Two fresh users, a and b, and their message APIs (a on gateway 1, b on gateway 2)."""
    a, b = create_user(Api(cluster.gw1.url)), create_user(Api(cluster.gw1.url))
    return a, b, Messages(cluster.gw1.url, a), Messages(cluster.gw2.url, b)


def rows_for(settings, sender_id, client_msg_id) -> int:
    assert all(ch.isalnum() or ch in "_.:-" for ch in client_msg_id)
    return int(psql(settings, f"SELECT count(*) FROM messages WHERE sender_id = {int(sender_id)} "
                              f"AND client_msg_id = '{client_msg_id}'").strip())


def expect_validation(resp, field: str | None = None, status=(422,)) -> str:
    assert resp.status_code in status, f"expected {status} validation_failed, got {resp.status_code}: {resp.text}"
    code, message = error_of(resp)
    assert code == "validation_failed", f"code should be validation_failed: {resp.text}"
    if field is not None:
        assert field in message, f"the message should name {field!r}: {message!r}"
    return message


# --- idempotency -------------------------------------------------------------------------------


def test_same_client_msg_id_twice_is_one_message(settings, pair):
    a, b, ma, mb = pair
    cmid = unique("idem")
    first = ma.send(b.id, "once", cmid)
    assert first.status_code == 201, first.text
    again = ma.send(b.id, "once", cmid)
    assert again.status_code == 200, f"a repeated clientMsgId answers 200 with the stored message: {again.status_code} {again.text}"
    m1, m2 = check_message(first.json()), check_message(again.json())
    assert m2 == m1, f"the repeat must return the same stored message:\n{m1!r}\n{m2!r}"
    assert len(mb.history(a.id)) == 1 and rows_for(settings, a.id, cmid) == 1
    assert mb.unread() == 1, "a repeat must not count as a new unread message"

    # The key is (sender, clientMsgId): B may use the same id for its own message.
    other = mb.send(a.id, "mine", cmid)
    assert other.status_code == 201 and other.json()["id"] != m1["id"], other.text
    assert len(mb.history(a.id)) == 2

    # Different content under a stored clientMsgId: never a second row.
    clash = ma.send(b.id, "different", cmid)
    assert clash.status_code != 201, f"a reused clientMsgId must not create a message: {clash.text}"
    assert rows_for(settings, a.id, cmid) == 1 and len(mb.history(a.id)) == 2


def test_client_msg_id_is_shared_by_socket_and_rest(settings, cluster, sio_session, pair):
    a, b, ma, mb = pair
    sa = sio_session(cluster.gw2.url).connect(token=a.token)
    cmid = unique("sock")
    body = {"receiverId": b.id, "content": "via socket", "clientMsgId": cmid}
    m1 = ack_message(sa.call("sendMessage", body, timeout=ACK), clientMsgId=cmid)
    m2 = ack_message(sa.call("sendMessage", body, timeout=ACK), clientMsgId=cmid)
    assert m2["id"] == m1["id"] and m2["seq"] == m1["seq"], (m1, m2)
    rest = ma.send(b.id, "via socket", cmid)
    assert rest.status_code == 200 and rest.json()["id"] == m1["id"], rest.text
    assert rows_for(settings, a.id, cmid) == 1 and [m["id"] for m in mb.history(a.id)] == [m1["id"]]


def test_concurrent_duplicates_store_one_row(settings, cluster, sio_session, pair):
    """The same clientMsgId raced from 6 HTTP requests and 6 socket emits: one row, one answer."""
    a, b, ma, mb = pair
    cmid = unique("race")
    results, lock = [], threading.Lock()

    def post(base_url):
        resp = Messages(base_url, a).send(b.id, "race", cmid)
        with lock:
            results.append((resp.status_code, resp.json()))

    threads = [threading.Thread(target=post, args=((cluster.gw1, cluster.gw2)[n % 2].url,)) for n in range(6)]
    sessions = [sio_session(gw.url).connect(token=a.token) for gw in (cluster.gw1, cluster.gw2)]
    acks = []
    done = threading.Semaphore(0)

    def on_ack(*args):
        with lock:
            acks.append(args[0] if args else None)
        done.release()

    for t in threads:
        t.start()
    for n in range(6):
        sessions[n % 2].client.emit("sendMessage", {"receiverId": b.id, "content": "race", "clientMsgId": cmid},
                                    callback=on_ack)
    for t in threads:
        t.join(timeout=30)
    for _ in range(6):
        assert done.acquire(timeout=ACK), f"not every sendMessage was acknowledged: {acks!r}"
    statuses = sorted(s for s, _ in results)
    # Racing requests may each see "not stored yet" and answer 201; what matters is one message.
    assert set(statuses) <= {200, 201}, f"statuses {statuses}: {results!r}"
    ids = {body["id"] for _, body in results} | {ack_message(ack)["id"] for ack in acks}
    assert len(ids) == 1, f"every answer must name the same message: {ids}"
    assert rows_for(settings, a.id, cmid) == 1 and len(mb.history(a.id)) == 1


# --- content -----------------------------------------------------------------------------------


def test_content_length_bounds_in_unicode_scalars(pair):
    a, b, ma, mb = pair
    expect_validation(ma.send(b.id, ""), "content")
    expect_validation(ma.send(b.id, "x" * (MAX_CONTENT + 1)), "content")
    m = ma.send_ok(b.id, "x" * MAX_CONTENT)
    assert len(m["content"]) == MAX_CONTENT

    emoji = "\U0001F600" * MAX_CONTENT  # 4000 scalars, 16000 UTF-8 bytes, 8000 UTF-16 units
    m = ma.send_ok(b.id, emoji)  # requests escapes it as \ud83d\ude00 surrogate pairs
    raw = ma.api.post("/api/messages", token=a.token, headers={"Content-Type": "application/json"},
                      data=json.dumps({"receiverId": b.id, "content": emoji}, ensure_ascii=False).encode())
    assert raw.status_code == 201, f"4000 emoji as raw UTF-8: {raw.status_code} {raw.text[:300]}"
    assert raw.json()["content"] == emoji
    expect_validation(ma.send(b.id, emoji + "\U0001F600"), "content")

    combining = "e\u0301" * (MAX_CONTENT // 2)  # 4000 scalars, 2000 user-perceived characters
    ma.send_ok(b.id, combining)
    expect_validation(ma.send(b.id, combining + "e\u0301"), "content")

    stored = [m["content"] for m in mb.history(a.id)]
    assert stored == ["x" * MAX_CONTENT, emoji, emoji, combining], "content must be stored unchanged"


def test_field_validation_over_rest(pair):
    a, b, ma, mb = pair
    api = ma.api
    expect_validation(api.post("/api/messages", {"receiverId": b.id}, a.token), "content")
    expect_validation(api.post("/api/messages", {"receiverId": b.id, "content": 5}, a.token), "content")
    expect_validation(api.post("/api/messages", {"content": "x"}, a.token), "receiverId")
    expect_validation(ma.send("abc", "x"), "receiverId")
    expect_validation(ma.send(b.id, "x", type="video"), "type")
    expect_validation(ma.send(b.id, "x", type="image", attachmentUrl="ftp://example.com/a.png"), "attachmentUrl")
    expect_validation(ma.send(b.id, "x", type="image", attachmentUrl="javascript:alert(1)"), "attachmentUrl")
    expect_validation(ma.send(b.id, "x", client_msg_id="has space"), "clientMsgId")
    expect_validation(ma.send(b.id, "x", client_msg_id="x" * 65), "clientMsgId")
    expect_validation(ma.send(b.id, "x", client_msg_id=""), "clientMsgId")
    expect_validation(api.post("/api/messages", {"receiverId": b.id, "content": "x", "clientMsgId": 7}, a.token),
                      "clientMsgId")
    resp = api.post("/api/messages", token=a.token, headers={"Content-Type": "application/json"}, data=b"{not json")
    assert resp.status_code == 400, f"unparsable JSON: {resp.status_code} {resp.text}"
    resp = api.post("/api/messages", [1, 2], a.token)
    assert resp.status_code in VALIDATION, f"a JSON array body: {resp.status_code} {resp.text}"
    resp = api.post("/api/messages", {"receiverId": b.id, "content": "x"})
    assert resp.status_code == 401, f"no token: {resp.status_code} {resp.text}"

    ok = ma.send_ok(b.id, "a picture", type="image", attachmentUrl="https://example.com/a.png")
    assert ok["type"] == "image" and ok["attachmentUrl"] == "https://example.com/a.png", ok
    assert len(mb.history(a.id)) == 1, "no refused request may store anything"


def test_unknown_receiver_and_self_message_over_rest(pair):
    a, b, ma, mb = pair
    resp = ma.send(NOT_FOUND_ID, "hello?")
    assert resp.status_code == 404 and error_of(resp)[0] == "user_not_found", f"{resp.status_code} {resp.text}"
    resp = ma.send(a.id, "note to self")
    assert 400 <= resp.status_code < 500, f"{resp.status_code} {resp.text}"
    assert error_of(resp)[0] == "cannot_message_self", resp.text
    assert ma.conversations() == [], "refused sends must not create conversations"


# --- sockets -----------------------------------------------------------------------------------


def test_socket_errors_for_unknown_receiver_and_self(cluster, sio_session, pair):
    a, b, ma, mb = pair
    s = sio_session(cluster.gw1.url).connect(token=a.token)
    code, _ = ack_error(s.call("sendMessage", {"receiverId": NOT_FOUND_ID, "content": "x"}, timeout=ACK))
    assert code == "user_not_found", code
    code, _ = ack_error(s.call("sendMessage", {"receiverId": a.id, "content": "x"}, timeout=ACK))
    assert code == "cannot_message_self", code
    code, message = ack_error(s.call("sendMessage", {"receiverId": b.id, "content": "x" * (MAX_CONTENT + 1)},
                                     timeout=ACK))
    assert code == "validation_failed" and "content" in message, (code, message)

    for payload, want in (({"receiverId": NOT_FOUND_ID, "content": "x"}, "user_not_found"),
                          ({"receiverId": a.id, "content": "x"}, "cannot_message_self")):
        mark = s.mark()
        s.emit("sendMessage", payload)
        error = s.wait_for("error", ACK, since=mark).args[0]
        assert isinstance(error, dict) and error.get("code") == want, f"{payload!r}: {error!r}"
        assert isinstance(error.get("message"), str) and error["message"], error
    assert s.connected and ma.conversations() == []


MALFORMED = [
    ("sendMessage", None),  # no argument at all
    ("sendMessage", (None,)),  # null
    ("sendMessage", "hello"),
    ("sendMessage", 42),
    ("sendMessage", [1, 2]),
    ("sendMessage", {}),
    ("sendMessage", {"content": "x"}),
    ("sendMessage", {"receiverId": "abc", "content": "x"}),
    ("sendMessage", {"receiverId": "@B", "content": 5}),
    ("sendMessage", {"receiverId": "@B", "content": ""}),
    ("sendMessage", {"receiverId": "@B", "content": "x", "type": "video"}),
    ("sendMessage", {"receiverId": "@B", "content": "x", "clientMsgId": "no spaces allowed"}),
    ("sendMessage", {"receiverId": "@B", "content": "x", "attachmentUrl": 7}),
    ("messageRead", None),
    ("messageRead", {}),
    ("messageRead", {"messageId": "x"}),
    ("messageRead", [1]),
    ("markAllAsRead", {}),
    ("markAllAsRead", {"senderId": []}),
    ("markAllAsRead", "B"),
    ("typing", {}),
    ("typing", "x"),
    ("typing", {"receiverId": {"id": 1}}),
    ("stopTyping", 7),
    ("sync", "x"),
    ("sync", {"since": "abc"}),
]


def resolve(payload, b_id):
    if isinstance(payload, dict):
        return {k: (b_id if v == "@B" else v) for k, v in payload.items()}
    return payload


@pytest.mark.parametrize("with_ack", [False, True], ids=["error-event", "error-ack"])
def test_malformed_socket_payloads_keep_the_connection(cluster, sio_session, pair, with_ack):
    a, b, ma, mb = pair
    s = sio_session(cluster.gw2.url).connect(token=a.token)
    for event, payload in MALFORMED:
        payload = resolve(payload, b.id)
        if with_ack:
            code, message = ack_error(s.call(event, payload, timeout=ACK))
        else:
            mark = s.mark()
            s.emit(event, payload)
            error = s.wait_for("error", ACK, since=mark).args[0]
            assert isinstance(error, dict), f"{event} {payload!r}: error event should be {{code, message}}: {error!r}"
            code, message = error.get("code"), error.get("message")
            assert isinstance(message, str) and message, f"{event} {payload!r}: {error!r}"
        assert code == "validation_failed", f"{event} {payload!r}: code {code!r} ({message})"
        assert s.connected, f"{event} {payload!r} dropped the connection"

    # A burst of garbage, then ordinary traffic on the same connection.
    for _ in range(20):
        for event, payload in MALFORMED[:6]:
            s.emit(event, payload)
    assert s.call("ping", timeout=ACK)["pong"] is True
    assert s.find("disconnect") is None and s.connected
    m = ack_message(s.call("sendMessage", {"receiverId": b.id, "content": "still here"}, timeout=ACK))
    assert [x["id"] for x in mb.history(a.id)] == [m["id"]], "only the valid message was stored"
    for gw in cluster.gateways:
        assert gw.alive()


# --- message types and attachments (issue 14) ---------------------------------------------------


def test_message_types_and_every_attachment_rule(cluster, sio_session, pair):
    """Types text, image, file, emoji and voice; an attachment is required for image, file and
    voice (a caption optional) and refused on text and emoji; an absolute http(s) URL (the cluster
    runs in development mode, where http is allowed; production's https-only rule is unit tested in
    AttachmentRulesTests); at most 2,048 bytes; no user info; a media type fitting the type; a name of
    1-255 bytes; a size from 0 to 1 TiB. Each refusal is 422 validation_failed naming the field,
    over REST and over the socket, and stores nothing; the accepted ones round-trip every field to
    the receiver's history and live event."""
    a, b, ma, mb = pair
    url = "https://cdn.example.com/files/report.pdf"
    refusals = [
        ({"type": "image"}, "attachmentUrl"),
        ({"type": "voice", "content": "no audio"}, "attachmentUrl"),
        ({"type": "text", "content": "x", "attachmentUrl": url}, "attachmentUrl"),
        ({"type": "emoji", "content": "not an emoji"}, "content"),
        ({"type": "emoji", "content": "😀", "mimeType": "image/png"}, "mimeType"),
        ({"type": "file", "attachmentUrl": "ftp://cdn.example.com/a.pdf"}, "attachmentUrl"),
        ({"type": "file", "attachmentUrl": "https://user:secret@cdn.example.com/a.pdf"}, "attachmentUrl"),
        ({"type": "file", "attachmentUrl": "https://cdn.example.com/" + "a" * 2048}, "attachmentUrl"),
        ({"type": "file", "attachmentUrl": "https://"}, "attachmentUrl"),
        ({"type": "image", "attachmentUrl": url, "mimeType": "application/pdf"}, "mimeType"),
        ({"type": "voice", "attachmentUrl": url, "mimeType": "image/png"}, "mimeType"),
        ({"type": "file", "attachmentUrl": url, "mimeType": "pdf"}, "mimeType"),
        ({"type": "file", "attachmentUrl": url, "attachmentName": ""}, "attachmentName"),
        ({"type": "file", "attachmentUrl": url, "attachmentName": "a\nb"}, "attachmentName"),
        ({"type": "file", "attachmentUrl": url, "attachmentName": "n" * 256}, "attachmentName"),
        ({"type": "file", "attachmentUrl": url, "attachmentSize": -1}, "attachmentSize"),
        ({"type": "file", "attachmentUrl": url, "attachmentSize": 2**40 + 1}, "attachmentSize"),
        ({"type": "file", "attachmentUrl": url, "attachmentSize": "12"}, "attachmentSize"),
    ]
    s = sio_session(cluster.gw2.url).connect(token=a.token)
    for index, (fields, field) in enumerate(refusals):
        body = {"receiverId": b.id, "clientMsgId": f"att-{index}", **fields}
        expect_validation(ma.api.post("/api/messages", body, a.token), field)
        code, message = ack_error(s.call("sendMessage", body, timeout=ACK))
        assert code == "validation_failed" and field in message, (fields, code, message)
    assert mb.history(a.id) == [], "no refused message may be stored"

    mark = s.mark()
    sent = ma.api.post("/api/messages", {"receiverId": b.id, "type": "file", "attachmentUrl": url, "attachmentName": "report.pdf",
                                         "attachmentSize": 48213, "mimeType": "application/pdf", "clientMsgId": "att-ok-1"}, a.token)
    assert sent.status_code == 201, sent.text
    stored = sent.json()
    assert (stored["type"], stored["content"], stored["attachmentUrl"], stored["attachmentName"], stored["attachmentSize"],
            stored["mimeType"]) == ("file", "", url, "report.pdf", 48213, "application/pdf"), stored
    image = ack_message(s.call("sendMessage", {"receiverId": b.id, "type": "image", "content": "the view",
                                               "attachmentUrl": "https://cdn.example.com/v.jpg", "mimeType": "image/jpeg",
                                               "clientMsgId": "att-ok-2"}, timeout=ACK))
    assert image["mimeType"] == "image/jpeg" and image["attachmentName"] is None and image["content"] == "the view"
    emoji = ack_message(s.call("sendMessage", {"receiverId": b.id, "type": "emoji", "content": "👍🏽🎉", "clientMsgId": "att-ok-3"},
                               timeout=ACK))
    assert emoji["type"] == "emoji" and emoji["attachmentUrl"] is None
    history = mb.history(a.id)
    assert [(m["type"], m["attachmentName"], m["attachmentSize"], m["mimeType"]) for m in history] == [
        ("file", "report.pdf", 48213, "application/pdf"), ("image", None, None, "image/jpeg"), ("emoji", None, None, None)], history
    s.wait_for("messageSent", DELIVERY, since=mark, match=lambda m: m.get("clientMsgId") == "att-ok-1")
