"""The benchmark profiler's parsers (bench/profile.py): Postgres's statement log and py-spy's collapsed stacks."""

from pathlib import Path

from bench.profile import normalize, parse_statement_log, top_frames

LOG = """\
2026-12-01 20:00:00.001 UTC [123] LOG:  duration: 0.250 ms  execute <unnamed>: SELECT payments.id FROM payments
\tWHERE payments.id = $1::UUID
2026-12-01 20:00:00.002 UTC [123] DETAIL:  parameters: $1 = 'abc'
2026-12-01 20:00:00.003 UTC [124] LOG:  duration: 0.750 ms  statement: UPDATE payments SET status = 'queued' WHERE id = 7
2026-12-01 20:00:00.004 UTC [123] LOG:  duration: 0.400 ms  parse <unnamed>: SELECT payments.id FROM payments
	WHERE payments.id = $1::UUID
2026-12-01 20:00:00.004 UTC [123] LOG:  duration: 0.100 ms  bind <unnamed>: SELECT payments.id FROM payments
	WHERE payments.id = $1::UUID
2026-12-01 20:00:00.004 UTC [123] LOG:  duration: 0.500 ms  execute <unnamed>: SELECT payments.id FROM payments
\tWHERE payments.id = $1::UUID
2026-12-01 20:00:00.005 UTC [125] LOG:  checkpoint starting: time
"""


def test_statements_are_counted_by_shape_with_the_time_of_their_steps():
    stats = parse_statement_log(LOG.splitlines(keepends=True))
    select = "SELECT payments.id FROM payments WHERE payments.id = $1::UUID"
    update = "UPDATE payments SET status = ? WHERE id = ?"
    assert dict(stats.calls) == {select: 2, update: 1}
    assert stats.milliseconds[select] == 1.25
    assert stats.total_calls == 3 and stats.total_ms == 2.0


def test_literals_do_not_split_a_shape():
    assert normalize("SELECT 1 WHERE a = 'x''y'  AND b = 2.5") == normalize("SELECT 7 WHERE a = 'z' AND b = 3")


def test_py_spy_frames_by_self_and_inclusive_share(tmp_path: Path):
    collapsed = tmp_path / "stacks.txt"
    collapsed.write_text("main (a.py:1);work (a.py:5);parse (b.py:2) 3\nmain (a.py:1);work (a.py:5) 1\n")
    own, inclusive = top_frames(collapsed)
    assert own[0] == ("parse (b.py:2)", 0.75)
    assert dict(inclusive)["work (a.py:5)"] == 1.0 and dict(inclusive)["parse (b.py:2)"] == 0.75


def test_a_frame_named_by_a_docstring_over_several_lines_stays_one_stack(tmp_path: Path):
    """py-spy names some frames by their module's docstring, newlines and all (seen: selectors')."""
    collapsed = tmp_path / "stacks.txt"
    collapsed.write_text(
        "main (a.py:1);work (a.py:5) 2\n"
        "main (a.py:1);Selectors module.\n\nThis module allows high-level I/O 1\n"
        "main (a.py:1);parse (b.py:2) 1\n"
    )
    own, inclusive = top_frames(collapsed)
    assert dict(own)["work (a.py:5)"] == 0.5 and dict(own)["parse (b.py:2)"] == 0.25
    assert dict(inclusive)["main (a.py:1)"] == 1.0
