"""Secrets out of messages: `redact` for known secrets, `redact_url` for the password of any URL."""

from __future__ import annotations

import pytest

from vigil.errors import redact, redact_url


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("http://vigil:hunter2@prom:9090/x", "http://vigil:***@prom:9090/x", id="user-and-password"),
        pytest.param("https://vigil:hun@ter2@prom/x", "https://vigil:***@prom/x", id="password-holding-an-at"),
        pytest.param("http://a@corp:hunter2@prom", "http://a@corp:***@prom", id="user-holding-an-at"),
        pytest.param("http://:hunter2@prom", "http://:***@prom", id="password-alone"),
        pytest.param(
            "query 'up': Prometheus at http://u:p1@a:1 and http://v:p2@b:2 failed",
            "query 'up': Prometheus at http://u:***@a:1 and http://v:***@b:2 failed",
            id="two-urls-in-a-message",
        ),
        pytest.param("['http://vigil:hunter2@prom:9090']", "['http://vigil:***@prom:9090']", id="quoted-in-a-list"),
        pytest.param("http://vigil:hunter2@host:notaport", "http://vigil:***@host:notaport", id="unparseable-port"),
    ],
)
def test_the_password_of_a_url_is_written_as_stars(text: str, shown: str) -> None:
    assert redact_url(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("http://prom:9090/api?who=a@b", id="at-in-the-query"),
        pytest.param("http://vigil@prom:9090/", id="user-without-password"),
        pytest.param("http://prom:9090/a:b@c", id="at-in-the-path"),
        pytest.param("mail ops@example.org at 10:30", id="not-a-url"),
    ],
)
def test_text_without_a_url_password_is_unchanged(text: str) -> None:
    assert redact_url(text) == text


def test_known_secrets_are_replaced_longest_first() -> None:
    assert redact("Basic dTpw and p", ["p", "dTpw"]) == "Basic *** and ***"
