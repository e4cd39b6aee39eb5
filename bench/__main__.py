"""`python -m bench [names...] [--quick] [options]`: runs every benchmark (or the named ones), each on its own real
stack, and prints its figures. Each benchmark module has `add_arguments(parser)`, `async run(args)` and QUICK, the
defaults of `--quick` (`make bench-quick`: every figure at a small size, in under five minutes)."""

import argparse
import asyncio
import contextlib
import importlib
import os
import time

from bench.stack import sharing

BENCHMARKS = {
    "ach_throughput": "bench.ach_throughput",
    "approval_roundtrip": "bench.approval_roundtrip",
    "interest_posting": "bench.interest_posting",
    "api_reads": "bench.api_reads",
    "import_bench": "bench.import_bench",
    "insights": "bench.insights_bench",
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name", help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    modules = {name: importlib.import_module(path) for name, path in BENCHMARKS.items()}
    parser.add_argument("--quick", action="store_true", help="small sizes: every benchmark in under five minutes")
    for module in modules.values():
        module.add_arguments(parser)
    if parser.parse_known_args()[0].quick:
        for module in modules.values():
            parser.set_defaults(**module.QUICK)
        os.environ.setdefault("BENCH_API_PROCESSES", "1")  # bench.stack.api_processes
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(BENCHMARKS)}")
    started = time.monotonic()
    took: dict[str, float] = {}

    async def run_all() -> None:
        # One event loop for all: a stack shared by two benchmarks (bench-quick) outlives the first one's run.
        async with sharing() if args.quick else contextlib.nullcontext():
            for name in args.names or BENCHMARKS:
                began = time.monotonic()
                await modules[name].run(args)
                took[name] = time.monotonic() - began

    asyncio.run(run_all())
    print("\nwall time: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in took.items()), end="")
    print(f"; all {time.monotonic() - started:.0f} s" + (" (bench-quick's target: under 300 s)" if args.quick else ""))


if __name__ == "__main__":
    main()
