#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""smtp_load - a bounded SMTP load against a satcheld started for the run.

Starts the built satcheld (via the test harness) with an MX listener and
Maildir delivery, then runs N concurrent sessions that each send messages
of SIZE bytes to a local mailbox for at most SECONDS (and at most MAX
messages in all), and prints accepted messages per second. Every 250 after
DATA means the message was fsync'd in the queue. Loopback only; run it
inside a loopback-only namespace:

    tests/run-test.sh /usr/bin/python3 bench/smtp_load.py [--sessions 50]
        [--size 1024] [--seconds 10] [--max 100000] [--milter]
(with SATCHEL_BUILDDIR and PYTHONPATH=tests/harness set as for the tests)

--milter runs it twice, plain and through a no-op milter (the milter
module and modules/milter/tests/scripted_milter.py, a libmilter milter
that continues at every stage: python3-milter), and prints both.
"""
import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'harness'))
from satchel_harness import Daemon  # noqa: E402

MILTER_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            '..', 'modules', 'milter', 'tests')


async def session(port, body, deadline, budget, counts,
                  sender='load@load.test', rcpt='bench@example.test'):
    """one session sending BODY from SENDER to RCPT until DEADLINE or
    the shared BUDGET runs out; COUNTS: [accepted, refused]"""
    r, w = await asyncio.open_connection('127.0.0.1', port)

    async def reply():
        while True:
            line = await r.readline()
            if not line:
                raise ConnectionError('closed')
            if line[3:4] != b'-':
                return line
    await reply()
    w.write(b'EHLO load.test\r\n')
    await w.drain()
    await reply()
    while time.monotonic() < deadline and budget[0] > 0:
        budget[0] -= 1
        # MAIL, RCPT and DATA pipelined (RFC 2920), then the body.
        w.write(b'MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n'
                % (sender.encode(), rcpt.encode()))
        await w.drain()
        for expect in (b'250', b'250', b'354'):
            line = await reply()
            if not line.startswith(expect):
                raise RuntimeError(line)
        w.write(body + b'.\r\n')
        await w.drain()
        line = await reply()
        if line.startswith(b'250'):
            counts[0] += 1
        else:
            counts[1] += 1
    w.write(b'QUIT\r\n')
    await w.drain()
    w.close()


async def run(port, sessions, size, seconds, maxmsg):
    line = b'x' * 70 + b'\r\n'
    body = b'Subject: load\r\n\r\n' + line * max(1, (size - 20) // 72)
    deadline = time.monotonic() + seconds
    counts = [0, 0]
    budget = [maxmsg]
    t0 = time.monotonic()
    await asyncio.gather(*(session(port, body, deadline, budget, counts)
                           for _ in range(sessions)))
    return counts, time.monotonic() - t0


def load(a, milter=None):
    def plugins(d):
        p = {
            '40-router.yaml': {'module': 'router'},
            '50-smtp.yaml': {'module': 'smtp', 'listen': [
                {'address': '127.0.0.1:%d' % d.port('smtp'), 'mode': 'mx',
                 'tls': 'none'}]},
            '60-maildir.yaml': {'module': 'maildir', 'mailboxes':
                                ['bench@example.test'],
                                'path': os.path.join(d.state_dir,
                                                     'mail/%d/%u')},
        }
        if milter is not None:
            p['45-milter.yaml'] = {'module': 'milter',
                                   'address': milter.address}
        return p
    with Daemon(plugins=plugins, main={'log': {'level': 'notice'}}) as d:
        d.start()
        (ok, bad), secs = asyncio.run(run(d.port('smtp'), a.sessions, a.size,
                                          min(a.seconds, 120), a.max))
        print('%s%d messages accepted (%d refused) in %.1f s by %d '
              'sessions, %d bytes each: %.0f msg/s (fsync\'d before each '
              '250)' % ('no-op milter: ' if milter else 'plain: ', ok, bad,
                        secs, a.sessions, a.size, ok / secs))
        d.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sessions', type=int, default=50)
    ap.add_argument('--size', type=int, default=1024)
    ap.add_argument('--seconds', type=float, default=10)
    ap.add_argument('--max', type=int, default=100000)
    ap.add_argument('--milter', action='store_true',
                    help='also through a no-op milter')
    a = ap.parse_args()
    load(a)
    if a.milter:
        sys.path.insert(0, MILTER_TESTS)
        from miltercommon import ScriptedMilter
        with ScriptedMilter({'quiet': True}) as m:
            load(a, m)


if __name__ == '__main__':
    main()
