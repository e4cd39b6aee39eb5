"""The signatures of our webhooks out (core/webhook_signing.py): the bank's scheme with us, mirrored."""

import hashlib
import hmac

from api.routers.webhooks import expected_signature
from core import webhook_signing

SECRET = "whsec_test-secret"
BODY = b'{"id": "e1", "type": "payment.status_changed", "data": {"status": "completed"}}'
NOW = 1_764_655_200


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body_like_the_banks():
    digest = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert webhook_signing.sign(SECRET, NOW, BODY) == f"v1={digest}"
    # The very scheme the bank signs its webhooks to us with (api/routers/webhooks.py).
    assert webhook_signing.sign(SECRET, NOW, BODY) == expected_signature(SECRET, str(NOW), BODY)


def test_headers_carry_the_event_id_type_timestamp_and_signature():
    headers = webhook_signing.headers(SECRET, "e1", "payment.status_changed", NOW, BODY)
    assert headers["X-Webhook-Id"] == "e1"
    assert headers["X-Webhook-Event"] == "payment.status_changed"
    assert headers["X-Webhook-Timestamp"] == str(NOW)
    assert headers["X-Webhook-Signature"] == webhook_signing.sign(SECRET, NOW, BODY)


def test_a_receiver_verifies_the_signature_with_the_subscriptions_secret_only():
    signature = webhook_signing.sign(SECRET, NOW, BODY)
    assert webhook_signing.verify(SECRET, str(NOW), signature, BODY, now=NOW + 10, tolerance_seconds=300)
    assert not webhook_signing.verify("whsec_other", str(NOW), signature, BODY, now=NOW, tolerance_seconds=300)
    assert not webhook_signing.verify(SECRET, str(NOW), signature, BODY + b" ", now=NOW, tolerance_seconds=300)
    assert not webhook_signing.verify(SECRET, str(NOW + 1), signature, BODY, now=NOW, tolerance_seconds=300)


def test_a_stale_or_malformed_timestamp_is_refused():
    signature = webhook_signing.sign(SECRET, NOW, BODY)
    assert not webhook_signing.verify(SECRET, str(NOW), signature, BODY, now=NOW + 301, tolerance_seconds=300)
    for bad in ("", " 1", "1_2", "١٢", "1" * 13):
        assert not webhook_signing.verify(SECRET, bad, webhook_signing.sign(SECRET, bad, BODY), BODY, NOW, 1e12)


def test_each_secret_is_new_and_marked():
    first, second = webhook_signing.new_secret(), webhook_signing.new_secret()
    assert first != second
    assert first.startswith("whsec_") and len(first) > 40
