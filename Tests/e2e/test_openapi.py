"""The OpenAPI document: served by the gateway, identical to docs/openapi.yaml, and valid."""
from pathlib import Path

import requests
import yaml
from openapi_spec_validator import validate

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


def test_gateway_serves_the_documented_openapi(gateway):
    resp = requests.get(f"{gateway.url}/api/openapi.yaml", timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/yaml")
    assert resp.content == DOC.read_bytes(), "the served document must be docs/openapi.yaml"


def test_openapi_document_is_valid_and_covers_the_routes():
    spec = yaml.safe_load(DOC.read_text())
    validate(spec)
    for path in ["/health", "/ready", "/api/auth/signup", "/api/auth/register", "/api/auth/login",
                 "/api/auth/refresh", "/api/auth/logout", "/api/auth/profile", "/api/users/me", "/socket.io/",
                 "/api/rooms", "/api/rooms/public", "/api/rooms/join", "/api/rooms/invite/{inviteCode}", "/api/rooms/{roomId}",
                 "/api/rooms/{roomId}/join", "/api/rooms/{roomId}/leave", "/api/rooms/{roomId}/invite",
                 "/api/rooms/{roomId}/members", "/api/rooms/{roomId}/members/{userId}"]:
        assert path in spec["paths"], f"{path} is not documented"
