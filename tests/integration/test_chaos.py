"""The chaos run, bounded (bench/chaos; `make chaos` runs it at full size): a payment of every ACH scenario, a
loan auto-debited and one paid off by hand, auto-pay bills and a month-end interest posting, all in flight while
the bank and the bureau fail a fifth of their calls and deliver webhooks twice and newest first, the worker is
SIGKILLed, the Temporal server and Postgres are restarted. Its own stack: it shares nothing with the session's."""

from bench.chaos.run import Size, chaos, line
from bench.chaos.scenarios import ACH_SCENARIOS

SIZE = Size(payments=len(ACH_SCENARIOS), loans=2, kills=1, window=15, drain=240)


async def test_a_bounded_chaos_run_ends_every_process_as_its_scenario_says_and_loses_or_doubles_nothing():
    verdict, disrupted, elapsed = await chaos(SIZE)
    summary = line(SIZE, verdict, disrupted, elapsed)
    print(summary)
    assert sorted(d.split(" ", 1)[1].split(" (")[0] for d in disrupted) == [
        "Postgres restart",
        "Temporal restart",
        "worker SIGKILL",
    ], disrupted
    assert verdict.failures == [], summary
    assert verdict.figures["payments"] == SIZE.payments and verdict.figures["loans"] == SIZE.loans
