"""The one launcher: starts the emulators, the receiver and the sender of a
run, with ports that cannot clash, waits until each is ready, passes signals
on, collects exit codes, verifies the output and stops every process it
started.  run_pair.sh, the benchmarks (bench/) and the integration tests
(tests/support.py) all start their runs through it, so that a change to how
a run starts is made here, once.

    spec.py      what a run is (RunSpec: links, receiver, senders, options)
    programs.py  the programs' command lines; starting one until it is ready
    transfer.py  one run, started in the one order there is, waited for
    procs.py     child processes: own session, wait4 CPU and RSS, always stopped
    ports.py     the sender's ACK port, picked below the ephemeral range
    signals.py   SIGINT/SIGTERM/SIGHUP as an exception, never mid-start
    verify.py    byte comparison and SHA-256 of the output
    rundir.py    a run directory: what a run writes, earlier runs, its size
    pair_args.py, run_pair.py   run_pair.sh's options and its run
"""
