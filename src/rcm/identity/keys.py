"""Signing keys for our access tokens: creation, rotation, retirement and the in-process key ring.

Lifecycle: ``active`` (signs new tokens) -> ``published`` (stops signing, stays in the JWKS until every token
it signed has expired) -> ``retired`` (gone from the JWKS; its tokens no longer verify). Private halves are
stored wrapped under the KEK provider, bound to the kid, so a row copied onto another key cannot be unwrapped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey, KeySet
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.crypto.provider import KeyProvider, KeyUnwrapError, WrappedKey, key_provider
from rcm.identity.keys_store import (
    active_key_row,
    add_key,
    live_keys,
    live_keys_for_update,
    publish_active_key,
    retire_published_keys,
)
from rcm.identity.models import SigningKey, SigningKeyState
from rcm.kit.db import platform_transaction
from rcm.kit.models import utcnow

ALG = "ES256"
# Clock-skew allowance when verifying, and margin before a demoted key leaves the JWKS.
LEEWAY_SECONDS = 30
# Other processes notice a rotation within this many seconds (this process notices at once).
KEYRING_TTL_SECONDS = 60.0
# An unknown kid may trigger a reload, but not more often than this (a flood of made-up kids costs nothing).
UNKNOWN_KID_RELOAD_SECONDS = 5.0

_generation = 0  # bumped by every in-process key change so key rings reload before their TTL


def _bump_generation() -> None:
    global _generation  # noqa: PLW0603 - one process-wide counter is the point
    _generation += 1


def _wrap_context(kid: str) -> dict[str, str]:
    return {"purpose": "access-token-signing", "kid": kid}


def _new_key_row(settings: Settings, *, state: SigningKeyState) -> SigningKey:
    key = ECKey.generate_key("P-256", private=True, auto_kid=True)
    kid = key.kid
    assert kid is not None
    private = json.dumps(key.as_dict(private=True)).encode()
    wrapped = key_provider(settings).wrap(private, context=_wrap_context(kid))
    public = dict(key.as_dict(private=False))
    public.update({"kid": kid, "alg": ALG, "use": "sig"})
    return SigningKey(
        kid=kid,
        alg=ALG,
        kek_id=wrapped.kek_id,
        wrapped_private_key=wrapped.blob,
        public_jwk=public,
        state=state,
    )


def unwrap_private_key(settings: Settings, row: SigningKey) -> ECKey:
    raw = key_provider(settings).unwrap(
        WrappedKey(kek_id=row.kek_id, blob=row.wrapped_private_key), context=_wrap_context(row.kid)
    )
    return ECKey.import_key(json.loads(raw), parameters={"kid": row.kid, "alg": ALG})


class NoSigningKey(RuntimeError):
    """No active signing key exists and this process may not create one (no control-plane connection)."""


async def ensure_active_key(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    control: async_sessionmaker[AsyncSession] | None = None,
) -> SigningKey:
    """The active signing key, created on first use. Concurrent first starts race on a unique index.

    Read with ``sessions`` (the app role); only ``control`` (the control role) may create the key: the app
    role cannot write ``signing_key``, so it cannot plant a key of its own in the JWKS.
    """
    async with platform_transaction(sessions) as session:
        row = await active_key_row(session)
        if row is not None:
            return row
    if control is None:
        raise NoSigningKey("no active signing key; run `rcm identity rotate-signing-key`")
    try:
        async with platform_transaction(control) as session:
            row = await add_key(session, _new_key_row(settings, state=SigningKeyState.ACTIVE))
    except IntegrityError:
        async with platform_transaction(control) as session:
            existing = await active_key_row(session)
            assert existing is not None
            return existing
    _bump_generation()
    return row


async def rotate_signing_key(
    session: AsyncSession, settings: Settings, *, now: datetime | None = None
) -> SigningKey:
    """Make a new key active; the previous one stays published until the tokens it signed have expired.

    Also retires published keys whose tokens have all expired. The caller's transaction commits.
    """
    now = now or utcnow()
    await retire_expired_keys(session, now=now)
    # Other processes keep signing with the demoted key until their key ring reloads (KEYRING_TTL_SECONDS);
    # the last token one of them signs expires a TTL later, and verifiers allow LEEWAY_SECONDS of skew.
    keep_until = now + timedelta(
        seconds=KEYRING_TTL_SECONDS + settings.access_token_ttl_seconds + LEEWAY_SECONDS
    )
    await publish_active_key(session, until=keep_until)
    row = await add_key(session, _new_key_row(settings, state=SigningKeyState.ACTIVE))
    _bump_generation()
    return row


@dataclass(frozen=True, slots=True)
class SigningKeyRewrap:
    rewrapped: tuple[str, ...]  # kids now wrapped under the current KEK
    unreadable: tuple[str, ...]  # kids whose KEK the provider does not hold: rotate them out


async def rewrap_signing_keys(session: AsyncSession, provider: KeyProvider) -> SigningKeyRewrap:
    """Re-wrap the private half of every active and published signing key under the current KEK.

    ``rcm keys rotate --new-kek`` calls it beside the data keys' re-wrap, so retiring the old KEK does not
    break token issuance. A key the provider cannot unwrap (its KEK is already gone) is reported, not fatal:
    the data keys still need their re-wrap, and ``rcm identity rotate-signing-key`` replaces such a key.
    The caller's transaction commits (and records the audit event).
    """
    rows = await live_keys_for_update(session)
    rewrapped: list[str] = []
    unreadable: list[str] = []
    for row in rows:
        context = _wrap_context(row.kid)
        try:
            private = provider.unwrap(
                WrappedKey(kek_id=row.kek_id, blob=row.wrapped_private_key), context=context
            )
        except KeyUnwrapError:
            unreadable.append(row.kid)
            continue
        wrapped = provider.wrap(private, context=context)
        row.kek_id, row.wrapped_private_key = wrapped.kek_id, wrapped.blob
        rewrapped.append(row.kid)
    await session.flush()
    return SigningKeyRewrap(tuple(rewrapped), tuple(unreadable))


async def retire_expired_keys(session: AsyncSession, *, now: datetime | None = None) -> list[str]:
    """Drop published keys from the JWKS once every token they signed has expired."""
    now = now or utcnow()
    retired = await retire_published_keys(session, now=now)
    if retired:
        _bump_generation()
    return retired


@dataclass(frozen=True, slots=True)
class _Loaded:
    signing: ECKey
    verifying: KeySet
    jwks: dict[str, Any]
    generation: int
    loaded_at: float


class KeyRing:
    """The keys this process signs and verifies with, cached: the JWKS is read once a minute, not per call."""

    def __init__(
        self, settings: Settings, *, control: async_sessionmaker[AsyncSession] | None = None
    ) -> None:
        self.settings = settings
        # The control-role sessions that may create the first signing key; keys are READ with the app role.
        self.control = control
        self._loaded: _Loaded | None = None
        self._last_unknown_kid_reload = 0.0

    def invalidate(self) -> None:
        self._loaded = None

    async def _load(self, sessions: async_sessionmaker[AsyncSession]) -> _Loaded:
        loaded = self._loaded
        fresh = (
            loaded is not None
            and loaded.generation == _generation
            and time.monotonic() - loaded.loaded_at < KEYRING_TTL_SECONDS
        )
        if loaded is not None and fresh:
            return loaded
        active = await ensure_active_key(sessions, self.settings, control=self.control)
        async with platform_transaction(sessions) as session:
            rows = await live_keys(session)
        public = [dict(r.public_jwk) for r in rows]
        signing = (
            loaded.signing
            if loaded is not None and loaded.signing.kid == active.kid
            else unwrap_private_key(self.settings, active)
        )
        self._loaded = _Loaded(
            signing=signing,
            verifying=KeySet.import_key_set({"keys": public}),
            jwks={"keys": public},
            generation=_generation,
            loaded_at=time.monotonic(),
        )
        return self._loaded

    async def signing_key(self, sessions: async_sessionmaker[AsyncSession]) -> ECKey:
        return (await self._load(sessions)).signing

    async def verification_keys(
        self, sessions: async_sessionmaker[AsyncSession], *, kid: str | None = None
    ) -> KeySet:
        """The active and published keys; reloads once (rate-limited) when ``kid`` is not among them."""
        loaded = await self._load(sessions)
        known = {k.kid for k in loaded.verifying.keys}
        now = time.monotonic()
        if (
            kid is not None
            and kid not in known
            and now - self._last_unknown_kid_reload > UNKNOWN_KID_RELOAD_SECONDS
        ):
            self._last_unknown_kid_reload = now
            self.invalidate()
            loaded = await self._load(sessions)
        return loaded.verifying

    async def jwks(self, sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
        return (await self._load(sessions)).jwks
