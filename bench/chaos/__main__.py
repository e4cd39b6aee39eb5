"""`python -m bench.chaos [--payments N] [--loans M] [--kills K]`: prints one line, exits 1 when a check failed."""

import argparse
import asyncio
import sys

from bench.chaos.run import Size, chaos, line


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--payments", type=int, default=1000, metavar="N", help="ACH payments (default 1000)")
    parser.add_argument("--loans", type=int, default=100, metavar="M", help="loans (default 100)")
    parser.add_argument("--kills", type=int, default=4, help="worker SIGKILLs (default 4)")
    parser.add_argument("--window", type=float, default=None, help="seconds the disruptions are spread over")
    parser.add_argument("--keep", action="store_true", help="keep the stack's dir (data, logs) after a good run too")
    args = parser.parse_args()
    window = args.window if args.window is not None else max(30.0, args.payments / 10)
    size = Size(
        payments=args.payments,
        loans=args.loans,
        kills=args.kills,
        window=window,
        # A cap for a machine busy with other work too; a stuck process ends the wait sooner (Size.stall).
        drain=max(600.0, 3 * args.payments),
    )
    verdict, disrupted, elapsed = asyncio.run(chaos(size, args.keep))
    print(line(size, verdict, disrupted, elapsed), flush=True)
    sys.exit(1 if verdict.failures else 0)


if __name__ == "__main__":
    main()
