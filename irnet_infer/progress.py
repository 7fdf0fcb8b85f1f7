"""Progress bars for the command line: tqdm when it is installed and wanted, else a silent
stand-in, so callers never check for None (tqdm is optional at run time). Bars are drawn only
on a terminal: written to a log file, tqdm's carriage-return redraws pile up into one line of
thousands of characters."""
from __future__ import annotations

import contextlib


class _Silent:
    def update(self, n=1):
        pass

    def set_postfix(self, **kwargs):
        pass


@contextlib.contextmanager
def progress(total, enabled=True, unit="img", desc=None):
    """`with progress(n) as bar: ... bar.update(1)`; the bar is closed however the block ends."""
    bar = None
    if enabled:
        try:
            from tqdm import tqdm
            # disable=None: off when stderr is not a terminal.
            bar = tqdm(total=total, unit=unit, desc=desc, leave=False, dynamic_ncols=True, disable=None)
        except ImportError:
            pass
    try:
        yield bar if bar is not None else _Silent()
    finally:
        if bar is not None:
            bar.close()
