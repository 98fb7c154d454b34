"""The storage interface: keys, the generation ledger, credit grants and dashboard sessions, with the same
behaviour on every backend (SQLite, the embedded default, and PostgreSQL).

Money crosses this interface as integer nanodollars (1e-9 USD), the unit the tables store, so sums are
exact on both backends. Migrations are numbered SQL files in `storage/migrations/`, shared by all backends and
applied by one runner (`migrate.py`).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from crossroads.storage.migrate import Migration

NANOS_PER_USD = 1_000_000_000


@dataclass(slots=True)
class KeyRecord:
    hash: str
    name: str
    label: str
    created_at: float
    disabled: bool = False
    limit_nanos: int | None = None
    limit_reset: str | None = None
    include_byok_in_limit: bool = False
    rate_limit_requests: int | None = None
    rate_limit_interval: int | None = None
    tokens_per_minute: int | None = None
    is_management: bool = False
    creator_user_id: str | None = None
    updated_at: float | None = None
    expires_at: float | None = None
    #: Every eligible request of the key is answered from the response cache (migration 0008).
    response_cache: bool = False


KEY_COLUMNS = tuple(KeyRecord.__dataclass_fields__)
#: Fields a PATCH may change.
KEY_MUTABLE = frozenset({"name", "disabled", "limit_nanos", "limit_reset", "include_byok_in_limit",
                         "rate_limit_requests", "rate_limit_interval", "tokens_per_minute", "expires_at",
                         "response_cache"})


@dataclass(slots=True)
class GenerationRecord:
    id: str
    key_hash: str
    created_at: float
    model: str
    streamed: bool
    status: int
    provider_name: str | None = None
    endpoint: str | None = None
    upstream_id: str | None = None
    cancelled: bool = False
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    latency_ms: int | None = None
    generation_time_ms: int | None = None
    tokens_prompt: int = 0
    tokens_completion: int = 0
    tokens_reasoning: int | None = None
    tokens_cached: int | None = None
    tokens_cache_write: int | None = None
    num_media_prompt: int = 0
    usage_estimated: bool = False
    cost_nanos: int = 0
    http_referer: str | None = None
    app_title: str | None = None
    user_agent: str | None = None
    external_user: str | None = None
    session_id: str | None = None
    error_message: str | None = None
    trace: str | None = None
    #: JSON: prompt and completion, only with content logging on (`ledger/content.py`).
    content: str | None = None
    #: The GenAI operation (`chat`, `text_completion`, `embeddings`, `rerank`): traces name it, and
    #: `/generation` reports it as `api_type` (migration 0007; older rows have none).
    operation: str | None = None
    #: The web search backend that searched for the generation (`exa`, `tavily`...; `native` where the
    #: provider searched) and how many results it put in the prompt (migration 0009; None: no search).
    web_search_engine: str | None = None
    num_search_results: int | None = None
    #: Spool only, never stored: the prompt and completion as JSON (`{"input": [...], "output": [...]}`),
    #: carried to the shipper's traces when `CROSSROADS_OTLP_CONTENT=on` (`ledger/traces.py`).
    trace_content: str | None = None


#: Spooled fields that are not columns of the generations table.
SPOOL_ONLY = frozenset({"trace_content"})
GENERATION_COLUMNS = tuple(f for f in GenerationRecord.__dataclass_fields__ if f not in SPOOL_ONLY)


@dataclass(frozen=True, slots=True)
class PresetRecord:
    id: str
    slug: str
    name: str
    description: str | None
    status: str
    designated_version_id: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class PresetVersionRecord:
    id: str
    preset_id: str
    version: int
    system_prompt: str | None
    #: The request fields the preset sets, as a JSON object's text.
    config: str
    created_at: float


PRESET_COLUMNS = tuple(PresetRecord.__dataclass_fields__)
PRESET_VERSION_COLUMNS = tuple(PresetVersionRecord.__dataclass_fields__)
#: Every preset with its designated version, most recently updated first (portable SQL).
PRESETS_SELECT = (
    f"SELECT {', '.join('p.' + c for c in PRESET_COLUMNS)}, {', '.join('v.' + c for c in PRESET_VERSION_COLUMNS)} "
    "FROM presets p LEFT JOIN preset_versions v ON v.id = p.designated_version_id ORDER BY p.updated_at DESC, p.slug"
)


def preset_row(row: Any) -> tuple[PresetRecord, PresetVersionRecord | None]:
    """A row of `PRESETS_SELECT`: the version's columns are all NULL when the preset has none."""
    split = len(PRESET_COLUMNS)
    return (PresetRecord(*row[:split]),
            PresetVersionRecord(*row[split:]) if row[split] is not None else None)


@dataclass(frozen=True, slots=True)
class GuardrailRecord:
    id: str
    name: str
    description: str | None
    #: The policy fields (OpenRouter's names), as a JSON object's text.
    rules: str
    created_at: float
    updated_at: float | None = None


@dataclass(frozen=True, slots=True)
class GuardrailKeyRecord:
    id: str
    guardrail_id: str
    key_hash: str
    assigned_at: float


GUARDRAIL_COLUMNS = tuple(GuardrailRecord.__dataclass_fields__)
GUARDRAIL_KEY_COLUMNS = tuple(GuardrailKeyRecord.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    id: str
    generation_id: str
    key_hash: str | None  # None: submitted with the management key
    category: str
    comment: str | None
    created_at: float


FEEDBACK_COLUMNS = tuple(FeedbackRecord.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A dashboard session as stored: its token's SHA-256 (the token itself lives only in the browser's
    cookie), who opened it, and the credentials it acts with, sealed with the token."""

    token_hash: str
    principal: str
    sealed: bytes
    created_at: float
    expires_at: float
    playground: bytes | None = None
    playground_hash: str | None = None


SESSION_COLUMNS = tuple(SessionRecord.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """A key's spend in nanodollars: all time and within the current UTC day, week (from Monday), month."""

    total: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0


@dataclass(frozen=True, slots=True)
class ActivityRow:
    date: str
    model: str
    provider_name: str | None
    app: str | None
    key_hash: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cost_nanos: int
    #: Feedback submitted on these generations (`POST /generation/feedback`).
    feedback: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GenerationQuery:
    """Which generations a listing wants, newest first: all keys' (`key_hash` None) or one key's, narrowed by
    model, provider, app (title or referer) and outcome (`failed`: status 400 or above), older than `before`."""

    key_hash: str | None = None
    model: str | None = None
    provider_name: str | None = None
    app: str | None = None
    failed: bool | None = None
    before: float | None = None
    limit: int = 50

    def conditions(self, placeholder: Callable[[int], str]) -> tuple[str, list[Any]]:
        """The WHERE clause (empty, or starting with ` WHERE`) and its arguments; `placeholder(n)` writes the
        n-th (1-based) parameter in the backend's style."""
        parts: list[str] = []
        args: list[Any] = []

        def add(sql: str, value: Any) -> None:
            args.append(value)
            parts.append(sql.format(placeholder(len(args))))

        if self.key_hash is not None:
            add("key_hash = {}", self.key_hash)
        if self.model:
            add("model = {}", self.model)
        if self.provider_name:
            add("provider_name = {}", self.provider_name)
        if self.app:
            add("COALESCE(app_title, http_referer) = {}", self.app)
        if self.failed is not None:
            add("status >= {}" if self.failed else "status < {}", 400)
        if self.before is not None:
            add("created_at < {}", self.before)
        return (" WHERE " + " AND ".join(parts) if parts else ""), args


class Store(Protocol):
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query (`GET /ready`)."""
        ...

    async def migrate(self, available: Iterable[Migration] | None = None) -> list[int]:
        """Apply pending migrations (of `available`, by default the files); return the versions applied."""
        ...

    async def revisions(self) -> dict[str, int]:
        """Each kind of held record ('keys', 'presets', 'guardrails') with its revision: a counter every change
        to such records raises in the same transaction (migration 0006)."""
        ...

    # keys
    async def insert_key(self, key: KeyRecord) -> None: ...
    async def get_key(self, key_hash: str) -> KeyRecord | None: ...
    async def list_keys(self, *, include_disabled: bool = True, offset: int = 0,
                        limit: int | None = None) -> list[KeyRecord]: ...
    async def update_key(self, key_hash: str, changes: dict[str, Any]) -> KeyRecord | None: ...
    async def delete_key(self, key_hash: str) -> bool: ...

    # presets
    async def save_preset(self, slug: str, system_prompt: str | None, config: str, at: float) \
            -> tuple[PresetRecord, PresetVersionRecord]:
        """Add a version to the preset `slug` (creating the preset if it is new) and designate it, atomically:
        concurrent saves get consecutive version numbers."""
        ...

    async def list_presets(self) -> list[tuple[PresetRecord, PresetVersionRecord | None]]:
        """Every preset with its designated version, most recently updated first."""
        ...

    async def list_preset_versions(self, preset_id: str) -> list[PresetVersionRecord]:
        """A preset's versions, oldest first."""
        ...

    # guardrails
    async def save_guardrail(self, guardrail: GuardrailRecord) -> None:
        """Insert a guardrail, or replace the one with its id."""

    async def delete_guardrail(self, guardrail_id: str) -> bool:
        """Delete a guardrail and its assignments."""
        ...

    async def list_guardrails(self) -> list[GuardrailRecord]:
        """Oldest first."""
        ...

    async def assign_guardrail_keys(self, guardrail_id: str, key_hashes: list[str], at: float) -> int:
        """Assign keys (those already assigned stay as they are); returns how many were new."""
        ...

    async def unassign_guardrail_keys(self, guardrail_id: str, key_hashes: list[str]) -> int: ...
    async def list_guardrail_keys(self) -> list[GuardrailKeyRecord]:
        """Every assignment, oldest first."""
        ...

    # ledger
    async def write_generations(self, records: list[GenerationRecord]) -> int:
        """Insert records; ids already present are skipped. Returns how many were new."""
        ...

    async def get_generation(self, generation_id: str) -> GenerationRecord | None: ...
    async def purge_content(self, before: float) -> int:
        """Delete the stored content of generations created before `before`; how many had some."""
        ...

    async def add_feedback(self, feedback: FeedbackRecord) -> None: ...
    async def usage_totals(self, key_hashes: list[str], now: float) -> dict[str, UsageTotals]: ...
    async def activity(self, since: float, until: float, key_hash: str | None = None,
                       hourly: bool = False) -> list[ActivityRow]:
        """Usage grouped by UTC day (`date` is `YYYY-MM-DD`), or by hour (`YYYY-MM-DDTHH:00`) when `hourly`."""
        ...

    async def recent_generations(self, query: GenerationQuery) -> list[GenerationRecord]:
        """Generations matching `query`, newest first, at most `query.limit`."""
        ...

    # dashboard sessions
    async def insert_session(self, session: SessionRecord) -> None: ...
    async def get_session(self, token_hash: str) -> SessionRecord | None: ...
    async def attach_playground(self, token_hash: str, sealed: bytes, key_hash: str) -> bool:
        """Give a session its playground key unless it has one already (or is gone); True when this did."""
        ...

    async def delete_session(self, token_hash: str) -> SessionRecord | None:
        """Delete a session; returns it, or None when no such session was left to delete."""
        ...

    async def purge_sessions(self, now: float) -> list[SessionRecord]:
        """Delete the sessions expired at `now`; returns them (each to exactly one caller)."""
        ...

    # credits
    async def grant_credits(self, grant_id: str, amount_nanos: int, note: str | None, at: float) -> None: ...
    async def credit_totals(self) -> tuple[int, int]:
        """(credits granted, total usage) in nanodollars."""
        ...


def period_starts(now: float) -> tuple[float, float, float]:
    """Starts of the current UTC day, week (Monday) and month, as unix seconds. Called on every request
    that touches spend, so each day's answer is computed once."""
    return _starts_of(now - now % 86400)


@functools.lru_cache(maxsize=4)
def _starts_of(day: float) -> tuple[float, float, float]:
    today = dt.datetime.fromtimestamp(day, dt.UTC)
    week = today - dt.timedelta(days=today.weekday())
    month = today.replace(day=1)
    return today.timestamp(), week.timestamp(), month.timestamp()
