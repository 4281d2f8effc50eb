"""Settings: read from TOML and environment, validated fast with clear messages."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from portal.settings import SettingsError, load_settings

KEY = base64.b64encode(b"k" * 32).decode()
BASE_ENV = {
    "JOURPOST_KEKS": f"a:{KEY}",
    "JOURPOST_CURRENT_KEK": "a",
    "JOURPOST_BLIND_INDEX_KEY": KEY,
    "JOURPOST_SECRET_KEY": KEY,
    "JOURPOST_OIDC_ISSUER": "https://idp.example",
}


def test_environment_values_are_typed() -> None:
    s = load_settings(
        {
            **BASE_ENV,
            "JOURPOST_PORT": "9000",
            "JOURPOST_S3_SECURE": "false",
            "JOURPOST_MODE": "demo",
        }
    )
    assert s.port == 9000
    assert s.s3_secure is False
    assert s.keks == {"a": b"k" * 32}
    assert s.mode == "demo"


def test_toml_file_then_environment_wins(tmp_path: Path) -> None:
    cfg = tmp_path / "jourpost.toml"
    cfg.write_text('port = 7000\npublic_url = "http://portal.test"\n')
    s = load_settings({**BASE_ENV, "JOURPOST_CONFIG": str(cfg), "JOURPOST_PORT": "7001"})
    assert s.public_url == "http://portal.test"
    assert s.port == 7001


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "jourpost.toml"
    cfg.write_text("prot = 7000\n")
    with pytest.raises(SettingsError, match=r"unknown settings.*prot"):
        load_settings({**BASE_ENV, "JOURPOST_CONFIG": str(cfg)})


def test_settings_are_frozen() -> None:
    s = load_settings(BASE_ENV)
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"JOURPOST_DEV_IDP_ENABLED": "true"}, "refuses the development identity provider"),
        ({"JOURPOST_PUBLIC_URL": "http://portal.example"}, "requires an https"),
        ({"JOURPOST_KEKS": ""}, "key-encryption key is required"),
    ],
)
def test_production_refuses_unsafe_configuration(env: dict[str, str], message: str) -> None:
    environ = {
        **BASE_ENV,
        "JOURPOST_MODE": "production",
        "JOURPOST_PUBLIC_URL": "https://p.example",
    }
    environ.update(env)
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)


def test_production_with_safe_configuration_starts() -> None:
    s = load_settings(
        {**BASE_ENV, "JOURPOST_MODE": "production", "JOURPOST_PUBLIC_URL": "https://p.example"}
    )
    assert s.https


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"JOURPOST_KEKS": "a:bm90IDMyIGJ5dGVz"}, "must be 32 bytes"),
        ({"JOURPOST_KEKS": "broken"}, "must look like"),
        ({"JOURPOST_BLIND_INDEX_KEY": "!!"}, "must be base64"),
        ({"JOURPOST_CURRENT_KEK": "zz"}, "must name one of the keys"),
        ({"JOURPOST_PORT": "eighty"}, "must be an integer"),
        ({"JOURPOST_PUBLIC_URL": "https://p.example/"}, "without a trailing slash"),
    ],
)
def test_invalid_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({**BASE_ENV, **env})


def test_repr_never_shows_secrets() -> None:
    s = load_settings({**BASE_ENV, "JOURPOST_OIDC_CLIENT_SECRET": "topsecret-client"})
    text = repr(s)
    assert KEY not in text and "topsecret-client" not in text and "kkkk" not in text
    assert "public_url" in text
