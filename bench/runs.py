"""One measurement each: our sender and receiver (directly or through the
emulator), and the baselines of ``bench.baselines``.  Every function starts
its processes through the harness (harness/), in a fresh process group that
kills them all on the way out, and returns a :class:`Result`.
"""

from __future__ import annotations

import json
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path

from harness.procs import HOST, Group, HarnessError, Usage
from harness.programs import Launcher
from harness.spec import LinkSpec, Options, ReceiverSpec, RunSpec, SenderSpec
from harness.transfer import PORT_ATTEMPTS, PortTaken, Transfer, run_with_ports

__all__ = ["HOST", "MIB", "PORT_ATTEMPTS", "BenchError", "PortTaken", "Result", "run_ours",
           "run_quic", "run_tcp", "run_tftp", "run_udp"]

MIB = 1024 * 1024


@dataclass
class Result:
    name: str
    ok: bool
    bytes: int                 # bytes delivered (or acknowledged, when cut short)
    seconds: float             # the contender's own measure of the transfer time
    usage: dict[str, Usage] = field(default_factory=dict)   # role -> wait4 figures
    info: dict = field(default_factory=dict)                 # parsed summaries etc.
    note: str = ""

    @property
    def goodput(self) -> float:
        """Bytes per second."""
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    def cpu_per_mib(self, role: str) -> float | None:
        u = self.usage.get(role)
        if u is None or self.bytes <= 0:
            return None
        return u.cpu / (self.bytes / MIB)


class BenchError(RuntimeError):
    pass


#: How our programs run in every measurement: no progress bar, warnings
#: only, no emulator report.
OPTIONS = Options(log_level="WARNING", emulator_stats=False)


# ------------------------------------------------------------- summaries

_NUM = r"([0-9]+(?:\.[0-9]+)?)"


def parse_sender_summary(text: str) -> dict:
    """The figures of the sender's stdout summary (see sender/__main__.py)."""
    out: dict = {}
    pats = {
        "result": r"^\s*result\s+(.+)$",
        "bytes_acked": r"^\s*bytes acknowledged\s+([0-9]+)",
        "time": rf"^\s*time\s+{_NUM} s",
        "segments_sent": r"^\s*segments sent\s+([0-9]+)",
        "data_segments": r"^\s*segments sent\s+[0-9]+ \(([0-9]+) new data\)",
        "segments_received": r"^\s*segments received\s+([0-9]+)",
        "retransmissions": r"^\s*retransmissions\s+([0-9]+)",
        "rexmit_timeout": r"^\s*retransmissions\s+[0-9]+ \(timeout ([0-9]+)",
        "timer_expiries": r"([0-9]+) timer expiries",
        "dupacks": r"^\s*duplicate ACKs\s+([0-9]+)",
        "rtt_min_ms": rf"^\s*RTT min/avg/max\s+{_NUM} ms",
        "rtt_avg_ms": rf"^\s*RTT min/avg/max\s+[0-9.]+ ms / {_NUM} ms",
        "handshake_ms": rf"^\s*handshake\s+{_NUM} ms",
        "syns": r"^\s*handshake\s+[0-9.]+ ms \(([0-9]+) SYN",
    }
    for key, pat in pats.items():
        m = re.search(pat, text, re.M)
        if not m:
            continue
        v = m.group(1).strip()
        if key == "result":
            out[key] = v
        elif "." in v:
            out[key] = float(v)
        else:
            out[key] = int(v)
    out["delivered"] = out.get("result", "").startswith("delivered")
    return out


def parse_receiver_summary(text: str) -> dict:
    out: dict = {}
    m = re.search(r"^\s*bytes written\s+([0-9]+)", text, re.M)
    if m:
        out["bytes_written"] = int(m.group(1))
    m = re.search(rf"^\s*time\s+{_NUM} s", text, re.M)
    if m:
        out["time"] = float(m.group(1))
    m = re.search(r"^\s*segments sent\s+([0-9]+)", text, re.M)
    if m:
        out["acks_sent"] = int(m.group(1))
    return out


def _last_json(child) -> dict:
    for line in reversed(child.stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise BenchError(f"{child.name} printed no result\n{child.describe()}")


# ------------------------------------------------------------- ours


def emulator(g: Group, name: str, forward_to: int, flags: list[str], seed: int) -> tuple:
    return Launcher(g, OPTIONS).emulator(name, LinkSpec(flags=list(flags), seed=seed),
                                         forward_to)


def run_ours(*args, **kwargs) -> Result:
    """_run_ours, again with another ACK port when the one picked was taken
    (harness.transfer.run_with_ports)."""
    return run_with_ports(lambda: _run_ours(*args, **kwargs), PORT_ATTEMPTS)


def _spec(workdir: Path, infile: Path, outfile: Path, mode: str, window: int, *,
          data_link, ack_link, buffer: str, seed: int, timeout: float, sender_prefix,
          receiver_prefix, cpus, receiver_args=()) -> RunSpec:
    return RunSpec(
        workdir,
        ReceiverSpec(outfile, mode=mode, buffer=buffer, force=True,
                     prefix=list(receiver_prefix or []), args=list(receiver_args)),
        [SenderSpec(infile, window, mode=mode, prefix=list(sender_prefix or []))],
        data_link=None if data_link is None else LinkSpec(flags=list(data_link), seed=seed),
        ack_link=None if ack_link is None else LinkSpec(flags=list(ack_link),
                                                        seed=seed + 7919),
        options=OPTIONS, timeout=timeout, cpus=cpus)


def _run_ours(workdir: Path, infile: Path, mode: str, window: int, *,
             data_link: list[str] | None = None, ack_link: list[str] | None = None,
             buffer: str = "8M", seed: int = 1, timeout: float = 120.0,
             sender_prefix: list[str] | None = None,
             receiver_prefix: list[str] | None = None,
             after_handshake: bool = False,
             cpus: tuple[int, int] | None = None,
             receiver_args: tuple[str, ...] = (), name: str | None = None) -> Result:
    """One transfer of ``infile``; ``data_link``/``ack_link`` are emulator flags
    (None: no emulator on that path).  A sender still running after ``timeout``
    seconds is interrupted and the result is what it had acknowledged by then.
    ``*_prefix`` wraps a program (e.g. a profiler): its argv comes before ``python``.
    The time is the sender's own, SYN to verified FIN; ``after_handshake``
    starts it at the handshake's end instead (the sender's summary says
    when), for comparisons with models of the sliding window alone: a lost
    SYN costs the initial RTO (1 s, RFC 6298 §2.1), which no window model
    describes.  ``cpus``: (sender's, receiver's) CPU (harness.procs.end_cpus),
    or None to leave them to the kernel.  ``receiver_args``: more of the
    receiver's flags; ``name``: the result's name (default ``ours-MODE``).
    """
    size = infile.stat().st_size
    outfile = workdir / "received.bin"
    spec = _spec(workdir, infile, outfile, mode, window, data_link=data_link,
                 ack_link=ack_link, buffer=buffer, seed=seed, timeout=timeout,
                 sender_prefix=sender_prefix, receiver_prefix=receiver_prefix, cpus=cpus,
                 receiver_args=receiver_args)
    with Transfer(spec) as t:
        try:
            try:
                t.start()
            except HarnessError as exc:
                raise BenchError(str(exc)) from None
            send, recv = t.senders[0], t.receiver
            note = ""
            if not t.wait_senders():
                note = f"cut at {timeout:.0f} s"
                send.signal(signal.SIGTERM)
                send.wait(15)
            t.check_port()
            if not note and not t.wait_receiver(30):
                note = "receiver did not exit"
            s = parse_sender_summary(send.stdout)
            r = parse_receiver_summary(recv.stdout) if recv.returncode is not None else {}
            ok = (send.returncode == 0 and recv.returncode == 0 and s.get("delivered")
                  and r.get("bytes_written") == size)
            if not note and not ok:
                raise BenchError(f"{mode} transfer failed\n" + t.group.describe())
            if "time" not in s:
                raise BenchError(f"no time in the sender summary\n{send.describe()}")
            t.stop()  # the emulators: their usage is reaped too
            usage = {"sender": send.usage, "receiver": recv.usage}
            for e in t.emulators:
                usage[e.name] = e.usage
            seconds = s["time"]
            if after_handshake:
                if "handshake_ms" not in s:
                    raise BenchError(f"no handshake time in the sender summary\n"
                                     f"{send.describe()}")
                seconds -= s["handshake_ms"] / 1000
            return Result(name or f"ours-{mode}", bool(ok), size if ok else s.get("bytes_acked", 0),
                          seconds, usage, {**s, **{f"recv_{k}": v for k, v in r.items()}},
                          note)
        finally:
            outfile.unlink(missing_ok=True)
            outfile.with_name(outfile.name + ".part").unlink(missing_ok=True)


# ------------------------------------------------------------- baselines


def _baseline(g: Group, name: str, role: str, args: list[str], end: str):
    return g.python(name, "bench.baselines", [role, *args], end=end)


def run_udp(workdir: Path, infile: Path, *, data_link: list[str] | None = None,
            seed: int = 1, min_seconds: float = 1.0, gso: int = 1,
            cpus: tuple[int, int] | None = None) -> Result:
    """The ceiling: a Python UDP blast of the file, counted at the sink;
    ``gso`` datagrams per system call (bench.baselines)."""
    with Group(workdir, cpus) as g:
        ready = g.ready_path("udp-sink")
        sink = _baseline(g, "udp-sink", "udp-sink", ["--ready-file", str(ready)], "recv")
        port = g.wait_ready(sink, ready)["port"]
        emus = []
        if data_link is not None:
            emu, port = emulator(g, "emu-data", port, data_link, seed)
            emus.append(emu)
        blast = _baseline(g, "udp-blast", "udp-blast", ["--file", str(infile),
                                                        "--port", str(port),
                                                        "--min-seconds", str(min_seconds),
                                                        "--gso", str(gso)], "send")
        blast.wait(300)
        sink.wait(300)
        if blast.returncode or sink.returncode:
            raise BenchError("UDP blast failed\n" + "\n".join(c.describe() for c in g.procs))
        got = _last_json(sink)
        sent = _last_json(blast)
        g.stop_all()
        usage = {"sender": blast.usage, "receiver": sink.usage}
        for e in emus:
            usage[e.name] = e.usage
        return Result("udp", True, got["bytes"], got["seconds"], usage,
                      {"datagrams_received": got["datagrams"], "datagrams_sent": sent["sent"],
                       "blast_seconds": sent["seconds"], "passes": sent["passes"],
                       "gso": gso})


def run_tcp(workdir: Path, infile: Path, cpus: tuple[int, int] | None = None) -> Result:
    with Group(workdir, cpus) as g:
        ready = g.ready_path("tcp-sink")
        sink = _baseline(g, "tcp-sink", "tcp-sink", ["--ready-file", str(ready)], "recv")
        port = g.wait_ready(sink, ready)["port"]
        send = _baseline(g, "tcp-send", "tcp-send", ["--file", str(infile), "--port", str(port)],
                         "send")
        sink.wait(300)
        send.wait(60)
        if send.returncode or sink.returncode:
            raise BenchError("TCP run failed\n" + "\n".join(c.describe() for c in g.procs))
        got = _last_json(sink)
        return Result("tcp", got["bytes"] == infile.stat().st_size, got["bytes"],
                      got["seconds"], {"sender": send.usage, "receiver": sink.usage})


def run_tftp(workdir: Path, infile: Path, timeout: float = 600.0,
             cpus: tuple[int, int] | None = None) -> Result:
    with Group(workdir, cpus) as g:
        ready = g.ready_path("tftp-server")
        server = _baseline(g, "tftp-server", "tftp-server",
                           ["--ready-file", str(ready), "--root", str(infile.parent)], "send")
        port = g.wait_ready(server, ready)["port"]
        client = _baseline(g, "tftp-client", "tftp-client",
                           ["--port", str(port), "--name", infile.name], "recv")
        client.wait(timeout)
        if client.returncode:
            raise BenchError("tftp run failed\n" + "\n".join(c.describe() for c in g.procs))
        got = _last_json(client)
        g.stop_all()  # the server serves until told to stop
        return Result("tftpy", got["bytes"] == infile.stat().st_size, got["bytes"],
                      got["seconds"], {"sender": server.usage, "receiver": client.usage})


def run_quic(workdir: Path, infile: Path, window: int = 8 * MIB,
             timeout: float = 600.0, cpus: tuple[int, int] | None = None) -> Result:
    with Group(workdir, cpus) as g:
        ready = g.ready_path("quic-server")
        server = _baseline(g, "quic-server", "quic-server",
                           ["--ready-file", str(ready), "--window", str(window)], "recv")
        port = g.wait_ready(server, ready)["port"]
        client = _baseline(g, "quic-client", "quic-client",
                           ["--file", str(infile), "--port", str(port),
                            "--window", str(window)], "send")
        client.wait(timeout)
        if client.returncode:
            raise BenchError("QUIC run failed\n" + "\n".join(c.describe() for c in g.procs))
        got = _last_json(client)
        g.stop_all()
        return Result("aioquic", got["bytes"] == infile.stat().st_size, got["bytes"],
                      got["seconds"], {"sender": client.usage, "receiver": server.usage})
