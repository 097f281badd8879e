"""Message search (issue 14) across two gateways and two workers: `GET /api/messages/search` and the
socket event `searchMessages` (with an ack, or answered by the event `searchMessages` without one)
answer `{messages, hasMore, nextBefore}`, newest first. `substring` (the default) matches a
case-insensitive substring with `%`, `_` and `\\` taken literally; `word` needs every word of q as a
whole word of the content (case-insensitive, no stemming). Only the caller's conversations (direct
or rooms), never deleted messages (an edited one by its new text only); `conversationId` narrows to
one conversation; `before` / `nextBefore` page back; bad input is 422 `validation_failed`.

The database is shared with every other test (and earlier runs): each test searches only for text
that contains its own marker word, so nothing else can match."""

from __future__ import annotations

import uuid

from support import (
    Api,
    Messages,
    ack_error,
    ack_message,
    check_message,
    create_user,
    expect_error,
    psql_rows,
    unique,
)

EVENT = 5  # seconds for an event to reach a socket
ACK = 10  # seconds for an ack
MAX_Q = 200  # longest q, in characters after trimming
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
NOT_FOUND_ID = 9_000_000_000_000
SEARCH = "/api/messages/search"
# What a search result shares with the message as it was sent (or edited).
SAME_KEYS = ("id", "conversationId", "seq", "senderId", "receiverId", "content", "clientMsgId", "createdAt")


# --- helpers -----------------------------------------------------------------------------------


def connect(sio_session, gw, user):
    return sio_session(gw.url).connect(token=user.token)


def marker() -> str:
    """A fresh word of letters and digits only (no `_`), so the text-search parser sees it as one
    word and no other test's content contains it."""
    return "srch" + uuid.uuid4().hex[:16]


def check_page(body, what: str) -> dict:
    """The answer `{messages, hasMore, nextBefore}`: message objects (none deleted), newest first
    (descending id), nextBefore the last id exactly when hasMore."""
    assert isinstance(body, dict), f"{what}: the answer should be an object: {body!r}"
    assert not ("error" in body), f"{what}: the answer carries an error: {body!r}"
    for key in ("messages", "hasMore", "nextBefore"):
        assert key in body, f"{what}: the answer lacks {key}: {body!r}"
    assert isinstance(body["messages"], list), f"{what}: messages should be a list: {body!r}"
    assert isinstance(body["hasMore"], bool), f"{what}: hasMore should be a boolean: {body!r}"
    for m in body["messages"]:
        check_message(m)
        assert m.get("isDeleted") in (None, False) and m.get("deletedAt") is None, f"{what}: a deleted message: {m!r}"
    ids = [m["id"] for m in body["messages"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids), (
        f"{what}: results should be newest first (descending id), each once: {ids}")
    if body["hasMore"]:
        assert ids and body["nextBefore"] == ids[-1], f"{what}: with hasMore, nextBefore is the last id ({ids}): {body!r}"
    else:
        assert body["nextBefore"] is None, f"{what}: without hasMore, nextBefore is null: {body!r}"
    return body


def search_response(api: Api, user, **params):
    return api.get(SEARCH, user.token, params=params)


def rest_search(api: Api, user, **params) -> dict:
    resp = search_response(api, user, **params)
    assert resp.status_code == 200, f"GET {SEARCH} {params!r} as {user.username}: expected 200, got {resp.status_code} {resp.text}"
    return check_page(resp.json(), f"GET {SEARCH} {params!r}")


def socket_search(session, **payload) -> dict:
    return check_page(session.call("searchMessages", payload, timeout=ACK), f"searchMessages {payload!r}")


def ids(body: dict) -> list:
    return [m["id"] for m in body["messages"]]


def newest_first(*messages) -> list:
    return sorted((m["id"] for m in messages), reverse=True)


def same_message(found: dict, sent: dict) -> None:
    diff = {k: (sent.get(k), found.get(k)) for k in SAME_KEYS if found.get(k) != sent.get(k)}
    assert not diff, f"the search result differs from the message (sent, found): {diff!r}"


def expect_results(api: Api, session, user, want: list, what: str, **params) -> dict:
    """The same search over REST and over the socket (ack): exactly the messages `want` (ids,
    newest first), no further page. Returns the REST answer."""
    body = rest_search(api, user, **params)
    assert ids(body) == want, f"{what}: REST {params!r} as {user.username} should find {want}, found {ids(body)}"
    assert body["hasMore"] is False, f"{what}: {body!r}"
    if session is not None:
        payload = {k: (int(v) if k in ("conversationId", "before", "limit") else v) for k, v in params.items()}
        answer = socket_search(session, **payload)
        assert ids(answer) == want, f"{what}: socket {payload!r} as {user.username} should find {want}, found {ids(answer)}"
        assert answer["hasMore"] is False and answer["nextBefore"] is None, answer
    return body


def send_socket(session, content: str, **target) -> dict:
    return ack_message(session.call("sendMessage", {**target, "content": content, "clientMsgId": unique("srch")},
                                    timeout=ACK), content=content)


def make_room(api: Api, admin, *members) -> int:
    resp = api.post("/api/rooms", {"name": unique("search"), "isPrivate": True}, token=admin.token)
    assert resp.status_code == 201, f"create room: {resp.status_code} {resp.text}"
    rid = resp.json()["id"]
    for user in members:
        resp = api.post(f"/api/rooms/{rid}/members", {"userId": user.id}, token=admin.token)
        assert resp.status_code == 200, f"add member: {resp.status_code} {resp.text}"
    return rid


def delete(api: Api, message_id, token):
    return api.request("DELETE", f"/api/messages/{message_id}", token)


# --- substring and word ------------------------------------------------------------------------


def test_substring_and_word_search_over_rest_and_socket(cluster, sio_session):
    """alice has a direct conversation with bob and a room with carol. Substring search (the
    default) is case-insensitive and finds "<m> cat" inside "<m> category"/"<M> CATEGORY" but not
    in "the Cat sat <m>"; word search for "cat <m>" finds the whole word "Cat"/"cat" in either
    case and not "category", needs every word (in any order), and does no prefix matching. REST
    on either gateway and the socket (with an ack, and as the event `searchMessages` without one)
    answer the same, newest first; q is trimmed; room results carry roomId."""
    gw1, gw2 = cluster.gw1, cluster.gw2
    api1, api2 = Api(gw1.url), Api(gw2.url)
    alice, bob, carol = create_user(api1), create_user(api1), create_user(api1)
    rid = make_room(api1, alice, carol)
    sa = connect(sio_session, gw1, alice)
    sc = connect(sio_session, gw2, carol)
    m = marker()

    d1 = Messages(gw1.url, alice).send_ok(bob.id, f"the Cat sat {m}")
    d2 = Messages(gw2.url, bob).send_ok(alice.id, f"{m} category list")
    r1 = send_socket(sc, f"A cat in the room {m.upper()}", roomId=rid)
    r2 = send_socket(sa, f"{m.upper()} CATEGORY two", roomId=rid)
    assert r1["roomId"] == rid and r2["roomId"] == rid and d1["conversationId"] == d2["conversationId"] != rid
    sent = {m_["id"]: m_ for m_ in (d1, d2, r1, r2)}

    # The marker alone, in any case, finds all four (default mode substring), newest first.
    everything = newest_first(d1, d2, r1, r2)
    for q in (m, m.upper(), m[2:-2]):
        body = expect_results(api1, sa, alice, everything, "marker", q=q)
        for found in body["messages"]:
            same_message(found, sent[found["id"]])
            if found["id"] in (r1["id"], r2["id"]):
                assert found["roomId"] == rid and found["receiverId"] is None, found
    expect_results(api2, None, alice, everything, "explicit substring mode", q=m, mode="substring")

    # Substring: "<m> cat" is inside "<m> category" (either case), not in "the Cat sat <m>".
    expect_results(api2, sa, alice, newest_first(d2, r2), "substring <m> cat", q=f"{m} cat")
    expect_results(api1, sa, alice, newest_first(d2, r2), "substring <M> CAT", q=f"{m.upper()} CAT", mode="substring")
    expect_results(api1, sa, alice, [d1["id"]], "substring across words", q=f"CAT SAT {m}")
    expect_results(api1, sa, alice, [r2["id"]], "substring room, upper", q=f"{m} categORY two")
    expect_results(api1, sa, alice, [], "substring not contained", q=f"{m} dog")

    # Word: whole words, case-insensitive, any order, all of them, no stemming or prefixes.
    expect_results(api1, sa, alice, newest_first(d1, r1), "word cat <m>", q=f"cat {m}", mode="word")
    expect_results(api2, sa, alice, newest_first(d1, r1), "word CAT <M>", q=f"CAT {m.upper()}", mode="word")
    expect_results(api1, sa, alice, newest_first(d2, r2), "word category <m>", q=f"{m} Category", mode="word")
    expect_results(api1, sa, alice, [d1["id"]], "word, any order", q=f"{m} sat the cat", mode="word")
    expect_results(api1, sa, alice, [], "word: every word needed", q=f"cat dog {m}", mode="word")
    expect_results(api1, sa, alice, [], "word: no prefix matching", q=f"cat {m[:-3]}", mode="word")
    expect_results(api1, sa, alice, [], "word: no stemming (cats)", q=f"cats {m}", mode="word")
    expect_results(api1, sa, alice, [], "word: category is not cat", q=f"{m} categ", mode="word")

    # q is trimmed (REST and socket).
    expect_results(api1, sa, alice, newest_first(d2, r2), "trimmed substring", q=f"  {m} cat \t ")
    expect_results(api1, sa, alice, newest_first(d1, r1), "trimmed word", q=f"\n cat {m}  ", mode="word")

    # Without an ack the answer comes as the event searchMessages.
    mark = sa.mark()
    sa.emit("searchMessages", {"q": f"cat {m}", "mode": "word"})
    answer = check_page(sa.wait_for("searchMessages", EVENT, since=mark).args[0], "searchMessages event")
    assert ids(answer) == newest_first(d1, r1) and answer["hasMore"] is False, answer
    assert sa.find("error", since=mark) is None, sa.find("error", since=mark)

    # carol (the room, not the direct conversation) finds only the room's messages.
    expect_results(api2, sc, carol, newest_first(r1, r2), "carol, marker", q=m)
    expect_results(api2, sc, carol, [r1["id"]], "carol, word", q=f"cat {m}", mode="word")
    assert sa.connected and sc.connected


# --- who finds what ----------------------------------------------------------------------------


def test_only_the_callers_conversations_and_conversation_filter(cluster, sio_session):
    """alice talks to bob directly and to carol in a room; dave talks to eve. With the same q,
    each finds only the messages of their own conversations: dave nothing of alice's (only his own
    message), bob only the direct one, carol only the room's. conversationId narrows to one
    conversation; another's conversation, or one that does not exist, simply gives no results
    (200). A member who leaves the room no longer finds its messages."""
    gw1, gw2 = cluster.gw1, cluster.gw2
    api1, api2 = Api(gw1.url), Api(gw2.url)
    alice, bob, carol, dave, eve = (create_user(api1) for _ in range(5))
    rid = make_room(api1, alice, carol)
    sa = connect(sio_session, gw1, alice)
    sc = connect(sio_session, gw2, carol)
    sd = connect(sio_session, gw2, dave)
    m = marker()

    direct = Messages(gw1.url, alice).send_ok(bob.id, f"{m} between alice and bob")
    in_room = send_socket(sc, f"{m} in the room", roomId=rid)
    reply = Messages(gw2.url, bob).send_ok(alice.id, f"bob answers {m}")
    own = Messages(gw2.url, dave).send_ok(eve.id, f"{m} dave writes to eve")
    cid, dave_cid = direct["conversationId"], own["conversationId"]

    expect_results(api1, sa, alice, newest_first(direct, in_room, reply), "alice", q=m)
    expect_results(api2, None, bob, newest_first(direct, reply), "bob (direct only)", q=m)
    expect_results(api2, sc, carol, [in_room["id"]], "carol (room only)", q=m)
    expect_results(api2, sd, dave, [own["id"]], "dave (his own only)", q=m)
    expect_results(api1, None, eve, [own["id"]], "eve (dave's message to her)", q=m)
    expect_results(api1, sd, dave, [], "dave, word mode", q=f"{m} alice", mode="word")
    expect_results(api1, sd, dave, [], "dave, a longer substring", q=f"{m} in the room")

    # conversationId narrows; a conversation of others, or none at all, is simply empty.
    expect_results(api1, sa, alice, newest_first(direct, reply), "alice, direct only", q=m, conversationId=cid)
    expect_results(api2, sa, alice, [in_room["id"]], "alice, room only", q=m, conversationId=rid)
    expect_results(api1, sa, alice, [reply["id"]], "alice, direct, word", q=f"answers {m}", mode="word", conversationId=cid)
    expect_results(api1, sa, alice, [], "alice, dave's conversation", q=m, conversationId=dave_cid)
    expect_results(api1, sa, alice, [], "alice, no such conversation", q=m, conversationId=NOT_FOUND_ID)
    expect_results(api2, sd, dave, [], "dave, the room", q=m, conversationId=rid)
    expect_results(api2, sd, dave, [], "dave, alice and bob", q=m, conversationId=cid)
    expect_results(api2, sd, dave, [own["id"]], "dave, his conversation", q=m, conversationId=dave_cid)
    expect_results(api1, None, bob, [], "bob, the room he is not in", q=m, conversationId=rid)

    # carol leaves the room: its messages (her own included) are no longer hers to find.
    resp = api2.post(f"/api/rooms/{rid}/leave", token=carol.token)
    assert resp.status_code == 200, f"leave: {resp.status_code} {resp.text}"
    expect_results(api2, sc, carol, [], "carol after leaving", q=m)
    expect_results(api2, sc, carol, [], "carol after leaving, the room", q=m, conversationId=rid)
    expect_results(api1, sa, alice, newest_first(direct, in_room, reply), "alice after carol left", q=m)
    for session in (sa, sc, sd):
        assert session.connected


# --- deleted and edited messages ----------------------------------------------------------------


def test_deleted_never_match_and_edited_match_their_new_text(settings, cluster, sio_session):
    """A message is found, then deleted (DELETE /api/messages/:id): neither its sender nor its
    receiver finds it any more, in either mode, with or without conversationId, while its
    neighbour still is found. A room message deleted over the socket is gone as well. A message
    edited with `editMessage` is found by its new text (with the new content) and no longer by its
    old text."""
    gw1, gw2 = cluster.gw1, cluster.gw2
    api1, api2 = Api(gw1.url), Api(gw2.url)
    alice, bob, carol = create_user(api1), create_user(api1), create_user(api1)
    rid = make_room(api1, alice, carol)
    sa = connect(sio_session, gw1, alice)
    sb = connect(sio_session, gw2, bob)
    m = marker()

    doomed = send_socket(sa, f"{m} secret plan alpha", receiverId=bob.id)
    keeper = send_socket(sa, f"{m} public plan beta", receiverId=bob.id)
    room_doomed = send_socket(sa, f"{m} room plan gamma", roomId=rid)
    cid = doomed["conversationId"]
    expect_results(api1, sa, alice, newest_first(doomed, keeper, room_doomed), "before the deletes", q=m)
    expect_results(api2, sb, bob, [doomed["id"]], "bob finds it", q=f"{m} secret")
    expect_results(api2, sb, bob, [doomed["id"]], "bob finds it by word", q=f"alpha {m}", mode="word")

    resp = delete(api2, doomed["id"], alice.token)
    assert resp.status_code == 200, f"DELETE by the sender: {resp.status_code} {resp.text}"
    for user, session in ((alice, sa), (bob, sb)):
        expect_results(api1, session, user, [keeper["id"]], f"{user.username}, after the delete", q=m,
                       conversationId=cid)
        expect_results(api2, session, user, [], f"{user.username}, its text", q=f"{m} secret plan alpha")
        expect_results(api1, session, user, [], f"{user.username}, its words", q=f"secret {m}", mode="word")
        expect_results(api2, session, user, [], f"{user.username}, in its conversation", q="secret plan alpha",
                       conversationId=cid)
    expect_results(api1, sa, alice, newest_first(keeper, room_doomed), "alice, the rest", q=m)

    # A room message deleted over the socket.
    deleted = ack_message(sa.call("deleteMessage", {"messageId": room_doomed["id"]}, timeout=ACK))
    assert deleted["id"] == room_doomed["id"] and deleted.get("isDeleted") is True, deleted
    expect_results(api1, sa, alice, [keeper["id"]], "alice, after the room delete", q=m)
    expect_results(api2, None, carol, [], "carol, after the room delete", q=m)
    expect_results(api2, None, carol, [], "carol, gamma", q=f"gamma {m}", mode="word")

    # An edited message is found by its new text only.
    old_text, new_text = f"{m} draft wording zebra", f"{m} final phrasing okapi"
    draft = send_socket(sb, old_text, receiverId=alice.id)
    expect_results(api1, sa, alice, [draft["id"]], "the draft", q=f"{m} draft")
    edited = ack_message(sb.call("editMessage", {"messageId": draft["id"], "content": new_text}, timeout=ACK),
                         id=draft["id"], content=new_text)
    for user, session in ((alice, sa), (bob, sb)):
        body = expect_results(api1, session, user, [draft["id"]], f"{user.username}, new text", q=f"{m} final phrasing")
        found = body["messages"][0]
        assert found["content"] == new_text and found.get("editedAt") == edited.get("editedAt"), (
            f"the result should be the edited message: {found!r}")
        expect_results(api2, session, user, [draft["id"]], f"{user.username}, new word", q=f"okapi {m}", mode="word")
        expect_results(api2, session, user, [], f"{user.username}, old text", q=f"{m} draft wording")
        expect_results(api1, session, user, [], f"{user.username}, old word", q=f"zebra {m}", mode="word")
    expect_results(api1, sa, alice, newest_first(keeper, draft), "alice, finally", q=m)

    # The deleted rows are still there (content erased), so it is the search that leaves them out.
    rows = psql_rows(settings, f"SELECT id, content FROM messages WHERE id IN ({int(doomed['id'])}, "
                               f"{int(room_doomed['id'])}) ORDER BY id")
    assert rows == [[str(doomed["id"]), ""], [str(room_doomed["id"]), ""]], rows
    assert sa.connected and sb.connected


# --- literal characters and injection-looking text ---------------------------------------------


def test_wildcards_are_literal_and_injection_strings_are_just_text(settings, cluster, sio_session):
    """`%`, `_` and `\\` in q match only themselves: "<m> 50%" finds "50% off" and not "500 off",
    "<m> a_b" finds "a_b" and not "axb", a backslash only a backslash; "<m>%" and "<m>_" find
    nothing. Text such as `'; DROP TABLE messages; --` and `%' OR '1'='1` is searched literally
    (200, only the message holding that exact text), in both modes, REST and socket; the messages
    table is intact afterwards."""
    gw1, gw2 = cluster.gw1, cluster.gw2
    api1, api2 = Api(gw1.url), Api(gw2.url)
    alice, bob = create_user(api1), create_user(api1)
    sa = connect(sio_session, gw2, alice)
    m = marker()
    send = Messages(gw1.url, alice).send_ok

    percent = send(bob.id, f"{m} 50% off today")
    five_hundred = send(bob.id, f"{m} 500 off today")
    underscore = send(bob.id, f"{m} a_b here")
    axb = send(bob.id, f"{m} axb here")
    backslash = send(bob.id, f"{m} back\\slash")
    no_backslash = send(bob.id, f"{m} backxslash")
    drop = send(bob.id, f"{m} '; DROP TABLE messages; -- done")
    tautology = send(bob.id, f"{m} %' OR '1'='1 sneaky")
    quote = send(bob.id, f"{m} it's o'clock")
    everything = newest_first(percent, five_hundred, underscore, axb, backslash, no_backslash, drop, tautology, quote)
    expect_results(api1, sa, alice, everything, "all of them", q=m)

    expect_results(api1, sa, alice, [percent["id"]], "50%", q=f"{m} 50%")
    expect_results(api2, sa, alice, [percent["id"]], "50% off", q=f"{m} 50% OFF")
    expect_results(api1, sa, alice, [underscore["id"]], "a_b", q=f"{m} a_b")
    expect_results(api1, sa, alice, [underscore["id"]], "A_B", q=f"{m} A_B here")
    expect_results(api2, sa, alice, [backslash["id"]], "backslash", q=f"{m} back\\slash")
    expect_results(api1, sa, alice, [backslash["id"]], "backslash ending q", q=f"{m} back\\")
    expect_results(api1, sa, alice, [], "<m>%", q=f"{m}%")
    expect_results(api1, sa, alice, [], "<m>_", q=f"{m}_")
    expect_results(api1, sa, alice, [tautology["id"]], "<m> % (only the tautology has it)", q=f"{m} %")
    expect_results(api1, sa, alice, [], "<m> _xb", q=f"{m} _xb")
    expect_results(api1, sa, alice, [], "<m> 5_0", q=f"{m} 5_0")
    expect_results(api1, sa, alice, [], "<m> back\\%", q=f"{m} back\\%")
    expect_results(api1, sa, alice, [], "<m>\\", q=f"{m}\\")

    # Injection-looking text is only text, in both modes.
    expect_results(api1, sa, alice, [drop["id"]], "drop table", q=f"{m} '; DROP TABLE messages; --")
    expect_results(api2, sa, alice, [tautology["id"]], "tautology", q=f"{m} %' OR '1'='1")
    expect_results(api1, sa, alice, [quote["id"]], "a quote", q=f"{m} it's o'")
    expect_results(api1, sa, alice, [drop["id"]], "drop table, words", q=f"{m} '; DROP TABLE messages; --",
                   mode="word")
    expect_results(api2, sa, alice, [tautology["id"]], "tautology, words", q=f"{m} %' OR '1'='1", mode="word")
    expect_results(api1, sa, alice, [], "a tautology that is not there", q=f"{m}' OR '1'='1")
    expect_results(api1, sa, alice, [], "a tautology, words, not there", q=f"{m} ' OR 'x'='x", mode="word")
    # Without the marker too: alice's only conversation holds nothing but the messages above.
    # (q, what substring finds, what word finds: the word "OR" is in the tautology message.)
    for q, by_substring, by_word in (
            ("'; DROP TABLE messages; --", [drop["id"]], [drop["id"]]),
            ("%' OR '1'='1", [tautology["id"]], [tautology["id"]]),
            ("\\'; SELECT pg_sleep(5); --", [], []),
            ("' OR ''='", [], [tautology["id"]])):
        expect_results(api1, sa, alice, by_substring, "unmarked substring", q=q, limit=MAX_LIMIT)
        expect_results(api2, sa, alice, by_word, "unmarked word", q=q, mode="word", limit=MAX_LIMIT)

    assert psql_rows(settings, f"SELECT count(*) FROM messages WHERE id = {int(drop['id'])}") == [["1"]], (
        "the messages table should be intact")
    assert sa.connected


# --- validation --------------------------------------------------------------------------------


def test_invalid_searches_are_validation_failed(cluster, sio_session):
    """422 validation_failed for a missing q, an empty or blank q, a q longer than 200 characters
    after trimming, an unknown mode, limit 0 / 101 / not a number, a non-numeric conversationId or
    before; the bounds themselves (q of 200 characters even with surrounding blanks, limit 1 and
    100) are fine; no token is 401. The socket answers the same errors in its ack, or as the event
    `error` without one, and stays connected."""
    gw1 = cluster.gw1
    api = Api(gw1.url)
    alice = create_user(api)
    sa = connect(sio_session, gw1, alice)
    m = marker()
    longest = (m + "x" * MAX_Q)[:MAX_Q]

    bad_params = [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": " \t\n "},
        {"q": m + "x" * (MAX_Q + 1 - len(m))},
        {"q": "  " + longest + "y  "},
        {"q": m, "mode": "fuzzy"},
        {"q": m, "mode": "regex"},
        {"q": m, "limit": "0"},
        {"q": m, "limit": str(MAX_LIMIT + 1)},
        {"q": m, "limit": "-1"},
        {"q": m, "limit": "abc"},
        {"q": m, "conversationId": "abc"},
        {"q": m, "before": "abc"},
        {"q": m, "conversationId": "1x"},
        {"q": m, "before": "ten"},
    ]
    for params in bad_params:
        shown = {k: (v[:24] + "..." if len(v) > 24 else v) for k, v in params.items()}
        resp = search_response(api, alice, **params)
        assert resp.status_code == 422, f"GET {SEARCH} {shown}: expected 422 validation_failed, got {resp.status_code} {resp.text}"
        expect_error(resp, 422, "validation_failed")

    for params in ({"q": longest}, {"q": "  " + longest + "\t "}, {"q": m, "limit": "1"},
                   {"q": m, "limit": str(MAX_LIMIT)}, {"q": m, "mode": "word", "limit": "1"}):
        body = rest_search(api, alice, **params)
        assert body["messages"] == [] and body["hasMore"] is False, body
    resp = api.get(SEARCH, None, params={"q": m})
    assert resp.status_code == 401, f"search without a token: {resp.status_code} {resp.text}"

    bad_payloads = [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": None},
        {"q": 5},
        {"q": m + "x" * (MAX_Q + 1 - len(m))},
        {"q": m, "mode": "fuzzy"},
        {"q": m, "limit": 0},
        {"q": m, "limit": MAX_LIMIT + 1},
        {"q": m, "limit": "abc"},
        {"q": m, "conversationId": "abc"},
        {"q": m, "before": "abc"},
        "hello",
        [m],
    ]
    for payload in bad_payloads:
        code, message = ack_error(sa.call("searchMessages", payload, timeout=ACK))
        assert code == "validation_failed", f"searchMessages {str(payload)[:60]}: code {code!r} ({message})"
        mark = sa.mark()
        sa.emit("searchMessages", payload)
        error = sa.wait_for("error", ACK, since=mark).args[0]
        assert isinstance(error, dict) and error.get("code") == "validation_failed", (
            f"searchMessages {str(payload)[:60]} without an ack: {error!r}")
        assert sa.find("searchMessages", since=mark) is None, f"an answer to an invalid search: {payload!r}"
        assert sa.connected, f"searchMessages {str(payload)[:60]} dropped the connection"
    answer = socket_search(sa, q="  " + longest + " ", limit=MAX_LIMIT, mode="word")
    assert answer["messages"] == [] and answer["hasMore"] is False, answer
    assert sa.connected


# --- paging -------------------------------------------------------------------------------------


def test_paging_with_before_and_next_before(cluster, sio_session):
    """Five matches (direct and room), limit=2: pages of the two newest, then the next two with
    before=nextBefore, then the last one with hasMore false and nextBefore null, over REST and the
    socket alike; no message is skipped or repeated. limit=5 fits exactly (hasMore false); before
    combines with conversationId and the word mode; with no limit at most 20 come back."""
    gw1, gw2 = cluster.gw1, cluster.gw2
    api1, api2 = Api(gw1.url), Api(gw2.url)
    alice, bob = create_user(api1), create_user(api1)
    rid = make_room(api1, alice, bob)
    sa = connect(sio_session, gw1, alice)
    sb = connect(sio_session, gw2, bob)
    m = marker()

    sent = []
    for n in range(5):
        if n % 2:
            sent.append(send_socket(sb, f"{m} page item {n}", roomId=rid))
        else:
            sent.append(send_socket(sa, f"page item {n} {m}", receiverId=bob.id))
    want = newest_first(*sent)
    assert want == [s["id"] for s in reversed(sent)], "later messages have larger ids"
    cid = sent[0]["conversationId"]

    def walk(search, **params) -> list[dict]:
        pages, before = [], None
        for _ in range(10):
            page = search(**params, **({} if before is None else {"before": before}))
            pages.append(page)
            if not page["hasMore"]:
                return pages
            before = page["nextBefore"]
        raise AssertionError(f"still hasMore after 10 pages: {pages!r}")

    rest_a = lambda **p: rest_search(api1, alice, **p)  # noqa: E731
    rest_b = lambda **p: rest_search(api2, bob, **p)  # noqa: E731
    sock_a = lambda **p: socket_search(sa, **p)  # noqa: E731
    for search, what in ((rest_a, "REST alice"), (rest_b, "REST bob"), (sock_a, "socket alice")):
        pages = walk(search, q=m, limit=2)
        assert [ids(p) for p in pages] == [want[0:2], want[2:4], want[4:5]], f"{what}: {[ids(p) for p in pages]}"
        assert [p["hasMore"] for p in pages] == [True, True, False], what
        assert [p["nextBefore"] for p in pages] == [want[1], want[3], None], what
        pages = walk(search, q=f"item {m}", mode="word", limit=3)
        assert [ids(p) for p in pages] == [want[0:3], want[3:5]], f"{what}, word: {[ids(p) for p in pages]}"

    # Page one by hand, the answer's exact shape.
    first = rest_search(api1, alice, q=m.upper(), limit=2)
    assert ids(first) == want[:2] and first["hasMore"] is True and first["nextBefore"] == want[1], first
    last = rest_search(api2, alice, q=m, limit=2, before=want[3])
    assert ids(last) == want[4:] and last["hasMore"] is False and last["nextBefore"] is None, last

    # Exactly limit matches: no further page; before beyond the oldest: nothing.
    exact = rest_search(api1, alice, q=m, limit=5)
    assert ids(exact) == want and exact["hasMore"] is False and exact["nextBefore"] is None, exact
    four = socket_search(sa, q=m, limit=4)
    assert ids(four) == want[:4] and four["hasMore"] is True and four["nextBefore"] == want[3], four
    expect_results(api1, sa, alice, [], "before the oldest", q=m, before=want[-1])
    expect_results(api1, sa, alice, want[1:], "before the newest", q=m, before=want[0])

    # before with conversationId: the direct conversation's matches are sent[0], [2], [4].
    direct = newest_first(sent[0], sent[2], sent[4])
    pages = walk(rest_a, q=m, conversationId=cid, limit=1)
    assert [ids(p) for p in pages] == [[i] for i in direct], pages
    pages = walk(lambda **p: socket_search(sb, **p), q=m, conversationId=rid, limit=1)
    assert [ids(p) for p in pages] == [[sent[3]["id"]], [sent[1]["id"]]], pages

    # The default limit is 20: 22 matches give 20 and hasMore, the next page the remaining 2.
    many_marker = marker()
    many = [send_socket(sa, f"{many_marker} bulk {n}", receiverId=bob.id) for n in range(DEFAULT_LIMIT + 2)]
    many_ids = newest_first(*many)
    page = rest_search(api2, bob, q=many_marker)
    assert ids(page) == many_ids[:DEFAULT_LIMIT] and page["hasMore"] is True, ids(page)
    assert page["nextBefore"] == many_ids[DEFAULT_LIMIT - 1], page["nextBefore"]
    rest = socket_search(sb, q=many_marker, before=page["nextBefore"])
    assert ids(rest) == many_ids[DEFAULT_LIMIT:] and rest["hasMore"] is False and rest["nextBefore"] is None, rest
    whole = rest_search(api1, alice, q=many_marker, limit=MAX_LIMIT)
    assert ids(whole) == many_ids and whole["hasMore"] is False, ids(whole)
    assert sa.connected and sb.connected
