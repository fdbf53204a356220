"""The ``lossatlas`` command: the library's command line with our experiments.

``lossatlas run NAME --quick`` and ``python -m lossatlas_experiments run NAME --quick``
are the same program.
"""
from __future__ import annotations

import sys

from lossatlas import cli


def main(argv=None) -> int:
    """Run ``lossatlas`` with this package's experiments.

    Args:
      argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
      The exit code (:mod:`lossatlas.exitcodes`).
    """
    import lossatlas_experiments
    return cli.main(argv, registry=lossatlas_experiments.REGISTRY)


if __name__ == "__main__":
    sys.exit(main())
