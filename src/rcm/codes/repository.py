"""SQL of the code sets: set-based loads (COPY into a temporary stage, then a handful of statements) and
one-statement lookups.

The tables are global reference data: no tenant filter, no row-level security. Loads run as the owner role
(``rcm codes load`` with the administrative URL); the app role may only read (migration 0014).

Statements are assembled from the table specifications below (module constants naming tables and columns),
never from input: every value travels as a bound parameter.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, DATE, TEXT
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.codes.models import CodeSet, CodeSetRelease, CodeSystem

# --- Versioned tables ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionedTable:
    """A table whose rows are (key, validity window, values): a load compares the staged file with the
    newest row of each key and opens, closes or rewrites windows."""

    table: str
    key: tuple[str, ...]  # identifies a code within the load (with the fixed columns)
    values: tuple[str, ...]  # compared to tell a changed code from an unchanged one
    types: dict[str, str]  # SQL types of key and value columns, for the stage table
    fixed: tuple[str, ...] = ()  # columns whose value is the same for the whole load (``system``)


CODE_VERSION = VersionedTable(
    table="code_version",
    key=("code",),
    values=("description", "billable"),
    types={"code": "text", "description": "text", "billable": "boolean"},
    fixed=("system",),
)
MUE_LIMIT = VersionedTable(
    table="mue_limit",
    key=("code",),
    values=("units", "adjudication_indicator", "rationale"),
    types={"code": "text", "units": "integer", "adjudication_indicator": "smallint", "rationale": "text"},
)
SEX_AGE_EDIT = VersionedTable(
    table="sex_age_edit",
    key=("system", "code"),
    values=("sex", "min_age_years", "max_age_years"),
    types={
        "system": "text",
        "code": "text",
        "sex": "text",
        "min_age_years": "integer",
        "max_age_years": "integer",
    },
)

# What a staged row may be, compared with the newest stored row of its key.
_DIFF_KINDS = ("added", "changed", "redated", "ended", "terminated", "unchanged", "absent")


@dataclass(frozen=True, slots=True)
class Counts:
    added: int = 0
    changed: int = 0
    terminated: int = 0
    unchanged: int = 0


async def _driver(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's transaction (COPY is asyncpg's, not SQLAlchemy's)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def release_by_checksum(
    session: AsyncSession, code_set: CodeSet, checksum: str
) -> CodeSetRelease | None:
    stmt = select(CodeSetRelease).where(
        CodeSetRelease.code_set == code_set, CodeSetRelease.checksum == checksum
    )
    found: CodeSetRelease | None = (await session.execute(stmt)).scalars().first()
    return found


async def newest_release_start(session: AsyncSession, code_set: CodeSet) -> date | None:
    stmt = text("SELECT max(effective_from) FROM rcm.code_set_release WHERE code_set = :code_set")
    value: date | None = (await session.execute(stmt, {"code_set": code_set.value})).scalar_one()
    return value


async def lock_code_set(session: AsyncSession, code_set: CodeSet) -> None:
    """Two operators loading the same code set at once wait for each other (transaction advisory lock);
    readers are never blocked: they see the previous release until this one commits."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('rcm.codes.' || :code_set))"),
        {"code_set": code_set.value},
    )


async def act_as_owner(session: AsyncSession) -> None:
    """Write as the owner role for this transaction only (the admin URL's user is a member of it)."""
    await session.execute(text("SET LOCAL ROLE rcm_owner"))


async def insert_release(session: AsyncSession, release: CodeSetRelease) -> None:
    session.add(release)
    await session.flush()


async def update_release_counts(session: AsyncSession, release_id: uuid.UUID, counts: Counts) -> None:
    await session.execute(
        text(
            "UPDATE rcm.code_set_release SET added = :added, changed = :changed, terminated = :terminated,"
            " unchanged = :unchanged WHERE id = :id"
        ),
        {
            "id": release_id,
            "added": counts.added,
            "changed": counts.changed,
            "terminated": counts.terminated,
            "unchanged": counts.unchanged,
        },
    )


async def load_versioned(
    session: AsyncSession,
    spec: VersionedTable,
    *,
    release_id: uuid.UUID,
    effective_from: date,
    fixed: dict[str, str],
    rows: Iterable[tuple[Any, ...]],
) -> Counts:
    """Bring ``spec.table`` in line with a full release starting ``effective_from``.

    ``rows`` are ``(*key, *values, row_from, row_through)``: ``row_from``/``row_through`` are dates the file
    itself gives a code (HCPCS add and termination dates), else None. Against the newest stored row of each
    key: a new code opens a window (from its own date, else the release's); a reworded one closes the old
    window the day before the release and opens a new one; one the file terminates gets that date; one the
    file no longer lists is terminated the day before the release. A row opened on or after the release
    date is rewritten in place (a corrected file of the same date), never split.
    """
    cols = (*spec.key, *spec.values)
    stage = f"stage_{spec.table}"
    diff = f"diff_{spec.table}"
    table = f"rcm.{spec.table}"
    stage_columns = ", ".join(f"{c} {spec.types[c]}" for c in cols)
    key_list = ", ".join(spec.key)
    await session.execute(text(f"DROP TABLE IF EXISTS {stage}, {diff}"))
    await session.execute(
        text(
            f"CREATE TEMP TABLE {stage} ({stage_columns}, row_from date, row_through date,"
            f" PRIMARY KEY ({key_list})) ON COMMIT DROP"
        )
    )
    driver = await _driver(session)
    await driver.copy_records_to_table(stage, records=list(rows), columns=[*cols, "row_from", "row_through"])
    # Autovacuum never analyzes temp tables: without statistics the joins below were planned for a
    # handful of rows and a nested loop over a full release ran for minutes.
    await session.execute(text(f"ANALYZE {stage}"))

    fixed_where = " AND ".join(f"{c} = :fixed_{c}" for c in spec.fixed) or "true"
    params: dict[str, Any] = {f"fixed_{c}": fixed[c] for c in spec.fixed}
    params |= {"f": effective_from, "release_id": release_id}
    join = " AND ".join(f"c.{k} = s.{k}" for k in spec.key)
    key_out = ", ".join(f"coalesce(s.{k}, c.{k}) AS {k}" for k in spec.key)
    s_values = ", ".join(f"s.{v}" for v in spec.values)
    c_values = ", ".join(f"c.{v}" for v in spec.values)
    first_key = spec.key[0]
    await session.execute(
        text(
            f"""
            CREATE TEMP TABLE {diff} ON COMMIT DROP AS
            WITH c AS (
              SELECT DISTINCT ON ({key_list}) {key_list}, effective_from, effective_through,
                {", ".join(spec.values)}
              FROM {table} WHERE {fixed_where}
              ORDER BY {key_list}, effective_from DESC
            )
            SELECT {key_out}, c.effective_from AS cur_from, c.effective_through AS cur_through,
              CASE
                WHEN c.{first_key} IS NULL THEN 'added'
                WHEN s.{first_key} IS NULL THEN
                  CASE WHEN c.effective_through IS NULL THEN 'terminated' ELSE 'absent' END
                -- Terminated before this release and listed again without an end: back in force.
                WHEN c.effective_through IS NOT NULL AND c.effective_through < :f AND s.row_through IS NULL
                  THEN 'added'
                WHEN ({s_values}) IS DISTINCT FROM ({c_values}) THEN 'changed'
                WHEN s.row_through IS DISTINCT FROM c.effective_through THEN
                  CASE WHEN s.row_through IS NULL THEN 'redated' ELSE 'ended' END
                ELSE 'unchanged'
              END AS kind
            FROM {stage} s FULL JOIN c ON {join}
            """
        ),
        params,
    )
    fixed_cols = "".join(f"{c}, " for c in spec.fixed)
    fixed_vals = "".join(f":fixed_{c}, " for c in spec.fixed)
    v_join = " AND ".join(f"v.{k} = d.{k}" for k in spec.key)
    v_fixed = "".join(f" AND v.{c} = :fixed_{c}" for c in spec.fixed)
    ds_join = " AND ".join(f"s.{k} = d.{k}" for k in spec.key)
    sets = ", ".join(f"{v} = s.{v}" for v in spec.values)
    excluded = ", ".join(f"{v} = excluded.{v}" for v in spec.values)
    statements = [
        # A reworded code: the old window ends the day before the release...
        f"""UPDATE {table} v SET effective_through = :f - 1 FROM {diff} d
            WHERE d.kind = 'changed' AND d.cur_from < :f AND {v_join} AND v.effective_from = d.cur_from
            {v_fixed}""",
        # ...unless it opened on or after it: a corrected file of the same date rewrites it in place.
        f"""UPDATE {table} v SET {sets}, effective_through = s.row_through, release_id = :release_id
            FROM {diff} d JOIN {stage} s ON {ds_join}
            WHERE d.kind = 'changed' AND d.cur_from >= :f AND {v_join} AND v.effective_from = d.cur_from
            {v_fixed}""",
        # The file itself ends a code (or lifts its end).
        f"""UPDATE {table} v SET effective_through = s.row_through, release_id = :release_id
            FROM {diff} d JOIN {stage} s ON {ds_join}
            WHERE d.kind IN ('ended', 'redated') AND {v_join} AND v.effective_from = d.cur_from {v_fixed}""",
        # Codes the release no longer lists: in force until the day before it.
        f"""UPDATE {table} v SET effective_through = :f - 1 FROM {diff} d
            WHERE d.kind = 'terminated' AND d.cur_from < :f AND {v_join} AND v.effective_from = d.cur_from
            {v_fixed}""",
        f"""DELETE FROM {table} v USING {diff} d
            WHERE d.kind = 'terminated' AND d.cur_from >= :f AND {v_join} AND v.effective_from = d.cur_from
            {v_fixed}""",
        # New codes, codes back in force, and the new windows of reworded codes: last, so every statement
        # above touches only rows there before this load, which the table's statistics (refreshed after
        # each load) describe; after a first load of 98k codes into a table analysed empty, the update of
        # terminated codes was planned as a nested loop over the whole release per row (stopped after 11 min).
        f"""INSERT INTO {table} ({fixed_cols}{", ".join(cols)}, effective_from, effective_through, release_id)
            SELECT {fixed_vals}{", ".join(f"s.{c}" for c in cols)},
              CASE WHEN d.kind = 'changed' THEN :f
                   ELSE greatest(coalesce(s.row_from, :f), d.cur_through + 1) END,
              s.row_through, :release_id
            FROM {diff} d JOIN {stage} s ON {ds_join}
            WHERE d.kind = 'added' OR (d.kind = 'changed' AND d.cur_from < :f)
            ON CONFLICT ({fixed_cols}{key_list}, effective_from) DO UPDATE SET {excluded},
              effective_through = excluded.effective_through, release_id = excluded.release_id""",
    ]
    await session.execute(text(f"ANALYZE {diff}"))
    tally = dict.fromkeys(_DIFF_KINDS, 0)
    rows_by_kind = await session.execute(text(f"SELECT kind, count(*) FROM {diff} GROUP BY kind"))
    for kind, count in rows_by_kind:
        tally[kind] = int(count)
    for statement in statements:
        await session.execute(text(statement), params)
    await session.execute(text(f"DROP TABLE {stage}, {diff}"))
    # Fresh statistics at once (a first load of 98k codes would otherwise leave lookups planned for none).
    await session.execute(text(f"ANALYZE {table}"))
    return Counts(
        added=tally["added"],
        changed=tally["changed"] + tally["redated"],
        terminated=tally["terminated"] + tally["ended"],
        unchanged=tally["unchanged"],
    )


async def load_ncci(
    session: AsyncSession, *, release_id: uuid.UUID, rows: Sequence[tuple[Any, ...]]
) -> Counts:
    """Upsert PTP edits keyed (column 1, column 2, effective date): each quarterly file repeats the history,
    so an edit the file deletes carries its deletion date; rows are never removed."""
    await session.execute(text("DROP TABLE IF EXISTS stage_ncci"))
    await session.execute(
        text(
            "CREATE TEMP TABLE stage_ncci (column1 text, column2 text, effective_from date, deleted_on date,"
            " modifier_indicator smallint, existed_before_1996 boolean, rationale text,"
            " PRIMARY KEY (column1, column2, effective_from)) ON COMMIT DROP"
        )
    )
    driver = await _driver(session)
    await driver.copy_records_to_table(
        "stage_ncci",
        records=list(rows),
        columns=[
            "column1",
            "column2",
            "effective_from",
            "deleted_on",
            "modifier_indicator",
            "existed_before_1996",
            "rationale",
        ],
    )
    await session.execute(text("ANALYZE stage_ncci"))
    tally = (
        await session.execute(
            text(
                """
                SELECT count(*) FILTER (WHERE e.column1 IS NULL),
                  count(*) FILTER (WHERE e.column1 IS NOT NULL AND e.deleted_on IS NULL
                                   AND s.deleted_on IS NOT NULL),
                  count(*) FILTER (WHERE e.column1 IS NOT NULL AND NOT (e.deleted_on IS NULL
                                   AND s.deleted_on IS NOT NULL)
                                   AND (s.deleted_on, s.modifier_indicator, s.rationale)
                                       IS DISTINCT FROM (e.deleted_on, e.modifier_indicator, e.rationale)),
                  count(*) FILTER (WHERE e.column1 IS NOT NULL
                                   AND (s.deleted_on, s.modifier_indicator, s.rationale)
                                       IS NOT DISTINCT FROM (e.deleted_on, e.modifier_indicator, e.rationale))
                FROM stage_ncci s LEFT JOIN rcm.ncci_ptp_edit e USING (column1, column2, effective_from)
                """
            )
        )
    ).one()
    await session.execute(
        text(
            """
            INSERT INTO rcm.ncci_ptp_edit (column1, column2, effective_from, deleted_on, modifier_indicator,
              existed_before_1996, rationale, release_id)
            SELECT column1, column2, effective_from, deleted_on, modifier_indicator, existed_before_1996,
              rationale, :release_id FROM stage_ncci
            ON CONFLICT (column1, column2, effective_from) DO UPDATE SET deleted_on = excluded.deleted_on,
              modifier_indicator = excluded.modifier_indicator, rationale = excluded.rationale,
              existed_before_1996 = excluded.existed_before_1996, release_id = excluded.release_id
            WHERE (rcm.ncci_ptp_edit.deleted_on, rcm.ncci_ptp_edit.modifier_indicator,
                   rcm.ncci_ptp_edit.rationale)
                  IS DISTINCT FROM (excluded.deleted_on, excluded.modifier_indicator, excluded.rationale)
            """
        ),
        {"release_id": release_id},
    )
    await session.execute(text("DROP TABLE stage_ncci"))
    await session.execute(text("ANALYZE rcm.ncci_ptp_edit"))
    return Counts(added=tally[0], terminated=tally[1], changed=tally[2], unchanged=tally[3])


# --- Lookups ---------------------------------------------------------------------------------------------

_CHECK = text(
    """
    WITH q AS (
      SELECT * FROM unnest(CAST(:systems AS text[]), CAST(:codes AS text[]))
        WITH ORDINALITY AS q(system, code, i)
    ),
    newest AS (
      SELECT DISTINCT ON (code_set) code_set, label, effective_from, effective_through,
        first_value(label) OVER w AS oldest_label, first_value(effective_from) OVER w AS oldest_from
      FROM rcm.code_set_release WHERE code_set = ANY (CAST(:systems AS text[]))
      WINDOW w AS (PARTITION BY code_set ORDER BY effective_from, loaded_at
                   ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
      ORDER BY code_set, effective_from DESC, loaded_at DESC
    )
    SELECT q.i, n.code_set IS NOT NULL AS loaded, n.label, n.effective_through AS release_through,
      n.oldest_label, n.oldest_from,
      hit.description, hit.billable, before.effective_through AS ended, after.effective_from AS starts,
      after.description AS early_description, after.billable AS early_billable
    FROM q
    LEFT JOIN newest n ON n.code_set = q.system
    LEFT JOIN LATERAL (
      SELECT v.description, v.billable FROM rcm.code_version v
      WHERE v.system = q.system AND v.code = q.code AND v.effective_from <= :on
        AND (v.effective_through IS NULL OR v.effective_through >= :on)
      ORDER BY v.effective_from DESC LIMIT 1
    ) hit ON true
    LEFT JOIN LATERAL (
      SELECT v.effective_through FROM rcm.code_version v
      WHERE hit.billable IS NULL AND v.system = q.system AND v.code = q.code AND v.effective_from <= :on
      ORDER BY v.effective_from DESC LIMIT 1
    ) before ON true
    LEFT JOIN LATERAL (
      SELECT v.effective_from, v.description, v.billable FROM rcm.code_version v
      WHERE hit.billable IS NULL AND v.system = q.system AND v.code = q.code AND v.effective_from > :on
      ORDER BY v.effective_from LIMIT 1
    ) after ON true
    ORDER BY q.i
    """
).bindparams(
    bindparam("systems", type_=ARRAY(TEXT)),
    bindparam("codes", type_=ARRAY(TEXT)),
    bindparam("on", type_=DATE),
)


@dataclass(frozen=True, slots=True)
class CheckRow:
    loaded: bool  # any release of the system is loaded
    release_label: str | None  # the newest release of the system
    release_through: date | None
    oldest_label: str | None  # the oldest release of the system
    oldest_from: date | None
    description: str | None
    billable: bool | None  # None: no version in force on the date
    ended: date | None  # the latest window before the date ended then
    starts: date | None  # the next window starts then
    early_description: str | None  # that next window's
    early_billable: bool | None


async def check_rows(session: AsyncSession, items: Sequence[tuple[str, str]], on: date) -> list[CheckRow]:
    """For each (system, stored code): its version in force on ``on``, or the nearest windows around it,
    and the newest release of its system. One statement for the whole list."""
    if not items:
        return []
    result = await session.execute(
        _CHECK, {"systems": [s for s, _ in items], "codes": [c for _, c in items], "on": on}
    )
    return [
        CheckRow(
            loaded=row.loaded,
            release_label=row.label,
            release_through=row.release_through,
            oldest_label=row.oldest_label,
            oldest_from=row.oldest_from,
            description=row.description,
            billable=row.billable,
            ended=row.ended,
            starts=row.starts,
            early_description=row.early_description,
            early_billable=row.early_billable,
        )
        for row in result
    ]


_SEARCH = text(
    """
    WITH query AS (SELECT websearch_to_tsquery('english', :q) AS tsq)
    SELECT v.code, v.description, v.billable, v.effective_from, v.effective_through,
      -- Cover density (query words close together) over the description's length (normalization 2):
      -- the description the words say most of comes first.
      ts_rank_cd(to_tsvector('english'::regconfig, coalesce(v.description, '')), query.tsq, 2) AS rank
    FROM rcm.code_version v, query
    WHERE v.system = :system AND v.effective_from <= :on
      AND (v.effective_through IS NULL OR v.effective_through >= :on)
      AND (to_tsvector('english'::regconfig, coalesce(v.description, '')) @@ query.tsq
           OR v.code LIKE :prefix)
    ORDER BY (v.code = :code) DESC, (v.code LIKE :prefix) DESC, rank DESC, v.billable DESC, v.code
    LIMIT :limit OFFSET :offset
    """
).bindparams(bindparam("on", type_=DATE))


@dataclass(frozen=True, slots=True)
class SearchRow:
    code: str
    description: str | None
    billable: bool
    effective_from: date
    effective_through: date | None
    rank: float


async def search(
    session: AsyncSession,
    system: CodeSystem,
    *,
    words: str,
    code_prefix: str,
    on: date,
    limit: int,
    offset: int,
) -> list[SearchRow]:
    """Codes of ``system`` in force on ``on`` whose description matches ``words`` (full-text, ranked) or
    whose code starts with ``code_prefix`` (an exact code first, then prefixes, then by rank)."""
    escaped = code_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    result = await session.execute(
        _SEARCH,
        {
            "q": words,
            "system": system.value,
            "on": on,
            "code": code_prefix,
            "prefix": f"{escaped}%" if code_prefix else "",
            "limit": limit,
            "offset": offset,
        },
    )
    return [
        SearchRow(
            code=row.code,
            description=row.description,
            billable=row.billable,
            effective_from=row.effective_from,
            effective_through=row.effective_through,
            rank=float(row.rank),
        )
        for row in result
    ]


async def releases(session: AsyncSession) -> list[CodeSetRelease]:
    stmt = select(CodeSetRelease).order_by(
        CodeSetRelease.code_set, CodeSetRelease.effective_from, CodeSetRelease.loaded_at
    )
    return list((await session.execute(stmt)).scalars())


_NCCI = text(
    """
    SELECT column1, column2, effective_from, deleted_on, modifier_indicator, rationale
    FROM rcm.ncci_ptp_edit
    WHERE column1 = ANY (:codes) AND column2 = ANY (:codes) AND column1 <> column2
      AND effective_from <= :on AND (deleted_on IS NULL OR deleted_on > :on)
    ORDER BY column1, column2, effective_from DESC
    """
).bindparams(bindparam("codes", type_=ARRAY(TEXT)), bindparam("on", type_=DATE))


async def ncci_rows(session: AsyncSession, codes: Sequence[str], on: date) -> list[Any]:
    return list(await session.execute(_NCCI, {"codes": list(codes), "on": on}))


_MUE = text(
    """
    SELECT DISTINCT ON (code) code, units, adjudication_indicator, rationale, effective_from
    FROM rcm.mue_limit
    WHERE code = ANY (:codes) AND effective_from <= :on
      AND (effective_through IS NULL OR effective_through >= :on)
    ORDER BY code, effective_from DESC
    """
).bindparams(bindparam("codes", type_=ARRAY(TEXT)), bindparam("on", type_=DATE))


async def mue_rows(session: AsyncSession, codes: Sequence[str], on: date) -> list[Any]:
    return list(await session.execute(_MUE, {"codes": list(codes), "on": on}))


_SEX_AGE = text(
    """
    SELECT DISTINCT ON (e.system, e.code) e.system, e.code, e.sex, e.min_age_years, e.max_age_years
    FROM unnest(CAST(:systems AS text[]), CAST(:codes AS text[])) AS q(system, code)
    JOIN rcm.sex_age_edit e ON e.system = q.system AND e.code = q.code
    WHERE e.effective_from <= :on AND (e.effective_through IS NULL OR e.effective_through >= :on)
    ORDER BY e.system, e.code, e.effective_from DESC
    """
).bindparams(
    bindparam("systems", type_=ARRAY(TEXT)),
    bindparam("codes", type_=ARRAY(TEXT)),
    bindparam("on", type_=DATE),
)


async def sex_age_rows(session: AsyncSession, items: Sequence[tuple[str, str]], on: date) -> list[Any]:
    return list(
        await session.execute(
            _SEX_AGE, {"systems": [s for s, _ in items], "codes": [c for _, c in items], "on": on}
        )
    )
