#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""backlog - does a backlog of deferred mail slow down fresh mail?

A remote destination that is down leaves its mail deferred in the queue;
new mail for elsewhere must not pay for it (issue 15: the runner used to
walk every message in memory on each commit and each finished attempt).
This starts the built satcheld (router, smtp with 127.0.0.1 as a relay
network, maildir for bench@example.test, relay to a smarthost on
loopback) and a "down" peer: a small SMTP server that answers 451 to
every RCPT. Then, on the same daemon:

  1. fresh 1 KiB local messages (SESSIONS sessions, pipelined, at most
     MESSAGES and SECONDS), backlog 0, after WARMUP rounds not counted:
     accepted msg/s, and delivered msg/s (from the run's start until the
     Maildir holds them all);
  2. BACKLOG messages to the down destination, each tried once and
     deferred (the relay's retry is 2h: none comes back during the run);
  3. the fresh messages of 1 again, now beside the backlog.

With --callgrind, afterwards: the daemon restarted under callgrind on the
same queue, twice (CG_SMALL and CG_SMALL + CG_MESSAGES fresh messages over
one session), for the instructions (Ir) per fresh message beside the
backlog; and the same on an empty queue. Immune to machine noise.

Every loop is bounded in count and time. Run it inside a loopback-only
namespace, like the tests (SATCHEL_BUILDDIR picks the build):

    SATCHEL_BUILDDIR=_build SATCHEL_SRCDIR=. tests/run-test.sh \\
        /usr/bin/python3 bench/backlog.py [--backlog 20000] [--messages 2000]
"""
import argparse
import asyncio
import multiprocessing
import os
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'harness'))
from satchel_harness import Daemon, free_port  # noqa: E402
from compare import callgrind_wrapper, count_maildir  # noqa: E402
from smtp_load import session  # noqa: E402

LOCAL_RCPT = 'bench@example.test'
DOWN_RCPT = 'someone@down.test'
SENDER = 'load@load.test'


# ---- the destination that is down: 451 to every RCPT ----

async def down_session(r, w):
    w.write(b'220 down.test ESMTP\r\n')
    try:
        while True:
            line = await asyncio.wait_for(r.readline(), 600)
            if not line:
                break
            verb = line[:4].upper()
            if verb in (b'EHLO', b'HELO'):
                w.write(b'250-down.test\r\n250 PIPELINING\r\n')
            elif verb in (b'MAIL', b'RSET', b'NOOP'):
                w.write(b'250 2.0.0 ok\r\n')
            elif verb == b'RCPT':
                w.write(b'451 4.3.0 destination down, try again later\r\n')
            elif verb == b'DATA':
                w.write(b'503 5.5.1 no valid recipients\r\n')
            elif verb == b'QUIT':
                w.write(b'221 2.0.0 bye\r\n')
                await w.drain()
                break
            else:
                w.write(b'502 5.5.2 not here\r\n')
            await w.drain()
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        pass
    w.close()


def down_peer(port, ready):
    async def main():
        srv = await asyncio.start_server(down_session, '127.0.0.1', port,
                                         backlog=1024)
        ready.set()
        async with srv:
            await srv.serve_forever()
    asyncio.run(main())


def send(port, rcpt, count, sessions, seconds, size=1024):
    line = b'x' * 70 + b'\r\n'
    body = b'Subject: backlog bench\r\n\r\n' + line * max(1, (size - 30)
                                                         // 72)
    counts = [0, 0]
    budget = [count]

    async def run():
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(session(port, body, deadline, budget, counts,
                                       SENDER, rcpt)
                               for _ in range(sessions)))
    t0 = time.monotonic()
    asyncio.run(run())
    return counts[0], counts[1], t0, time.monotonic() - t0


def queue_counts(d):
    r = d.ctl('status')
    m = re.search(r'queue: (\d+) messages, (\d+) deferred', r.stdout)
    if m is None:
        raise RuntimeError('satchelctl status: %s%s' % (r.stdout, r.stderr))
    return int(m.group(1)), int(m.group(2))


def wait_queue(d, pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = queue_counts(d)
        if pred(*c):
            return c
        time.sleep(0.5)
    raise RuntimeError('timed out (%d s) waiting for %s; queue: %s'
                       % (timeout, what, queue_counts(d)))


def fresh_round(d, a, label):
    """Fresh local messages: accepted and delivered msg/s."""
    md = d.maildir(LOCAL_RCPT)
    before = count_maildir(md)
    ok, bad, t0, secs = send(d.port('smtp'), LOCAL_RCPT, a.messages,
                             a.sessions, a.seconds)
    deadline = time.monotonic() + a.seconds * 4 + 60
    while count_maildir(md) - before < ok:
        if time.monotonic() > deadline:
            raise RuntimeError('%s: %d of %d delivered' % (
                label, count_maildir(md) - before, ok))
        time.sleep(0.01)
    delivered = ok / (time.monotonic() - t0)
    print('%s: %d accepted (%d refused) in %.2f s: %.0f accepted/s, '
          '%.0f delivered/s' % (label, ok, bad, secs, ok / secs,
                                delivered), flush=True)
    return ok / secs, delivered


def build_backlog(d, a):
    t0 = time.monotonic()
    ok, bad, _, secs = send(d.port('smtp'), DOWN_RCPT, a.backlog,
                            a.sessions, a.backlog_seconds)
    if bad or ok < a.backlog:
        raise RuntimeError('backlog: %d accepted, %d refused' % (ok, bad))
    # every one tried once and deferred: nothing due any more
    _, deferred = wait_queue(d, lambda m, dfr: dfr >= ok,
                             a.backlog_seconds, '%d deferred' % ok)
    print('backlog: %d messages accepted in %.1f s, all %d deferred after '
          '%.1f s' % (ok, secs, deferred, time.monotonic() - t0),
          flush=True)


def make_daemon(peer_port):
    def plugins(d):
        return {
            '40-router.yaml': {'module': 'router'},
            '50-smtp.yaml': {'module': 'smtp',
                             'relay_networks': ['127.0.0.1/32'],
                             'listen': [{'address': '127.0.0.1:%d'
                                         % d.port('smtp'), 'mode': 'mx'}]},
            '60-maildir.yaml': {'module': 'maildir',
                                'mailboxes': [LOCAL_RCPT],
                                'path': os.path.join(d.state_dir,
                                                     'mail/%d/%u')},
            '70-relay.yaml': {'module': 'relay',
                              'smarthost': '127.0.0.1:%d' % peer_port,
                              'retry': ['2h'], 'connect_timeout': '5s'},
        }
    return Daemon(plugins=plugins, main={'log': {'level': 'notice'}})


# ---- callgrind ----

def callgrind_run(d, wrapper, out, count):
    """Total Ir of one daemon run on d's queue: start, count fresh
    messages over one session, delivered, stop."""
    plain = d.satcheld
    d.satcheld = wrapper
    try:
        d.start(timeout=900)
        if count:
            md = d.maildir(LOCAL_RCPT)
            before = count_maildir(md)
            ok, bad, _, _ = send(d.port('smtp'), LOCAL_RCPT, count, 1, 600)
            deadline = time.monotonic() + 600
            while count_maildir(md) - before < ok and \
                    time.monotonic() < deadline:
                time.sleep(0.1)
        pid = d.proc.pid
        d.stop(timeout=600)
    finally:
        d.satcheld = plain
    with open(os.path.join(out, 'out.%d' % pid)) as f:
        for line in f:
            if line.startswith(('summary:', 'totals:')):
                return int(line.split()[1])
    raise RuntimeError('no totals in out.%d' % pid)


def callgrind_per_message(d, a, tmp, label):
    out = tempfile.mkdtemp(prefix='callgrind-', dir=tmp)
    wrapper = callgrind_wrapper(out)
    d.stop()
    ir0 = callgrind_run(d, wrapper, out, a.cg_small)
    ir1 = callgrind_run(d, wrapper, out, a.cg_small + a.cg_messages)
    per = (ir1 - ir0) / a.cg_messages
    print('callgrind, %s: %.0f instructions (Ir) per fresh message '
          '(%d vs %d messages: %d / %d Ir)' % (label, per, a.cg_small,
                                              a.cg_small + a.cg_messages,
                                              ir0, ir1), flush=True)
    return per


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--backlog', type=int, default=20000)
    ap.add_argument('--messages', type=int, default=2000,
                    help='fresh messages per round')
    ap.add_argument('--sessions', type=int, default=10)
    ap.add_argument('--seconds', type=float, default=60,
                    help='at most this long per round of fresh mail')
    ap.add_argument('--backlog-seconds', type=float, default=900)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--warmup', type=int, default=1,
                    help='rounds of fresh mail first, not counted')
    ap.add_argument('--callgrind', action='store_true')
    ap.add_argument('--cg-small', type=int, default=10)
    ap.add_argument('--cg-messages', type=int, default=100)
    a = ap.parse_args()

    peer_port = free_port()
    ready = multiprocessing.Event()
    peer = multiprocessing.Process(target=down_peer,
                                   args=(peer_port, ready), daemon=True)
    peer.start()
    if not ready.wait(30):
        raise RuntimeError('the down peer did not start')
    print('build: %s; load %s' % (os.environ.get('SATCHEL_BUILDDIR'),
                                   open('/proc/loadavg').read().split()[0]),
          flush=True)
    d = make_daemon(peer_port)
    results = {}
    try:
        d.start(timeout=60)
        # a round not counted: a fresh daemon's first thousands of
        # messages run slower (files made ahead, caches), which would
        # flatter the backlog rounds that come later
        for i in range(a.warmup):
            fresh_round(d, a, 'warm-up %d (not counted)' % (i + 1))
        # the empty-queue figures first, then beside the backlog
        r0 = [fresh_round(d, a, 'backlog 0, round %d' % (i + 1))
              for i in range(a.rounds)]
        cg0 = None
        if a.callgrind:
            cg0 = callgrind_per_message(d, a, d.tmp, 'backlog 0')
            d.start(timeout=60)
        build_backlog(d, a)
        r1 = [fresh_round(d, a, 'backlog %d, round %d' % (a.backlog, i + 1))
              for i in range(a.rounds)]
        cg1 = None
        if a.callgrind:
            cg1 = callgrind_per_message(d, a, d.tmp,
                                        'backlog %d' % a.backlog)
        results = (r0, r1, cg0, cg1)
    finally:
        d.close()
        peer.terminate()
        peer.join(10)
    r0, r1, cg0, cg1 = results

    def best(rs, i):
        return max(r[i] for r in rs)
    print('\n| fresh 1 KiB local mail | backlog 0 | backlog %d | ratio |'
          % a.backlog)
    print('|---|---|---|---|', flush=True)
    for i, what in ((0, 'accepted msg/s'), (1, 'delivered msg/s')):
        print('| %s (best of %d) | %.0f | %.0f | %.2f |'
              % (what, a.rounds, best(r0, i), best(r1, i),
                 best(r1, i) / best(r0, i)), flush=True)
    if cg0 is not None:
        print('| instructions per message | %.0f | %.0f | %.2f |'
              % (cg0, cg1, cg1 / cg0), flush=True)


if __name__ == '__main__':
    main()
