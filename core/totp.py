"""TOTP (RFC 6238, through pyotp) and recovery codes, pure: the database side (one accepted use of each time step,
single-use recovery codes) is domain/mfa.py's."""

import base64
import hmac
import io
import re
import secrets
from datetime import datetime

import pyotp
import qrcode
from qrcode.image.pil import PilImage

STEP_SECONDS = 30
RECOVERY_CODES = 10
_TOTP_CODE = re.compile(r"^\d{6}$")


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, base32: what authenticator apps expect


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads (from the QR code or pasted)."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_png(uri: str) -> bytes:
    image = qrcode.make(uri, image_factory=PilImage, box_size=6, border=2)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


def step_of(moment: datetime) -> int:
    return int(moment.timestamp()) // STEP_SECONDS


def is_totp_code(code: str) -> bool:
    return bool(_TOTP_CODE.match(code))


def matching_step(secret: str, code: str, now: datetime, window: int) -> int | None:
    """The time step within `window` steps of now whose code is `code`, or None. The caller accepts a step only when it
    is later than the last one accepted: a code is never good twice."""
    if not is_totp_code(code):
        return None
    totp, current = pyotp.TOTP(secret), step_of(now)
    for step in range(current - window, current + window + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """Codes of 80 random bits each, as XXXX-XXXX-XXXX-XXXX (base32)."""
    codes = []
    for _ in range(count):
        raw = base64.b32encode(secrets.token_bytes(10)).decode()
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def normalize_recovery_code(code: str) -> str:
    """What is hashed and compared: a code typed in lower case, with or without its dashes or spaces, is the same."""
    return re.sub(r"[\s-]", "", code).upper()
