"""A progress bar on stderr (tqdm) for the two programs.

Shown only when stderr is a terminal and the user did not ask for quiet;
``update`` is called by a program thread with the bytes done so far, outside
the protocol lock, and tqdm throttles the redraws itself.  While the bar is
up, the console's log lines go through tqdm.write, which lifts the bar off
the screen for each line and draws it again below: none lands inside it.
"""

from __future__ import annotations

import sys

from .progutil import console_to


class Progress:
    def __init__(self, total: int | None, desc: str):
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                         file=sys.stderr, mininterval=0.2, leave=True, dynamic_ncols=True)
        self._done = 0
        self._closed = False
        console_to(lambda message: tqdm.write(str(message), file=sys.stderr, end=""))

    def update(self, done: int, retransmissions: int | None = None,
               total: int | None = None) -> None:
        if total is not None and self._bar.total != total:
            self._bar.total = total  # the receiver learns the size from the SYN
        if done > self._done:
            self._bar.update(done - self._done)
            self._done = done
        if retransmissions is not None:
            self._bar.set_postfix(rexmit=retransmissions, refresh=False)

    def close(self) -> None:
        """Leave the bar on the screen as it is; log lines go to stderr again."""
        if not self._closed:
            self._closed = True
            self._bar.close()
            console_to(None)


def wanted(quiet: bool, disabled: bool) -> bool:
    return not quiet and not disabled and sys.stderr.isatty()
