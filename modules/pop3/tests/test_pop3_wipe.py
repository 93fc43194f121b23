#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""pop3: passwords do not outlive their use in satcheld's memory. After
USER/PASS, AUTH PLAIN (initial response or its own line), a wrong password
and a pipelined login, over STLS, implicit TLS and plaintext, the daemon's
writable memory (read through /proc/PID/mem, as root) holds neither the
password nor the base64 line that carried it, while the session is open
and after it ended. The old code left the lines in the connection's input
buffer."""

import base64
import os
import poplib
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import procmem  # noqa: E402
from satchel_harness import Daemon, skip  # noqa: E402
from popcommon import pop3_plugins, pop_connect  # noqa: E402

ALICE = 'alice@example.test'
GOOD_PW = 'Hs4Dk9Vq2Nz7Bw5Lx8Fc3Rt6Jm1'
BAD_PW = 'Ue7Gp2Yk5Ma9Ct4Wn1Qs8Ld3Zv6'


def plain(pw, user=ALICE):
    return base64.b64encode(('\0%s\0%s' % (user, pw)).encode()).decode()


def needles(pw):
    # the password, and a part of the PLAIN line that encodes it only
    return [pw.encode(), plain(pw)[-16:].encode()]


class Pop3Wipe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(plugins=pop3_plugins(), users={ALICE: GOOD_PW})
        cls.d.start()
        if not procmem.can_scan(cls.d.pid):
            cls.d.close()
            skip('cannot read /proc/%d/mem (needs root)' % cls.d.pid)

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def assert_wiped(self, pw, when):
        hits = procmem.find(self.d.pid, needles(pw))
        self.assertEqual(hits, [], '%s: secret still in memory' % when)

    def end(self, p, pw, what):
        time.sleep(0.2)
        self.assert_wiped(pw, what + ', session open')
        p.quit()
        time.sleep(0.3)
        self.assert_wiped(pw, what + ', session closed')

    def test_user_pass(self):
        for name in ('pop3', 'pop3s', 'pop3plain'):
            p = pop_connect(self.d, name)
            p.user(ALICE)
            self.assertTrue(p.pass_(GOOD_PW).startswith(b'+OK'))
            self.end(p, GOOD_PW, 'USER/PASS on ' + name)

    def test_auth_plain_initial_response(self):
        p = pop_connect(self.d, 'pop3')
        self.assertTrue(p._shortcmd('AUTH PLAIN ' + plain(GOOD_PW))
                        .startswith(b'+OK'))
        self.end(p, GOOD_PW, 'AUTH PLAIN <ir>')

    def test_auth_plain_response_line(self):
        p = pop_connect(self.d, 'pop3plain')
        p._putcmd('AUTH PLAIN')
        self.assertEqual(p._getline()[0].rstrip(), b'+')
        p._putcmd(plain(GOOD_PW))
        self.assertTrue(p._getresp().startswith(b'+OK'))
        self.end(p, GOOD_PW, 'AUTH PLAIN, response line')

    def test_wrong_password(self):
        p = pop_connect(self.d, 'pop3')
        p.user(ALICE)
        with self.assertRaises(poplib.error_proto):
            p.pass_(BAD_PW)
        with self.assertRaises(poplib.error_proto):
            p._shortcmd('AUTH PLAIN ' + plain(BAD_PW))
        self.end(p, BAD_PW, 'wrong password')

    def test_pipelined_login(self):
        # the commands after PASS wait unread in the same buffer and
        # must survive the wipe
        p = pop_connect(self.d, 'pop3plain')
        p.sock.sendall(('USER %s\r\nPASS %s\r\nSTAT\r\nNOOP\r\n'
                        % (ALICE, GOOD_PW)).encode())
        self.assertTrue(p._getresp().startswith(b'+OK'))
        self.assertTrue(p._getresp().startswith(b'+OK'))
        self.assertEqual(p._getresp(), b'+OK 0 0')
        self.assertTrue(p._getresp().startswith(b'+OK'))
        self.end(p, GOOD_PW, 'pipelined login')


if __name__ == '__main__':
    unittest.main(verbosity=2)
