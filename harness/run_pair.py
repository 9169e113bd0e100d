"""run_pair.sh: one verified transfer over a lossy emulated link.

Starts the link emulator (and, if asked, a second one on the ACK path), the
receiver and the sender, all on 127.0.0.1 (::1 with --ipv6); waits; checks the output byte for
byte and by SHA-256; prints both summaries and a one-line verdict; runs the
analysis (plots); exits 0 only when the file arrived intact.  Every process
it starts is stopped when it exits, whatever the reason: SIGINT, SIGTERM and
SIGHUP are passed on to them, and it exits 130, 143 or 129.

``python -m harness.run_pair --help``; run_pair.sh sets up .venv, then runs this.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import signal
import sys
import time
from pathlib import Path

from harness import rundir, signals
from harness.pair_args import ME, USAGE, PairArgs, UsageError, parse, receiver_extra
from harness.procs import ROOT, ExitedEarly, NotReady, Proc
from harness.programs import emulator_argv, label, receiver_argv, sender_argv
from harness.spec import LinkSpec, Options, ReceiverSpec, RunSpec, SenderSpec
from harness.sweep_result import summary_rows
from harness.transfer import Ports, Transfer
from harness.verify import verify

#: Set by run_pair.sh before .venv exists: check the arguments (answer
#: --help and --dry-run), then exit GO_ON if a run should follow the set-up.
PRECHECK = "RUN_PAIR_PRECHECK"
GO_ON = 3
#: The interpreter the programs run under (run_pair.sh: the one in .venv).
PYTHON = "RUN_PAIR_PYTHON"
#: Seconds the programs get to end after SIGTERM at the end of a run.
STOP_GRACE = 5.0
#: The loguru prefix of an error line: time, level, program, [thread].
_LOG_PREFIX = re.compile(r"^[0-9:.]+ +ERROR +[a-z-]+ +(\[[^]]*\] +)?")


def say(msg: str, err: bool = False) -> None:
    print(f"{ME}: {msg}", file=sys.stderr if err else sys.stdout, flush=True)


def run_spec(a: PairArgs, workdir: Path, output: Path, input_: Path,
             seed: int) -> RunSpec:
    """What the options ask for, as a run."""
    opts = Options(host=a.host, bind=True, give_up=a.give_up,
                   log_level="DEBUG" if a.verbose else "INFO", log_files=True,
                   emulator_verbose=2 if a.verbose else 1,
                   trace=a.analysis, pcap=a.analysis,
                   snaplen=int(a.snaplen) if a.snaplen else None,
                   thread_trace=a.thread_trace,
                   python=os.environ.get(PYTHON) or sys.executable)
    # The receiver starts a moment before the sender, which gives up GIVE_UP s
    # after its start if nobody answers: so does a receiver nobody connects to.
    receiver = ReceiverSpec(output, port=a.recv_port, mode=a.mode, mss=a.mss_b,
                            buffer=a.buffer_b, force=True,
                            listen_timeout=f"{float(a.give_up) + 5:.6g}",
                            args=receiver_extra(a))
    sender = SenderSpec(input_, a.window_b, ack_port=a.ack_port, mode=a.mode, mss=a.mss_b,
                        pacing=a.pacing or None, cc=None if a.cc == "none" else a.cc,
                        args=[] if a.timestamps else ["--no-timestamps"])
    return RunSpec(workdir, receiver, [sender],
                   data_link=LinkSpec(dict(a.data), seed=seed, port=a.link_port),
                   ack_link=LinkSpec(dict(a.ack), seed=seed + 1) if a.ack_on else None,
                   options=opts, timeout=int(a.timeout), cwd=Path.cwd())


def dry_run(a: PairArgs, spec: RunSpec, seed: int, sample: bool) -> None:
    """The commands, with the ports not known before the start in capitals."""
    opts, w = spec.options, spec.workdir
    print(f"# seed {seed}; ports the programs pick are shown in capitals")
    if sample:
        print(f"# sample: {a.size_b} random bytes (seed {seed}) in {spec.senders[0].input}")
    ack_port = a.ack_port or "ACK_PORT"
    ack_target = ack_port
    if spec.ack_link is not None:
        print(shlex.join(emulator_argv(opts, w, "emu-ack", spec.ack_link, ack_port)))
        ack_target = "ACK_EMULATOR_PORT"
    print(shlex.join(receiver_argv(opts, w, spec.receiver, ack_target)))
    print(shlex.join(emulator_argv(opts, w, "emu-data", spec.data_link,
                                   a.recv_port or "RECEIVER_PORT")))
    print(shlex.join(sender_argv(opts, w, spec.senders[0], a.link_port or "LINK_PORT",
                                 ack_port)))


def write_sample(path: Path, size: int, seed: int) -> None:
    """``size`` bytes from random.Random(seed), in 1 MiB draws (the same bytes
    for the same seed, run after run)."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        while size:
            n = min(size, 1 << 20)
            f.write(rng.randbytes(n))
            size -= n


class Pair:
    """One run of run_pair.sh, from the checked options to the verdict."""

    def __init__(self, a: PairArgs, argv: list[str]):
        self.a, self.argv = a, argv
        self.seed = int(a.seed) if a.seed else random.randrange(1 << 31)
        self.dir = Path(a.dir) if a.dir else rundir.default_dir(ROOT)
        self.sample = not a.input
        self.transfer: Transfer | None = None

    def paths(self) -> tuple[Path, Path]:
        """(input, output), defaults in the run directory."""
        return (Path(self.a.input) if self.a.input else self.dir / rundir.SAMPLE,
                Path(self.a.output) if self.a.output else self.dir / rundir.RECEIVED)

    def spec(self) -> RunSpec:
        input_, output = self.paths()
        return run_spec(self.a, self.dir, output, input_, self.seed)

    def log_of(self, name: str) -> str:
        return f"{self.dir}/{name}.log (console: {self.dir}/{name}.err)"

    def why(self, name: str) -> str:
        """The program's last error line, without time and level."""
        try:
            lines = (self.dir / f"{name}.err").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        errors = [ln for ln in lines if "ERROR" in ln or "error:" in ln]
        return _LOG_PREFIX.sub("", errors[-1]) if errors else ""

    def prepare(self) -> None:
        """The run directory, emptied of what this run writes; the sample."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create {self.dir}: {exc.strerror}") from None
        self.dir = Path(os.path.abspath(self.dir))
        input_, output = self.paths()
        for p in rundir.artifacts(self.dir):
            p.unlink(missing_ok=True)
        if self.sample:
            try:
                write_sample(input_, self.a.size_b, self.seed)
            except OSError:
                raise UsageError(f"cannot write the sample {input_}") from None
        output.unlink(missing_ok=True)
        output.with_name(output.name + ".part").unlink(missing_ok=True)

    def announce(self, ports: Ports) -> None:
        a, spec = self.a, self.transfer.spec
        say(f"{spec.senders[0].input.name} -> {spec.receiver.output}, {a.mode}, window "
            f"{a.window}, seed {self.seed}")
        say(f"data path: {' '.join(spec.data_link.emulator_flags()) or '(clean)'}")
        if spec.ack_link is not None:
            say(f"ACK path:  {' '.join(spec.ack_link.emulator_flags())}")
        say(f"ports: link {ports.link}, receiver {ports.receiver}, sender ACK {ports.ack}"
            + (f", ACK link {ports.ack_link}" if ports.ack_link else ""))

    def start_failed(self, exc: ExitedEarly | NotReady) -> int:
        name = exc.proc.name
        if isinstance(exc, NotReady):
            say(f"the {exc.label} did not start within {exc.timeout:g} s; see "
                f"{self.log_of(name)}", err=True)
            return 1
        say(f"the {exc.label} FAILED to start (exit {exc.returncode}): {self.why(name)}",
            err=True)
        say(f"its log: {self.log_of(name)}", err=True)
        for line in exc.proc.stderr.splitlines()[-5:]:
            print(f"    {name}: {line}", file=sys.stderr)
        return 2 if exc.returncode == 2 else 1

    def run(self) -> int:
        self.prepare()
        self.transfer = t = Transfer(self.spec())
        say(f"run directory {self.dir}")
        try:
            t.start(before_senders=self.announce)
        except (ExitedEarly, NotReady) as exc:
            return self.start_failed(exc)
        timed_out, died, seconds = self.wait()
        self.show_summaries()
        why = self.failures(timed_out, died)
        check = verify(*self.paths())
        why += check.reasons
        for line in why:
            say(line, err=True)
        verdict = self.verdict_text(not why, check.sha256, seconds)
        self.record(not why, verdict)
        if self.a.analysis:
            self.analyse()
        return self.verdict(not why, verdict)

    def wait(self) -> tuple[str | None, Proc | None, float]:
        """(the side that ran out of time, the first emulator that died,
        seconds from the sender's start to the end of both programs)."""
        t, died = self.transfer, []

        def emulator_died(p: Proc) -> None:
            if not died:
                died.append(p)
                say(f"the {p.name} emulator died (exit {p.returncode}) during the transfer; "
                    f"see {self.log_of(p.name)}", err=True)

        timed_out = None
        self.grace = int(float(self.a.give_up) + 10.999)  # > the receiver's listen timeout
        if not t.wait_senders(on_emulator_exit=emulator_died):
            timed_out = "sender"
        elif not t.wait_receiver(self.grace):
            timed_out = "receiver"
        seconds = time.monotonic() - t.started
        self.stop()  # the emulators then write their reports
        return timed_out, (died[0] if died else None), seconds

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.transfer is None:
            return
        for p in self.transfer.stop(sig=sig, grace=STOP_GRACE):
            say(f"{p.name} did not stop on SIGTERM; killing it", err=True)

    def show_summaries(self) -> None:
        for name in ("sender", "receiver"):
            print()
            sys.stdout.write(_read(self.dir / f"{name}.out"))
        for name in ("emu-data", "emu-ack"):
            stats = self.dir / f"{name}.stats.json"
            if stats.exists():
                print(emulator_line(name, stats))
        sys.stdout.flush()

    def failures(self, timed_out: str | None, died: Proc | None) -> list[str]:
        t, why = self.transfer, []
        for p in [*t.senders, t.receiver]:
            name = p.name
            if timed_out == name == "sender":
                why.append(f"the sender did not finish within --timeout {self.a.timeout} s; "
                           f"stopped it. Its log: {self.log_of(name)}")
            elif timed_out == name:
                why.append(f"the receiver had not finished {self.grace} s after the sender "
                           f"ended; stopped it. Its log: {self.log_of(name)}")
            elif p.returncode != 0:
                why.append(f"the {label(name)} FAILED (exit {p.returncode}): {self.why(name)}")
                why.append(f"  its log: {self.log_of(name)}")
        if died is not None:
            why.append(f"the {died.name} emulator died; its log: {self.log_of(died.name)}")
        return why

    def analyse(self) -> None:
        spec = self.transfer.spec  # the senders' traces first, then the receiver's
        names = [*(s.name for s in spec.senders), spec.receiver.name, "emu-data", "emu-ack"]
        traces = [self.dir / f"{n}.{ext}" for ext in ("trace.jsonl", "threads.json")
                  for n in names]
        traces = [str(p) for p in traces if p.exists() and p.stat().st_size]
        if not traces:
            return
        out = self.dir / rundir.ANALYSIS
        g = self.transfer.group
        p = g.start("analysis", [self.transfer.spec.options.python, "-m", "analysis", *traces,
                                 "--out", str(self.dir / rundir.PLOTS)], out=out, err=out)
        if p.wait() == 0:
            say(f"plots and analysis in {self.dir / rundir.PLOTS} ({out})")
        else:
            say(f"the analysis failed; see {out}", err=True)
        # The same traces on one page (run.json, written before, gives it the
        # command and the verdict).
        report, log = self.dir / rundir.REPORT, self.dir / rundir.REPORT_LOG
        p = g.start("report", [self.transfer.spec.options.python, "-m", "analysis",
                               str(self.dir), "--html", "--out", str(report)], out=log, err=log)
        if p.wait() == 0:
            say(f"the run on one page: {report}")
        else:
            say(f"the HTML report failed; see {log}", err=True)

    def verdict_text(self, ok: bool, digest: str | None, seconds: float) -> str:
        a = self.a
        if not ok:
            return f"FAILED: {a.mode} mode, seed {self.seed}; logs in {self.dir}"
        return (f"OK: {self.paths()[0].stat().st_size} bytes delivered intact (SHA-256 "
                f"{digest}) in {self.timing(seconds)}, {a.mode} mode, seed {self.seed}")

    def timing(self, wall: float) -> str:
        """The transfer time and goodput as the sender's summary gives them
        (docs/MEASURES.md defines both), then the programs' wall time,
        labelled: it is a different thing (start-up and teardown included)."""
        rows = summary_rows(_read(self.dir / "sender.out"))
        took = re.match(r"[0-9.]+ s", rows.get("time", ""))
        wall_s = f"{wall:.2f} s wall time from the sender's start to both programs' exit"
        if not took:
            return wall_s
        rate = f", goodput {rows['goodput']}" if rows.get("goodput") else ""
        return f"{took.group(0)} (transfer time, SYN to verified FIN{rate}; {wall_s})"

    def record(self, ok: bool, verdict: str) -> None:
        """run.json: the command and the verdict, for stcp-analyze RUN_DIR --html."""
        info = {"command": ["./run_pair.sh", *self.argv], "verdict": verdict, "ok": ok}
        (self.dir / rundir.RUN_JSON).write_text(json.dumps(info, indent=1) + "\n")

    def verdict(self, ok: bool, text: str) -> int:
        a, input_ = self.a, self.paths()[0]
        print()
        print(f"VERDICT: {text}")
        if not ok:
            self.show_size()
            return 1
        if a.rm_logs:
            extra = [input_] if self.sample else []
            if not a.output:
                extra.append(self.paths()[1])
            rundir.remove(self.dir, extra)
        else:
            self.show_size()
        return 0

    def show_size(self) -> None:
        print(f"run directory: {rundir.size_report(self.dir, self.transfer.spec.options.snaplen)}")

    def interrupted(self, exc: signals.Interrupted) -> int:
        say(f"interrupted by {exc.name}; stopping every process of this run", err=True)
        self.stop(signal.SIGTERM if exc.signum == signal.SIGHUP else exc.signum)
        say(f"logs in {self.dir}", err=True)
        return exc.exit_code


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def emulator_line(name: str, stats_file: Path) -> str:
    try:
        s = json.loads(stats_file.read_text())
    except (OSError, ValueError):
        return f"{name}: no readable report in {stats_file}"
    d = s.get("dropped", {})
    drops = ", ".join(f"{k} {v}" for k, v in d.items() if v) or "none"
    return (f"{name}: received {s.get('received')}, forwarded {s.get('forwarded')}, "
            f"dropped {s.get('dropped_total')} ({drops}), corrupted {s.get('corrupted')}, "
            f"reordered {s.get('reordered')}, duplicated {s.get('duplicated')}")


def main(argv: list[str] | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)
    try:
        argv = sys.argv[1:] if argv is None else argv
        a = parse(argv)
        if a.help:
            sys.stdout.write(USAGE)
            return 0
        if a.flows_n:  # N senders into one stcp-serve
            from harness.flows import FlowRun

            pair = FlowRun(a, argv)
        else:
            pair = Pair(a, argv)
        if a.dry_run:
            if a.flows_n:
                pair.dry_run()
            else:
                dry_run(a, pair.spec(), pair.seed, pair.sample)
            return 0
        if os.environ.get(PRECHECK):
            return GO_ON
        with signals.installed():
            try:
                try:
                    return pair.run()
                finally:
                    pair.stop()
            except signals.Interrupted as exc:
                return pair.interrupted(exc)
    except UsageError as exc:
        say(f"error: {exc}", err=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
