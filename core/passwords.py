"""Password rules (pure): long enough, hard to guess by zxcvbn's estimate (which knows the common-password lists,
keyboard walks, dates, names and the user's own email and name), and not one of the user's recent passwords."""

from collections.abc import Iterable
from dataclasses import dataclass

from zxcvbn import zxcvbn

from core.security import verify_password

# zxcvbn's cost grows with the length, and since 4.5 it raises ValueError past 72 characters (its `max_length`): the
# estimate is of the first 72, which score 4 anyway unless they are a pattern (then the whole is hardly better).
_ESTIMATE_PREFIX = 72


@dataclass(frozen=True)
class PasswordProblem:
    code: str  # password_too_short, password_too_weak, password_reused
    message: str
    details: dict


def weakness(
    password: str, *, min_length: int, min_score: int, user_inputs: Iterable[str] = ()
) -> PasswordProblem | None:
    """Why `password` is not acceptable (length, strength), or None."""
    if len(password) < min_length:
        return PasswordProblem(
            "password_too_short", f"a password needs at least {min_length} characters", {"min_length": min_length}
        )
    inputs = [part for value in user_inputs for part in _parts(value)]
    estimate = zxcvbn(password[:_ESTIMATE_PREFIX], user_inputs=inputs)
    if estimate["score"] < min_score:
        feedback = estimate["feedback"]
        warning = feedback.get("warning") or "this password is too easy to guess"
        return PasswordProblem(
            "password_too_weak",
            f"{warning.rstrip('.')}: choose a less predictable password",
            {"score": estimate["score"], "min_score": min_score, "suggestions": feedback.get("suggestions", [])},
        )
    return None


def _parts(value: str) -> list[str]:
    """An email or a name as the words someone might build a password from ("dana.teller@riverside.example" gives
    dana, teller, riverside, ...)."""
    words = value.lower().replace("@", " ").replace(".", " ").replace("-", " ").replace("_", " ").split()
    return [value.lower(), *words]


def reused(password: str, recent_hashes: Iterable[str]) -> PasswordProblem | None:
    """A problem when `password` matches one of the recent hashes (newest first, the current one included)."""
    hashes = list(recent_hashes)
    if any(verify_password(password, hashed)[0] for hashed in hashes):
        return PasswordProblem(
            "password_reused",
            f"this password was used recently: choose one that is not one of your last {len(hashes)}",
            {"history": len(hashes)},
        )
    return None
