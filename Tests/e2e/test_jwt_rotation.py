"""JWT secret rotation without logging anyone out (issue 18, item 7): during each step of the
three-step rotation (docs/OPERATIONS.md, "JWT secret rotation") a token issued by one gateway is
accepted by the gateways of the neighbouring step, over REST and for a socket CONNECT."""

from __future__ import annotations

import base64
import json

import pytest

from support import Api, SioSession, create_user, run_binary

OLD = "old-secret-0123456789abcdef0123456789abcdef"
NEW = "new-secret-fedcba9876543210fedcba9876543210"


def key_id(token: str) -> str:
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def test_tokens_cross_every_step_of_a_rotation(procs):
    steps = [
        procs.gateway({"JWT_SECRET": OLD}),                                # before
        procs.gateway({"JWT_SECRET": OLD, "JWT_ACCEPTED_SECRETS": NEW}),   # 1: accept the new key
        procs.gateway({"JWT_SECRET": NEW, "JWT_ACCEPTED_SECRETS": OLD}),   # 2: sign with it
        procs.gateway({"JWT_SECRET": NEW}),                                # 3: drop the old one
    ]
    tokens = [create_user(Api(gateway.url)).token for gateway in steps]
    assert key_id(tokens[0]) == key_id(tokens[1]) != key_id(tokens[2]) == key_id(tokens[3])
    for index, token in enumerate(tokens):
        for neighbour in steps[max(0, index - 1):index + 2]:
            resp = Api(neighbour.url).profile(token)
            assert resp.status_code == 200, (index, neighbour.env.get("JWT_SECRET"), resp.text)
    # A socket CONNECT with step 0's token on step 2's gateway, and the reverse.
    for token, gateway in ((tokens[0], steps[2]), (tokens[2], steps[1])):
        SioSession(gateway.url).connect(token=token).close()
    # Across two steps the old key is gone: refused, as a bad signature.
    resp = Api(steps[3].url).profile(tokens[0])
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "token_signature", resp.text


@pytest.mark.parametrize("value", ["too-short", ",".join([NEW, NEW + "x", NEW + "y", NEW + "z"])])
def test_bad_accepted_secrets_are_a_configuration_error(settings, value):
    result = run_binary(settings, "Gateway", [], {"JWT_ACCEPTED_SECRETS": value})
    assert result.returncode == 78, result.stdout + result.stderr
    assert "JWT_ACCEPTED_SECRETS" in result.stdout + result.stderr
