"""One run, started the one way there is: the ACK-path emulator (if any),
the receiver, the data-path emulator (if any), then the sender(s); waited
for; stopped.

Only the sender's ACK port must be known before the receiver starts (the
receiver, or the ACK-path emulator, sends there): it is picked first, below
the kernel's ephemeral range (harness.ports), so that none of the programs
binding port 0 meanwhile takes it.  Everything else binds port 0 and says
which port it got in its ready file.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.ports import spare_udp_port
from harness.procs import STOP_GRACE, Group, HarnessError, Proc, wait_all, wait_any
from harness.programs import Launcher
from harness.spec import RunSpec

#: Attempts at a run whose sender finds its ACK port taken (run_with_ports).
PORT_ATTEMPTS = 3


class PortTaken(HarnessError):
    """The ACK port picked for the sender was bound by someone else first."""


def free_udp_port(host: str) -> int:
    """The ACK port a run picks when none is given (tests replace it)."""
    return spare_udp_port(host)


@dataclass
class Ports:
    link: int           # where the sender sends: the data-path emulator, or the receiver
    receiver: int
    ack: int            # the sender's own
    ack_link: int | None = None


class Transfer:
    """The processes of one run (:class:`~harness.spec.RunSpec`), in
    ``group`` (default: a new one in the run's directory).  ``start()``, the
    waits, then ``stop()``; as a context manager, everything it started is
    stopped on the way out whatever happened."""

    def __init__(self, spec: RunSpec, group: Group | None = None):
        self.spec = spec
        self.group = group or Group(spec.workdir, cpus=spec.cpus, cwd=spec.cwd)
        self.launch = Launcher(self.group, spec.options)
        self.ports: Ports | None = None
        self.receiver: Proc | None = None
        self.senders: list[Proc] = []
        self.emulators: list[Proc] = []
        self.started = 0.0           # time.monotonic() when the first sender started
        self._picked_ack_port = False

    def start(self, before_senders: Callable[[Ports], None] | None = None) -> Ports:
        """Every process, each listening one ready before the next starts;
        ``before_senders`` is called with the ports once all but the senders
        run.  Raises harness.procs.ExitedEarly or NotReady (with the label of
        the program that did not start) and leaves the rest running."""
        spec, launch = self.spec, self.launch
        first = spec.senders[0]
        ack_port = first.ack_port or free_udp_port(spec.options.host)
        self._picked_ack_port = not first.ack_port
        ack_link = None
        if spec.ack_link is not None:
            emu, ack_link = launch.emulator("emu-ack", spec.ack_link, ack_port)
            self.emulators.append(emu)
        self.receiver, rport = launch.receiver(spec.receiver, ack_link or ack_port)
        link = rport
        if spec.data_link is not None:
            emu, link = launch.emulator("emu-data", spec.data_link, rport)
            self.emulators.append(emu)
        self.ports = Ports(link, rport, ack_port, ack_link)
        if before_senders is not None:
            before_senders(self.ports)
        self.started = time.monotonic()
        for s in spec.senders:
            self.senders.append(launch.sender(s, link, ack_port))
        return self.ports

    def wait_senders(self, timeout: float | None = None,
                     on_emulator_exit: Callable[[Proc], None] | None = None) -> bool:
        """Until every sender has ended (False: ``timeout`` s, default the
        run's, ran out first); an emulator that ends meanwhile is passed to
        ``on_emulator_exit`` at once."""
        deadline = time.monotonic() + (self.spec.timeout if timeout is None else timeout)
        watched = [e for e in self.emulators if e.poll() is None]
        while True:
            running = [s for s in self.senders if s.poll() is None]
            if not running:
                return True
            for e in [e for e in watched if e.poll() is not None]:
                watched.remove(e)
                if on_emulator_exit is not None:
                    on_emulator_exit(e)
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            wait_any(running + watched, left)

    def wait_receiver(self, timeout: float) -> bool:
        """Until the receiver has ended (False: ``timeout`` s ran out first)."""
        return wait_all([self.receiver], timeout)

    def check_port(self) -> None:
        """Raise PortTaken if a sender could not bind the ACK port picked for it."""
        for s in self.senders:
            if (self._picked_ack_port and s.poll() == 2
                    and "Address already in use" in s.stderr):
                raise PortTaken(f"ACK port {self.ports.ack} was taken before the sender bound it")

    def stop_emulators(self, grace: float = STOP_GRACE) -> list[Proc]:
        """SIGTERM the emulators and wait, so that their --stats files are written."""
        return self.group.stop(self.emulators, grace=grace)

    def stop(self, *, sig: int = signal.SIGTERM, grace: float = STOP_GRACE) -> list[Proc]:
        """Stop every process still running; returns those that needed SIGKILL."""
        return self.group.stop(sig=sig, grace=grace)

    def __enter__(self) -> Transfer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def run_with_ports(run: Callable[[], object], attempts: int = PORT_ATTEMPTS):
    """``run()``, again (``attempts`` times in all) while it raises PortTaken:
    a program here binding that very port by number can still take it, and
    then the run goes again at once rather than after the time a receiver
    waits for a SYN."""
    for _ in range(attempts - 1):
        try:
            return run()
        except PortTaken as exc:
            print(f"    {exc}; again with another", file=sys.stderr, flush=True)
    return run()
