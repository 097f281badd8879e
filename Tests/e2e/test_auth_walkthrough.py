"""Accounts API end to end: the README walk-through, aliases, tokens, conflicts and validation."""

from __future__ import annotations

import json
import secrets
import time

import pytest

from support import Api, b64url, create_user, error_of, expect_error, jwt_parts, unique, user_of


def test_readme_walkthrough(api):
    """signup -> login -> profile -> refresh -> logout -> profile is 401, as the README shows it."""
    username = unique("alice")
    email = f"{username}@example.com"
    password = "s3cret-passw0rd"

    resp = api.signup(username, email, password, display_name="Alice")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert isinstance(body.get("message"), str) and body["message"]
    user = body["user"]
    assert user["username"] == username
    assert user["email"] == email
    assert user["displayName"] == "Alice"
    assert user["id"] is not None and user["createdAt"]
    assert not any("password" in key.lower() or "hash" in key.lower() for key in user), user

    resp = api.login(password, email=email)
    assert resp.status_code == 200, resp.text
    login = resp.json()
    token, refresh = login["token"], login["refreshToken"]
    assert isinstance(token, str) and token.count(".") == 2
    assert isinstance(refresh, str) and refresh
    assert isinstance(login["expiresIn"], int) and 0 < login["expiresIn"] <= 900
    assert user_of(login)["id"] == user["id"]

    resp = api.profile(token)
    assert resp.status_code == 200, resp.text
    profile = user_of(resp.json())
    assert profile["id"] == user["id"] and profile["username"] == username

    resp = api.refresh(refresh)
    assert resp.status_code == 200, resp.text
    refreshed = resp.json()
    token2, refresh2 = refreshed["token"], refreshed["refreshToken"]
    assert refresh2 != refresh, "the refresh token must rotate"
    assert api.profile(token2).status_code == 200

    resp = api.logout(token2)
    assert resp.status_code == 200, resp.text

    expect_error(api.profile(token2), 401, "token_revoked")
    # The refresh family is revoked too.
    assert api.refresh(refresh2).status_code == 401


def test_token_claims(make_user):
    user = make_user()
    header, payload = jwt_parts(user.token)
    assert header["alg"] == "HS256"
    for claim in ("sub", "iat", "exp", "jti"):
        assert claim in payload, f"claim {claim} missing: {payload}"
    assert payload["exp"] - payload["iat"] == 900  # ACCESS_TOKEN_TTL_SECONDS default


def test_register_alias(api):
    username = unique()
    resp = api.signup(username, f"{username}@example.com", "password123", path="/api/auth/register")
    assert resp.status_code == 201, resp.text
    assert user_of(resp.json())["username"] == username


def test_users_me_alias(api, make_user):
    user = make_user()
    resp = api.profile(user.token, path="/api/users/me")
    assert resp.status_code == 200, resp.text
    me = user_of(resp.json())
    assert me["id"] == user.id and me["username"] == user.username


def test_login_by_username(api, make_user):
    user = make_user(login=False)
    resp = api.login(user.password, username=user.username)
    assert resp.status_code == 200, resp.text
    assert user_of(resp.json())["username"] == user.username


def test_wrong_password_and_unknown_user_look_the_same(api, make_user):
    user = make_user(login=False)
    wrong = api.login("not-the-password", email=user.email)
    unknown = api.login("not-the-password", email=f"{unique()}@example.com")
    unknown_name = api.login("not-the-password", username=unique())
    expect_error(wrong, 401, "invalid_credentials")
    expect_error(unknown, 401, "invalid_credentials")
    expect_error(unknown_name, 401, "invalid_credentials")
    assert wrong.json() == unknown.json() == unknown_name.json()


def test_refresh_reuse_revokes_the_family(api, make_user):
    user = make_user()
    first = api.refresh(user.refresh_token)
    assert first.status_code == 200, first.text
    newest = first.json()["refreshToken"]

    reuse = api.refresh(user.refresh_token)  # already rotated: theft is assumed
    assert reuse.status_code == 401, reuse.text
    error_of(reuse)
    resp = api.refresh(newest)
    assert resp.status_code == 401, f"the newest refresh token must die with its family: {resp.text}"


def test_refresh_with_garbage_is_401(api):
    resp = api.refresh("definitely-not-a-refresh-token")
    assert resp.status_code == 401, resp.text
    error_of(resp)


def test_duplicate_username(api, make_user):
    user = make_user(login=False)
    resp = api.signup(user.username, f"{unique()}@example.com", "password123")
    message = expect_error(resp, 409, "username_taken")
    assert "username" in message.lower()


def test_duplicate_email(api, make_user):
    user = make_user(login=False)
    resp = api.signup(unique(), user.email, "password123")
    message = expect_error(resp, 409, "email_taken")
    assert "email" in message.lower()


def test_email_is_stored_lower_case_and_unique_case_insensitively(api):
    username = unique()
    mixed = f"MiXeD.{username}@Example.COM"
    resp = api.signup(username, mixed, "password123")
    assert resp.status_code == 201, resp.text
    assert user_of(resp.json())["email"] == mixed.lower()

    resp = api.signup(unique(), mixed.lower(), "password123")
    expect_error(resp, 409, "email_taken")
    resp = api.signup(unique(), mixed.upper(), "password123")
    expect_error(resp, 409, "email_taken")


def test_login_email_is_case_insensitive(api):
    username = unique()
    resp = api.signup(username, f"{username}@example.com", "password123")
    assert resp.status_code == 201, resp.text
    resp = api.login("password123", email=f"{username.upper()}@EXAMPLE.COM")
    assert resp.status_code == 200, resp.text


def _valid_signup() -> dict:
    username = unique()
    return {"username": username, "email": f"{username}@example.com", "password": "password123"}


@pytest.mark.parametrize(
    "field,value",
    [
        ("username", "ab"),
        ("username", "a" * 33),
        ("username", "has space"),
        ("username", "bang!"),
        ("username", "ünïcode"),
        ("username", 12345),
        ("username", None),
        ("email", "not-an-email"),
        ("email", "missing-domain@"),
        ("email", "@missing-local.com"),
        ("email", ""),
        ("email", ["a@b.c"]),
        ("password", "short7!"),
        ("password", "x" * 129),
        ("password", 12345678),
        ("displayName", 42),
    ],
)
def test_signup_validation(api, field, value):
    body = _valid_signup()
    body[field] = value
    resp = api.post("/api/auth/signup", body)
    message = expect_error(resp, 422, "validation_failed")
    assert field.lower() in message.lower(), f"message should name {field}: {message}"


@pytest.mark.parametrize("field", ["username", "email", "password"])
def test_signup_missing_field(api, field):
    body = _valid_signup()
    del body[field]
    resp = api.post("/api/auth/signup", body)
    message = expect_error(resp, 422, "validation_failed")
    assert field in message.lower(), f"message should name {field}: {message}"


def test_signup_boundaries_are_accepted(api):
    short = "a" + secrets.token_hex(1)  # 3 characters
    long = ("b" + secrets.token_hex(16))[:32]
    charset = f"A.b-c_{secrets.token_hex(3)}"
    for username, password in ((short, "p" * 8), (long, "q" * 128), (charset, "r" * 20)):
        resp = api.signup(username, f"{username.lower()}@example.com", password)
        assert resp.status_code == 201, f"{username!r}/{len(password)}: {resp.status_code} {resp.text}"
        assert api.login(password, username=username).status_code == 200


def test_token_errors(api, make_user):
    user = make_user()
    expect_error(api.profile(None), 401, "token_missing")
    expect_error(api.profile("garbage"), 401, "token_malformed")
    resp = api.get("/api/auth/profile", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert resp.status_code == 401, resp.text
    assert error_of(resp)[0] in ("token_missing", "token_malformed")

    header, payload, signature = user.token.split(".")
    claims = jwt_parts(user.token)[1]
    forged = dict(claims, sub=str(claims["sub"]) + "0")
    tampered = ".".join([header, b64url(json.dumps(forged).encode()), signature])
    expect_error(api.profile(tampered), 401, "token_signature")

    none_header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    resp = api.profile(f"{none_header}.{payload}.")
    assert resp.status_code == 401, resp.text
    assert error_of(resp)[0] in ("token_malformed", "token_signature", "token_algorithm")


def test_logout_requires_a_token(api):
    expect_error(api.logout(None), 401, "token_missing")


def test_expired_access_token(procs):
    gateway = procs.gateway({"ACCESS_TOKEN_TTL_SECONDS": "1", "JWT_LEEWAY_SECONDS": "0"})
    api = Api(gateway.url)
    user = create_user(api)
    assert api.profile(user.token).status_code in (200, 401)  # may already be expired
    time.sleep(3)
    expect_error(api.profile(user.token), 401, "token_expired")
