"""The chaos run (PRODUCT.md §4.10): the back office's processes in flight at once while the bank and the bureau
fail a fifth of their calls and deliver every webhook twice and out of order, the worker is SIGKILLed several times,
the Temporal server and Postgres are restarted; then every process is checked against what its scenario must end
in, the books against double entry, the bank's received entries and the mail sink against our records.

    python -m bench.chaos [--payments N] [--loans M]          (make chaos N=... M=...)

setup.py builds the data (faults off), load.py drives the processes, disruptions.py breaks things, checks.py
judges the end state, run.py ties them together and prints the one-line verdict."""
