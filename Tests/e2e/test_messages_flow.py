"""Messages end to end across two gateways and two workers (issue 4, acceptance 1): A on gateway 1
sends to B on gateway 2; every device of both gets its event; read receipts both ways; REST
history, conversations and unread counts right at every step; typing relayed through Redis and
stopped on its own."""

from __future__ import annotations

import time

from support import (
    connect,
    subscribed,
    MESSAGE_KEYS,
    Api,
    Messages,
    ack_error,
    ack_message,
    check_message,
    check_person,
    create_user,
    numsub,
    poll,
    redis_client,
    shard_heads,
    unique,
    user_channel,
)

DELIVERY = 5  # seconds for an event to reach a socket (worker round trip included)
ACK = 10  # seconds for a sendMessage ack
SUBSCRIBE = 3
NOT_FOUND_ID = 9_000_000_000_000
TYPING_STOP_AFTER = 5.0  # the gateway's automatic stopTyping delay


def same_message(got: dict, want: dict, **changes) -> None:
    """got carries the same message as want (all MESSAGE_KEYS), except for the given changes."""
    expected = {k: want[k] for k in MESSAGE_KEYS}
    expected.update(changes)
    actual = {k: got.get(k) for k in MESSAGE_KEYS}
    assert actual == expected, f"message differs:\n got  {actual!r}\n want {expected!r}"


def by_id(message_id):
    return lambda m, *rest: isinstance(m, dict) and m.get("id") == message_id


def check_conversation(conv: dict | None, partner, last: dict, unread: int, is_read: bool) -> None:
    """One item of GET /api/messages/conversations (seed 000 plus conversationId / lastSeq)."""
    assert conv is not None, f"no conversation with {partner.username}"
    p = conv.get("partner")
    check_person(p, partner, "partner")
    assert isinstance(p.get("isOnline"), bool), f"partner.isOnline should be a boolean: {p!r}"
    assert "lastSeen" in p, f"partner.lastSeen missing (seed 000): {p!r}"
    lm = conv.get("lastMessage")
    assert isinstance(lm, dict), f"lastMessage missing: {conv!r}"
    for key in ("id", "content", "createdAt"):
        assert lm.get(key) == last[key], f"lastMessage.{key} should be {last[key]!r}: {lm!r}"
    assert lm.get("isRead") is is_read, f"lastMessage.isRead should be {is_read}: {lm!r}"
    assert conv.get("unreadCount") == unread, f"unreadCount should be {unread}: {conv!r}"
    assert conv.get("conversationId") == last["conversationId"], conv
    assert conv.get("lastSeq") == last["seq"], conv


def check_history(items: list, want: list[dict], read: list[bool], sender, receiver, caller) -> None:
    """Seed 000 history: oldest first, isRead per message, sender / receiver objects (sender and
    receiver are the conversation's two users, in any order; only the caller's carries an email)."""
    assert [m.get("id") for m in items] == [m["id"] for m in want], (
        f"history should list {[m['id'] for m in want]} oldest first: {[m.get('id') for m in items]}")
    users = {sender.id: sender, receiver.id: receiver}
    for item, original, is_read in zip(items, want, read):
        same_message(item, original, isRead=is_read)
        check_person(item.get("sender"), users[original["senderId"]], "sender", caller)
        check_person(item.get("receiver"), users[original["receiverId"]], "receiver", caller)


def count_events(session, name: str, message_id) -> int:
    return sum(1 for e in session.events if e.name == name and by_id(message_id)(*e.args))


# --- send, deliver, read ----------------------------------------------------------------------


def test_send_deliver_read_across_gateways(settings, cluster, sio_session):
    gw1, gw2 = cluster.gw1, cluster.gw2
    a, b = create_user(Api(gw1.url)), create_user(Api(gw2.url))
    a1, a2 = connect(sio_session, gw1, a), connect(sio_session, gw2, a)  # A's two devices
    b1, b2 = connect(sio_session, gw2, b), connect(sio_session, gw1, b)  # B's two devices
    subscribed(settings, a, 2)
    subscribed(settings, b, 2)
    ma, mb = Messages(gw1.url, a), Messages(gw2.url, b)
    assert mb.unread() == 0 and ma.unread() == 0
    assert mb.conversations() == [] and ma.conversations() == [], "fresh users have no conversations"

    # 1. sendMessage with an ack: the ack carries the stored message.
    cmid = unique("flow")
    ack = a1.call("sendMessage", {"receiverId": b.id, "content": "Hello!", "clientMsgId": cmid}, timeout=ACK)
    m1 = ack_message(ack, senderId=a.id, receiverId=b.id, content="Hello!", clientMsgId=cmid, type="text",
                     attachmentUrl=None, isRead=False, seq=1)
    assert m1["updatedAt"] == m1["createdAt"], m1
    for session in (b1, b2):
        got = session.wait_for("receiveMessage", DELIVERY, match=by_id(m1["id"])).args[0]
        same_message(got, m1)
        assert got.get("unreadCount") == 1, f"receiveMessage.unreadCount should be 1: {got!r}"
        assert got.get("totalUnread") == 1, f"receiveMessage.totalUnread should be 1: {got!r}"
    for session in (a1, a2):  # the originating socket and A's device on the other gateway
        same_message(session.wait_for("messageSent", DELIVERY, match=by_id(m1["id"])).args[0], m1)
    assert mb.unread() == 1 and ma.unread() == 0
    check_conversation(mb.conversation_with(a.id), a, m1, unread=1, is_read=False)
    check_conversation(ma.conversation_with(b.id), b, m1, unread=0, is_read=False)

    # 2. sendMessage without an ack: messageSent still reaches every device of A, with a
    #    clientMsgId the gateway generated.
    mark = a1.mark()
    a1.emit("sendMessage", {"receiverId": b.id, "content": "second"})
    m2 = check_message(a1.wait_for("messageSent", DELIVERY, since=mark,
                                   match=lambda m: m.get("content") == "second").args[0],
                       senderId=a.id, receiverId=b.id, isRead=False, seq=2, conversationId=m1["conversationId"])
    assert m2["clientMsgId"] != cmid
    same_message(a2.wait_for("messageSent", DELIVERY, match=by_id(m2["id"])).args[0], m2)
    for session in (b1, b2):
        got = session.wait_for("receiveMessage", DELIVERY, match=by_id(m2["id"])).args[0]
        same_message(got, m2)
        assert got.get("unreadCount") == 2 and got.get("totalUnread") == 2, got
    assert mb.unread() == 2 and ma.unread() == 0
    check_conversation(mb.conversation_with(a.id), a, m2, unread=2, is_read=False)

    # 3. B reads message 1 on one device: A's devices get messageReadByReceiver, B's devices
    #    messageReadConfirmed; message 2 stays unread.
    b1.emit("messageRead", {"messageId": m1["id"]})
    for session in (a1, a2):
        got = session.wait_for("messageReadByReceiver", DELIVERY, match=by_id(m1["id"])).args[0]
        same_message(got, m1, isRead=True)
        assert got.get("readerId") == b.id, f"readerId should be {b.id}: {got!r}"
    for session in (b1, b2):
        same_message(session.wait_for("messageReadConfirmed", DELIVERY, match=by_id(m1["id"])).args[0],
                     m1, isRead=True)
    assert mb.unread() == 1 and ma.unread() == 0
    check_conversation(mb.conversation_with(a.id), a, m2, unread=1, is_read=False)
    check_history(mb.history(a.id), [m1, m2], [True, False], a, b, caller=b)
    check_history(ma.history(b.id), [m1, m2], [True, False], a, b, caller=a)

    # 4. markAllAsRead from B's other device (on gateway 1).
    b2.emit("markAllAsRead", {"senderId": a.id})
    for session in (b1, b2):
        got = session.wait_for("allMessagesRead", DELIVERY).args[0]
        assert got.get("senderId") == a.id and got.get("count") == 1, f"allMessagesRead: {got!r}"
        assert got.get("conversationId") == m1["conversationId"] and got.get("lastReadSeq") == 2, got
    for session in (a1, a2):
        got = session.wait_for("messagesReadByReceiver", DELIVERY).args[0]
        assert got.get("receiverId") == b.id and got.get("count") == 1, f"messagesReadByReceiver: {got!r}"
        assert got.get("conversationId") == m1["conversationId"] and got.get("lastReadSeq") == 2, got
    assert mb.unread() == 0 and ma.unread() == 0
    check_conversation(mb.conversation_with(a.id), a, m2, unread=0, is_read=True)
    check_conversation(ma.conversation_with(b.id), b, m2, unread=0, is_read=True)
    check_history(mb.history(a.id), [m1, m2], [True, True], a, b, caller=b)

    # Each device got each event once (one publication per gateway, one frame per socket), and
    # nobody got the other side's events.
    time.sleep(0.3)
    for m in (m1, m2):
        for session in (a1, a2):
            assert count_events(session, "messageSent", m["id"]) == 1, f"messageSent {m['id']} not exactly once"
            assert count_events(session, "receiveMessage", m["id"]) == 0, "the sender got receiveMessage"
        for session in (b1, b2):
            assert count_events(session, "receiveMessage", m["id"]) == 1, f"receiveMessage {m['id']} not once"
            assert count_events(session, "messageSent", m["id"]) == 0, "the receiver got messageSent"
    for session in (a1, a2, b1, b2):
        assert session.find("error") is None, f"unexpected error event: {session.find('error')!r}"
        assert session.connected


def test_rest_send_is_delivered_live(settings, cluster, sio_session):
    """POST /api/messages: 201 with the stored message, and the same live events as the socket."""
    a, b = create_user(Api(cluster.gw1.url)), create_user(Api(cluster.gw1.url))
    a2 = connect(sio_session, cluster.gw2, a)
    b2 = connect(sio_session, cluster.gw2, b)
    subscribed(settings, a, 1)
    subscribed(settings, b, 1)
    m = Messages(cluster.gw1.url, a).send_ok(b.id, "over REST", unique("rest"))
    assert m["isRead"] is False and m["seq"] == 1
    same_message(a2.wait_for("messageSent", DELIVERY, match=by_id(m["id"])).args[0], m)
    got = b2.wait_for("receiveMessage", DELIVERY, match=by_id(m["id"])).args[0]
    same_message(got, m)
    assert got.get("unreadCount") == 1


def test_read_pointer_acks_and_permissions(cluster, sio_session):
    """messageRead with an ack answers {count, lastReadSeq}; reading N marks everything up to N;
    pointers never move backwards; only the receiver may mark; own messages count as read."""
    gw1, gw2 = cluster.gw1, cluster.gw2
    a, b, c = (create_user(Api(gw1.url)) for _ in range(3))
    ma, mb = Messages(gw1.url, a), Messages(gw2.url, b)
    m1, m2, m3 = (ma.send_ok(b.id, f"n{n}") for n in (1, 2, 3))
    assert [m["seq"] for m in (m1, m2, m3)] == [1, 2, 3]
    assert mb.unread() == 3 and ma.unread() == 0
    sa, sb, sc = connect(sio_session, gw1, a), connect(sio_session, gw2, b), connect(sio_session, gw1, c)

    ack = sb.call("messageRead", {"messageId": m2["id"]}, timeout=ACK)
    assert isinstance(ack, dict) and ack.get("lastReadSeq") == 2 and ack.get("count") == 2, (
        f"reading message 2 of 3 marks 2 (count 2, lastReadSeq 2): {ack!r}")
    assert mb.unread() == 1
    check_history(mb.history(a.id), [m1, m2, m3], [True, True, False], a, b, caller=b)

    ack = sb.call("messageRead", {"messageId": m1["id"]}, timeout=ACK)
    assert isinstance(ack, dict) and ack.get("lastReadSeq") == 2 and ack.get("count") == 0, (
        f"reading an older message must not move the pointer back: {ack!r}")
    assert mb.unread() == 1
    check_history(mb.history(a.id), [m1, m2, m3], [True, True, False], a, b, caller=b)

    code, _ = ack_error(sa.call("messageRead", {"messageId": m3["id"]}, timeout=ACK))
    assert code == "not_a_recipient", f"the sender marking its own message: {code}"
    code, _ = ack_error(sc.call("messageRead", {"messageId": m3["id"]}, timeout=ACK))
    assert code in ("not_a_recipient", "message_not_found"), f"an outsider marking a message: {code}"
    code, _ = ack_error(sb.call("messageRead", {"messageId": NOT_FOUND_ID}, timeout=ACK))
    assert code == "message_not_found", code
    assert mb.unread() == 1, "refused marks must not change anything"

    ack = sb.call("messageRead", {"messageId": m3["id"]}, timeout=ACK)
    assert ack.get("lastReadSeq") == 3 and ack.get("count") == 1, ack
    assert mb.unread() == 0

    # B replies: A has one unread; A answers: A's own message moves A's pointer past it.
    reply = ack_message(sb.call("sendMessage", {"receiverId": a.id, "content": "reply"}, timeout=ACK), seq=4)
    assert ma.unread() == 1 and mb.unread() == 0
    check_conversation(ma.conversation_with(b.id), b, reply, unread=1, is_read=False)
    answer = ack_message(sa.call("sendMessage", {"receiverId": b.id, "content": "answer"}, timeout=ACK), seq=5)
    assert ma.unread() == 0, "sending into a conversation marks everything before it read for the sender"
    assert mb.unread() == 1
    check_conversation(mb.conversation_with(a.id), a, answer, unread=1, is_read=False)
    for session in (sa, sb, sc):
        assert session.connected


def test_rest_mark_as_read_by_ids_and_by_sender(settings, cluster, sio_session):
    gw1, gw2 = cluster.gw1, cluster.gw2
    a, b = create_user(Api(gw1.url)), create_user(Api(gw1.url))
    sa = connect(sio_session, gw1, a)
    subscribed(settings, a, 1)
    ma, mb = Messages(gw1.url, a), Messages(gw2.url, b)
    m1, m2, m3 = (ma.send_ok(b.id, f"r{n}") for n in (1, 2, 3))
    assert mb.unread() == 3
    check_conversation(mb.conversation_with(a.id), a, m3, unread=3, is_read=False)

    mark = sa.mark()
    answer = mb.mark_as_read_ok({"messageIds": [m1["id"], m2["id"]]})
    assert answer.get("count", 2) == 2, answer
    assert mb.unread() == 1
    check_history(mb.history(a.id), [m1, m2, m3], [True, True, False], a, b, caller=b)
    got = sa.wait_for("messagesReadByReceiver", DELIVERY, since=mark).args[0]
    assert got.get("receiverId") == b.id and got.get("conversationId") == m1["conversationId"], got
    assert got.get("lastReadSeq") == 2, got

    mark = sa.mark()
    answer = mb.mark_as_read_ok({"senderId": a.id})
    assert answer.get("count", 1) == 1, answer
    assert mb.unread() == 0
    check_history(ma.history(b.id), [m1, m2, m3], [True, True, True], a, b, caller=a)
    got = sa.wait_for("messagesReadByReceiver", DELIVERY, since=mark).args[0]
    assert got.get("receiverId") == b.id and got.get("lastReadSeq") == 3, got
    check_conversation(ma.conversation_with(b.id), b, m3, unread=0, is_read=True)

    answer = mb.mark_as_read_ok({"senderId": a.id})  # nothing left: still the seed's answer
    assert answer.get("count", 0) == 0, answer
    assert mb.unread() == 0

    resp = mb.mark_as_read({})
    assert resp.status_code in (400, 422), f"mark-as-read without messageIds or senderId: {resp.status_code} {resp.text}"
    assert resp.json()["error"]["code"] == "validation_failed", resp.text


# --- typing ------------------------------------------------------------------------------------


def stream_head(settings) -> dict[str, str]:
    r = redis_client(settings)
    try:
        return shard_heads(r)
    finally:
        r.close()


def typing_setup(settings, cluster, sio_session):
    a, b = create_user(Api(cluster.gw1.url)), create_user(Api(cluster.gw1.url))
    sa = connect(sio_session, cluster.gw1, a)
    b1, b2 = connect(sio_session, cluster.gw2, b), connect(sio_session, cluster.gw1, b)
    subscribed(settings, a, 1)
    subscribed(settings, b, 2)
    return a, b, sa, b1, b2


def from_user(user):
    return lambda data, *rest: isinstance(data, dict) and data.get("senderId") == user.id


def test_typing_reaches_the_other_gateway_and_stops_on_its_own(settings, cluster, sio_session):
    a, b, sa, b1, b2 = typing_setup(settings, cluster, sio_session)
    head = stream_head(settings)
    sa.emit("typing", {"receiverId": b.id})
    started = {}
    for session in (b1, b2):
        ev = session.wait_for("typing", DELIVERY, match=from_user(a))
        assert ev.args[0].get("receiverId") == b.id, f"typing should carry {{senderId, receiverId}}: {ev.args!r}"
        started[session] = ev.at
    for session in (b1, b2):
        ev = session.wait_for("stopTyping", TYPING_STOP_AFTER + 3, match=from_user(a))
        after = ev.at - started[session]
        assert TYPING_STOP_AFTER - 1 <= after <= TYPING_STOP_AFTER + 2, (
            f"the automatic stopTyping came {after:.2f}s after typing, expected about {TYPING_STOP_AFTER}s")
        assert ev.args[0].get("receiverId") == b.id, ev.args
    assert sa.find("typing") is None and sa.find("stopTyping") is None, "the typist's own sockets got typing"
    assert stream_head(settings) == head, "typing must not go through the command stream"


def test_repeated_typing_postpones_the_automatic_stop(settings, cluster, sio_session):
    a, b, sa, b1, _b2 = typing_setup(settings, cluster, sio_session)
    sa.emit("typing", {"receiverId": b.id})
    b1.wait_for("typing", DELIVERY, match=from_user(a))
    time.sleep(3)
    mark = b1.mark()
    sa.emit("typing", {"receiverId": b.id})
    again = b1.wait_for("typing", DELIVERY, since=mark, match=from_user(a))
    stop = b1.wait_for("stopTyping", TYPING_STOP_AFTER + 3, match=from_user(a))
    assert stop.at - again.at >= TYPING_STOP_AFTER - 1, (
        f"stopTyping came {stop.at - again.at:.2f}s after the renewed typing; the timer should restart")
    time.sleep(0.5)
    assert sum(1 for e in b1.events if e.name == "stopTyping") == 1, "one stopTyping expected"


def test_explicit_stop_typing_is_relayed_once(settings, cluster, sio_session):
    a, b, sa, b1, _b2 = typing_setup(settings, cluster, sio_session)
    sa.emit("typing", {"receiverId": b.id})
    typing = b1.wait_for("typing", DELIVERY, match=from_user(a))
    sa.emit("stopTyping", {"receiverId": b.id})
    stop = b1.wait_for("stopTyping", DELIVERY, match=from_user(a))
    assert stop.at - typing.at < 2, "an explicit stopTyping is relayed at once"
    time.sleep(TYPING_STOP_AFTER + 1.5)
    count = sum(1 for e in b1.events if e.name == "stopTyping")
    assert count == 1, f"after an explicit stopTyping no automatic one should follow ({count} received)"


def test_typing_stops_when_the_typist_disconnects(settings, cluster, sio_session):
    a, b, sa, b1, _b2 = typing_setup(settings, cluster, sio_session)
    sa.emit("typing", {"receiverId": b.id})
    typing = b1.wait_for("typing", DELIVERY, match=from_user(a))
    sa.client.disconnect()
    stop = b1.wait_for("stopTyping", DELIVERY, match=from_user(a))
    assert stop.at - typing.at < TYPING_STOP_AFTER - 2, (
        f"stopTyping should follow the typist's disconnect at once, came after {stop.at - typing.at:.2f}s")
