"""API keys for machine clients (core/api_keys.py): org admins and superusers create them with scopes their role
has, see them (an org admin: their organization's), revoke and rotate them. The secret is shown once, at creation
or rotation; a key itself can never call these endpoints."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from api.deps import IdempotencyKey, ReadSessionDep, SessionDep, allowed
from api.errors import AppError
from api.fields import Filter, line_rules
from api.pagination import Page, PageDep, paginate
from core import access, api_keys, audit
from core.access import SCOPE_ROLES, Action, Entity
from models.api_keys import ApiKey
from models.users import User

router = APIRouter(prefix="/api-keys", tags=["api keys"])

KeyReader = Annotated[User, Depends(allowed(Entity.api_key, Action.read))]
KeyCreator = Annotated[User, Depends(allowed(Entity.api_key, Action.create))]
KeyUpdater = Annotated[User, Depends(allowed(Entity.api_key, Action.update))]

MAX_LIFETIME_DAYS = 365
MAX_OVERLAP_SECONDS = 30 * 86400


def _known_scope(value: str) -> str:
    if value not in SCOPE_ROLES:
        raise ValueError(f"unknown scope; the scopes are: {', '.join(SCOPE_ROLES)}")
    return value


Scope = Annotated[
    str,
    Field(pattern=r"^[a-z_]+:(read|write)$", max_length=64, examples=["payments:read"]),
    AfterValidator(_known_scope),
]


class ApiKeyIn(BaseModel):
    name: Annotated[str, *line_rules(200, 1, strip=True)] = Field(examples=["nightly reconciliation"])
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPE_ROLES), examples=[["payments:read"]])
    expires_in_days: int = Field(default=90, ge=1, le=MAX_LIFETIME_DAYS)


class RotateIn(BaseModel):
    overlap_seconds: int = Field(
        default=86400,
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="how long the old key stays valid beside the new one (never past its own expiry)",
    )


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    org_id: uuid.UUID | None
    created_by: uuid.UUID
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    rotated_from: uuid.UUID | None
    status: Literal["active", "expired", "revoked"]


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the key itself, shown this once: send it as `X-API-Key` or `Authorization: Bearer`")


def _out(key: ApiKey, now: datetime | None = None) -> ApiKeyOut:
    now = now or datetime.now(UTC)
    status = "revoked" if key.revoked_at else "expired" if key.expires_at <= now else "active"
    return ApiKeyOut.model_validate({**key.model_dump(), "status": status})


def _created(key: ApiKey, secret: str) -> ApiKeyCreated:
    return ApiKeyCreated.model_validate({**_out(key).model_dump(), "key": secret})


def _snapshot(key: ApiKey) -> dict:
    return {
        "name": key.name,
        "prefix": key.prefix,
        "scopes": key.scopes,
        "expires_at": key.expires_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


async def _record(session, actor: User, action: str, key: ApiKey, before: dict | None = None) -> None:
    await audit.record(
        session,
        actor=actor.email,
        actor_id=actor.id,
        action=action,
        entity_type="api_key",
        entity_id=key.id,
        before=before,
        after=_snapshot(key),
    )


@router.post("", response_model=ApiKeyCreated, status_code=201, summary="Create an API key (its secret shown once)")
async def create_api_key(body: ApiKeyIn, key: IdempotencyKey, session: SessionDep, actor: KeyCreator):
    """The key acts as you, narrowed to `scopes` (each one your role has). A retry with the same Idempotency-Key makes
    no second key: it answers 409 naming the key made (its secret is not shown again: revoke it if it was lost)."""
    scopes = list(dict.fromkeys(body.scopes))
    refused = [scope for scope in scopes if scope not in access.grantable_scopes(actor.role)]
    if refused:
        raise access.forbid(
            actor,
            Entity.api_key,
            None,
            Action.create,
            f"your role cannot grant: {', '.join(refused)}",
            "scope_not_allowed",
        )
    existing = (
        await session.exec(select(ApiKey).where(ApiKey.created_by == actor.id, ApiKey.idempotency_key == key))
    ).first()
    if existing is not None:
        raise _already_created(existing)
    secret, prefix, secret_hash = api_keys.new_key()
    row = ApiKey(
        prefix=prefix,
        secret_hash=secret_hash,
        name=body.name,
        scopes=scopes,
        org_id=actor.org_id,
        created_by=actor.id,
        idempotency_key=key,
        expires_at=datetime.now(UTC) + timedelta(days=body.expires_in_days),
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:  # the same Idempotency-Key in a concurrent request
        await session.rollback()
        found = (
            await session.exec(select(ApiKey).where(ApiKey.created_by == actor.id, ApiKey.idempotency_key == key))
        ).one()
        raise _already_created(found) from None
    await _record(session, actor, "api_key.created", row)
    await session.commit()
    return _created(row, secret)


def _already_created(key: ApiKey) -> AppError:
    return AppError(
        409,
        "already_created",
        "an API key was already created with this Idempotency-Key; its secret was shown then and is not kept",
        {"id": str(key.id), "prefix": key.prefix},
    )


@router.get("", response_model=Page[ApiKeyOut], summary="API keys you can see")
async def list_api_keys(
    session: ReadSessionDep,
    actor: KeyReader,
    page: PageDep,
    status: Literal["active", "expired", "revoked"] | None = None,
    name: Annotated[Filter | None, Query(description="contains, case-insensitive")] = None,
):
    now = datetime.now(UTC)
    statement = access.scope(actor, Entity.api_key, select(ApiKey))
    if status == "revoked":
        statement = statement.where(col(ApiKey.revoked_at).is_not(None))
    elif status == "expired":
        statement = statement.where(col(ApiKey.revoked_at).is_(None), col(ApiKey.expires_at) <= now)
    elif status == "active":
        statement = statement.where(col(ApiKey.revoked_at).is_(None), col(ApiKey.expires_at) > now)
    if name:
        statement = statement.where(col(ApiKey.name).ilike(f"%{name}%"))
    items, total = await paginate(session, statement, page, [col(ApiKey.created_at).desc(), ApiKey.id])
    return Page(items=[_out(k, now) for k in items], total=total, limit=page.limit, offset=page.offset)


@router.get("/{key_id}", response_model=ApiKeyOut, summary="One API key (never its secret)")
async def get_api_key(key_id: uuid.UUID, session: SessionDep, actor: KeyReader):
    return _out(await access.visible(session, actor, Entity.api_key, key_id))


@router.post("/{key_id}/revoke", response_model=ApiKeyOut, summary="Revoke an API key (at once; again is a no-op)")
async def revoke_api_key(key_id: uuid.UUID, session: SessionDep, actor: KeyUpdater):
    row: ApiKey = await access.visible(session, actor, Entity.api_key, key_id, for_update=True)
    if row.revoked_at is None:
        before = _snapshot(row)
        row.revoked_at, row.revoked_by = datetime.now(UTC), actor.id
        session.add(row)
        await _record(session, actor, "api_key.revoked", row, before)
        await session.commit()
    return _out(row)


@router.post(
    "/{key_id}/rotate",
    response_model=ApiKeyCreated,
    status_code=201,
    summary="Rotate an API key: a new key with its scopes; the old one stays valid for the overlap",
)
async def rotate_api_key(key_id: uuid.UUID, body: RotateIn, session: SessionDep, actor: KeyUpdater):
    """The successor has the same name, scopes and lifetime and acts as the same user; the old key expires after
    `overlap_seconds` (or at its own expiry, if sooner). A key is rotated once: rotate its successor next."""
    old: ApiKey = await access.visible(session, actor, Entity.api_key, key_id, for_update=True)
    now = datetime.now(UTC)
    if old.revoked_at is not None or old.expires_at <= now:
        raise AppError(409, "not_active", "a revoked or expired key cannot be rotated: create a new one")
    successor = (await session.exec(select(ApiKey.id).where(ApiKey.rotated_from == old.id))).first()
    if successor is not None:
        raise AppError(
            409, "already_rotated", "this key was already rotated: rotate its successor", {"id": str(successor)}
        )
    secret, prefix, secret_hash = api_keys.new_key()
    new = ApiKey(
        prefix=prefix,
        secret_hash=secret_hash,
        name=old.name,
        scopes=old.scopes,
        org_id=old.org_id,
        created_by=old.created_by,  # the same principal: a rotation changes the secret, not who the key acts as
        expires_at=now + (old.expires_at - old.created_at),
        rotated_from=old.id,
    )
    before = _snapshot(old)
    old.expires_at = min(old.expires_at, now + timedelta(seconds=body.overlap_seconds))
    session.add_all([new, old])
    try:
        await session.flush()
    except IntegrityError:  # rotated_from is unique: a concurrent rotation of the same key
        raise AppError(409, "already_rotated", "this key was already rotated: rotate its successor") from None
    await _record(session, actor, "api_key.rotated", old, before)
    await _record(session, actor, "api_key.created", new)
    await session.commit()
    return _created(new, secret)
