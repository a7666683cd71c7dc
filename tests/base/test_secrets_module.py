"""``mapflow_geo._secrets``: the one list of credential names and the one redaction."""

from __future__ import annotations

import ast
import base64
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mapflow_geo import _secrets, sources
from mapflow_geo._secrets import (
    REDACTED,
    is_secret_key,
    redact,
    redact_text,
    redact_url,
    secret_values,
)

EMAIL = "canary@mapflow.test"
KEY = "CANARY-KEY-7f3a9c2b1d"
RAW = f"{EMAIL}:{KEY}"
TOKEN = base64.b64encode(RAW.encode()).decode()


def test_imports_nothing_of_the_package():
    tree = ast.parse(Path(_secrets.__file__).read_text(encoding="utf-8"))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in names if m.startswith("mapflow_geo")]


def test_sources_reexports_the_one_redaction():
    assert sources.redact is redact and sources.is_secret_key is is_secret_key
    assert sources.REDACTED == REDACTED == "***"


# ----------------------------------------------------------------- token forms
def test_secret_values_of_a_basic_token():
    values = secret_values(TOKEN)
    for s in (TOKEN, RAW, KEY, f"Basic {TOKEN}", TOKEN.replace("=", "%3D")):
        assert s in values
    assert EMAIL not in values  # the email names the account; it is no secret
    assert list(values) == sorted(values, key=len, reverse=True)


def test_secret_values_of_a_raw_email_key_token():
    values = secret_values(RAW)
    assert {RAW, KEY, TOKEN, f"Basic {TOKEN}"} <= set(values)


def test_secret_values_of_an_opaque_token():
    assert set(secret_values(" opaque-bearer-token ")) >= {"opaque-bearer-token"}
    assert secret_values("") == secret_values(None) == ()
    short = base64.b64encode(b"me@x.org:k").decode()
    assert "k" not in secret_values(short)  # too short to hide usefully


def test_longest_first_hides_email_key_whole():
    assert redact_text(f"got {RAW}", secret_values(TOKEN)) == "got ***"


# ----------------------------------------------------------------- names
@pytest.mark.parametrize(
    "name",
    [
        # credential fields of request bodies
        "rasterPassword",
        "raster_password",
        "password",
        "token",
        "apikey",
        "api_key",
        "Authorization",
        "secret",
        # credential query parameters of tile URLs
        "auth",
        "passwd",
        "api-key",
        "apiKey",
        # and their relatives
        "access_token",
        "mapboxAccessToken",
        "client_secret",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
        "X-Amz-Credential",
        "signature",
    ],
)
def test_credential_names(name):
    assert is_secret_key(name) and is_secret_key(name, query=True)


@pytest.mark.parametrize("name", ["key", "sig", "KEY"])
def test_query_only_credential_names(name):
    assert is_secret_key(name, query=True) and not is_secret_key(name)


@pytest.mark.parametrize(
    "name", ["rasterLogin", "email", "mapflow_geo_key", "url", "name", "value", 3, None]
)
def test_not_credential_names(name):
    assert not is_secret_key(name) and not is_secret_key(name, query=True)


# ----------------------------------------------------------------- URLs
def test_redact_url_replaces_or_drops_credentials():
    url = "https://me:pw@tiles.example/{z}/{x}/{y}.png?style=a&access_token=t0k&key=k3y"
    assert (
        redact_url(url)
        == "https://***@tiles.example/{z}/{x}/{y}.png?style=a&access_token=***&key=***"
    )
    assert redact_url(url, drop=True) == "https://tiles.example/{z}/{x}/{y}.png?style=a"


def test_redact_url_keeps_other_urls_byte_for_byte():
    for url in (
        "https://tiles.example/{z}/{x}/{y}.png?uri=s3://b/k&v=%7Bq%7D",
        "s3://bucket/key.tif",
        "http://127.0.0.1:8000/rest/processings/p1/v2",
    ):
        assert redact_url(url) == url


def test_redact_url_quoted_names_fragment_and_known_secrets():
    assert (
        redact_url("https://h.example/?api%5Fkey=1&x=2") == "https://h.example/?api%5Fkey=***&x=2"
    )
    assert redact_url("https://h.example/cb#access_token=abc&state=s") == (
        "https://h.example/cb#access_token=***&state=s"
    )
    assert redact_url(f"https://h.example/{KEY}/t.png", [KEY]) == "https://h.example/***/t.png"
    assert redact_url("https://h.example/?sig=x&SIG=y", drop=True) == "https://h.example/"


# ----------------------------------------------------------------- text
def test_redact_text_cleans_urls_and_auth_headers():
    text = (
        f"upstream said: Authorization: Basic {TOKEN} from "
        "https://u:p@h.example/t?token=abc (see https://docs.example/x?page=2)"
    )
    out = redact_text(text)
    assert TOKEN not in out and "u:p@" not in out and "abc" not in out
    assert "Basic ***" in out and "https://docs.example/x?page=2" in out


def test_redact_text_keeps_prose():
    for text in (
        "Basic authentication required",
        "Bearer token expired for canary@mapflow.test",
        "AOI area exceeds the limit of 25 km²",
    ):
        assert redact_text(text) == text


# ----------------------------------------------------------------- structures
def test_redact_is_deep_and_leaves_the_input_alone():
    data = {
        "a": [{"rasterPassword": "x", "raster_password": "y", "token": "t"}],
        "rasterLogin": "me",
        "password": None,
        "t": ("plain", f"echo {KEY}"),
        "url": "https://u:p@h.example/{z}/{x}/{y}.png?key=k",
        "messages": [{"code": "c", "parameters": {"key": "max_res", "value": "1.2"}}],
        "n": 3,
    }
    out = redact(data, secret_values(TOKEN))
    assert out == {
        "a": [{"rasterPassword": "***", "raster_password": "***", "token": "***"}],
        "rasterLogin": "me",
        "password": None,
        "t": ("plain", "echo ***"),
        "url": "https://***@h.example/{z}/{x}/{y}.png?key=***",
        "messages": [{"code": "c", "parameters": {"key": "max_res", "value": "1.2"}}],
        "n": 3,
    }
    assert data["a"][0]["rasterPassword"] == "x" and data["t"][1] == f"echo {KEY}"


#: Keys never hold the marker's own character: a key of ``*`` could be rebuilt from the
#: marker ``***`` and its neighbours, which says nothing about redaction.
_keys = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, blacklist_characters=":*"),
    min_size=4,
    max_size=40,
)


def _strings(obj):
    """Every string value in a redacted structure (not its field names, which are ours)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)


@given(key=_keys, before=st.text(max_size=20), after=st.text(max_size=20))
@example(key="para", before="", after="")  # a key inside the field name "params"
@example(key="essa", before="", after="")  # … and inside "message"
def test_no_form_of_any_token_survives(key, before, after):
    raw = f"{EMAIL}:{key}"
    token = base64.b64encode(raw.encode()).decode()
    secrets = secret_values(token)
    for form in (token, raw, key, f"Basic {token}"):
        text = f"{before}{form}{after}"
        out = redact_text(text, secrets)
        assert form not in out
        values = list(_strings(redact({"message": text, "params": [text]}, secrets)))
        assert len(values) == 2
        assert not [v for v in values if form in v], values
