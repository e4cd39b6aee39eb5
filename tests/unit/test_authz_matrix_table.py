"""The authorization matrix's bookkeeping, without a stack: an operation the OpenAPI gains without rows (or without a
request builder) fails the matrix test; the reviewed table is well formed and covers today's API."""

import httpx
import pytest

from api.main import create_app
from core.config import Settings
from tests import authz_matrix as matrix
from tests.authz_matrix import PRINCIPALS, Observation, Principal


@pytest.fixture(scope="module")
def openapi() -> dict:
    # The app's own OpenAPI document: building it needs no database, Temporal or network.
    return create_app(Settings()).openapi()


@pytest.fixture(scope="module")
def table() -> matrix.Table:
    return matrix.load_table()


@pytest.fixture(scope="module")
def builders(openapi) -> set[str]:
    from tests.integration.test_authorization_matrix import BUILDERS

    return set(BUILDERS)


def test_the_reviewed_table_covers_every_operation_and_principal(openapi, table, builders):
    assert matrix.coverage_problems(openapi, table, builders) == []
    assert len(table) == len(matrix.operations(openapi)) * len(PRINCIPALS)


def test_a_new_endpoint_without_rows_or_builder_fails(openapi, table, builders):
    grown = {
        **openapi,
        "paths": {
            **openapi["paths"],
            "/api/v1/widgets/{widget_id}": {
                "get": {"operationId": "get_widget"},
                "delete": {"operationId": "delete_widget"},
            },
        },
    }
    problems = matrix.coverage_problems(grown, table, builders)
    assert problems == [
        "DELETE /api/v1/widgets/{widget_id}: no request builder (add one to BUILDERS in test_authorization_matrix.py)",
        (
            "DELETE /api/v1/widgets/{widget_id}: no rows in authorization_matrix.csv (regenerate with "
            "--write-authz-matrix, then review)"
        ),
        "GET /api/v1/widgets/{widget_id}: no request builder (add one to BUILDERS in test_authorization_matrix.py)",
        (
            "GET /api/v1/widgets/{widget_id}: no rows in authorization_matrix.csv (regenerate with "
            "--write-authz-matrix, then review)"
        ),
    ]
    # With a builder and rows for every principal but one, only that principal is named.
    rows = {
        **table,
        **{("GET /api/v1/widgets/{widget_id}", p.name): {"expected": "404", "note": ""} for p in PRINCIPALS[1:]},
    }
    assert [
        p
        for p in matrix.coverage_problems(grown, rows, builders | {"GET /api/v1/widgets/{widget_id}"})
        if p.startswith("GET /api/v1/widgets")
    ] == [f"GET /api/v1/widgets/{{widget_id}}: no row for {PRINCIPALS[0].name}"]


def test_a_new_principal_without_rows_fails(openapi, table, builders):
    grown = [*PRINCIPALS, Principal("C.teller", "operator", "C")]
    problems = matrix.coverage_problems(openapi, table, builders, grown)
    assert len(problems) == len(matrix.operations(openapi))
    assert all(p.endswith(": no row for C.teller") for p in problems)


def test_stale_rows_and_unknown_outcomes_fail(openapi, table, builders):
    stale = {
        **table,
        ("GET /api/v1/gone", "superuser"): {"expected": "allow", "note": ""},
        ("GET /healthz", "nobody"): {"expected": "allow", "note": ""},
        ("GET /readyz", "superuser"): {"expected": "maybe", "note": ""},
    }
    assert matrix.coverage_problems(openapi, stale, builders) == [
        "GET /api/v1/gone: a row for superuser, but the operation is not in the OpenAPI",
        "GET /healthz: a row for the unknown principal nobody",
        "GET /readyz superuser: expected 'maybe' is not one of ('401', '403', '404', 'hidden', 'allow')",
    ]


def test_mismatches_name_operation_principal_expected_and_observed(table):
    row = ("GET /api/v1/accounts/{account_id}", "B.org_admin")
    observed = [Observation(*row, "allow", 200, None), Observation("GET /healthz", "none", "allow", 200, None)]
    assert matrix.mismatches(table, observed) == [
        f"GET /api/v1/accounts/{{account_id}} as B.org_admin: expected {table[row]['expected']}, observed allow "
        f"(HTTP 200)" + (f" [{table[row]['note']}]" if table[row]["note"] else "")
    ]


def test_regenerating_keeps_notes_and_flags_changed_ones():
    old = {
        ("GET /x", "superuser"): {"expected": "allow", "note": "fine"},
        ("GET /x", "B.member"): {"expected": "allow", "note": "WRONG: should be 404"},
    }
    new = matrix.regenerated(
        old,
        [
            Observation("GET /x", "superuser", "allow", 200, None),
            Observation("GET /x", "B.member", "404", 404, "not_found"),
            Observation("GET /y", "none", "401", 401, "unauthorized"),
        ],
    )
    assert new == {
        ("GET /x", "superuser"): {"expected": "allow", "note": "fine"},
        ("GET /x", "B.member"): {"expected": "404", "note": "CHANGED from allow; was: WRONG: should be 404"},
        ("GET /y", "none"): {"expected": "401", "note": ""},
    }
    assert matrix.read_table(matrix.render_table(new)) == new


def test_the_table_file_is_sorted_as_rendered(table):
    assert matrix.TABLE.read_text() == matrix.render_table(table)


def response(status: int, body) -> httpx.Response:
    return httpx.Response(status, json=body)


def test_outcome_classes():
    def error(code):
        return {"error": {"code": code, "message": "m", "details": None}}

    assert matrix.classify(response(401, error("unauthorized"))) == ("401", "unauthorized")
    assert matrix.classify(response(403, error("forbidden"))) == ("403", "forbidden")
    assert matrix.classify(response(404, error("not_found"))) == ("404", "not_found")
    assert matrix.classify(response(409, error("not_cancelable"))) == ("allow", "not_cancelable")
    assert matrix.classify(response(422, error("insufficient_funds"))) == ("allow", "insufficient_funds")
    assert matrix.classify(response(422, error("validation_error"))) == ("invalid", "validation_error")
    assert matrix.classify(response(500, error("internal_error"))) == ("5xx", "internal_error")
    assert matrix.classify(response(503, error("temporal_unavailable"))) == ("5xx", "temporal_unavailable")
    assert matrix.classify(response(503, error("not_ready"))) == ("allow", "not_ready")
    assert matrix.classify(response(200, {"items": [{"id": "abc"}]}), listed="abc") == ("allow", None)
    assert matrix.classify(response(200, {"items": []}), listed="abc") == ("hidden", None)
    assert matrix.classify(response(204, None)) == ("allow", None)
