"""The lossy link emulator: a one-direction UDP proxy that drops, corrupts, reorders, delays.

``emulator.impair`` (decisions) and ``emulator.schedule`` (release times) are
pure; ``emulator.link`` holds the sockets and threads; ``emulator.cli`` the
command line.
"""
