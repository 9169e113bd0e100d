"""What the programs share at run time, around the pure core in ``common``.

``common`` is the protocol and nothing else: no sockets, threads, clocks,
signals, logging or files (tests/test_purity.py holds it to that).  Everything
the sender, the receiver and the emulator need to run it for real lives
here: the thread-and-lock frame around a core (``endpoint``), command-line
and logging set-up, signals and exit codes (``progutil``), the JSON-lines
trace (``trace``) and pcap (``pcap``) writers, UDP segmentation offload
(``udpgso``), free ports for launchers (``ports``) and the progress bar
(``progress``).
"""
