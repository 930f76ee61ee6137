"""Progress bars drawn only where someone watches them: on a terminal, never into a log file."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(total: int | None, desc: str, unit: str, initial: int = 0, enabled: bool = True) -> Any:
    """A tqdm bar on standard error when it is a terminal and ``enabled``; otherwise None.

    Parameters
    ----------
    total : int or None
        Expected number of updates (None: unknown).
    desc, unit : str
        The bar's label and unit.
    initial : int
        Updates already done (a resumed run).
    enabled : bool
        False turns the bar off (``--quiet``, ``logging.progress_bar: false``).
    """
    if not (enabled and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr)
