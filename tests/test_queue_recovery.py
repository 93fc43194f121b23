#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The queue across a restart and under a stuck peer, with the real daemon.

A fast MX (aiosmtpd) and a silent one (accepts, never greets) are named by
the test DNS server. Checks: a recipient delivered before a restart is not
delivered again after it, though another recipient of the same message
was still stuck; mail to a local user is not held back by many messages
stuck on the silent MX; a queue file with a B record is not bounced again.
"""

import glob
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(
    os.environ.get('SATCHEL_SRCDIR',
                   os.path.join(os.path.dirname(__file__), '..')),
    'modules', 'relay', 'tests'))

from relaycommon import (ALICE, DnsServer, Peer, free_port_on,  # noqa: E402
                         relay_daemon, submit, wait_for)

FAST, SILENT = '127.0.0.7', '127.0.0.5'
RECORDS = {
    'slow.test': {'MX': [(10, 'mx.slow.test')]},
    'mx.slow.test': {'A': SILENT},
    'fast.test': {'MX': [(10, 'mx.fast.test')]},
    'mx.fast.test': {'A': FAST},
}


class SilentMX:
    """Accepts TCP connections and never says a word."""

    def __init__(self, host, port):
        self.s = socket.socket()
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind((host, port))
        self.s.listen(100)
        self.s.settimeout(0.2)
        self.conns = []
        self.stopping = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stopping:
            try:
                c, _ = self.s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.t.join(5)
        self.s.close()
        for c in self.conns:
            c.close()
        return False


class QueueRecovery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer(RECORDS).start()
        cls.port = free_port_on([FAST, SILENT])

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def daemon(self):
        # connect_timeout only: the silent MX then holds its delivery for
        # the greeting timeout (minutes), longer than any test here
        return relay_daemon(self.dns, {'port': self.port, 'retry': ['1h'],
                                       'connect_timeout': '5s'})

    def test_no_second_copy_after_restart(self):
        with SilentMX(SILENT, self.port), \
                Peer(FAST, self.port, 'mx.fast.test') as fast, \
                self.daemon() as d:
            d.start()
            submit(d, ['bob@fast.test', 'carol@slow.test'])
            fast.handler.wait(1, timeout=15)
            # the D record is appended right after the delivery
            d.wait_log(r'to=<bob@fast\.test> delivered', timeout=10)
            time.sleep(1)
            d.restart()
            listing = wait_for(
                lambda: (lambda o: o if 'carol@slow.test' in o else None)(
                    d.ctl('queue', 'list').stdout),
                timeout=10, what='the message in the queue list')
            time.sleep(4)   # time enough for a second copy to arrive
            self.assertEqual(len(fast.messages), 1,
                             'bob@fast.test got the message again')
            listing = d.ctl('queue', 'list').stdout
            for line in listing.splitlines():
                if 'bob@fast.test' in line:
                    self.assertIn('delivered', line, listing)
            self.assertRegex(listing, r'pending\s+<carol@slow\.test>|'
                             r'<carol@slow\.test> pending')

    def test_local_not_behind_stuck_remote(self):
        with SilentMX(SILENT, self.port) as mx, self.daemon() as d:
            d.start()
            for i in range(21):
                submit(d, 'u%d@slow.test' % i)
            wait_for(lambda: len(mx.conns) >= 5, timeout=15,
                     what='deliveries stuck on the silent MX')
            time.sleep(1)
            t0 = time.monotonic()
            submit(d, ALICE)
            d.wait_maildir(ALICE, count=1, timeout=5)
            self.assertLess(time.monotonic() - t0, 5)

    def test_b_record_no_second_bounce(self):
        with SilentMX(SILENT, self.port), self.daemon() as d:
            d.start()
            submit(d, ['carol@slow.test'])
            files = wait_for(
                lambda: glob.glob(os.path.join(d.state_dir, 'queue',
                                               'active', '*')),
                timeout=10, what='the queue file')
            d.stop()
            # as a crash leaves it: the failure recorded, the DSN out (B),
            # the unlink not done
            with open(files[0], 'a') as f:
                f.write('F 0 1 550 5.1.1 host x said: 550 5.1.1 nope '
                        '(in reply to RCPT TO)\nB\n')
            d.start()
            wait_for(lambda: not os.path.exists(files[0]), timeout=10,
                     what='the finished message to go')
            time.sleep(2)
            self.assertEqual(d.maildir_files(ALICE), [],
                             'a second DSN went to the sender')


if __name__ == '__main__':
    unittest.main(verbosity=2)
