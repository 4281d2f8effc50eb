"""What the running application holds: built once by create_app, reached via app.state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from auth.sessions import SessionPolicy
from portal.pii import Vault
from portal.settings import Settings
from storage import EncryptedObjectStore

if TYPE_CHECKING:
    from auth.oidc import RelyingParty
    from portal.account.service import StepUp
    from portal.chair_signing import SigningSetup
    from portal.metrics import Metrics
    from portal.notify.service import Mailer
    from signing.pki import DevPki


@runtime_checkable
class _HasBucket(Protocol):
    """A backend that creates its bucket (storage.S3Store, also behind the metrics wrapper)."""

    async def ensure_bucket(self) -> None:
        """Find or create the bucket, with object lock."""


@dataclass(slots=True)
class PortalState:
    """Long-lived objects of one portal instance (no request data)."""

    settings: Settings
    """The validated settings."""
    engine: AsyncEngine
    """Database engine."""
    sessionmaker: async_sessionmaker[AsyncSession]
    """Factory for per-request sessions."""
    vault: Vault
    """Blind index and field encryption."""
    policy: SessionPolicy
    """Session timeouts."""
    object_store: EncryptedObjectStore
    """The encrypted object store (`files` in handlers and services; `.store` is the raw
    storage.ObjectStore)."""
    metrics: Metrics
    """The instance's Prometheus metrics."""
    relying_party: RelyingParty | None = None
    """The OIDC relying party (created at start-up)."""
    signing: SigningSetup | None = None
    """What decision signing needs; None if off."""
    dev_pki: DevPki | None = None
    """The development PKI in demo/development mode."""
    mailer: Mailer | None = None
    """The notification sender; None: built from smtp_host when the dispatcher starts."""
    step_ups: dict[str, StepUp] = field(default_factory=dict)
    """What to do when the browser comes back from a step-up authentication, by purpose (the
    key its pending request has in the session's data); registered by the features that ask
    for one (decision signing, a chair's police-request approval). See
    portal.account.service.pending_step_up."""
    bucket_ready: bool = False
    """The S3 bucket was found or created with object lock (see `ensure_bucket`)."""
    principal_engine: AsyncEngine | None = None
    """What the principal is read with on every request, outside the request's transaction
    (portal.web.deps.provide_principal): `engine` in autocommit mode on PostgreSQL (no BEGIN and
    COMMIT round trips), `engine` itself on SQLite (there switching a connection to autocommit
    and back costs two hops to aiosqlite's thread); None: `engine`."""

    async def ensure_bucket(self) -> None:
        """Find or create the S3 bucket once; raise (storage.StorageError) while that fails.

        Not at start-up: the portal starts and serves pages while S3 is down; the lifespan
        retries this in the background, and `/readyz` reports the store until it succeeds.
        """
        if self.bucket_ready or self.settings.storage_backend != "s3":
            return
        store = self.object_store.store
        if isinstance(store, _HasBucket):
            await store.ensure_bucket()
        self.bucket_ready = True

    async def object_store_ping(self) -> None:
        """Raise when the object store cannot be reached (or its bucket isn't there yet)."""
        await self.ensure_bucket()
        await self.object_store.store.ping()
