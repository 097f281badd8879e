"""Profile (issue 14): `PATCH /api/users/me` sets the display name (or `fullName`), an avatar URL
(the attachment URL rules) and a status line, each shown to other users (never the email);
`POST /api/auth/change-password` needs the current password and ends every other session: their
refresh tokens, their access tokens and their sockets, while the caller's session goes on."""

from __future__ import annotations

from support import Api, create_user, expect_error

EVENT = 5


def test_profile_fields_are_set_cleared_validated_and_shown_to_others(cluster):
    api = Api(cluster.gw1.url)
    alice, bob = create_user(api), create_user(api)
    resp = api.request("PATCH", "/api/users/me", alice.token,
                       json={"fullName": "Alice Liddell", "avatarUrl": "https://cdn.example.com/a.png", "statusText": "  in a meeting "})
    assert resp.status_code == 200, resp.text
    user = resp.json()["user"]
    assert (user["displayName"], user["avatarUrl"], user["statusText"]) == ("Alice Liddell", "https://cdn.example.com/a.png", "in a meeting")
    seen = api.get(f"/api/users/{alice.id}", token=bob.token).json()
    assert (seen["displayName"], seen["avatarUrl"], seen["statusText"]) == ("Alice Liddell", "https://cdn.example.com/a.png", "in a meeting")
    assert "email" not in seen and alice.email not in str(seen)
    cleared = api.request("PATCH", "/api/users/me", alice.token, json={"statusText": None, "avatarUrl": None}).json()["user"]
    assert cleared["statusText"] is None and cleared["avatarUrl"] is None and cleared["displayName"] == "Alice Liddell"
    for body, field in [({"displayName": ""}, "displayName"), ({"fullName": "x" * 65}, "fullName"), ({"avatarUrl": "ftp://x/a.png"}, "avatarUrl"),
                        ({"avatarUrl": "https://u:p@cdn.example.com/a"}, "avatarUrl"), ({"statusText": "s" * 141}, "statusText"),
                        ({"statusText": 7}, "statusText"), ({}, None)]:
        message = expect_error(api.request("PATCH", "/api/users/me", alice.token, json=body), 422, "validation_failed")
        assert field is None or field in message, (body, message)
    assert api.request("PATCH", "/api/users/me", None, json={"statusText": "x"}).status_code == 401


def test_changing_the_password_ends_every_other_session(cluster, sio_session):
    api = Api(cluster.gw1.url)
    user = create_user(api)
    other = api.login(user.password, email=user.email).json()  # a second device's session
    socket = sio_session(cluster.gw2.url).connect(token=other["token"])
    expect_error(api.post("/api/auth/change-password", {"currentPassword": "wrong password!", "newPassword": "a brand new secret"}, user.token),
                 401, "invalid_credentials")
    expect_error(api.post("/api/auth/change-password", {"currentPassword": user.password, "newPassword": "short"}, user.token),
                 422, "validation_failed")
    resp = api.post("/api/auth/change-password", {"currentPassword": user.password, "newPassword": "a brand new secret"}, user.token)
    assert resp.status_code == 200 and resp.json()["revokedSessions"] == 1, resp.text
    # The other session is over: its access token, its refresh token and its socket.
    assert api.get("/api/users/me", token=other["token"]).status_code == 401
    assert api.post("/api/auth/refresh", {"refreshToken": other["refreshToken"]}).status_code == 401
    socket.wait_for("disconnect", EVENT)
    # The caller's goes on; the old password no longer logs in, the new one does.
    assert api.get("/api/users/me", token=user.token).status_code == 200
    assert api.login(user.password, email=user.email).status_code == 401
    assert api.login("a brand new secret", email=user.email).status_code == 200


def test_users_are_found_by_username_in_any_case(cluster):
    api = Api(cluster.gw1.url)
    alice, bob = create_user(api), create_user(api)
    found = api.get(f"/api/users/by-username/{bob.username.upper()}", token=alice.token)
    assert found.status_code == 200 and found.json()["id"] == bob.id and "email" not in found.json(), found.text
    expect_error(api.get("/api/users/by-username/nobody-has-this-name", token=alice.token), 404, "user_not_found")


def test_deleting_the_account_frees_its_names_and_ends_every_session(cluster, sio_session):
    """The messages stay (under "Deleted user"), the username and email are freed for others, the
    old credentials and every token stop working, the sockets close; `deleted-` names are reserved."""
    api = Api(cluster.gw1.url)
    gone, friend = create_user(api), create_user(api)
    second = api.login(gone.password, email=gone.email).json()
    socket = sio_session(cluster.gw2.url).connect(token=second["token"])
    sent = api.post("/api/messages", {"receiverId": friend.id, "content": "remember me", "clientMsgId": "del-1"}, gone.token)
    assert sent.status_code == 201, sent.text
    expect_error(api.request("DELETE", "/api/users/me", gone.token, json={"password": "not the password"}), 401, "invalid_credentials")
    resp = api.request("DELETE", "/api/users/me", gone.token, json={"password": gone.password})
    assert resp.status_code == 200, resp.text
    socket.wait_for("disconnect", EVENT)
    for token in (gone.token, second["token"]):
        assert api.get("/api/users/me", token=token).status_code == 401
    assert api.post("/api/auth/refresh", {"refreshToken": second["refreshToken"]}).status_code == 401
    assert api.login(gone.password, email=gone.email).status_code == 401
    shown = api.get(f"/api/users/{gone.id}", token=friend.token).json()
    assert shown["displayName"] == "Deleted user" and shown["username"] == f"deleted-{gone.id}", shown
    history = api.get(f"/api/messages/conversation/{gone.id}", token=friend.token).json()
    assert [m["content"] for m in history] == ["remember me"], "the friend keeps the conversation"
    again = create_user(api, username=gone.username, email=gone.email)
    assert again.id != gone.id, "the name and the email are free again"
    expect_error(api.signup(f"deleted-{again.id}x", f"x{again.id}@example.com", "a long password"), 422, "validation_failed")
