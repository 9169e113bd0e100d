"""How a network thread sleeps: on its socket, a deadline, and a self-pipe.

The receivers' network threads (stcp-recv's and stcp-serve's) block in
poll() until a datagram arrives or the core's next deadline comes.  Another
thread that moves that deadline (the writer finished and a FIN is due) or
stops the program writes a byte to a pipe the poll also watches, so the
network thread wakes at once instead of at its old deadline.
"""

from __future__ import annotations

import os
import select
import time

from runtime import threadtrace


class Wakeup:
    """The self-pipe.  :meth:`wake` from any thread; :meth:`sleeper` once, in
    the network thread; :meth:`close` after that thread has ended."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)  # a full pipe already wakes the thread

    def wake(self) -> None:
        try:
            os.write(self._w, b"x")
        except OSError:  # full (a wakeup is pending anyway) or closed
            pass

    def sleeper(self, sock):
        """``sleep(deadline)`` for the network thread: returns when ``sock``
        is readable, at ``deadline`` (time.monotonic(); None: no deadline),
        or when woken.  Its poll() is traced as ``poll`` under --thread-trace."""
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(self._r, select.POLLIN)
        poll = threadtrace.syscall(poller.poll, "poll")
        r = self._r

        def sleep(deadline: float | None) -> None:
            if deadline is None:
                poll(None)
            else:  # whole ms, rounded up: never wake just before the deadline
                poll(int(max(0.0, deadline - time.monotonic()) * 1000) + 1)
            try:  # every wake so far is answered by this one return
                while os.read(r, 4096):
                    pass
            except BlockingIOError:
                pass

        return sleep

    def close(self) -> None:
        os.close(self._r)
        os.close(self._w)
