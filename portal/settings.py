"""Jourpost settings: one frozen, typed object, read once at start.

Sources, later ones winning: built-in defaults, a TOML file (``JOURPOST_CONFIG`` or an explicit
path), then ``JOURPOST_<FIELD>`` environment variables. Nothing here is read at import time:
``load_settings()`` is called by the CLI, and tests build ``Settings`` directly.

Validation fails fast with a message naming the setting, so a misconfigured production
instance never starts half-secure (dev identity provider on, no key-encryption key, plain http).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from auth.oidc import DEFAULT_ACCEPTED_ACR
from portal.clientip import canonical_entry

Mode = Literal["production", "development", "demo"]

# Fictitious organisation numbers (Luhn-valid, in the unassigned 212999 series) for the demo's
# organisations, so the demo's e-archive packages name their archival creator like a real one.
DEMO_ARCHIVE_ORG_NUMBERS = (
    "Socialjouren Gävleborg=212999-0004",
    "Bollnäs=212999-0012",
    "Gävle=212999-0020",
    "Hofors=212999-0038",
    "Hudiksvall=212999-0046",
    "Ljusdal=212999-0053",
    "Nordanstig=212999-0061",
    "Ockelbo=212999-0079",
    "Ovanåker=212999-0087",
    "Sandviken=212999-0095",
    "Söderhamn=212999-0103",
)
_ORG_NUMBER = re.compile(r"\d{6}-\d{4}")


class SettingsError(ValueError):
    """The configuration is invalid; the message names the setting and what is wrong."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the portal needs to start. Secrets are bytes, never logged."""

    mode: Mode = "development"
    """production refuses development shortcuts; demo/development allow the dev IdP."""
    public_url: str = "http://127.0.0.1:8000"
    """The URL users reach the portal at (no trailing slash); https in production."""
    host: str = "127.0.0.1"
    """Address `jourpost serve` binds to."""
    port: int = 8000
    """Port `jourpost serve` binds to."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (CIDR) of the reverse proxies in front of the portal. Only from
    these peers are X-Forwarded-For/-Proto believed: the client is then the right-most address
    in X-Forwarded-For that is not itself a trusted proxy (portal.web.forwarded). Empty: no
    forwarded header is believed, the client is the TCP peer. Read in canonical form: an
    IPv4-mapped entry (::ffff:10.0.0.5, ::ffff:10.0.0.0/120) as IPv4 (portal.clientip)."""
    database_url: str = "sqlite+aiosqlite:///var/jourpost.sqlite3"
    """SQLAlchemy async URL: sqlite+aiosqlite:///PATH or postgresql+asyncpg://..."""
    db_pool_size: int = 10
    """Pooled database connections per instance (PostgreSQL)."""
    db_max_overflow: int = 5
    """Extra connections opened beyond the pool under load, closed again when idle."""
    db_pool_timeout_seconds: float = 5.0
    """How long a request waits for a pooled connection before it is answered 503."""
    db_connect_timeout_seconds: float = 5.0
    """How long opening a database connection may take before it counts as an outage."""
    db_statement_timeout_seconds: float = 15.0
    """Longest a single SQL statement may run (PostgreSQL statement_timeout); 0: no limit."""
    data_dir: str = "var"
    """Directory for local state: filesystem object store, dev PKI, dev identity-provider keys."""
    storage_backend: Literal["filesystem", "s3"] = "filesystem"
    """Where files go: the local filesystem (embedded default) or an S3-compatible store."""
    storage_path: str = ""
    """Root of the filesystem object store (default: <data_dir>/objects)."""
    s3_endpoint: str = ""
    """host:port of the S3 server."""
    s3_access_key: str = ""
    """S3 access key id."""
    s3_secret_key: str = field(default="", repr=False)
    """S3 secret key."""
    s3_bucket: str = "jourpost"
    """S3 bucket (created with object lock when missing)."""
    s3_secure: bool = True
    """Use TLS to reach S3."""
    s3_connect_timeout_seconds: float = 3.0
    """How long connecting to S3 may take per attempt."""
    s3_read_timeout_seconds: float = 30.0
    """How long S3 may stay silent during one request before the attempt fails."""
    s3_max_attempts: int = 3
    """Attempts per S3 request (the first included) before the object store counts as down."""
    upload_max_age_hours: float = 24.0
    """Incomplete uploads (S3 multipart uploads, temporary files) left by an instance killed
    mid-upload are aborted by the periodic jobs once started this long ago."""
    keks: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    """Key-encryption keys by key id (32 bytes each) for files and database fields."""
    current_kek: str = ""
    """Key id of the KEK used for new data; older ones only unwrap."""
    blind_index_key: bytes = field(default=b"", repr=False)
    """HMAC key for the searchable blind index of personal identity numbers (32 bytes)."""
    secret_key: bytes = field(default=b"", repr=False)
    """Secret for CSRF tokens (32 bytes)."""
    oidc_issuer: str = ""
    """Issuer URL of the OpenID provider (empty: the dev identity provider when enabled)."""
    oidc_client_id: str = "jourpost"
    """Client id registered at the OpenID provider."""
    oidc_client_secret: str = field(default="", repr=False)
    """Client secret registered at the OpenID provider."""
    oidc_claim_profile: Literal["oidc-sweden", "idura", "signicat"] = "oidc-sweden"
    """Which claim carries the personal identity number at this provider."""
    oidc_accepted_acr: tuple[str, ...] = DEFAULT_ACCEPTED_ACR
    """Authentication context classes accepted at login (LoA3 and up)."""
    dev_idp_enabled: bool = False
    """Mount the development identity provider at /dev-idp (never in production)."""
    session_idle_minutes: int = 30
    """A session ends after this long without a request."""
    session_absolute_hours: int = 12
    """A session ends this long after login whatever the activity."""
    login_start_limit: int = 30
    """Login starts one client address (IPv6: one /64) may make per minute, counted for all
    instances together; more answer 429. Raise it when many users share one address (an office
    behind NAT at a shift change)."""
    lookup_limit: int = 30
    """Person lookups one user may make within `lookup_window_minutes`; more answer 429."""
    lookup_window_minutes: int = 10
    """The window of `lookup_limit` (a night's real calls stay far below it)."""
    signing_ca_cert: str = ""
    """PEM of the signing CA that issues chairs' certificates (production; empty in demo)."""
    signing_ca_key_file: str = ""
    """PEM private key of the signing CA (only if no PKCS#11 module is configured)."""
    signing_pkcs11_module: str = ""
    """PKCS#11 module holding the signing CA key (e.g. an HSM's or SoftHSM2's .so)."""
    signing_pkcs11_token: str = ""
    """Token label of the CA key."""
    signing_pkcs11_pin: str = field(default="", repr=False)
    """User PIN of that token."""
    signing_pkcs11_key: str = ""
    """Label of the CA key on the token."""
    signing_tsa_url: str = ""
    """RFC 3161 timestamp authority used for every signature and archival timestamp."""
    signing_ocsp_base_url: str = ""
    """Base URL of the OCSP/CRL service for the signing CA (put in issued certificates)."""
    signing_trust_roots: tuple[str, ...] = ()
    """PEM files of the roots signed decisions chain to (the portal CA's root in production)."""
    smtp_host: str = ""
    """SMTP server for notifications (empty: notifications are only logged as counts)."""
    smtp_port: int = 25
    """SMTP port."""
    smtp_starttls: bool = False
    """Upgrade the SMTP connection with STARTTLS (required before authentication)."""
    smtp_username: str = ""
    """SMTP AUTH user name (empty: no authentication)."""
    smtp_password: str = field(default="", repr=False)
    """SMTP AUTH password."""
    smtp_ca_file: str = ""
    """PEM file of the CA the SMTP server's certificate must chain to (empty: system CAs)."""
    metrics_token: str = field(default="", repr=False)
    """Bearer token that opens /metrics (empty: /metrics answers 404)."""
    run_periodic_jobs: bool = True
    """This instance takes part in periodic work (one instance at a time runs each job)."""
    log_format: Literal["text", "json"] = "text"
    """Log lines as plain text or as one JSON object per line (for log collectors)."""
    mail_from: str = "jourpost@localhost"
    """Sender address of notification e-mail."""
    demo_activity: bool = True
    """`jourpost demo` generates a year of synthetic reports on first start (statistics)."""
    retention_rules: str = ""
    """TOML file with the retention (gallring) rules; empty: the defaults in portal/retention."""
    stats_suppress_below: int = 5
    """Counts from 1 to this minus one are shown as "<5" to political audiences (chairs)."""
    cost_population_percent: int = 50
    """Cost key: percent of the jour's cost shared by population; the rest by time used."""
    cost_period: str = "tertial"
    """Invoicing period for the cost allocation: tertial, quarter or year."""
    cost_annual_sek: int = 0
    """The jour's annual cost in SEK for the invoice basis (0: shares only, no amounts)."""
    archive_org_numbers: tuple[str, ...] = DEMO_ARCHIVE_ORG_NUMBERS
    """Organisation numbers of the archival creators, "Name=NNNNNN-NNNN" per organisation (the
    name as in Jourpost). E-archive packages name the exported organisation as archival creator
    (METS agent ARCHIVIST) with this number as its identification code. The default holds
    fictitious numbers for the demo's organisations: set the real ones in production."""
    archive_submission_agreement: str = "Jourpost demo, leveransöverenskommelse 2026:1 (fiktiv)"
    """Reference of the submission agreement (leveransöverenskommelse) e-archive packages are
    delivered under; written as METS altRecordID SUBMISSIONAGREEMENT (empty: left out)."""

    def archive_org_number(self, name: str) -> str:
        """The organisation number of the named archival creator ("" when not configured)."""
        for entry in self.archive_org_numbers:
            key, _, number = entry.partition("=")
            if key.strip() == name:
                return number.strip()
        return ""

    @property
    def https(self) -> bool:
        """True when users reach the portal over TLS (cookies get __Host- and Secure)."""
        return self.public_url.startswith("https://")

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite database."""
        return self.database_url.startswith("sqlite")

    @property
    def object_root(self) -> Path:
        """Root directory of the filesystem object store."""
        return Path(self.storage_path or Path(self.data_dir) / "objects")

    @property
    def effective_oidc_issuer(self) -> str:
        """The configured issuer, or the mounted dev identity provider's."""
        return self.oidc_issuer or f"{self.public_url}/dev-idp"

    def validate(self) -> Settings:
        """Raise SettingsError for an unsafe or inconsistent configuration; return self."""
        problems: list[str] = []
        if self.mode not in ("production", "development", "demo"):
            problems.append(
                f"JOURPOST_MODE must be production, development or demo, not {self.mode!r}"
            )
        if not self.public_url.startswith(("http://", "https://")) or self.public_url.endswith("/"):
            problems.append("JOURPOST_PUBLIC_URL must be an http(s) URL without a trailing slash")
        if not self.keks:
            problems.append("JOURPOST_KEKS is missing: at least one key-encryption key is required")
        for kid, key in self.keks.items():
            if len(key) != 32:
                problems.append(f"JOURPOST_KEKS: key {kid!r} must be 32 bytes (base64 of 32 bytes)")
        if self.keks and self.current_kek not in self.keks:
            problems.append("JOURPOST_CURRENT_KEK must name one of the keys in JOURPOST_KEKS")
        if len(self.blind_index_key) < 32:
            problems.append("JOURPOST_BLIND_INDEX_KEY must be at least 32 bytes (base64)")
        if len(self.secret_key) < 32:
            problems.append("JOURPOST_SECRET_KEY must be at least 32 bytes (base64)")
        if self.storage_backend == "s3" and not (self.s3_endpoint and self.s3_access_key):
            problems.append("JOURPOST_S3_ENDPOINT and JOURPOST_S3_ACCESS_KEY are required for s3")
        if not self.dev_idp_enabled and not self.oidc_issuer:
            problems.append(
                "JOURPOST_OIDC_ISSUER is required when the dev identity provider is off"
            )
        if self.mode == "production":
            if self.dev_idp_enabled:
                problems.append(
                    "production mode refuses the development identity provider "
                    "(JOURPOST_DEV_IDP_ENABLED must be false)"
                )
            if not self.https:
                problems.append("production mode requires an https JOURPOST_PUBLIC_URL")
        if self.signing_ca_cert and not (self.signing_tsa_url and self.signing_trust_roots):
            problems.append(
                "JOURPOST_SIGNING_TSA_URL and JOURPOST_SIGNING_TRUST_ROOTS are required with a "
                "signing CA"
            )
        if self.signing_ca_cert and not (self.signing_pkcs11_module or self.signing_ca_key_file):
            problems.append("the signing CA needs a key: a PKCS#11 module or a key file")
        if not 0 <= self.cost_population_percent <= 100:
            problems.append("JOURPOST_COST_POPULATION_PERCENT must be between 0 and 100")
        if self.cost_period not in ("tertial", "quarter", "year"):
            problems.append("JOURPOST_COST_PERIOD must be tertial, quarter or year")
        if self.login_start_limit < 1:
            problems.append("JOURPOST_LOGIN_START_LIMIT must be >= 1")
        if self.lookup_limit < 1 or self.lookup_window_minutes < 1:
            problems.append("JOURPOST_LOOKUP_LIMIT and JOURPOST_LOOKUP_WINDOW_MINUTES must be >= 1")
        if self.stats_suppress_below < 1 or self.cost_annual_sek < 0:
            problems.append(
                "JOURPOST_STATS_SUPPRESS_BELOW must be >= 1, JOURPOST_COST_ANNUAL_SEK >= 0"
            )
        if self.upload_max_age_hours <= 0:
            problems.append("JOURPOST_UPLOAD_MAX_AGE_HOURS must be > 0")
        if self.db_pool_size < 1 or self.db_max_overflow < 0 or self.s3_max_attempts < 1:
            problems.append(
                "JOURPOST_DB_POOL_SIZE and JOURPOST_S3_MAX_ATTEMPTS must be >= 1, "
                "JOURPOST_DB_MAX_OVERFLOW >= 0"
            )
        timeouts = (
            self.db_pool_timeout_seconds,
            self.db_connect_timeout_seconds,
            self.s3_connect_timeout_seconds,
            self.s3_read_timeout_seconds,
        )
        if min(timeouts) <= 0 or self.db_statement_timeout_seconds < 0:
            problems.append("database and S3 timeouts must be positive (statement timeout >= 0)")
        if self.smtp_username and not self.smtp_starttls:
            problems.append(
                "JOURPOST_SMTP_USERNAME needs JOURPOST_SMTP_STARTTLS=true: "
                "the password must not cross the network in clear"
            )
        if self.log_format not in ("text", "json"):
            problems.append("JOURPOST_LOG_FORMAT must be text or json")
        for entry in self.archive_org_numbers:
            org, sep, number = entry.partition("=")
            if not (sep and org.strip() and _ORG_NUMBER.fullmatch(number.strip())):
                problems.append(
                    "JOURPOST_ARCHIVE_ORG_NUMBERS entries look like 'Name=NNNNNN-NNNN', "
                    f"not {entry!r}"
                )
        proxies: list[str] = []
        for entry in self.trusted_proxies:
            try:
                proxies.append(canonical_entry(entry))
            except ValueError:
                problems.append(
                    "JOURPOST_TRUSTED_PROXIES entries are IP addresses or networks "
                    f"(10.0.0.5, 10.0.0.0/24, ::1, ::ffff:10.0.0.5), not {entry!r}"
                )
        if problems:
            raise SettingsError("Invalid configuration:\n  - " + "\n  - ".join(problems))
        if tuple(proxies) != self.trusted_proxies:
            return replace(self, trusted_proxies=tuple(proxies))
        return self


def _decode_key(name: str, value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SettingsError(f"{name} must be base64") from exc


def _coerce(name: str, current: Any, raw: Any) -> Any:
    """Convert a TOML or environment value to the type of the field's default."""
    env_name = f"JOURPOST_{name.upper()}"
    if name == "keks":
        items: list[tuple[Any, Any]] = []
        if isinstance(raw, Mapping):
            items = list(raw.items())
        else:  # "kid1:BASE64,kid2:BASE64"
            for part in str(raw).split(","):
                if not part.strip():
                    continue
                kid, sep, value = part.partition(":")
                if not sep:
                    raise SettingsError(f"{env_name} must look like 'kid1:BASE64,kid2:BASE64'")
                items.append((kid, value))
        return {str(k).strip(): _decode_key(env_name, str(v).strip()) for k, v in items}
    if isinstance(current, bytes):
        return _decode_key(env_name, str(raw))
    if isinstance(current, bool):
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("1", "true", "yes", "on"):
            return True
        if str(raw).lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{env_name} must be true or false")
    if isinstance(current, int):
        try:
            return int(raw)
        except ValueError as exc:
            raise SettingsError(f"{env_name} must be an integer") from exc
    if isinstance(current, float):
        try:
            return float(raw)
        except ValueError as exc:
            raise SettingsError(f"{env_name} must be a number") from exc
    if isinstance(current, tuple):
        if isinstance(raw, list | tuple):
            return tuple(str(x) for x in raw)
        return tuple(x.strip() for x in str(raw).split(",") if x.strip())
    return str(raw)


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    **overrides: Any,
) -> Settings:
    """Build validated settings from a TOML file, the environment and explicit overrides."""
    env = os.environ if environ is None else environ
    path = config_file or env.get("JOURPOST_CONFIG")
    values: dict[str, Any] = {}
    defaults = Settings()
    known = {f.name for f in fields(Settings)}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise SettingsError(f"cannot read configuration file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"configuration file {path} is not valid TOML: {exc}") from exc
        unknown = set(data) - known
        if unknown:
            raise SettingsError(f"unknown settings in {path}: {', '.join(sorted(unknown))}")
        for name, raw in data.items():
            values[name] = _coerce(name, getattr(defaults, name), raw)
    for name in known:
        raw_env = env.get(f"JOURPOST_{name.upper()}")
        if raw_env is not None:
            values[name] = _coerce(name, getattr(defaults, name), raw_env)
    values.update(overrides)
    return replace(defaults, **values).validate()
