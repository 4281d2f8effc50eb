"""What the running application holds: built once by create_app, reached via app.state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from auth.sessions import SessionPolicy
from portal.pii import Vault
from portal.settings import Settings

if TYPE_CHECKING:
    from auth.oidc import RelyingParty


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
    relying_party: RelyingParty | None = None
    """The OIDC relying party (created at start-up)."""
    object_store: Any = None
    """The encrypted object store (storage.EncryptedObjectStore)."""
    signing: Any = None
    """What decision signing needs (portal.decisions.signing.SigningSetup); None if off."""
    dev_pki: Any = None
    """The development PKI (signing.pki.DevPki) in demo/development mode."""
    mailer: Any = None
    """The notification sender (portal.notify.service.Mailer); None: built from smtp_host."""
    metrics: Any = None
    """The instance's Prometheus metrics (portal.metrics.Metrics)."""
    bucket_ready: bool = False
    """The S3 bucket was found or created with object lock (see `ensure_bucket`)."""

    async def ensure_bucket(self) -> None:
        """Find or create the S3 bucket once; raise (storage.StorageError) while that fails.

        Not at start-up: the portal starts and serves pages while S3 is down; the lifespan
        retries this in the background, and `/readyz` reports the store until it succeeds.
        """
        if self.bucket_ready or self.settings.storage_backend != "s3":
            return
        await self.object_store.store.ensure_bucket()
        self.bucket_ready = True

    async def object_store_ping(self) -> None:
        """Raise when the object store cannot be reached (or its bucket isn't there yet)."""
        if self.object_store is not None:
            await self.ensure_bucket()
            await self.object_store.ping()
        elif not self.settings.object_root.is_dir():
            raise FileNotFoundError("object store root missing")
