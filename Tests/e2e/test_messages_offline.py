"""An offline recipient catches up (issue 4, acceptance 2): what A sends while B is away comes back
from history (oldest first, pages by before / after / limit), from GET /api/sync and from the
socket `sync` event when B connects, with the right unread counts."""

from __future__ import annotations

from support import Api, Messages, ack_message, check_sync_body, create_user, numsub, poll, unique, user_channel

DELIVERY = 5
ACK = 10
SYNC_PAGE = 200  # most messages per conversation in one sync answer
HISTORY_DEFAULT = 50
HISTORY_MAX = 200


def seqs(items) -> list[int]:
    return [m["seq"] for m in items]


def only_conversation(body: dict, conversation_id: int) -> dict:
    found = [c for c in body["conversations"] if c["conversationId"] == conversation_id]
    assert len(found) == 1, f"sync should list conversation {conversation_id} once: {body!r}"
    return found[0]


def test_offline_recipient_gets_history_and_sync(settings, cluster, sio_session):
    gw1, gw2 = cluster.gw1, cluster.gw2
    a, b = create_user(Api(gw1.url)), create_user(Api(gw1.url))
    sa = sio_session(gw1.url).connect(token=a.token)
    sent = [ack_message(sa.call("sendMessage", {"receiverId": b.id, "content": f"while away {n}",
                                                "clientMsgId": unique("off")}, timeout=ACK),
                        senderId=a.id, receiverId=b.id, seq=n)
            for n in range(1, 6)]
    conv = sent[0]["conversationId"]
    assert {m["conversationId"] for m in sent} == {conv}, "one conversation per pair"
    ids = [m["id"] for m in sent]

    mb = Messages(gw2.url, b)
    assert mb.unread() == 5
    history = mb.history(a.id)
    assert [m["id"] for m in history] == ids and seqs(history) == [1, 2, 3, 4, 5], "history: oldest first"
    assert all(m["isRead"] is False for m in history)
    convs = mb.conversations()
    assert len(convs) == 1 and convs[0]["unreadCount"] == 5 and convs[0]["lastMessage"]["id"] == ids[-1], convs

    body = mb.sync()
    c = only_conversation(body, conv)
    assert [m["id"] for m in c["messages"]] == ids, "sync without since returns everything"
    assert c["lastSeq"] == 5 and c["lastReadSeq"] == 0 and c["unreadCount"] == 5 and c["hasMore"] is False, c
    assert body["totalUnread"] == 5, body
    c = only_conversation(mb.sync({conv: 2}), conv)
    assert seqs(c["messages"]) == [3, 4, 5] and c["unreadCount"] == 5 and c["hasMore"] is False, c
    c = only_conversation(mb.sync({conv: 5}), conv)
    assert c["messages"] == [] and c["lastSeq"] == 5 and c["hasMore"] is False, c

    # B connects (on the other gateway) and syncs over the socket.
    sb = sio_session(gw2.url).connect(token=b.token)
    body = check_sync_body(sb.call("sync", {"since": {str(conv): 3}}, timeout=ACK))
    c = only_conversation(body, conv)
    assert seqs(c["messages"]) == [4, 5] and c["unreadCount"] == 5 and body["totalUnread"] == 5, body
    body = check_sync_body(sb.call("sync", {"since": {}}, timeout=ACK))
    assert [m["id"] for m in only_conversation(body, conv)["messages"]] == ids, body

    # Live again: the next message arrives with the new unread count.
    poll(lambda: numsub(settings, user_channel(b.id)) == 1, 3, interval=0.05, what="B subscribed")
    m6 = ack_message(sa.call("sendMessage", {"receiverId": b.id, "content": "back?"}, timeout=ACK), seq=6)
    got = sb.wait_for("receiveMessage", DELIVERY, match=lambda m: m.get("id") == m6["id"]).args[0]
    assert got.get("unreadCount") == 6 and got.get("totalUnread") == 6, got

    # Reading message 3 leaves 3 unread, everywhere.
    ack = sb.call("messageRead", {"messageId": ids[2]}, timeout=ACK)
    assert isinstance(ack, dict) and ack.get("lastReadSeq") == 3, ack
    assert mb.unread() == 3
    body = mb.sync({conv: 6})
    c = only_conversation(body, conv)
    assert c["lastReadSeq"] == 3 and c["unreadCount"] == 3 and body["totalUnread"] == 3, body
    assert [m["isRead"] for m in mb.history(a.id)] == [True, True, True, False, False, False]


def test_history_pages_and_sync_pages(cluster):
    total = SYNC_PAGE + 5
    a, b = create_user(Api(cluster.gw1.url)), create_user(Api(cluster.gw1.url))
    ma, mb = Messages(cluster.gw1.url, a), Messages(cluster.gw2.url, b)
    sent = [ma.send_ok(b.id, f"page {n}", f"pg-{n}") for n in range(1, total + 1)]
    assert seqs(sent) == list(range(1, total + 1))
    conv = sent[0]["conversationId"]
    by_seq = {m["seq"]: m["id"] for m in sent}

    def check_page(items, want_seqs, what):
        assert seqs(items) == want_seqs, f"{what}: expected seqs {want_seqs[:5]}..{want_seqs[-5:]}, got {seqs(items)}"
        assert [m["id"] for m in items] == [by_seq[s] for s in want_seqs], what

    first = mb.history(a.id)
    assert len(first) == HISTORY_DEFAULT, f"default page size {HISTORY_DEFAULT}, got {len(first)}"
    assert seqs(first) == list(range(first[0]["seq"], first[0]["seq"] + HISTORY_DEFAULT)), "a contiguous page"
    check_page(mb.history(a.id, before=101, limit=10), list(range(91, 101)), "before=101&limit=10")
    check_page(mb.history(a.id, before=3), [1, 2], "before=3")
    check_page(mb.history(a.id, before=1), [], "before=1")
    check_page(mb.history(a.id, after=10, limit=3), [11, 12, 13], "after=10&limit=3")
    check_page(mb.history(a.id, after=total - 5), list(range(total - 4, total + 1)), "after=total-5")
    check_page(mb.history(a.id, after=total), [], "after=last")
    assert len(mb.history(a.id, limit=HISTORY_MAX)) == HISTORY_MAX

    # Walking back with before= and forward with after= from the default page covers everything once.
    seen = list(first)
    while True:
        page = mb.history(a.id, before=seen[0]["seq"], limit=37)
        if not page:
            break
        seen = page + seen
    while True:
        page = mb.history(a.id, after=seen[-1]["seq"], limit=41)
        if not page:
            break
        seen = seen + page
    check_page(seen, list(range(1, total + 1)), "all pages together")

    resp = mb.history_response(a.id, limit=HISTORY_MAX + 1)
    if resp.status_code == 200:
        assert len(resp.json()) <= HISTORY_MAX, "limit is capped at 200"
    else:
        assert resp.status_code in (400, 422) and resp.json()["error"]["code"] == "validation_failed", resp.text
    for bad in ({"limit": 0}, {"limit": -1}, {"limit": "x"}, {"before": "x"}, {"after": "-3"}):
        resp = mb.history_response(a.id, **bad)
        assert resp.status_code in (400, 422), f"history {bad}: {resp.status_code} {resp.text}"
        assert resp.json()["error"]["code"] == "validation_failed", resp.text

    # Sync pages by SYNC_PAGE messages per conversation, oldest first, with hasMore.
    c = only_conversation(mb.sync(), conv)
    check_page(c["messages"], list(range(1, SYNC_PAGE + 1)), "first sync page")
    assert c["hasMore"] is True and c["unreadCount"] == total and c["lastSeq"] == total, c
    c = only_conversation(mb.sync({conv: SYNC_PAGE}), conv)
    check_page(c["messages"], list(range(SYNC_PAGE + 1, total + 1)), "second sync page")
    assert c["hasMore"] is False, c
    all_synced = mb.sync_all()[conv]["messages"]
    check_page(all_synced, list(range(1, total + 1)), "sync_all")


def test_sync_lists_every_conversation_with_its_unread_count(cluster):
    gw1, gw2 = cluster.gw1, cluster.gw2
    b = create_user(Api(gw1.url))
    senders = [create_user(Api(gw1.url)) for _ in range(3)]
    convs = {}
    for n, sender in enumerate(senders, start=1):
        ms = Messages((gw1, gw2)[n % 2].url, sender)
        for k in range(n):
            convs[sender.id] = ms.send_ok(b.id, f"from {n} #{k}")["conversationId"]
    other = create_user(Api(gw1.url))
    own = Messages(gw2.url, b).send_ok(other.id, "B writes first")  # B's own: nothing unread there

    mb = Messages(gw2.url, b)
    body = mb.sync()
    assert body["totalUnread"] == 6, body
    unread = {c["conversationId"]: c["unreadCount"] for c in body["conversations"]}
    want = {convs[s.id]: n for n, s in enumerate(senders, start=1)}
    want[own["conversationId"]] = 0
    assert unread == want, f"per-conversation unread counts: {unread} != {want}"
    assert mb.unread() == 6
    listed = {c["partner"]["id"]: c["unreadCount"] for c in mb.conversations()}
    assert listed == {**{s.id: n for n, s in enumerate(senders, start=1)}, other.id: 0}, listed
