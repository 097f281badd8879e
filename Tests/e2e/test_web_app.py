"""The web client served at /app/ (issue 15), driven in headless Chromium: two people sign up in
two browser contexts, find each other, exchange messages, see each other typing, online and the
read receipts, and the unread count in the conversation list. Screenshots go to docs/img/ (the
README shows them)."""

from __future__ import annotations

import pathlib
import time

import pytest
import requests

from browser import Chromium
from support import REPO, unique

pytestmark = pytest.mark.timeout(180)

SHOTS = REPO / "docs" / "img"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with Chromium(tmp_path_factory.mktemp("chromium")) as chromium:
        yield chromium


def fill(page, element_id: str, value: str) -> None:
    page.evaluate(f"(() => {{ const e = document.getElementById({element_id!r}); e.value = {value!r}; "
                  "e.dispatchEvent(new Event('input', {bubbles: true})); })()")


def click(page, selector: str) -> None:
    page.evaluate(f"document.querySelector({selector!r}).click()")


def sign_up(page, username: str) -> None:
    page.wait_for("!document.getElementById('auth').hidden")
    click(page, "#tab-signup")
    fill(page, "username", username)
    fill(page, "email", f"{username.lower()}@example.com")
    fill(page, "password", "correct horse battery")
    click(page, "#auth-submit")
    page.wait_for("!document.getElementById('chat').hidden && document.getElementById('connection').textContent === 'online'")


def open_chat_with(page, username: str) -> None:
    fill(page, "people-search", username[:6])
    page.wait_for(f"[...document.querySelectorAll('#people li')].some(li => li.textContent === {username!r})")
    page.evaluate(f"[...document.querySelectorAll('#people li')].find(li => li.textContent === {username!r}).click()")
    page.wait_for(f"document.getElementById('partner-name').textContent === {username!r} && !document.getElementById('composer').hidden")


def say(page, text: str) -> None:
    fill(page, "draft", text)
    page.evaluate("document.getElementById('composer').requestSubmit()")


def bubbles(page) -> list[list[str]]:
    return page.evaluate("[...document.querySelectorAll('#messages li')].map(li => [li.className, li.firstChild.textContent, "
                         "li.querySelector('.meta').textContent])")


def test_two_people_chat_in_the_web_app(cluster, browser):
    first, second = cluster.gateways[0], cluster.gateways[1]
    page = requests.get(first.url + "/app/", timeout=5)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    ann, bob = "ann" + unique()[-8:], "bob" + unique()[-8:]
    # Each person on another gateway (two browser contexts: separate storage).
    a = browser.new_page(first.url + "/app/")
    b = browser.new_page(second.url + "/app/")
    a.screenshot(SHOTS / "webapp-signup.png")
    sign_up(a, ann)
    sign_up(b, bob)
    open_chat_with(a, bob)
    # Ann types: Bob, who has not opened the conversation yet, sees the unread count instead.
    say(a, "Hi Bob! Trying the Swift chat web client.")
    b.wait_for("document.querySelector('#conversations .unread') && document.querySelector('#conversations .unread').textContent === '1'")
    b.wait_for(f"[...document.querySelectorAll('#conversations .name')].some(n => n.textContent === {ann!r})")
    b.screenshot(SHOTS / "webapp-unread.png")
    b.evaluate("document.querySelector('#conversations li').click()")
    b.wait_for(f"document.getElementById('partner-name').textContent === {ann!r}")
    b.wait_for("document.querySelectorAll('#messages li').length === 1")
    # Bob opened it: Ann's message turns Read, and Ann sees Bob online.
    a.wait_for("document.querySelector('#messages li.mine .meta').textContent.endsWith('Read')")
    a.wait_for("document.getElementById('partner-dot').classList.contains('online')")
    # Bob types: Ann sees "typing…" before the message arrives.
    fill(b, "draft", "Hello Ann")
    a.wait_for("!document.getElementById('typing').hidden")
    a.screenshot(SHOTS / "webapp-typing.png")
    b.evaluate("document.getElementById('composer').requestSubmit()")
    a.wait_for("document.querySelectorAll('#messages li').length === 2")
    a.wait_for("document.getElementById('typing').hidden")
    say(a, "Read receipts, typing and presence work across gateways too.")
    b.wait_for("document.querySelectorAll('#messages li').length === 3")
    a.wait_for("[...document.querySelectorAll('#messages li.mine .meta')].every(m => m.textContent.endsWith('Read'))")
    assert [(c, t) for c, t, _ in bubbles(a)] == [
        ("mine", "Hi Bob! Trying the Swift chat web client."), ("theirs", "Hello Ann"),
        ("mine", "Read receipts, typing and presence work across gateways too.")]
    assert [(c, t) for c, t, _ in bubbles(b)] == [
        ("theirs", "Hi Bob! Trying the Swift chat web client."), ("mine", "Hello Ann"),
        ("theirs", "Read receipts, typing and presence work across gateways too.")]
    time.sleep(0.2)
    a.screenshot(SHOTS / "webapp-conversation.png")
    for name in ("webapp-signup", "webapp-unread", "webapp-typing", "webapp-conversation"):
        assert (SHOTS / f"{name}.png").stat().st_size > 5000, name


def test_the_web_app_is_off_in_production_unless_asked(procs):
    import secrets

    env = {"CHAT_ENV": "production", "JWT_SECRET": secrets.token_hex(32), "ALLOWED_ORIGINS": "https://chat.example.com"}
    off = procs.gateway(env)
    assert requests.get(off.url + "/app/", timeout=5).status_code == 404
    on = procs.gateway({**env, "WEB_APP": "on"})
    assert requests.get(on.url + "/app/", timeout=5).status_code == 200
    assert requests.get(on.url + "/app/app.js", timeout=5).headers["Content-Type"].startswith("text/javascript")
