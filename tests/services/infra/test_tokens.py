"""Tokens are bound to this service and live a bounded time (issue 22, L4)."""

from __future__ import annotations

import time

import jwt
import pytest

from services.infra.tokens import InvalidToken, TokenPolicy, decode_token, issue_token

SECRET = "s" * 40


def _raw(**claims) -> str:
    now = int(time.time())
    base = {"sub": "42", "iat": now, "exp": now + 600, "aud": "imagepipe"}
    return jwt.encode({k: v for k, v in {**base, **claims}.items() if v is not None}, SECRET, algorithm="HS256")


def test_a_conforming_token_is_accepted_and_minted_as_such():
    assert decode_token(SECRET, _raw()).user_id == 42
    minted = jwt.decode(issue_token(SECRET, 7, ttl_s=300), options={"verify_signature": False})
    assert minted["aud"] == "imagepipe" and minted["exp"] - minted["iat"] == 300
    assert decode_token(SECRET, issue_token(SECRET, 7, ttl_s=300)).user_id == 7


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": None}, "aud"),  # no audience
        ({"aud": "another-service"}, "not for this service"),
        ({"iat": None}, "iat"),  # no issued-at: its lifetime cannot be judged
        ({"exp": int(time.time()) + 100 * 365 * 24 * 3600}, "longer than this service accepts"),  # a century
    ],
)
def test_tokens_for_another_service_or_too_long_a_life_are_refused(claims, why):
    with pytest.raises(InvalidToken, match=why):
        decode_token(SECRET, _raw(**claims))


def test_an_issuer_when_configured_must_match():
    policy = TokenPolicy(issuer="https://platform.example.com")
    with pytest.raises(InvalidToken):
        decode_token(SECRET, _raw(), policy)  # no iss
    with pytest.raises(InvalidToken):
        decode_token(SECRET, _raw(iss="https://evil.example"), policy)
    assert decode_token(SECRET, _raw(iss="https://platform.example.com"), policy).user_id == 42
    assert decode_token(SECRET, issue_token(SECRET, 3, policy=policy), policy).user_id == 3


def test_minting_refuses_a_lifetime_above_the_maximum():
    with pytest.raises(ValueError, match="at most"):
        issue_token(SECRET, 1, ttl_s=8 * 24 * 3600)
