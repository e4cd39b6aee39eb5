"""Schemathesis against the live OpenAPI of the test stack (PRODUCT.md §7: no 5xx under fuzzing).

Every operation is fuzzed as a superuser and as a member, each of their own (an organization, a superuser and a
member made for this test), with data that fits the schema (positive) and data that does not (negative). Two
checks: no 5xx (`not_a_server_error`) and every response matches the schema documented for its status
(`response_schema_conformance`; errors are documented as the error body, see api/errors.py).

`make test` runs a bounded run (`FUZZ_EXAMPLES`, default 8 positive examples per operation and identity, and
half as many negative: over 2,000 requests, about 2 minutes here); `make fuzz` runs a long one (`FUZZ_EXAMPLES=200`).

Kept apart from the rest of the session so the suite's other tests see nothing of it:
- the path parameters `account_id`, `bill_id`, `product_id` and `user_id` are this test's own account, bill,
  loan product and member (other ids are random: 404s), so what the fuzzer writes is written only there;
- a new approval rule's `member_type` is forced to one that no member has (routing rules are bank-wide);
- a closed period's `org_id` is forced to this test's organization: a bank-wide closure would refuse the other
  tests' back-dated postings;
- `POST /statements/runs` is not fuzzed: a bank-wide run that writes a statement for every account of the
  session for the period it is given.
The `/auth/*` paths are fuzzed: a random refresh token is refused before it can revoke anything, and a login
with random credentials logs nobody out.
"""

import asyncio
import os
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import login, make_org, open_account

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
MIN_REQUESTS = int(os.environ.get("FUZZ_MIN_REQUESTS", "2000"))
NOT_FUZZED = {("POST", "/api/v1/statements/runs")}
FUZZ_MEMBER_TYPE = "fuzz-nobody"


def fuzz(schema, base_url: str, identities: dict[str, dict], fixed: dict) -> tuple[Counter, list[str], Counter]:
    """Runs every operation for every identity: the number of requests per identity, the failures, and the
    seconds spent per operation."""
    sent: Counter[str] = Counter()
    failures: list[str] = []
    seconds: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    session = requests.Session()  # one keep-alive connection: a 500 must not poison it either
    operations = [result.ok() for result in schema.get_all_operations()]
    for who, headers in identities.items():
        for operation in operations:
            if (operation.method.upper(), operation.path) in NOT_FUZZED:
                continue
            path_parameters = {
                name: value for name, value in fixed.items() if name in {p.name for p in operation.path_parameters}
            }
            for mode, examples in (
                (GenerationMode.POSITIVE, EXAMPLES),
                (GenerationMode.NEGATIVE, max(1, EXAMPLES // 2)),
            ):

                @settings(
                    max_examples=examples,
                    deadline=None,
                    database=None,
                    derandomize=False,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters or None))
                def run(case):  # called right below, in this iteration: the loop variables are the current ones
                    if operation.path == "/api/v1/approval-rules" and isinstance(case.body, dict):  # noqa: B023
                        case.body["member_type"] = FUZZ_MEMBER_TYPE
                    if operation.path == "/api/v1/reports/periods" and isinstance(case.body, dict):  # noqa: B023
                        case.body["org_id"] = fixed["org_id"]  # never a bank-wide closure (see the docstring)
                    sent[who] += 1  # noqa: B023
                    response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)  # noqa: B023
                    statuses[response.status_code] += 1
                    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

                began = time.monotonic()
                try:
                    run()
                except Unsatisfiable:
                    pass  # nothing to make invalid (no parameters, or only the fixed ones): positive mode covers it
                except (Exception, BaseExceptionGroup) as exc:  # one failing operation hides no other
                    failures.append(f"{operation.label} as {who} ({mode.value}): {exc}"[:3000])
                seconds[operation.label] += time.monotonic() - began  # type: ignore[assignment]  # a Counter of floats (most_common)
    print(f"\nfuzzing: statuses {dict(sorted(statuses.items()))}")
    return sent, failures, seconds


async def test_no_5xx_and_no_schema_break_under_fuzzing(http, api_server, su):
    org = await make_org(http, su, roles=("member",))
    email, password = f"fuzz-root-{uuid.uuid4().hex[:8]}@tests.example", "a-long-fuzz-password"
    created = await http.post(
        "/api/v1/users",
        headers=su,
        json={"email": email, "full_name": "Fuzz root", "password": password, "role": "superuser"},
    )
    assert created.status_code == 201, created.text
    # The member first: the superuser may then disable them, or change their role (PATCH /users/{user_id}).
    identities = {"member": org.headers["member"], "superuser": await login(http, email, password)}
    account = await open_account(http, su, org.id, org.users["member"]["id"], deposit="1000.00")
    bill = await http.post(
        "/api/v1/bills",
        headers=org.headers["member"],
        json={
            "payee_name": "Fuzz power",
            "amount": "12.50",
            "due_date": (datetime.now(UTC).date() + timedelta(days=40)).isoformat(),
        },
    )
    assert bill.status_code == 201, bill.text
    product = await http.post(
        "/api/v1/loan-products",
        headers=su,
        json={
            "name": f"Fuzz {uuid.uuid4().hex[:8]}",
            "annual_rate": "0.05",
            "min_term": 6,
            "max_term": 36,
            "min_amount": "1000.00",
            "max_amount": "5000.00",
            "amortization": "declining_balance",
        },
    )
    assert product.status_code == 201, product.text
    fixed = {
        "account_id": account["id"],
        "bill_id": bill.json()["id"],
        "product_id": product.json()["id"],
        "user_id": org.users["member"]["id"],
        "member_id": org.users["member"]["id"],
        "org_id": org.id,
    }
    schema = schemathesis.openapi.from_dict((await http.get("/openapi.json")).json())

    started = time.monotonic()
    sent, failures, seconds = await asyncio.to_thread(fuzz, schema, api_server.url, identities, fixed)
    elapsed = time.monotonic() - started
    print(
        f"\nfuzzing: {sum(sent.values())} requests ({dict(sent)}) in {elapsed:.0f} s, {len(failures)} failures; "
        f"slowest: {', '.join(f'{label} {s:.0f} s' for label, s in seconds.most_common(5))}"
    )
    assert not failures, "\n\n".join(failures)
    assert sum(sent.values()) >= MIN_REQUESTS, f"only {sum(sent.values())} requests: raise FUZZ_EXAMPLES"
