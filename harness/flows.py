"""run_pair.sh --flows N: N senders at once into one stcp-serve.

The processes, each ready before the next starts: the ACK-path emulator
(``stcp-link --forward-by-port``: every flow's ACKs, each to the port in its
TCP header, its sender's), the server (``stcp-serve`` into RUNDIR/inbox,
``--count N``), the data-path emulator (the shared link: the impairments and
any bottleneck), with ``--flow-delays`` one more emulator per flow in front
of it (that flow's extra one-way delay), then the senders, ``--stagger``
seconds apart, each offering its own name.  Then every file is verified
byte for byte and by SHA-256, a per-flow table is printed (from each
sender's own summary: docs/MEASURES.md), with Jain's fairness index of the
goodputs, and, with traces, plots/flows.png: per-flow goodput over time on
one axis (and cwnd, with --cc).
"""

from __future__ import annotations

import json
import random
import re
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness import rundir, signals
from harness.pair_args import ME, PairArgs, UsageError, receiver_extra
from harness.procs import ROOT, ExitedEarly, Group, NotReady, Proc, wait_all
from harness.programs import Launcher, emulator_argv, sender_argv
from harness.spec import LinkSpec, Options, SenderSpec
from harness.sweep_result import from_summary, summary_rows
from harness.verify import verify

INBOX = "inbox"
SERVER = "server"
STOP_GRACE = 5.0


def say(msg: str, err: bool = False) -> None:
    print(f"{ME}: {msg}", file=sys.stderr if err else sys.stdout, flush=True)


def jain(xs: list[float]) -> float | None:
    """Jain's fairness index (sum x)^2 / (n sum x^2): 1 when all are equal,
    1/n when one flow has everything; None without data."""
    sq = sum(x * x for x in xs)
    return sum(xs) ** 2 / (len(xs) * sq) if xs and sq > 0 else None


@dataclass
class Flow:
    index: int          # from 1
    input: Path
    name: str           # the name it offers: its file in the inbox
    delay: float = 0.0  # its own extra one-way delay (--flow-delays)
    proc: Proc | None = None
    delivered: bool = False  # its file in the inbox verified (failures())

    @property
    def sender(self) -> str:
        return f"sender-{self.index}"


class FlowRun:
    """One run_pair.sh --flows run, from the checked options to the verdict."""

    def __init__(self, a: PairArgs, argv: list[str]):
        self.a, self.argv = a, argv
        self.seed = int(a.seed) if a.seed else random.randrange(1 << 31)
        self.dir = Path(a.dir) if a.dir else rundir.default_dir(ROOT)
        self.group: Group | None = None
        self.server: Proc | None = None
        self.emulators: list[Proc] = []
        self.flows = self._flows()

    def _flows(self) -> list[Flow]:
        a = self.a
        out = []
        for i in range(1, a.flows_n + 1):
            src = Path(a.input) if a.input else self.dir / f"flow-{i}.bin"
            name = f"flow-{i}-{src.name}" if a.input else src.name
            out.append(Flow(i, src, name, a.delays[i - 1] if a.delays else 0.0))
        return out

    # ---------------------------------------------------------------- commands
    def options(self) -> Options:
        a = self.a
        return Options(host=a.host, bind=True, give_up=a.give_up,
                       log_level="DEBUG" if a.verbose else "INFO", log_files=True,
                       emulator_verbose=2 if a.verbose else 1, trace=a.analysis,
                       pcap=False, thread_trace=a.thread_trace,
                       python=_python())

    def server_argv(self, ack_port: int | str) -> list[str]:
        a, d = self.a, self.dir
        argv = [_python(), "-m", "receiver", "serve", str(d / INBOX), str(a.recv_port),
                self.options().host, str(ack_port), "--count", str(a.flows_n),
                "--mode", a.mode, "--mss", str(a.mss_b), "--buffer", str(a.buffer_b),
                "--give-up", str(a.give_up), "--max-conns", str(max(64, a.flows_n)),
                "--ready-file", str(d / f"{SERVER}.ready"),
                "--log-file", str(d / f"{SERVER}.log"), "--bind", self.options().host]
        if a.thread_trace:
            argv += ["--thread-trace", str(d / f"{SERVER}.threads.json")]
        return argv + receiver_extra(a)

    def links(self) -> tuple[LinkSpec, LinkSpec]:
        """(data path, ACK path): the ACK path always has its emulator, forwarding by port."""
        a = self.a
        return (LinkSpec(dict(a.data), seed=self.seed, port=a.link_port),
                LinkSpec(dict(a.ack), flags=["--forward-by-port"], seed=self.seed + 1))

    def sender_spec(self, flow: Flow) -> SenderSpec:
        a = self.a
        return SenderSpec(flow.input, a.window_b, mode=a.mode, mss=a.mss_b,
                          pacing=a.pacing or None, cc=None if a.cc == "none" else a.cc,
                          args=["--name", flow.name]
                          + ([] if a.timestamps else ["--no-timestamps"]), name=flow.sender)

    def delay_link(self, flow: Flow) -> LinkSpec:
        return LinkSpec(flags=["-d", f"{flow.delay:g}"], seed=self.seed + 1 + flow.index)

    def dry_run(self) -> None:
        opts, w = self.options(), self.dir
        data, ack = self.links()
        print(f"# seed {self.seed}; {self.a.flows_n} flows; ports the programs pick in capitals")
        print(shlex.join(emulator_argv(opts, w, "emu-ack", ack, "*")))
        print(shlex.join(self.server_argv("ACK_EMULATOR_PORT")))
        print(shlex.join(emulator_argv(opts, w, "emu-data", data, "SERVER_PORT")))
        for f in self.flows:
            link = "DATA_EMULATOR_PORT"
            if f.delay:
                print(shlex.join(emulator_argv(opts, w, f"emu-delay-{f.index}",
                                               self.delay_link(f), link)))
                link = f"DELAY_EMULATOR_{f.index}_PORT"
            print(shlex.join(sender_argv(opts, w, self.sender_spec(f), link, 0)))

    # ---------------------------------------------------------------- running
    def prepare(self) -> None:
        if (self.dir / INBOX).exists() and any((self.dir / INBOX).iterdir()):
            raise UsageError(f"--dir {self.dir} holds an earlier run ({INBOX}/); it is kept: "
                             "remove it or give another --dir")
        try:
            (self.dir / INBOX).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create {self.dir / INBOX}: {exc.strerror}") from None
        self.dir = self.dir.resolve()
        self.flows = self._flows()
        if not self.a.input:
            from harness.run_pair import write_sample

            for f in self.flows:
                try:
                    write_sample(f.input, self.a.size_b, self.seed + f.index)
                except OSError as exc:
                    raise UsageError(f"cannot write the sample {f.input}: "
                                     f"{exc.strerror}") from None

    def start(self) -> None:
        g = self.group = Group(self.dir, cwd=Path.cwd())
        launch = Launcher(g, self.options())
        data, ack = self.links()
        emu, ack_port = launch.emulator("emu-ack", ack, "*")
        self.emulators.append(emu)
        ready = g.ready_path(SERVER)
        self.server = g.start(SERVER, self.server_argv(ack_port), end="recv")
        port = g.wait_ready(self.server, ready, 30.0, "server")["port"]
        emu, link = launch.emulator("emu-data", data, port)
        self.emulators.append(emu)
        links = {}
        for f in self.flows:
            links[f.index] = link
            if f.delay:
                emu, links[f.index] = launch.emulator(f"emu-delay-{f.index}",
                                                      self.delay_link(f), link)
                self.emulators.append(emu)
        say(f"{self.a.flows_n} flows into {self.dir / INBOX}: server port {port}, data "
            f"link {link}, ACK link {ack_port}; seed {self.seed}")
        say(f"data path: {' '.join(data.emulator_flags()) or '(clean)'}")
        stagger = float(self.a.stagger or 0)
        for n, f in enumerate(self.flows):
            if n and stagger:
                time.sleep(stagger)
            f.proc = launch.sender(self.sender_spec(f), links[f.index], 0)

    def run(self) -> int:
        self.prepare()
        say(f"run directory {self.dir}")
        try:
            self.start()
        except (ExitedEarly, NotReady) as exc:
            say(f"the {exc.label or exc.proc.name} did not start: see {self.dir}/"
                f"{exc.proc.name}.err", err=True)
            return 1
        procs = [f.proc for f in self.flows]
        timed_out = not wait_all(procs, float(self.a.timeout))
        server_done = wait_all([self.server], float(self.a.give_up) + 10)
        self.stop()
        why = self.failures(timed_out, server_done)
        rows = self.table()
        if self.a.analysis:
            self.plot()
        for line in why:
            say(line, err=True)
        ok = not why
        verdict = (f"{'OK' if ok else 'FAILED'}: {self.a.flows_n} flows, "
                   f"{sum(r['ok'] for r in rows)} delivered intact, seed {self.seed}")
        (self.dir / rundir.RUN_JSON).write_text(json.dumps(
            {"command": ["./run_pair.sh", *self.argv], "verdict": verdict, "ok": ok,
             "flows": rows}, indent=1) + "\n")
        if self.a.analysis:
            self.report()
        print()
        print(f"VERDICT: {verdict}" + ("" if ok else f"; logs in {self.dir}"))
        return 0 if ok else 1

    def report(self) -> None:
        """Every sender's trace on one page (stcp-analyze RUN_DIR --html)."""
        page, log = self.dir / rundir.REPORT, self.dir / rundir.REPORT_LOG
        p = self.group.start("report", [_python(), "-m", "analysis", str(self.dir), "--html",
                                        "--out", str(page)], out=log, err=log)
        if p.wait() == 0:
            say(f"the run on one page: {page}")
        else:
            say(f"the HTML report failed; see {log}", err=True)

    def failures(self, timed_out: bool, server_done: bool) -> list[str]:
        why = []
        if timed_out:
            why.append(f"not every sender finished within --timeout {self.a.timeout} s")
        for f in self.flows:
            rc = f.proc.returncode if f.proc else None
            if rc not in (0, None):
                why.append(f"{f.sender} FAILED (exit {rc}); see {self.dir}/{f.sender}.err")
            check = verify(f.input, self.dir / INBOX / f.name)
            f.delivered = check.ok
            why += [f"{f.sender}: {r}" for r in check.reasons]
        if not server_done:
            why.append(f"the server had not finished its {self.a.flows_n} transfers; stopped it")
        elif self.server.returncode != 0:
            why.append(f"the server FAILED (exit {self.server.returncode}); see "
                       f"{self.dir}/{SERVER}.err")
        return why

    def table(self) -> list[dict]:
        """The per-flow table from each sender's summary, Jain's index; the rows."""
        rows = []
        for f in self.flows:
            text = _read(self.dir / f"{f.sender}.out")
            m = from_summary(text)
            cc = re.search(r"final cwnd ([^,]+)", summary_rows(text).get("congestion control",
                                                                           ""))
            rows.append({"flow": f.index, "name": f.name, "delay": f.delay,
                         "bytes": m.get("bytes"), "transfer_s": m.get("transfer_s"),
                         "goodput_bps": m.get("goodput_bps"),
                         "retransmissions": m.get("retransmissions"),
                         "final_cwnd": cc.group(1) if cc else None,
                         "ok": f.delivered})
        print(format_table(rows, self.a.cc != "none"))
        return rows

    def plot(self) -> None:
        from harness.flows_plot import draw

        traces = [(f, self.dir / f"{f.sender}.trace.jsonl") for f in self.flows]
        out = self.dir / rundir.PLOTS / "flows.png"
        rate = self.a.data.get("rate")
        try:
            draw([(f"flow {f.index}" + (f" (+{f.delay * 1000:g} ms)" if f.delay else ""), p)
                  for f, p in traces if p.exists()], out,
                 link_bps=float(rate) * 1000 if rate else None,
                 window=self.a.window_b if self.a.cc != "none" else None)
            say(f"per-flow goodput over time: {out}")
        except (OSError, ValueError) as exc:
            say(f"no per-flow plot: {exc}", err=True)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.group is not None:
            for p in self.group.stop(sig=sig, grace=STOP_GRACE):
                say(f"{p.name} did not stop on SIGTERM; killing it", err=True)

    def interrupted(self, exc: signals.Interrupted) -> int:
        say(f"interrupted by {exc.name}; stopping every process of this run", err=True)
        self.stop(signal.SIGTERM if exc.signum == signal.SIGHUP else exc.signum)
        return exc.exit_code


def format_table(rows: list[dict], cc: bool) -> str:
    """The per-flow table: goodput = file bytes / transfer time, each flow's
    own (docs/MEASURES.md); Jain's index over the goodputs."""
    from harness.rundir import human

    head = (f"{'flow':>4}  {'name':<20} {'bytes':>10}  {'time s':>8}  {'goodput':>13}  "
            f"{'rexmits':>7}" + ("  final cwnd" if cc else "") + "  verdict")
    lines = ["", "per-flow summary", head]
    for r in rows:
        good = r["goodput_bps"]
        lines.append(
            f"{r['flow']:>4}  {r['name'][:20]:<20} {r['bytes'] or 0:>10}  "
            f"{r['transfer_s'] or 0:>8.3f}  "
            f"{'-' if good is None else f'{good / 1e6:.2f} Mbit/s':>13}  "
            f"{r['retransmissions'] if r['retransmissions'] is not None else '-':>7}"
            + (f"  {r['final_cwnd'] or '-':>10}" if cc else "")
            + f"  {'intact' if r['ok'] else 'FAILED'}")
    goods = [r["goodput_bps"] for r in rows if r["goodput_bps"]]
    index = jain(goods) if len(goods) == len(rows) else None
    total = sum(r["bytes"] or 0 for r in rows)
    lines.append(f"sum of goodputs {sum(goods) / 1e6:.2f} Mbit/s, {human(total)} in all; "
                 "Jain's fairness index of the goodputs "
                 + ("n/a (a flow failed)" if index is None else f"{index:.3f}")
                 + " (1: equal shares)")
    return "\n".join(lines)


def _python() -> str:
    import os

    from harness.run_pair import PYTHON

    return os.environ.get(PYTHON) or sys.executable


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
