#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# smtp module: AUTH secrets do not outlive their use in satcheld's memory.
# After logins with marker passwords (AUTH PLAIN with an initial response
# or on its own line, AUTH LOGIN, a wrong password, a pipelined AUTH, TLS
# or plaintext), the daemon's heap, stacks and other writable mappings
# (read through /proc/PID/mem, as root) hold neither the password nor the
# base64 lines that carried it - both while the session sits idle and
# after it ended. The old code left the line in the connection's input
# buffer and in the smtp module's copy of the command; GnuTLS freed its
# decrypted records unwiped (seen under ASan, whose allocator does not
# reuse freed memory at once). TLS input still arrives whole.
import base64
import time
import unittest

import procmem
import satchel_harness as h

ALICE = 'alice@example.test'
# markers: long, random-looking, found nowhere else
GOOD_PW = 'Wq8vNc3Lt6Yp1Hx5Zr9Kd2Mf7Bg4'
BAD_PW = 'Jb5Tn8Rw2Xe6Qa9Lc3Vy7Ku4Pm1'


def b64(s):
    return base64.b64encode(s.encode()).decode()


def needles(pw, user=ALICE):
    """The password and the parts of its base64 forms (PLAIN and LOGIN)
    that encode password bytes only."""
    plain = b64('\0%s\0%s' % (user, pw))
    return [pw.encode(), plain[-16:].encode(), b64(pw)[-16:].encode()]


class SmtpWipe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = h.Daemon(users={ALICE: GOOD_PW})
        d.extra_plugins['51-smtp-plain.yaml'] = {
            'module': 'smtp',
            'listen': [{'address': '127.0.0.1:%d' % d.port('plain'),
                        'mode': 'submission', 'tls': 'none'}],
            'auth_failure_delay': '0s',
        }
        d.start()
        if not procmem.can_scan(d.pid):
            d.close()
            h.skip('cannot read /proc/%d/mem (needs root)' % d.pid)

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def session(self, name):
        c = h.raw(self.d, name)
        self.addCleanup(c.close)
        c.expect(220)
        c.expect(250, 'EHLO client.example')
        if name != 'plain':
            c.expect(220, 'STARTTLS')
            c.starttls()
            c.expect(250, 'EHLO client.example')
        return c

    def assert_wiped(self, pw, when):
        hits = procmem.find(self.d.pid, needles(pw))
        self.assertEqual(hits, [], '%s: secret still in memory' % when)

    def end(self, c, pw, what):
        # idle after the reply: everything that handled the line is done
        time.sleep(0.2)
        self.assert_wiped(pw, what + ', session idle')
        c.expect(221, 'QUIT')
        self.assertTrue(c.closed())
        time.sleep(0.3)
        self.assert_wiped(pw, what + ', session closed')

    def test_plain_initial_response(self):
        for name in ('submission', 'plain'):
            c = self.session(name)
            c.expect(235, 'AUTH PLAIN ' + b64('\0%s\0%s' % (ALICE, GOOD_PW)))
            self.end(c, GOOD_PW, 'AUTH PLAIN <ir> on ' + name)

    def test_plain_response_line(self):
        c = self.session('submission')
        c.expect(334, 'AUTH PLAIN')
        c.expect(235, b64('\0%s\0%s' % (ALICE, GOOD_PW)))
        self.end(c, GOOD_PW, 'AUTH PLAIN, response line')

    def test_login(self):
        for name in ('submission', 'plain'):
            c = self.session(name)
            c.expect(334, 'AUTH LOGIN')
            c.expect(334, b64(ALICE))
            c.expect(235, b64(GOOD_PW))
            self.end(c, GOOD_PW, 'AUTH LOGIN on ' + name)

    def test_wrong_password(self):
        c = self.session('plain')
        c.expect(535, 'AUTH PLAIN ' + b64('\0%s\0%s' % (ALICE, BAD_PW)))
        c.expect(334, 'AUTH LOGIN ' + b64(ALICE))
        c.expect(535, b64(BAD_PW))
        self.end(c, BAD_PW, 'failed AUTH')

    def test_pipelined_auth(self):
        # the AUTH line and the commands after it arrive in one packet:
        # the unread rest must survive the wipe
        c = self.session('plain')
        c.send('AUTH PLAIN %s\r\nNOOP\r\nMAIL FROM:<%s>\r\n'
               % (b64('\0%s\0%s' % (ALICE, GOOD_PW)), ALICE))
        c.expect(235)
        c.expect(250)
        c.expect(250)
        c.expect(250, 'RSET')
        self.end(c, GOOD_PW, 'pipelined AUTH')

    def test_tls_input_whole(self):
        # TLS records are taken from GnuTLS as packets and wiped once
        # copied; a record larger than the free input space is copied in
        # parts. A 1.5 MB message and a 120 KB burst of commands (over the
        # 64 KiB input cap) arrive whole and in order.
        body = b''.join(b'line %06d %s\r\n' % (i, b'x' * 60)
                        for i in range(20000))
        msg = b'Subject: big over TLS\r\n\r\n' + body
        s = h.smtp(self.d)
        self.addCleanup(s.close)
        s.ehlo('client.example')
        s.starttls(context=h.tls_context())
        s.ehlo('client.example')
        s.sendmail('a@b.example', [ALICE], msg)
        s.quit()
        files = self.d.wait_maildir(ALICE, 1, timeout=30)
        with open(files[0], 'rb') as f:
            self.assertTrue(f.read().endswith(body))
        c = self.session('submission')
        n = 20000
        c.send(''.join('NOOP %d\r\n' % i for i in range(n)))
        for i in range(n):
            self.assertEqual(c.expect(250), '2.0.0 Ok', i)
        c.expect(221, 'QUIT')


if __name__ == '__main__':
    unittest.main(verbosity=2)
