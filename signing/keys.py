"""Where the signing CA's private key lives.

`SignerKey` is agnostic as to where the cryptographic operation happens: a PEM file on disk
(`FileSignerKey`, development and demo only) or a PKCS#11 token such as an HSM or SoftHSM2
(`Pkcs11SignerKey`, production). The CA key signs certificates and CRLs; it never leaves the
token in production.

Threat model: whoever can use the CA key can mint a certificate in any chair's name, and so forge
a decision. In production the key stays in the HSM (non-extractable) and the PIN comes from a
secret store; a PEM key on disk is acceptable only for dev/demo, where the CA is not trusted by
anyone else.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, runtime_checkable

from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from signing.errors import SignerKeyError

if TYPE_CHECKING:
    from collections.abc import Callable

    from pkcs11 import PublicKey

KeyAlgorithm = Literal["ec", "rsa"]

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@runtime_checkable
class SignerKey(Protocol):
    """A private key that can sign, wherever it lives."""

    @property
    def public_key_info(self) -> asn1_keys.PublicKeyInfo:
        """The matching public key (SubjectPublicKeyInfo), for certificates and key ids."""
        ...

    @property
    def algorithm(self) -> KeyAlgorithm:
        """'ec' (ECDSA) or 'rsa' (RSASSA-PKCS1-v1_5)."""
        ...

    def sign(self, data: bytes, digest_algorithm: str = "sha256") -> bytes:
        """Hash `data` and sign it; ECDSA signatures are DER-encoded (as X.509 wants them)."""
        ...


def x509_signature_algorithm(key: SignerKey, digest_algorithm: str = "sha256") -> str:
    """The asn1crypto SignedDigestAlgorithm name for `key` and `digest_algorithm`."""
    suffix = "ecdsa" if key.algorithm == "ec" else "rsa"
    return f"{digest_algorithm}_{suffix}"


def _hash(digest_algorithm: str) -> hashes.HashAlgorithm:
    try:
        return _HASHES[digest_algorithm]()
    except KeyError:
        raise SignerKeyError(f"unsupported digest algorithm {digest_algorithm!r}") from None


class FileSignerKey:
    """A PEM private key read from disk once and kept parsed (dev/demo only).

    Parsing an RSA key costs tens of milliseconds; keeping the parsed key makes certificate
    issuance cost a signature, not a parse.
    """

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
        self._key = private_key
        der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._public_key_info = asn1_keys.PublicKeyInfo.load(der)

    @classmethod
    def from_pem_file(cls, path: Path, password: bytes | None = None) -> FileSignerKey:
        """Load an unencrypted (or `password`-protected) PEM private key."""
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=password)
        except (OSError, ValueError, TypeError) as exc:
            raise SignerKeyError(f"cannot load private key from {path}: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise SignerKeyError(f"{path}: only EC and RSA keys are supported")
        return cls(key)

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
        """The parsed key, for components that need a cryptography key object (OCSP, TSA)."""
        return self._key

    @property
    def public_key_info(self) -> asn1_keys.PublicKeyInfo:
        return self._public_key_info

    @property
    def algorithm(self) -> KeyAlgorithm:
        return "ec" if isinstance(self._key, ec.EllipticCurvePrivateKey) else "rsa"

    def sign(self, data: bytes, digest_algorithm: str = "sha256") -> bytes:
        algorithm = _hash(digest_algorithm)
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(algorithm))
        return self._key.sign(data, padding.PKCS1v15(), algorithm)


class Pkcs11SignerKey:
    """A private key on a PKCS#11 token (HSM in production, SoftHSM2 in tests).

    One logged-in session is opened lazily and reused; a lock serialises use because PKCS#11
    sessions are not safe for concurrent operations. For EC keys we hash here and use the raw
    CKM_ECDSA mechanism: SoftHSM 2.6.1 has no CKM_ECDSA_SHA256, and hashing outside the token
    is standard practice (the token still holds and uses the key).
    """

    def __init__(self, *, module_path: str, token_label: str, pin: str, key_label: str) -> None:
        self._module_path = module_path
        self._token_label = token_label
        self._pin = pin
        self._key_label = key_label
        self._lock = threading.Lock()
        self._session: Any = None
        self._private: Any = None
        self._public_key_info: asn1_keys.PublicKeyInfo | None = None
        self._algorithm: KeyAlgorithm = "ec"

    def _open(self) -> None:
        import pkcs11
        from pkcs11 import KeyType, ObjectClass
        from pkcs11.util.ec import encode_ec_public_key
        from pkcs11.util.rsa import encode_rsa_public_key

        try:
            lib = pkcs11.lib(self._module_path)
            token = lib.get_token(token_label=self._token_label)
            session = token.open(user_pin=self._pin)
            private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=self._key_label)
            public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=self._key_label)
        except pkcs11.PKCS11Error as exc:
            raise SignerKeyError(
                f"PKCS#11 key {self._key_label!r} on token {self._token_label!r}: "
                f"{type(exc).__name__} {exc}"
            ) from exc
        if private.key_type == KeyType.EC:
            self._algorithm = "ec"
            self._public_key_info = asn1_keys.PublicKeyInfo.load(
                encode_ec_public_key(cast("PublicKey", public))
            )
        elif private.key_type == KeyType.RSA:
            self._algorithm = "rsa"
            rsa_public = asn1_keys.RSAPublicKey.load(
                encode_rsa_public_key(cast("PublicKey", public))
            )
            self._public_key_info = asn1_keys.PublicKeyInfo(
                {
                    "algorithm": {"algorithm": "rsa", "parameters": None},
                    "public_key": rsa_public,
                }
            )
        else:
            session.close()
            raise SignerKeyError(f"unsupported PKCS#11 key type {private.key_type!r}")
        self._session, self._private = session, private

    def _ensure_open(self) -> None:
        if self._session is None:
            self._open()

    @property
    def public_key_info(self) -> asn1_keys.PublicKeyInfo:
        with self._lock:
            self._ensure_open()
            assert self._public_key_info is not None  # set by _open
            return self._public_key_info

    @property
    def algorithm(self) -> KeyAlgorithm:
        with self._lock:
            self._ensure_open()
            return self._algorithm

    def sign(self, data: bytes, digest_algorithm: str = "sha256") -> bytes:
        import pkcs11
        from pkcs11 import Mechanism
        from pkcs11.util.ec import encode_ecdsa_signature

        _hash(digest_algorithm)  # reject unknown digests early, with our error
        with self._lock:
            self._ensure_open()
            try:
                if self._algorithm == "ec":
                    digest = hashlib.new(digest_algorithm, data).digest()
                    raw = self._private.sign(digest, mechanism=Mechanism.ECDSA)
                    return bytes(encode_ecdsa_signature(raw))
                mechanism = {
                    "sha256": Mechanism.SHA256_RSA_PKCS,
                    "sha384": Mechanism.SHA384_RSA_PKCS,
                    "sha512": Mechanism.SHA512_RSA_PKCS,
                }[digest_algorithm]
                return bytes(self._private.sign(data, mechanism=mechanism))
            except pkcs11.PKCS11Error as exc:
                raise SignerKeyError(f"PKCS#11 signing failed: {type(exc).__name__}") from exc

    def close(self) -> None:
        """Close the token session (it is reopened on next use)."""
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = self._private = None
