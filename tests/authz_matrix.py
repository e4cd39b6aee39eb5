"""The authorization matrix's pure parts: who asks (principals), what is asked (the live OpenAPI's operations),
how an answer is classed, and the reviewed table of expected outcomes (tests/integration/authorization_matrix.csv).

tests/integration/test_authorization_matrix.py drives the live API with these; tests/unit/test_authz_matrix_table.py
checks them without a stack (a new endpoint without rows fails)."""

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import httpx

TABLE = Path(__file__).parent / "integration" / "authorization_matrix.csv"
COLUMNS = ["operation", "principal", "expected", "note"]
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

# What an answer means for access: refused (401: no or a bad token; 403: an action on something the caller may see;
# 404: something the caller may not see, or that does not exist for them), `hidden` (a list answered, without the
# object of A it would hold for someone who may see it: the list is scoped), or `allow`: the request got past access
# control (2xx, or a business 409/422/429 after access was granted). `invalid` (a request validation error) means the
# test's request is wrong, and `5xx` a bug: neither belongs in a reviewed table.
OUTCOMES = ("401", "403", "404", "hidden", "allow")


@dataclass(frozen=True)
class Principal:
    """Who calls: a user of `role` in organization `org` ("A", "B" or None for bank-wide users), an API key that the
    user `<org>.<role>` made (`token` "api_key", scopes KEY_SCOPES), or a request with no usable token (`token` is
    then "none", "expired", "forged" or "alg_none")."""

    name: str
    role: str | None = None
    org: str | None = None
    token: str = "user"

    @property
    def authenticated(self) -> bool:
        return self.token in ("user", "api_key")


# One line per principal; the objects under test belong to organization A and are owned by A.member_owner.
PRINCIPALS: list[Principal] = [
    Principal("superuser", "superuser"),
    Principal("bank_operations", "bank_operations"),
    Principal("A.org_admin", "org_admin", "A"),
    Principal("A.operator", "operator", "A"),
    Principal("A.loan_officer", "loan_officer", "A"),
    Principal("A.branch_manager", "branch_manager", "A"),
    Principal("A.credit_committee", "credit_committee", "A"),
    Principal("A.member_owner", "member", "A"),
    Principal("A.member_other", "member", "A"),
    Principal("B.org_admin", "org_admin", "B"),
    Principal("B.operator", "operator", "B"),
    Principal("B.member", "member", "B"),
    Principal("B.loan_officer", "loan_officer", "B"),
    # An API key of A's org admin: where its scopes reach, what A.org_admin gets; elsewhere a 403 (insufficient_scope),
    # and never the API keys or sign-in endpoints (a key never makes a key).
    Principal("A.org_admin_key", "org_admin", "A", token="api_key"),
    Principal("none", token="none"),
    Principal("expired", token="expired"),
    Principal("forged", token="forged"),
    Principal("alg_none", token="alg_none"),
]


# The scopes of the API-key principal: some resources read, one written, the rest not at all.
KEY_SCOPES = ["accounts:read", "payments:read", "payments:write", "loans:read", "users:read"]


def operations(openapi: dict) -> list[str]:
    """Every operation of an OpenAPI document, as "METHOD /path", sorted."""
    return sorted(
        f"{method.upper()} {path}"
        for path, item in openapi.get("paths", {}).items()
        for method in item
        if method in HTTP_METHODS
    )


def classify(response: httpx.Response, listed: str | None = None) -> tuple[str, str | None]:
    """(outcome class, the error code of the body if any). `listed`: the id a list shows to whoever may see it."""
    code = None
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            code = body["error"].get("code")
    except ValueError:
        pass
    status = response.status_code
    if status in (401, 403, 404):
        return str(status), code
    if status == 503 and code == "not_ready":  # /readyz on a loaded machine: an answer, not a refusal
        return "allow", code
    if status >= 500:
        return "5xx", code
    if status == 422 and code == "validation_error":
        return "invalid", code
    if listed is not None and 200 <= status < 300 and listed not in response.text:
        return "hidden", code
    return "allow", code


Table = dict[tuple[str, str], dict[str, str]]


def read_table(text: str) -> Table:
    rows = csv.DictReader(io.StringIO(text))
    if rows.fieldnames != COLUMNS:
        raise ValueError(f"the matrix's columns must be {COLUMNS}, not {rows.fieldnames}")
    table: Table = {}
    for row in rows:
        key = (row["operation"], row["principal"])
        if key in table:
            raise ValueError(f"two rows for {key}")
        table[key] = {"expected": row["expected"], "note": row["note"] or ""}
    return table


def load_table(path: Path = TABLE) -> Table:
    return read_table(path.read_text()) if path.exists() else {}


def render_table(table: Table, principals: list[Principal] = PRINCIPALS) -> str:
    order = {p.name: i for i, p in enumerate(principals)}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for (operation, principal), row in sorted(
        table.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 1e9), kv[0][1])
    ):
        writer.writerow([operation, principal, row["expected"], row.get("note", "")])
    return out.getvalue()


def coverage_problems(openapi: dict, table: Table, builders, principals: list[Principal] = PRINCIPALS) -> list[str]:
    """Everything the table or the builders lack for this OpenAPI, and rows for what no longer exists: an empty list
    when every operation has a request builder and one valid row per principal."""
    ops = operations(openapi)
    names = [p.name for p in principals]
    problems = []
    for operation in ops:
        if operation not in builders:
            problems.append(f"{operation}: no request builder (add one to BUILDERS in test_authorization_matrix.py)")
        missing = [name for name in names if (operation, name) not in table]
        if len(missing) == len(names):
            problems.append(f"{operation}: no rows in {TABLE.name} (regenerate with --write-authz-matrix, then review)")
        elif missing:
            problems.append(f"{operation}: no row for {', '.join(missing)}")
    for (operation, name), row in sorted(table.items()):
        if operation not in ops:
            problems.append(f"{operation}: a row for {name}, but the operation is not in the OpenAPI")
        elif name not in names:
            problems.append(f"{operation}: a row for the unknown principal {name}")
        elif row["expected"] not in OUTCOMES:
            problems.append(f"{operation} {name}: expected {row['expected']!r} is not one of {OUTCOMES}")
    for operation in sorted(set(builders) - set(ops)):
        problems.append(f"{operation}: a request builder, but the operation is not in the OpenAPI")
    return problems


@dataclass
class Observation:
    operation: str
    principal: str
    outcome: str
    status: int
    code: str | None


def mismatches(table: Table, observed: list[Observation]) -> list[str]:
    out = []
    for o in observed:
        row = table.get((o.operation, o.principal))
        if row is not None and row["expected"] != o.outcome:
            note = f" [{row['note']}]" if row["note"] else ""
            out.append(
                f"{o.operation} as {o.principal}: expected {row['expected']}, observed {o.outcome} "
                f"(HTTP {o.status}{', ' + o.code if o.code else ''}){note}"
            )
    return out


def regenerated(table: Table, observed: list[Observation]) -> Table:
    """The observed outcomes as a table, keeping the notes of the rows that exist (a note on a row whose outcome
    changed is kept too, prefixed, so the reviewer sees it)."""
    new: Table = {}
    for o in observed:
        old = table.get((o.operation, o.principal))
        note = old["note"] if old else ""
        if old and old["expected"] != o.outcome and note and not note.startswith("CHANGED"):
            note = f"CHANGED from {old['expected']}; was: {note}"
        new[(o.operation, o.principal)] = {"expected": o.outcome, "note": note}
    return new
