"""ABA routing transit numbers: nine digits whose last is a check digit with weights 3, 7, 1."""

_WEIGHTS = (3, 7, 1, 3, 7, 1, 3, 7, 1)


def is_valid_routing_number(routing: str) -> bool:
    if len(routing) != 9 or not routing.isascii() or not routing.isdigit():
        return False
    return sum(int(d) * w for d, w in zip(routing, _WEIGHTS, strict=True)) % 10 == 0


def check_digit(first_eight: str) -> str:
    """The ninth digit that makes `first_eight` a valid routing number."""
    if len(first_eight) != 8 or not first_eight.isdigit():
        raise ValueError("a routing number prefix is eight digits")
    partial = sum(int(d) * w for d, w in zip(first_eight, _WEIGHTS, strict=False))
    return str((10 - partial % 10) % 10)
