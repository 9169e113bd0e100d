"""The command lines of the emulator, the receiver and the sender, and
starting one of them until it is ready.  The argv builders are pure (a dry
run prints them, with names in capitals for the ports not known yet)."""

from __future__ import annotations

from pathlib import Path

from harness.procs import Group, Proc
from harness.spec import LinkSpec, Options, ReceiverSpec, SenderSpec, host_port

#: How each process is named in messages.
LABELS = {"emu-ack": "ACK-path emulator", "emu-data": "data-path emulator"}

Port = int | str  # a port, or what to print in its place before it is known


def label(name: str) -> str:
    return LABELS.get(name, name)


def _files(opts: Options, workdir: Path, name: str, *, log_flag: str,
           pcap: bool) -> list[str]:
    out: list[str] = []
    if opts.log_files:
        out += [log_flag, str(workdir / f"{name}.log")]
    if opts.trace:
        out += ["--trace", str(workdir / f"{name}.trace.jsonl")]
    if opts.pcap and pcap:
        out += ["--pcap", str(workdir / f"{name}.pcap")]
        if opts.snaplen is not None:
            out += ["--snaplen", str(opts.snaplen)]
    return out


def _endpoint(opts: Options, workdir: Path, name: str) -> list[str]:
    """The flags the sender and the receiver both take."""
    out = ["--no-progress"]
    if opts.log_level:
        out += ["--log-level", opts.log_level]
    if opts.bind:
        out += ["--bind", opts.host]
    if opts.give_up is not None:
        out += ["--give-up", str(opts.give_up)]
    if opts.thread_trace:
        out += ["--thread-trace", str(workdir / f"{name}.threads.json")]
    return out + _files(opts, workdir, name, log_flag="--log-file", pcap=True)


def _some(**flags) -> list[str]:
    """--name value for each flag that is set (underscores become dashes)."""
    out: list[str] = []
    for key, value in flags.items():
        if value is not None:
            out += [f"--{key.replace('_', '-')}", str(value)]
    return out


def emulator_argv(opts: Options, workdir: Path, name: str, link: LinkSpec,
                  forward_to: Port) -> list[str]:
    argv = [opts.python, "-m", "emulator", "-p", f"{link.port}:0",
            "-o", host_port(opts.host, forward_to), *_some(seed=link.seed),
            "--ready-file", str(workdir / f"{name}.ready")]
    if opts.bind:  # it listens where the sender (or the receiver) sends: HOST
        argv += ["--bind", opts.host]
    if opts.emulator_stats:
        argv += ["--stats", str(workdir / f"{name}.stats.json")]
    if opts.emulator_verbose:
        argv.append("-" + "v" * opts.emulator_verbose)
    argv += _files(opts, workdir, name, log_flag="--log", pcap=False)
    return argv + link.emulator_flags()


def receiver_argv(opts: Options, workdir: Path, spec: ReceiverSpec,
                  ack_port: Port) -> list[str]:
    argv = [*spec.prefix, opts.python, "-m", "receiver", str(spec.output), str(spec.port),
            opts.host, str(ack_port)]
    if spec.force:
        argv.append("--force")
    argv += _some(mode=spec.mode, mss=spec.mss, buffer=spec.buffer,
                  listen_timeout=spec.listen_timeout)
    argv += ["--ready-file", str(workdir / f"{spec.name}.ready")]
    return argv + _endpoint(opts, workdir, spec.name) + list(spec.args)


def sender_argv(opts: Options, workdir: Path, spec: SenderSpec, link_port: Port,
                ack_port: Port) -> list[str]:
    argv = [*spec.prefix, opts.python, "-m", "sender", str(spec.input), opts.host,
            str(link_port), str(spec.window), str(ack_port)]
    argv += _some(mode=spec.mode, mss=spec.mss)
    argv += _endpoint(opts, workdir, spec.name)
    return argv + _some(pacing=spec.pacing, cc=spec.cc) + list(spec.args)


class Launcher:
    """Starts the programs of a run in ``group``, each with the ``opts``
    they share; those that listen are waited for until they are ready."""

    def __init__(self, group: Group, opts: Options):
        self.group, self.opts = group, opts

    def _ready(self, name: str, argv: list[str], end: str | None = None) -> tuple[Proc, dict]:
        ready = self.group.ready_path(name)
        proc = self.group.start(name, argv, end=end)
        return proc, self.group.wait_ready(proc, ready, self.opts.ready_timeout, label(name))

    def emulator(self, name: str, link: LinkSpec, forward_to: int) -> tuple[Proc, int]:
        """The emulator ``name`` forwarding to ``forward_to``, and the port it listens on."""
        argv = emulator_argv(self.opts, self.group.workdir, name, link, forward_to)
        proc, info = self._ready(name, argv)
        return proc, info["recv_port"]

    def receiver(self, spec: ReceiverSpec, ack_port: int) -> tuple[Proc, int]:
        """The receiver, ACKing to ``ack_port``, and the port it listens on."""
        argv = receiver_argv(self.opts, self.group.workdir, spec, ack_port)
        proc, info = self._ready(spec.name, argv, "recv")
        return proc, info["port"]

    def sender(self, spec: SenderSpec, link_port: int, ack_port: int) -> Proc:
        argv = sender_argv(self.opts, self.group.workdir, spec, link_port, ack_port)
        return self.group.start(spec.name, argv, end="send")
