"""Field encryption: round trips, tamper and swap detection, blind indexes, first-key creation, RLS."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.crypto import DecryptionError, KeyStore, LocalFileKeyProvider, TenantKeyring
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import Tenant
from tests.conftest import tid

CANARY = "CANARY-PHI Jane Q Doe 1961-02-03"


async def keyring_for(
    store: KeyStore, sessions: async_sessionmaker[AsyncSession], tenant: Tenant
) -> TenantKeyring:
    async with tenant_transaction(sessions, TenantContext.single(tid(tenant))) as session:
        return await store.keyring(session, tid(tenant))


async def test_round_trip_bytes_and_text(
    store: KeyStore, sessions: async_sessionmaker[AsyncSession], tenant: Tenant
) -> None:
    keyring = await keyring_for(store, sessions, tenant)
    row = uuid.uuid4()
    ciphertext = keyring.encrypt(table="patient", column="name", row_id=row, plaintext=CANARY.encode())
    assert CANARY.encode() not in ciphertext
    assert ciphertext[0] == 1
    assert int.from_bytes(ciphertext[1:5], "big") == keyring.active_version
    assert (
        keyring.decrypt(table="patient", column="name", row_id=row, ciphertext=ciphertext) == CANARY.encode()
    )
    # Same plaintext twice: random nonces, different ciphertexts.
    again = keyring.encrypt(table="patient", column="name", row_id=row, plaintext=CANARY.encode())
    assert again != ciphertext
    enc = keyring.encrypt_str(table="patient", column="name", row_id=row, value="Zoë ünïcode")
    assert keyring.decrypt_str(table="patient", column="name", row_id=row, ciphertext=enc) == "Zoë ünïcode"
    assert keyring.encrypt_str(table="patient", column="name", row_id=row, value=None) is None
    assert keyring.decrypt_str(table="patient", column="name", row_id=row, ciphertext=None) is None
    assert repr(keyring) == f"TenantKeyring(tenant_id={tenant.id}, active_version=1)"


async def test_swapped_or_altered_ciphertext_fails_without_leaking(
    store: KeyStore, sessions: async_sessionmaker[AsyncSession], tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = await keyring_for(store, sessions, tenant)
    theirs = await keyring_for(store, sessions, other_tenant)
    row, other_row = uuid.uuid4(), uuid.uuid4()
    ciphertext = mine.encrypt(table="patient", column="name", row_id=row, plaintext=CANARY.encode())

    attempts = {
        "other row": lambda: mine.decrypt(
            table="patient", column="name", row_id=other_row, ciphertext=ciphertext
        ),
        "other column": lambda: mine.decrypt(
            table="patient", column="dob", row_id=row, ciphertext=ciphertext
        ),
        "other table": lambda: mine.decrypt(
            table="coverage", column="name", row_id=row, ciphertext=ciphertext
        ),
        "other tenant": lambda: theirs.decrypt(
            table="patient", column="name", row_id=row, ciphertext=ciphertext
        ),
        "truncated": lambda: mine.decrypt(
            table="patient", column="name", row_id=row, ciphertext=ciphertext[:20]
        ),
    }
    for position in range(len(ciphertext)):
        for bit in (0, 7):
            flipped = bytearray(ciphertext)
            flipped[position] ^= 1 << bit
            attempts[f"bit {bit} of byte {position}"] = lambda data=bytes(flipped): mine.decrypt(
                table="patient", column="name", row_id=row, ciphertext=data
            )
    for label, attempt in attempts.items():
        with pytest.raises(DecryptionError) as caught:
            attempt()
        message = str(caught.value)
        assert "CANARY" not in message, label
        assert "Jane" not in message, label
        assert ciphertext.hex()[:16] not in message, label


async def test_blind_index_normalises_and_separates_tenants_and_kinds(
    store: KeyStore, sessions: async_sessionmaker[AsyncSession], tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = await keyring_for(store, sessions, tenant)
    theirs = await keyring_for(store, sessions, other_tenant)
    base = mine.blind_index("mrn", "AB-12345")
    assert len(base) == 32
    assert mine.blind_index("mrn", "  ab-12345 ") == base
    assert (
        mine.blind_index("mrn", "\uff21\uff22-\uff11\uff12\uff13\uff14\uff15") == base
    )  # full-width forms fold under NFKC
    assert mine.blind_index("mrn", "AB-12346") != base
    assert mine.blind_index("member_id", "AB-12345") != base  # the kind is part of the MAC
    assert theirs.blind_index("mrn", "AB-12345") != base  # same value, other tenant, other index
    name_dob = mine.blind_index("name_dob", "O'Brien|1961-02-03")
    assert mine.blind_index("name_dob", "  o'BRIEN  | 1961-02-03") == name_dob
    assert mine.blind_index("name_dob", "Straße|1961-02-03") == mine.blind_index(
        "name_dob", "STRASSE|1961-02-03"
    )
    assert mine.blind_index("name_dob", "Mary  Ann|1970-01-01") == mine.blind_index(
        "name_dob", "mary ann|1970-01-01"
    )
    # A fresh store (another process) derives the same index from the stored key.
    again = await keyring_for(KeyStore(store.provider), sessions, tenant)
    assert again.blind_index("mrn", "ab-12345") == base


async def test_concurrent_first_requests_create_one_key(
    provider: LocalFileKeyProvider,
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
) -> None:
    context = TenantContext.single(tid(tenant))

    async def first_request(store: KeyStore) -> TenantKeyring:
        async with tenant_transaction(sessions, context) as session:
            keyring = await store.keyring(session, tid(tenant))
            await asyncio.sleep(0.05)  # hold the transaction open so the two overlap
            return keyring

    one, two = await asyncio.gather(first_request(KeyStore(provider)), first_request(KeyStore(provider)))
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT purpose, count(*) FROM rcm.data_key "
                    "WHERE tenant_id = :t AND state = 'active' GROUP BY 1"
                ),
                {"t": tenant.id},
            )
        ).all()
    assert dict(rows) == {"phi": 1, "blind_index": 1}
    row = uuid.uuid4()
    ciphertext = one.encrypt(table="t", column="c", row_id=row, plaintext=b"x")
    assert two.decrypt(table="t", column="c", row_id=row, ciphertext=ciphertext) == b"x"
    assert one.blind_index("mrn", "1") == two.blind_index("mrn", "1")


async def test_first_keys_of_a_rolled_back_request_are_not_kept(
    store: KeyStore, sessions: async_sessionmaker[AsyncSession], tenant: Tenant
) -> None:
    context = TenantContext.single(tid(tenant))
    async with sessions() as session:
        await session.begin()
        from rcm.kit.db import apply_tenant_context

        await apply_tenant_context(session, context)
        lost = await store.keyring(session, tid(tenant))
        await session.rollback()
    kept = await keyring_for(store, sessions, tenant)
    assert kept.blind_index("mrn", "1") != lost.blind_index("mrn", "1")


async def test_data_key_is_invisible_without_context_and_to_other_tenants(
    store: KeyStore, sessions: async_sessionmaker[AsyncSession], tenant: Tenant, other_tenant: Tenant
) -> None:
    await keyring_for(store, sessions, tenant)
    async with sessions() as session, session.begin():
        assert (await session.execute(text("SELECT count(*) FROM rcm.data_key"))).scalar_one() == 0
    async with tenant_transaction(sessions, TenantContext.single(tid(other_tenant))) as session:
        seen = (
            await session.execute(
                text("SELECT count(*) FROM rcm.data_key WHERE tenant_id = :t"), {"t": tenant.id}
            )
        ).scalar_one()
        assert seen == 0
    async with tenant_transaction(sessions, TenantContext.single(tid(tenant))) as session:
        assert (await session.execute(text("SELECT count(*) FROM rcm.data_key"))).scalar_one() == 2
        with pytest.raises(Exception, match="permission denied"):
            await session.execute(text("DELETE FROM rcm.data_key"))


async def test_keyring_without_tenant_context_cannot_create_keys(
    store: KeyStore, sessions: async_sessionmaker[AsyncSession], tenant: Tenant
) -> None:
    async with sessions() as session:
        with pytest.raises(Exception, match="row-level security"):
            async with session.begin():
                await store.keyring(session, TenantId(tenant.id))


async def test_a_field_opener_opens_what_decrypt_opens_and_refuses_what_it_refuses(
    store: KeyStore, sessions: async_sessionmaker[AsyncSession], tenant: Tenant, other_tenant: Tenant
) -> None:
    """The page-wide opener of a list read: same plaintexts, same associated data, same refusals."""
    mine = await keyring_for(store, sessions, tenant)
    theirs = await keyring_for(store, sessions, other_tenant)
    row, other_row = uuid.uuid4(), uuid.uuid4()
    name = mine.encrypt_str(table="patient", column="name", row_id=row, value=CANARY)
    dob = mine.encrypt_str(table="patient", column="dob", row_id=row, value="1961-02-03")
    assert name is not None
    assert dob is not None
    opener = mine.opener("patient", ("name", "dob", "phone"))
    assert opener.open(row, [name, dob, None]) == [CANARY, "1961-02-03", None]

    unknown_version = name[:1] + (99).to_bytes(4, "big") + name[5:]
    refused = {
        "other row": lambda: opener.open(other_row, [name, dob, None]),
        "columns swapped": lambda: opener.open(row, [dob, name, None]),
        "other table": lambda: mine.opener("coverage", ("name",)).open(row, [name]),
        "other tenant": lambda: theirs.opener("patient", ("name",)).open(row, [name]),
        "truncated": lambda: opener.open(row, [name[:20], dob, None]),
        "unknown format": lambda: opener.open(row, [b"\x02" + name[1:], dob, None]),
        "unknown key version": lambda: opener.open(row, [unknown_version, dob, None]),
        "bit flipped": lambda: opener.open(row, [name[:-1] + bytes([name[-1] ^ 1]), dob, None]),
    }
    for label, attempt in refused.items():
        with pytest.raises(DecryptionError) as caught:
            attempt()
        assert "CANARY" not in str(caught.value), label
    with pytest.raises(ValueError, match="3 columns"):
        opener.open(row, [name, dob])
