"""The words of ``stcp-link --help``: what each flag means exactly."""

from __future__ import annotations

from emulator.aqm import (
    CODEL_INTERVAL,
    CODEL_TARGET,
    RED_AVPKT,
    RED_MAX_P,
    RED_MAX_TH,
    RED_MIN_TH,
    RED_W_Q,
)

DESCRIPTION = """\
A one-direction lossy link between two UDP sockets, in the spirit of newudpl.
Datagrams received on RECV_PORT (from the -i source only) are forwarded from
SEND_PORT to the -o address, after loss, corruption, duplication, reordering,
delay and a link-speed bottleneck with its queue as asked.  Run a second
instance for the other direction."""

EPILOG = f"""\
exact meanings:
  -L, -D, -O    each datagram independently, with the given probability.
  -B            each bit independently flipped with probability B/100000; the
                number of flipped bits in an n-bit datagram is binomial.  Two
                flips in one datagram can cancel out in the 16-bit Internet
                checksum (the same bit of two words, one 0->1, one 1->0): such
                a datagram is taken as good, and the receiver's end-to-end
                SHA-256 then refuses the file.  That is the checksum's real
                weakness; to study loss recovery rather than it, use -C.
  -C            a datagram hit (with probability C/100) gets exactly one bit
                flipped, uniformly placed: the checksum always catches it.
  -B, -C        corruption is no drop here: a corrupted datagram is forwarded,
                counted as corrupted and traced as a "corrupt" event; the
                receiver's checksum then drops it.
  -O            a datagram selected for reordering is held back and leaves
                right after the next forwarded datagram that is not itself held
                (never before its own release time); if none has left
                --reorder-hold seconds after its own release time, it leaves
                then (default max(2*delay, 0.05)).
  -D            the copy leaves right after the original; it takes no link time.
  -s            the bottleneck: a FIFO queue in front of a link of -s kbit/s.
                A datagram waits until the link is free, is dequeued, and
                takes bytes*8/rate seconds (UDP payload bytes); -d and --jitter
                are added after that.  A datagram is in the queue from its
                arrival until the end of its serialisation (the one on the
                link counts, as in netem).  Its sojourn time is its wait from
                arrival to dequeue.
  -q, --queue-packets
                the queue's limits, in bytes and in datagrams: a datagram that
                would make the queue exceed either is dropped (queue full).
                Without both flags the limit is -q 65536; with --queue-packets
                alone there is no byte limit; with both, both apply.
  --aqm red     RED (Floyd and Jacobson 1993), on arrival, counting datagrams:
                avg = (1-w_q)*avg + w_q*q, and while the queue was empty avg
                decays by (1-w_q)^m, m = idle time / the time of one
                --red-avpkt datagram on the link; below --red-min keep; at or
                above --red-max drop; between, p_b = max_p*(avg-min)/(max-min),
                drop with probability p_b/(1 - count*p_b), count = datagrams
                since the last drop.  RED sees every arrival before the limits.
                Defaults: min {RED_MIN_TH:g}, max {RED_MAX_TH:g}, max_p {RED_MAX_P:g}, \
w_q {RED_W_Q:g}, avpkt {RED_AVPKT}.
  --aqm codel   CoDel (RFC 8289), at dequeue: once the sojourn time has stayed
                at or above --codel-target for --codel-interval (with more than
                one datagram still queued), drop, then drop again every
                interval/sqrt(count) until a dequeued datagram's sojourn time
                is below target; on re-entry soon after, count resumes from the
                last episode's drops.  A dropped datagram takes no link time.
                Defaults: target {CODEL_TARGET:g} s, interval {CODEL_INTERVAL:g} s.
  --forward-by-port
                one port in, many out: each datagram goes to the -o host (give
                -o HOST:*) at the port in bytes 2-3 of the TCP header it
                carries (its destination port), as the ACK path of many flows
                needs.  A datagram shorter than 4 bytes, or naming port 0, is
                dropped (noport).  Each datagram is sent on its own (no GSO).
  --jitter J    extra delay uniform in [0, J); jitter CAN reorder datagrams
                by itself (with -O 0), as on a real path with varying delay.
  --ge-*        Gilbert-Elliott burst loss: each datagram is first lost with the
                current state's loss probability, then the state changes (good
                -> bad with --ge-p, bad -> good with --ge-r).  The model starts
                in the good state; it is on when --ge-p or --ge-good-loss > 0.
  drop causes   counted by cause in the report, --stats and the trace: first
                noport, list (--drop), blackhole, burst (Gilbert-Elliott), loss
                (-L), first match wins; then at the queue: red (on arrival),
                queue (full), codel (at dequeue).
  --seed        one random generator; per datagram the draws are made in a fixed
                order (GE loss, GE transition, -L, -D, -O, jitter, bit errors,
                -C, RED), also for datagrams dropped by --drop, --blackhole or
                the queue, so the same seed and the same datagram lengths give
                the same decisions.  Without --seed a seed is drawn and reported.
  --trace       JSON lines (runtime/trace.py), one event per line: "recv" (n,
                len; for a datagram that reaches the -s queue also qp, qb:
                datagrams and bytes in the queue as it arrived), "drop" (n,
                len, why: a drop cause or send_error; a codel drop also
                sojourn), "corrupt" (n, bits), "reorder" (n), "fwd" (n, len,
                delay: seconds held; with -s sojourn; with --forward-by-port
                port), "dup" (the second copy), "summary" (the report).  n is
                the datagram's number in arrival order, from 1.  With -s the
                corrupt and reorder events come as the datagram leaves the
                queue, since CoDel may still drop it.
  -v            the console shows warnings and errors, and always the one INFO
                line saying where the link listens (a parent may read it);
                -v adds the other INFO lines, -vv a DEBUG line per datagram.
                The report goes to standard output at exit.

exit status: 0 after SIGINT or SIGTERM (with the report), 2 for a bad flag,
address or port in use, 1 if the link failed while running."""
