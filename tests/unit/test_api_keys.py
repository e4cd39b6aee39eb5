"""API keys without a stack: the key format and its hash, the scope each endpoint needs (every operation of the API
has one, or is closed to keys on purpose), and which scopes a role may grant."""

import logging
import uuid

import pytest

from api.main import create_app
from core import api_keys
from core.access import SCOPE_ROLES, Entity, Forbidden, check_key_scope, grantable_scopes
from core.config import Settings
from models.users import Role, User

# Closed to every key: a person signs in, and a key never makes or widens a key. The bank's webhook is signed.
CLOSED_TO_KEYS = (
    "/api/v1/auth/",
    "/api/v1/api-keys",
    "/api/v1/webhooks/",
    "/api/v1/me/",
    "/api/v1/profile",
    "/api/v1/signup",
)


def test_a_new_key_parses_back_and_only_its_secret_matches_the_stored_hash():
    key, prefix, stored = api_keys.new_key()
    assert key.startswith(f"bo_{prefix}_") and len(stored) == 64
    parsed = api_keys.parse(key)
    assert parsed is not None and parsed[0] == prefix
    assert api_keys.secret_matches(parsed[1], stored)
    assert not api_keys.secret_matches(parsed[1][:-1] + ("A" if parsed[1][-1] != "A" else "B"), stored)
    assert stored != parsed[1] and parsed[1] not in stored  # only the hash is kept


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "bo_",
        "bo_0123456789ab_short",
        "xx_0123456789ab_" + "a" * 43,
        "bo_0123456789AB_" + "a" * 43,
        "eyJhbGciOi.x.y",
    ],
)
def test_a_malformed_key_does_not_parse(presented):
    assert api_keys.parse(presented) is None


def test_two_keys_differ():
    assert api_keys.new_key()[0] != api_keys.new_key()[0]


def test_every_operation_of_the_api_needs_a_known_scope_or_is_closed_to_keys():
    openapi = create_app(Settings()).openapi()
    unmapped = []
    for path, item in openapi["paths"].items():
        for method in item:
            needed = api_keys.scope_for(path, method)
            if path.startswith(CLOSED_TO_KEYS) or not path.startswith("/api/v1/"):
                assert needed is None, (method, path)
            elif needed != "" and needed not in SCOPE_ROLES:
                unmapped.append(f"{method.upper()} {path}: {needed}")
    assert not unmapped, "add these to core/api_keys.py RESOURCES and core/access.py SCOPE_ROLES:\n" + "\n".join(
        unmapped
    )


@pytest.mark.parametrize(
    "path, method, scope",
    [
        ("/api/v1/payments/{payment_id}", "GET", "payments:read"),
        ("/api/v1/transfers/book", "POST", "payments:write"),
        ("/api/v1/accounts/{account_id}/holds", "POST", "accounts:write"),
        ("/api/v1/approvals/{request_id}/decisions", "POST", "approvals:write"),
        ("/api/v1/me", "GET", ""),
        ("/api/v1/api-keys", "POST", None),
        ("/api/v1/auth/login", "POST", None),
        ("/api/v1/somethingnew", "GET", None),  # a resource nobody mapped is closed, not open
    ],
)
def test_the_scope_of_an_endpoint(path, method, scope):
    assert api_keys.scope_for(path, method) == scope


def test_an_org_admin_grants_only_what_their_role_has():
    admin = set(grantable_scopes(Role.org_admin))
    assert {"payments:read", "payments:write", "users:write", "operations:write", "bills:write"} <= admin
    assert not admin & {"audit:read", "ach_files:read", "approval_rules:write", "loan_products:write", "interest:read"}
    assert grantable_scopes(Role.superuser) == list(SCOPE_ROLES)


def key_user() -> User:
    return User(id=uuid.uuid4(), email="a@x.example", full_name="a", hashed_password="", role="org_admin")


def test_a_key_without_the_endpoints_scope_is_refused_and_logged(caplog):
    user, key_id = key_user(), uuid.uuid4()
    check_key_scope(user, key_id, ["payments:read"], "payments:read")
    check_key_scope(user, key_id, [], "")  # open to any key
    with caplog.at_level(logging.WARNING, logger="security"), pytest.raises(Forbidden) as refused:
        check_key_scope(user, key_id, ["payments:read"], "payments:write")
    assert refused.value.code == "insufficient_scope" and refused.value.entity == Entity.api_key
    assert any(r.message == "access_denied" and r.entity_id == str(key_id) for r in caplog.records)
    with pytest.raises(Forbidden):
        check_key_scope(user, key_id, list(SCOPE_ROLES), None)  # every scope still opens no closed endpoint


def test_in_the_reviewed_matrix_a_key_answers_as_its_creator_within_its_scopes_and_403_beyond():
    """The matrix's API-key principal (tests/authz_matrix.py) is a key of A.org_admin with KEY_SCOPES."""
    from tests import authz_matrix as matrix

    table = matrix.load_table()
    operations = sorted({operation for operation, _ in table})
    assert operations
    for operation in operations:
        method, path = operation.split(" ", 1)
        needed = api_keys.scope_for(path, method)
        key = table[(operation, "A.org_admin_key")]["expected"]
        if (
            not path.startswith("/api/v1/")
            or path.startswith(("/api/v1/auth/", "/api/v1/webhooks/"))
            or table[(operation, "none")]["expected"] == "allow"  # no token needed: e.g. a signed download link
        ):
            continue  # no user is resolved there: the key is not looked at
        if needed == "" or needed in matrix.KEY_SCOPES:
            assert key == table[(operation, "A.org_admin")]["expected"], operation
        else:
            assert key == "403", operation
