"""Exit codes of the ``lossatlas`` command line (also listed in ``lossatlas --help`` and the README).

``OK``            0    ran and every check passed (``run``), or the command succeeded
``CHECK_FAILED``  1    ran to the end and at least one check failed; the results folder is complete
``USAGE``         2    usage or config error: unknown name, bad ``--set`` value, bad ``--out``,
                       unreadable or malformed input file; nothing was run or written
``RUNTIME``       3    any other error during the run: one line on stderr (set
                       ``LOSSATLAS_DEBUG=1`` for the traceback); no results folder is left
``INTERRUPTED``   130  interrupted (Ctrl-C); the partial results folder is removed
"""
OK = 0
CHECK_FAILED = 1
USAGE = 2
RUNTIME = 3
INTERRUPTED = 130

#: ``(code, meaning)`` in the order the help text lists them.
DESCRIPTIONS = (
    (OK, "ran and every check passed"),
    (CHECK_FAILED, "ran, a check failed (the results folder is complete)"),
    (USAGE, "usage or config error (bad name, --set value, --out or input file)"),
    (RUNTIME, "runtime error (LOSSATLAS_DEBUG=1 prints the traceback)"),
    (INTERRUPTED, "interrupted (Ctrl-C); the partial results folder is removed"),
)


def epilog() -> str:
    """The ``exit codes:`` block of ``lossatlas --help``."""
    return "exit codes:\n" + "\n".join(f"  {code:<4d} {text}" for code, text in DESCRIPTIONS)
