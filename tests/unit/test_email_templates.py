import email
import email.policy

import pytest
from jinja2 import UndefinedError

from core.config import Settings
from core.email import EmailSender, UnknownTemplate, render

RETURNED = dict(
    payment_id="3f1c9a",
    kind="debit",
    amount="$125.00",
    return_code="R01",
    return_reason="Insufficient funds",
    account="****1234",
    link="/api/v1/payments/3f1c9a",
)
APPROVAL = dict(request_title="Loan application L-42", level=2, role="branch_manager", deadline="2026-11-25 17:00 UTC")


def test_payment_returned_renders_every_part():
    subject, text, html = render("payment_returned", RETURNED)
    assert subject == "Payment returned: ACH debit of $125.00 (R01 Insufficient funds)"
    for part in (text, html):
        for value in ("3f1c9a", "$125.00", "R01", "Insufficient funds", "****1234"):
            assert value in part
    assert 'href="/api/v1/payments/3f1c9a"' in html and "/api/v1/payments/3f1c9a" in text


def test_approval_requested_renders_with_and_without_a_link():
    subject, text, html = render("approval_requested", APPROVAL)
    assert subject == "Approval requested: Loan application L-42 (level 2)"
    assert "branch manager" in text and "2026-11-25 17:00 UTC" in html and "href" not in html
    _, text, html = render("approval_requested", {**APPROVAL, "link": "/api/v1/approvals/7"})
    assert "/api/v1/approvals/7" in text and 'href="/api/v1/approvals/7"' in html


def test_html_is_escaped_and_text_is_not():
    _, text, html = render("payment_returned", {**RETURNED, "return_reason": '<script>alert("x")</script> & co'})
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; co" in html
    assert '<script>alert("x")</script> & co' in text


def test_the_subject_is_one_line_whatever_the_context():
    subject, _, _ = render("payment_returned", {**RETURNED, "return_reason": "Bad\r\nBcc: victim@example.com"})
    assert "\n" not in subject and "\r" not in subject and subject.endswith("Bad Bcc: victim@example.com)")


def test_a_missing_variable_raises_instead_of_rendering_blank():
    context = dict(RETURNED)
    del context["amount"]
    with pytest.raises(UndefinedError, match="amount"):
        render("payment_returned", context)


@pytest.mark.parametrize("name", ["no_such_template", "../email/payment_returned", ""])
def test_an_unknown_template_raises(name):
    with pytest.raises(UnknownTemplate):
        render(name, RETURNED)


def test_the_message_has_a_text_and_an_html_alternative():
    sender = EmailSender(Settings(mail_from="Back office <no-reply@backoffice.example>"))
    message = sender.build("ann@example.com", *render("payment_returned", RETURNED), message_id="row-1")
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["From"] == "Back office <no-reply@backoffice.example>" and parsed["To"] == "ann@example.com"
    assert parsed["Message-ID"] == "<row-1@backoffice.example>"
    assert parsed.get_content_type() == "multipart/alternative"
    assert "$125.00" in parsed.get_body(("plain",)).get_content()
    assert "<table" in parsed.get_body(("html",)).get_content()


def test_the_org_posting_summary_carries_only_the_organizations_figures():
    subject, text, html = render(
        "interest_posting_org_summary", dict(period="2026-10", organization="Acme <CU>", accounts=2, total="$13.00")
    )
    assert subject == "Acme <CU>: interest posted for 2026-10 to 2 accounts, $13.00"
    assert "$13.00" in text and "Acme <CU>" in text and "Acme &lt;CU&gt;" in html
    with pytest.raises(UndefinedError):  # never a blank organization or figure
        render("interest_posting_org_summary", dict(period="2026-10", accounts=2, total="$13.00"))
