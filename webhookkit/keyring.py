"""The JWS key set kept in the store, so every process signs with keys every process publishes.

On a durable store (SQLite, PostgreSQL) with no key configured, :func:`open_key_set` loads the
key set from the store; the first process to find it empty creates one RS256 key (one of
several racing processes wins, the others load its key). Rotation steps go to the store, and
every process re-reads a one-row version counter at most every ``refresh`` seconds (5 s by
default; on PostgreSQL also at once on ``NOTIFY webhookkit_keys``), so after a change each
process signs with, and publishes, the new state within that bound.

A configured key (PEM from a file or an environment variable) wins: it is used as given and
nothing about it is stored. Private keys are stored as PKCS#8 PEM, encrypted with AES-256-GCM
when an encryption key is given (``WEBHOOKKIT_KEY_ENCRYPTION_KEY``: 32 bytes, base64).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._secret import Secret
from .clock import Clock, SystemClock
from .exceptions import ConfigurationError, InvalidKeyError, StoreError
from .signing.keys import (
    DEFAULT_RETIRE_AFTER,
    KeySet,
    KeyState,
    PublishedKey,
    SigningKey,
    generate_key,
    load_key,
)
from .stores.base import KeyNotifier, KeyStore, Store, StoredKey
from .stores.memory import MemoryStore

__all__ = [
    "DEFAULT_REFRESH",
    "ENCRYPTION_KEY_ENV",
    "KeySetHandle",
    "LocalKeySet",
    "StoredKeySet",
    "encryption_key_from",
    "local_key_set",
    "open_key_set",
]

log = logging.getLogger("webhookkit.signing")

#: Environment variable holding the key that encrypts stored private keys (base64, 32 bytes).
ENCRYPTION_KEY_ENV: Final = "WEBHOOKKIT_KEY_ENCRYPTION_KEY"
#: Seconds between two looks at the store's key version, in every process.
DEFAULT_REFRESH: Final = 5.0
PLAIN: Final = "none"
AES_GCM: Final = "aes-256-gcm"
_NONCE_BYTES: Final = 12

ConfiguredKey = KeySet | SigningKey | bytes | str


def encryption_key_from(
    value: bytes | str | Secret | None = None, *, environ: Mapping[str, str] | None = None
) -> bytes | None:
    """The 32-byte AES key: ``value`` (raw 32 bytes, or base64 text of them), else the
    environment variable ``WEBHOOKKIT_KEY_ENCRYPTION_KEY``, else None (keys stored in clear)."""
    if isinstance(value, Secret):
        value = value.reveal()
    if value is None:
        value = (os.environ if environ is None else environ).get(ENCRYPTION_KEY_ENV) or None
        if value is None:
            return None
    if isinstance(value, bytes) and len(value) == 32:
        return value
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    try:
        raw = base64.b64decode(text.strip().replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        # Never quote the value: it is a secret even when malformed.
        raise ConfigurationError(
            f"encryption_key: expected 32 bytes in base64 ({ENCRYPTION_KEY_ENV}), "
            "e.g. from `python -c 'import os,base64;print(base64.b64encode(os.urandom(32))"
            ".decode())'`",
            field="encryption_key",
        )
    return raw


def _aad(kid: str) -> bytes:
    # Binds a ciphertext to its row: a blob moved to another kid fails to decrypt.
    return b"webhookkit-signing-key:" + kid.encode("ascii")


def seal(key: SigningKey, encryption_key: bytes | None) -> tuple[bytes, str]:
    """The stored form of ``key``'s private half and its ``encryption`` label."""
    pem = key.private_pem()
    if encryption_key is None:
        return pem, PLAIN
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(encryption_key).encrypt(nonce, pem, _aad(key.kid)), AES_GCM


def unseal(row: StoredKey, encryption_key: bytes | None) -> SigningKey:
    """The signing key of a stored row; errors name the kid, never the material."""
    if row.encryption == PLAIN:
        pem = row.private_key
    elif row.encryption == AES_GCM:
        if encryption_key is None:
            raise InvalidKeyError(
                f"keys: stored key {row.kid!r} is encrypted; set {ENCRYPTION_KEY_ENV}",
                field="encryption_key",
            )
        blob = row.private_key
        try:
            pem = AESGCM(encryption_key).decrypt(
                blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(row.kid)
            )
        except (InvalidTag, ValueError):
            raise InvalidKeyError(
                f"keys: cannot decrypt stored key {row.kid!r}: wrong {ENCRYPTION_KEY_ENV}?",
                field="encryption_key",
            ) from None
    else:
        raise InvalidKeyError(
            f"keys: stored key {row.kid!r} has unknown encryption {row.encryption!r}",
            field="keys",
        )
    key = load_key(pem)
    if key.kid != row.kid or key.alg != row.alg:
        raise InvalidKeyError(f"keys: stored key {row.kid!r} does not match its kid", field="keys")
    return key


class _SharedKeySet(KeySet):
    """The live key set a signer reads; its contents come from the store only."""

    def _replace(self, entries: list[PublishedKey]) -> None:
        self._entries = {e.kid: e for e in entries}

    @staticmethod
    def _refusal() -> InvalidKeyError:
        return InvalidKeyError(
            "keys: this key set is kept in the store and shared by every process; rotate it "
            "with the async steps of kit.keys: `await kit.keys.add(key)`, "
            "`await kit.keys.activate(kid)`, `await kit.keys.prune()`",
            field="keys",
        )

    def add(self, key: SigningKey, state: KeyState = KeyState.NEXT) -> PublishedKey:
        raise self._refusal()

    def activate(
        self,
        kid: str,
        *,
        retire_after: timedelta = DEFAULT_RETIRE_AFTER,
        now: datetime | None = None,
    ) -> None:
        raise self._refusal()

    def retire(self, kid: str, *, until: datetime | None = None) -> None:
        raise self._refusal()

    def remove(self, kid: str) -> None:
        raise self._refusal()

    def prune(self, now: datetime | None = None) -> list[str]:
        raise self._refusal()


class KeySetHandle:
    """The kit's signing keys and the async rotation steps, wherever the keys live.

    ``keys`` is the live :class:`KeySet` a :class:`JWSSigner` signs with. ``stored`` tells
    whether the steps go to the store (every process sees them) or stay in this process.
    """

    stored: bool = False

    def __init__(self, keys: KeySet, clock: Clock | None = None) -> None:
        self.keys = keys
        self._clock: Clock = clock if clock is not None else SystemClock()

    def _now(self, now: datetime | None) -> datetime:
        return now if now is not None else self._clock.now()

    # -- reading (the same as KeySet's) ----------------------------------------------------
    @property
    def active(self) -> SigningKey:
        return self.keys.active

    def get(self, kid: str) -> PublishedKey:
        return self.keys.get(kid)

    def published(self, now: datetime | None = None) -> list[PublishedKey]:
        return self.keys.published(self._now(now))

    def jwks(self, now: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
        return self.keys.jwks(self._now(now))

    def __contains__(self, kid: object) -> bool:
        return kid in self.keys

    def __iter__(self) -> Iterator[PublishedKey]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    # -- rotating ------------------------------------------------------------------------
    async def add(self, key: SigningKey | None = None, *, alg: str = "RS256") -> PublishedKey:
        """Step 1: publish ``key`` (a new ``alg`` key when None) as ``next``."""
        raise NotImplementedError

    async def activate(
        self,
        kid: str,
        *,
        retire_after: timedelta = DEFAULT_RETIRE_AFTER,
        now: datetime | None = None,
    ) -> None:
        """Step 2: ``kid`` signs; the previous key stays published for ``retire_after``."""
        raise NotImplementedError

    async def retire(self, kid: str, *, until: datetime | None = None) -> None:
        raise NotImplementedError

    async def remove(self, kid: str) -> None:
        raise NotImplementedError

    async def prune(self, now: datetime | None = None) -> list[str]:
        """Step 3: drop retired keys past their date; returns their kids."""
        raise NotImplementedError

    async def refresh(self) -> bool:
        """Re-read the keys now if they changed; True if they did."""
        return False

    async def aclose(self) -> None:
        """Stop following the store."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.keys!r})"


async def _generated(alg: str) -> SigningKey:
    """A new key, made off the event loop (an RSA key takes up to a second of CPU)."""
    return await asyncio.to_thread(generate_key, alg)


class LocalKeySet(KeySetHandle):
    """Keys held by this process alone: configured ones, or a memory store's generated key."""

    async def add(self, key: SigningKey | None = None, *, alg: str = "RS256") -> PublishedKey:
        return self.keys.add(key if key is not None else await _generated(alg))

    async def activate(
        self,
        kid: str,
        *,
        retire_after: timedelta = DEFAULT_RETIRE_AFTER,
        now: datetime | None = None,
    ) -> None:
        self.keys.activate(kid, retire_after=retire_after, now=self._now(now))

    async def retire(self, kid: str, *, until: datetime | None = None) -> None:
        self.keys.retire(kid, until=until)

    async def remove(self, kid: str) -> None:
        self.keys.remove(kid)

    async def prune(self, now: datetime | None = None) -> list[str]:
        return self.keys.prune(self._now(now))


class StoredKeySet(KeySetHandle):
    """Keys kept in a :class:`~webhookkit.stores.base.KeyStore`, followed by every process.

    Each step is written to the store first, then this process re-reads the keys at once;
    others re-read within ``refresh`` seconds (sooner on PostgreSQL's NOTIFY).
    """

    stored = True

    def __init__(
        self,
        store: KeyStore,
        clock: Clock | None = None,
        *,
        encryption_key: bytes | None = None,
        refresh: float = DEFAULT_REFRESH,
    ) -> None:
        if not refresh > 0:
            raise ConfigurationError(
                "refresh: must be a positive number of seconds", field="refresh"
            )
        super().__init__(_SharedKeySet(), clock)
        self._store = store
        self._encryption_key = encryption_key
        self._refresh = refresh
        self._version: int | None = None
        self._loaded: dict[str, SigningKey] = {}
        self._rows_encryption: dict[str, str] = {}
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listening = False
        self._reload_lock = asyncio.Lock()

    @property
    def version(self) -> int | None:
        """The store's key version this process last loaded."""
        return self._version

    async def open(self, alg: str = "RS256") -> None:
        """Load the keys, creating the first one if the store has none; then follow them."""
        if self._task is not None:
            return
        await self._reload()
        if len(self.keys) == 0:
            key = await _generated(alg)
            created = await self._store.add_key(self._row(key, KeyState.ACTIVE), only_if_empty=True)
            await self._reload()
            # Who created it matters when reading logs of several processes starting at once.
            log.info(
                "signing keys: %s key %s in the store",
                "created" if created else "loaded another process's",
                self.keys.active.kid,
            )
        self.keys.active  # noqa: B018 - raises a clear error if the store has no active key
        unencrypted = [k for k, r in self._rows_encryption.items() if r == PLAIN]
        if self._encryption_key is not None and unencrypted:
            log.warning(
                "signing keys: %s stored without encryption (before %s was set); rotate "
                "them to store the new keys encrypted",
                ", ".join(unencrypted),
                ENCRYPTION_KEY_ENV,
            )
        if isinstance(self._store, KeyNotifier):
            try:
                self._listening = await self._store.add_keys_listener(self._poke.set)
            except StoreError as exc:
                log.warning("signing keys: no change notifications, polling only: %s", exc)
        self._task = asyncio.get_running_loop().create_task(
            self._follow(), name="webhookkit-signing-keys"
        )

    def _row(self, key: SigningKey, state: KeyState) -> StoredKey:
        blob, encryption = seal(key, self._encryption_key)
        now = self._clock.now()
        return StoredKey(
            kid=key.kid,
            alg=key.alg,
            state=state.value,
            private_key=blob,
            encryption=encryption,
            retire_at=None,
            created_at=now,
            updated_at=now,
        )

    async def _reload(self) -> None:
        async with self._reload_lock:
            # The version first: a change landing between the two reads is seen next time.
            version = await self._store.keys_version()
            rows = await self._store.load_keys()
            entries: list[PublishedKey] = []
            loaded: dict[str, SigningKey] = {}
            for row in rows:
                key = self._loaded.get(row.kid)
                if key is None:
                    # Off the event loop: loading an RSA key checks it, tens of milliseconds
                    # of CPU that would stall every send of this process.
                    key = await asyncio.to_thread(unseal, row, self._encryption_key)
                loaded[row.kid] = key
                entries.append(PublishedKey(key, KeyState(row.state), row.retire_at))
            self._loaded = loaded
            self._rows_encryption = {r.kid: r.encryption for r in rows}
            assert isinstance(self.keys, _SharedKeySet)
            self.keys._replace(entries)
            self._version = version

    async def refresh(self) -> bool:
        if await self._store.keys_version() == self._version:
            return False
        await self._reload()
        return True

    async def _follow(self) -> None:
        failing = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self._refresh)
            self._poke.clear()
            try:
                if await self.refresh():
                    log.debug("signing keys: reloaded version %s", self._version)
            except Exception as exc:
                # Keep signing with what we have (the store may be down for a while); say so
                # once per outage, and look again at the next tick.
                if not failing:
                    log.warning("signing keys: reload failed, keeping the current keys: %s", exc)
                failing = True
            else:
                if failing:
                    log.warning("signing keys: reloading works again (version %s)", self._version)
                failing = False

    async def add(self, key: SigningKey | None = None, *, alg: str = "RS256") -> PublishedKey:
        await self._reload()
        new = key if key is not None else await _generated(alg)
        if new.kid in self.keys:
            raise InvalidKeyError(f"keys: kid {new.kid!r} is already in the set", field="keys")
        if not await self._store.add_key(self._row(new, KeyState.NEXT), only_if_empty=False):
            raise InvalidKeyError(f"keys: kid {new.kid!r} is already in the set", field="keys")
        await self._reload()
        return self.keys.get(new.kid)

    async def activate(
        self,
        kid: str,
        *,
        retire_after: timedelta = DEFAULT_RETIRE_AFTER,
        now: datetime | None = None,
    ) -> None:
        at = self._now(now)
        await self._reload()
        self.keys.get(kid)  # a clear error for an unknown kid
        if not await self._store.update_key_state(
            kid, KeyState.ACTIVE.value, retire_at=None, now=at, retire_active_at=at + retire_after
        ):
            raise InvalidKeyError(f"keys: no key with kid {kid!r}", field="keys")
        await self._reload()

    async def retire(self, kid: str, *, until: datetime | None = None) -> None:
        await self._reload()
        if self.keys.get(kid).state is KeyState.ACTIVE:
            raise InvalidKeyError(
                f"keys: {kid!r} is the active key; activate another key first", field="keys"
            )
        if not await self._store.update_key_state(
            kid, KeyState.RETIRED.value, retire_at=until, now=self._clock.now()
        ):
            raise InvalidKeyError(f"keys: no key with kid {kid!r}", field="keys")
        await self._reload()

    async def remove(self, kid: str) -> None:
        await self._reload()
        if self.keys.get(kid).state is KeyState.ACTIVE:
            raise InvalidKeyError(f"keys: {kid!r} is the active key", field="keys")
        await self._store.delete_key(kid)
        await self._reload()

    async def prune(self, now: datetime | None = None) -> list[str]:
        at = self._now(now)
        await self._reload()
        gone = [e.kid for e in self.keys if not e.published_at(at)]
        for kid in gone:
            await self._store.delete_key(kid)
        if gone:
            await self._reload()
        return gone

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if isinstance(self._store, KeyNotifier):
            self._store.remove_keys_listener(self._poke.set)

    def __repr__(self) -> str:
        return f"StoredKeySet(version={self._version}, {self.keys!r})"


def _durable(store: Store) -> bool:
    return not isinstance(store, MemoryStore)


def local_key_set(configured: ConfiguredKey | None, clock: Clock | None = None) -> KeySetHandle:
    """The keys a kit holds before :func:`open_key_set` runs (and on a memory store): the
    configured ones, or one new RS256 key."""
    return LocalKeySet(KeySet.of(configured), clock)


async def open_key_set(
    store: Store,
    configured: ConfiguredKey | None,
    clock: Clock | None = None,
    *,
    encryption_key: bytes | str | Secret | None = None,
    refresh: float = DEFAULT_REFRESH,
    current: KeySetHandle | None = None,
) -> KeySetHandle:
    """The kit's signing keys for ``store``.

    ``current`` is the handle the caller holds (from :func:`local_key_set`, or an earlier
    call): it is returned when it still fits, a stored one reopened after ``aclose()``, so
    calling this on every start costs nothing and makes no second key.

    - ``configured`` given (KeySet, key or PEM): used as is, nothing stored. A key generated
      in this process (not loaded from a PEM) on a durable store is logged as a WARNING:
      other processes and the next start will not have it.
    - memory store, or a store that keeps no keys: one new key in this process.
    - durable store (SQLite, PostgreSQL): the store's key set (created on first use), followed
      every ``refresh`` seconds; ``encryption_key`` (else ``WEBHOOKKIT_KEY_ENCRYPTION_KEY``)
      encrypts private keys at rest. The caller closes it with ``aclose()``.
    """
    if isinstance(current, StoredKeySet):
        await current.open()
        return current
    if configured is not None:
        handle = current if current is not None else local_key_set(configured, clock)
        ephemeral = [e.kid for e in handle.keys if e.key.ephemeral]
        if ephemeral and _durable(store):
            log.warning(
                "signing keys: %s generated in this process and not stored, on the durable "
                "store %r: other processes and the next start sign with other keys, and "
                "receivers reject what they cannot verify. Pass no signing_key (the store "
                "then keeps one key set for every process) or load the same PEM everywhere",
                ", ".join(ephemeral),
                store,
            )
        return handle
    if not _durable(store):
        return current if current is not None else local_key_set(None, clock)
    if not isinstance(store, KeyStore):
        log.warning(
            "signing keys: %r cannot keep signing keys; this process signs with a key of its "
            "own that no other process publishes. Configure a signing_key (the same PEM in "
            "every process)",
            store,
        )
        return current if current is not None else local_key_set(None, clock)
    stored = StoredKeySet(
        store, clock, encryption_key=encryption_key_from(encryption_key), refresh=refresh
    )
    await store.open()
    await stored.open()
    return stored
