"""The container image's run-time contract, rehearsed without Docker.

infra/deploy/Dockerfile, compose.yaml, the Kubernetes manifests and the systemd units all run
Jourpost as UID 10001 without capabilities on a read-only root file system, writing only to a
tmpfs at /tmp and to the data directory. No image is built here (no Docker daemon), so this test
does the same with the kernel's own means: a private mount namespace in which the whole root is
a read-only bind mount, a fresh tmpfs at /tmp, a data directory bound at /srv, then `jourpost db
upgrade` and `jourpost serve` as UID 10001 with no capabilities and no new privileges, on the
real PostgreSQL and SeaweedFS. Needs root (CI runs as root) for the namespace.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import drop_pg_database, make_pg_database
from tests.servers.net import free_port
from tests.servers.seaweedfs import SeaweedFS

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

IMAGE_USER = 10001
JOURPOST = Path(sys.executable).parent / "jourpost"


def _b64() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _as_in_the_image(argv: list[str], root: Path, data: Path) -> list[str]:
    """`jourpost ARGV` as the image runs it: read-only root, tmpfs /tmp, data at /srv, UID
    10001, no capabilities, no new privileges (all inside a private mount namespace)."""
    script = "\n".join(
        [
            "set -e",
            "mount --make-rprivate /",
            f"mount --rbind / {root}",
            f"mount -o remount,bind,ro {root}",
            f"mount -t tmpfs -o size=256m,mode=1777 tmpfs {root}/tmp",
            f"mount --bind {data} {root}/srv",
            f"exec /usr/sbin/chroot {root} /usr/bin/setpriv --reuid={IMAGE_USER}"
            f" --regid={IMAGE_USER} --clear-groups --inh-caps=-all --bounding-set=-all"
            ' --no-new-privs "$@"',
        ]
    )
    return ["/usr/bin/unshare", "--mount", "/bin/sh", "-c", script, "sh", str(JOURPOST), *argv]


@pytest.fixture
def image_env(pg_server: str, seaweed: SeaweedFS) -> Iterator[dict[str, str]]:
    """A production configuration as the image's ENV and a deployment's settings give it."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a private mount namespace (CI runs as root)")
    name, url = make_pg_database(pg_server)
    try:
        yield {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/tmp",
            "XDG_CACHE_HOME": "/tmp/cache",
            "PYTHONDONTWRITEBYTECODE": "1",
            "JOURPOST_MODE": "production",
            "JOURPOST_PUBLIC_URL": "https://jourpost.example.se",
            "JOURPOST_HOST": "127.0.0.1",
            "JOURPOST_PORT": str(free_port()),
            "JOURPOST_DATA_DIR": "/srv",
            "JOURPOST_DATABASE_URL": url,
            "JOURPOST_STORAGE_BACKEND": "s3",
            "JOURPOST_S3_ENDPOINT": seaweed.endpoint,
            "JOURPOST_S3_SECURE": "false",
            "JOURPOST_S3_ACCESS_KEY": seaweed.access_key,
            "JOURPOST_S3_SECRET_KEY": seaweed.secret_key,
            "JOURPOST_S3_BUCKET": f"ro-{secrets.token_hex(4)}",
            "JOURPOST_KEKS": f"k1:{_b64()}",
            "JOURPOST_CURRENT_KEK": "k1",
            "JOURPOST_BLIND_INDEX_KEY": _b64(),
            "JOURPOST_SECRET_KEY": _b64(),
            "JOURPOST_OIDC_ISSUER": "https://idp.example.invalid",
            "JOURPOST_OIDC_CLIENT_SECRET": secrets.token_urlsafe(16),
        }
    finally:
        drop_pg_database(name)


@pytest.fixture
def namespace_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(mount point of the read-only root, the data directory owned by the image's user)."""
    root = tmp_path / "root"
    data = tmp_path / "data"
    root.mkdir()
    data.mkdir(mode=0o700)
    os.chown(data, IMAGE_USER, IMAGE_USER)
    tmp_path.chmod(0o755)
    return root, data


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, type(exc).__name__


def _wait_ready(base: str, proc: subprocess.Popen[bytes], deadline: float) -> tuple[int, str]:
    status, body = 0, ""
    while time.monotonic() < deadline and proc.poll() is None:
        status, body = _get(f"{base}/readyz")
        if status == 200:
            break
        time.sleep(0.2)
    return status, body


def test_the_portal_migrates_and_serves_as_a_non_root_user_on_a_read_only_root(
    image_env: dict[str, str], namespace_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    root, data = namespace_dirs
    upgrade = subprocess.run(
        _as_in_the_image(["db", "upgrade"], root, data),
        env=image_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert upgrade.returncode == 0, upgrade.stderr[-2000:]

    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _as_in_the_image(["serve"], root, data),
            env=image_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{image_env['JOURPOST_PORT']}"
        status, body = _wait_ready(base, proc, time.monotonic() + 90)
        assert status == 200, (body, log.read_text()[-2000:])
        assert _get(f"{base}/healthz")[0] == 200
        assert _get(f"{base}/")[0] == 200  # a rendered page (templates, static files)
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    text = log.read_text()
    assert "Read-only file system" not in text and "Permission denied" not in text, text[-2000:]


def test_the_rehearsal_root_really_is_read_only(
    image_env: dict[str, str], namespace_dirs: tuple[Path, Path]
) -> None:
    """The same wrapper with the data directory on the read-only root: the migration (which
    creates the object directory under it) must fail — so the test above proves something."""
    root, data = namespace_dirs
    upgrade = subprocess.run(
        _as_in_the_image(["db", "upgrade"], root, data),
        env={**image_env, "JOURPOST_DATA_DIR": "/var/lib/jourpost-nowhere"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert upgrade.returncode != 0
    assert "Read-only file system" in upgrade.stderr or "Permission denied" in upgrade.stderr
