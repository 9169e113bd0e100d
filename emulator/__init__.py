"""The lossy link emulator: a one-direction UDP proxy that drops, corrupts, reorders, delays,
and queues datagrams at a bottleneck.

Pure parts (no sockets, threads or clock; the time is passed in):
``impair`` (what happens to each datagram), ``judge`` (a read judged datagram
by datagram), ``queue`` (the bottleneck's FIFO and link), ``aqm`` (RED and
CoDel), ``schedule`` (release times and reordering holds).  Around them:
``link`` (the sockets and the receiving thread), ``departures`` (the
bottleneck and release queue under one lock, and the sending thread),
``forward`` (sending, GSO), ``events`` (trace and debug lines); and the
command line: ``options``, ``argtypes``, ``helptext``, ``cli``.
"""
