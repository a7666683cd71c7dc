"""The redaction rules at their edges (DESIGN.md, *Retry and error policy*: every form of
the token — base64, the decoded ``email:key``, the key alone, URL-encoded —, credential
names, URL user-info and credential query parameters). Each test here kills mutants of
``_secrets.py`` that ``make mutate MODULE=mapflow_geo/_secrets.py`` (mutmut) generates;
docs/reliability.md lists them."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from mapflow_geo._secrets import (
    MIN_SECRET_LENGTH,
    REDACTED,
    is_secret_key,
    redact_text,
    redact_url,
    secret_values,
)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_every_form_of_a_basic_token_and_nothing_else():
    """The exact forms of a Basic token whose base64 holds ``+`` and ``/``: as given,
    ``Basic <token>``, ``email:key``, the key, and the URL-quoted spelling of each with
    ``/`` quoted too (``%2F``: a token in a URL path must not slip through)."""
    email_key = "me@x.org:pa>ss?word"
    token = _b64(email_key)
    assert "+" in token and "/" in token
    key = "pa>ss?word"
    plain = [token, email_key, key]
    want = {*plain, f"Basic {token}", *(quote(f, safe="") for f in plain)}
    assert set(secret_values(token)) == want
    assert all("/" not in f for f in secret_values(token) if "%" in f)


def test_the_key_is_everything_after_the_first_colon():
    """``email:key`` splits at its first ``:`` only: a key holding colons is hidden
    whole, never only its first part."""
    token = _b64("me@x.org:key:with:colons")
    values = secret_values(token)
    assert "key:with:colons" in values
    assert "key" not in values
    assert redact_text("the key key:with:colons", values) == f"the key {REDACTED}"


@pytest.mark.parametrize(
    "token",
    [
        _b64("ABCDEFGHIJKL"),  # valid base64, but no "email:key" inside
        "YTp-iY2Q=",  # base64 of "a:bcd" with a dash in it: not base64 at all
    ],
)
def test_an_opaque_token_has_only_its_own_forms(token):
    """A token that is not strict base64 of ``email:key`` (a bearer token) gives away
    only itself: as given, ``Basic <token>`` and URL-quoted; no decoded text is taken
    for a key (that would hide strings that are not secrets, or fail)."""
    want = {token, f"Basic {token}", quote(token, safe="")}
    assert set(secret_values(token)) == {w for w in want if len(w) >= MIN_SECRET_LENGTH}


def test_one_secret_given_as_a_string_and_short_strings_are_not_secrets():
    """``secrets`` may be one string; strings shorter than ``MIN_SECRET_LENGTH`` hide
    nothing (hiding ``"a"`` everywhere would hide nothing useful)."""
    assert redact_text("my s3cr3t-value here", "s3cr3t-value") == f"my {REDACTED} here"
    assert redact_url("https://h.example/s3cr3t-value/x", "s3cr3t-value") == (
        f"https://h.example/{REDACTED}/x"
    )
    assert redact_text("a cat", ["a", "ca"]) == "a cat"


def test_dotted_credential_names():
    """Names are compared without ``-``, ``_`` and ``.``: ``api.key`` is ``apikey``."""
    assert is_secret_key("api.key") and is_secret_key("API-Key") and is_secret_key("api_key")


def test_query_values_holding_equals_signs_are_hidden_whole():
    """``?key=a=b`` hides ``a=b`` whole (the name ends at the first ``=``)."""
    assert redact_url("https://h.example/t?key=abc=def&x=1") == (
        f"https://h.example/t?key={REDACTED}&x=1"
    )


def test_a_credential_parameter_without_a_value():
    """``?token&x=1`` (a name without ``=``) is shown as ``token=***``."""
    assert (
        redact_url("https://h.example/t?token&x=1") == f"https://h.example/t?token={REDACTED}&x=1"
    )


def test_dropping_a_credential_keeps_every_other_parameter_and_fragment_pair():
    """``drop=True`` removes the credential pairs only, in the query and in the fragment
    (OAuth implicit grants put ``access_token`` there), keeping the pairs after them."""
    url = "https://u:p@t.example/{z}/{x}/{y}.png?key=abc&uri=s3://b/k&style=x#access_token=t&s=1"
    assert (
        redact_url(url, drop=True) == "https://t.example/{z}/{x}/{y}.png?uri=s3://b/k&style=x#s=1"
    )


def test_a_password_holding_at_signs_is_hidden_whole():
    """User information ends at the *last* ``@`` of the authority: a password with an
    unescaped ``@`` leaks no part of itself."""
    assert redact_url("https://user:p@ss@h.example/x") == f"https://{REDACTED}@h.example/x"
    assert redact_url("https://user:p@ss@h.example/x", drop=True) == "https://h.example/x"


def test_an_unparsable_url_still_loses_its_secrets():
    """A URL ``urlsplit`` refuses (an unclosed IPv6 bracket) still has every given
    secret replaced."""
    assert redact_url("http://[::1/s3cr3t-value", ["s3cr3t-value"]) == f"http://[::1/{REDACTED}"
