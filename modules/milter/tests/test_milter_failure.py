#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A dead, slow or broken milter gives on_failure's outcome (tempfail 451
4.7.1, reject 550 5.7.1, accept), and a milter that takes its time never
stalls the other sessions."""

import socket
import struct
import threading
import time
import unittest

from satchel_harness import free_port, smtp
from miltercommon import (ALICE, PASSWORD, Daemon, ScriptedMilter,
                          milter_plugin, read_mail)

MESSAGE = b'Subject: test\r\n\r\nbody\r\n'


class BrokenMilter:
    """A TCP server that negotiates like a milter, then answers the first
    command after negotiation with `answer` (bytes; b'' closes)."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.address = 'inet:127.0.0.1:%d' % self.port
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def read_packet(self, c):
        hdr = b''
        while len(hdr) < 4:
            b = c.recv(4 - len(hdr))
            if not b:
                return None
            hdr += b
        n = struct.unpack('>I', hdr)[0]
        data = b''
        while len(data) < n:
            b = c.recv(n - len(data))
            if not b:
                return None
            data += b
        return data

    def serve(self, c):
        with c:
            c.settimeout(10)
            pkt = self.read_packet(c)
            if pkt is None or pkt[:1] != b'O':
                return
            body = b'O' + struct.pack('>III', 6, 0x1ff, 0)
            c.sendall(struct.pack('>I', len(body)) + body)
            # macros come first, then the command
            while True:
                pkt = self.read_packet(c)
                if pkt is None or pkt[:1] != b'D':
                    break
            if self.answer:
                c.sendall(self.answer)
                self.read_packet(c)

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        self.sock.close()


def dead_address():
    """A port nobody listens on."""
    return 'inet:127.0.0.1:%d' % free_port()


class FailureTest(unittest.TestCase):
    def daemon(self, address, **keys):
        return Daemon(users={ALICE: PASSWORD},
                      extra_plugins=milter_plugin(address, **keys))

    def test_dead_tempfail(self):
        with self.daemon(dead_address()) as d:
            d.start()
            with smtp(d) as c:
                self.assertEqual(c.ehlo('client.example')[0], 250)
                code, text = c.mail('bob@remote.test')
                self.assertEqual((code, text), (451, b'4.7.1 Service '
                                 b'unavailable - try again later'))
                # and again for the next transaction
                c.rset()
                self.assertEqual(c.mail('bob@remote.test')[0], 451)
            d.wait_log(r'milter 45-milter: inet:127\.0\.0\.1:\d+: connect: '
                       r'Connection refused')
            st = d.ctl('status').stdout
            self.assertRegex(st, r'milter 45-milter: .* failures=1 ')

    def test_dead_reject(self):
        with self.daemon(dead_address(), on_failure='reject') as d:
            d.start()
            with smtp(d) as c:
                c.ehlo('client.example')
                code, text = c.mail('bob@remote.test')
                self.assertEqual((code, text),
                                 (550, b'5.7.1 Command rejected'))

    def test_dead_accept(self):
        with self.daemon(dead_address(), on_failure='accept') as d:
            d.start()
            with smtp(d) as c:
                c.ehlo('client.example')
                self.assertEqual(c.sendmail('bob@remote.test', [ALICE],
                                            MESSAGE), {})
            self.assertEqual(len(read_mail(d, ALICE)), 1)

    def test_dead_unix_socket(self):
        with self.daemon('unix:/nonexistent/milter.sock') as d:
            d.start()
            with smtp(d) as c:
                c.ehlo('client.example')
                self.assertEqual(c.mail('bob@remote.test')[0], 451)

    def test_broken_replies(self):
        cases = [
            # an unknown reply code
            (b'\x00\x00\x00\x01Z', 'reject'),
            # a header edit outside end of message
            (b'\x00\x00\x00\x05hX\x00v\x00', 'reject'),
            # a length over the limit
            (b'\x7f\xff\xff\xffc', 'tempfail'),
            # the milter hangs up
            (b'', 'tempfail'),
        ]
        for answer, onf in cases:
            with self.subTest(answer=answer):
                b = BrokenMilter(answer)
                try:
                    with self.daemon(b.address, on_failure=onf) as d:
                        d.start()
                        with smtp(d) as c:
                            c.ehlo('client.example')
                            code, _ = c.mail('bob@remote.test')
                            self.assertEqual(code, 550 if onf == 'reject'
                                             else 451)
                        d.wait_log(r'milter 45-milter: ')
                        # the daemon keeps serving
                        with smtp(d) as c:
                            self.assertEqual(c.noop()[0], 250)
                finally:
                    b.close()

    def test_slow_milter_stalls_nobody(self):
        plan = {'delay': {'eom': 6}}
        with ScriptedMilter(plan) as m, \
                self.daemon(m.address,
                            timeouts={'eom': '2s', 'command': '5s'}) as d:
            d.start()
            result = {}

            def slow():
                with smtp(d, timeout=20) as c:
                    c.ehlo('client.example')
                    c.mail('bob@remote.test')
                    c.rcpt(ALICE)
                    t0 = time.monotonic()
                    result['data'] = c.data(MESSAGE)
                    result['took'] = time.monotonic() - t0

            t = threading.Thread(target=slow)
            t.start()
            m.wait_event('eom')
            # the slow one waits at end of data; a whole other session
            # goes through the same milter meanwhile
            t0 = time.monotonic()
            with smtp(d) as c:
                c.ehlo('client.example')
                self.assertEqual(c.mail('carol@remote.test')[0], 250)
                self.assertEqual(c.rcpt(ALICE)[0], 250)
            fast = time.monotonic() - t0
            t.join(timeout=30)
            self.assertFalse(t.is_alive())
            self.assertLess(fast, 1.5)
            self.assertEqual(result['data'], (451, b'4.7.1 Service '
                             b'unavailable - try again later'))
            self.assertGreaterEqual(result['took'], 1.8)
            self.assertLess(result['took'], 5)
            d.wait_log(r'timeout waiting for the milter')
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_hook_timeout_first(self):
        # the core's hook_timeout ends the wait before the milter's eom
        # timeout: the client gets the core's 451 4.4.3, and the milter,
        # now out of step, counts as failed for the rest of the session
        plan = {'delay': {'eom': 4}}
        with ScriptedMilter(plan) as m, \
                self.daemon(m.address, hook_timeout='1s') as d:
            d.start()
            with smtp(d, timeout=20) as c:
                c.ehlo('client.example')
                c.mail('bob@remote.test')
                c.rcpt(ALICE)
                code, text = c.data(MESSAGE)
                self.assertEqual(code, 451, text)
                self.assertTrue(text.startswith(b'4.4.3'), text)
                code, text = c.mail('bob@remote.test')
                self.assertEqual((code, text), (451, b'4.7.1 Service '
                                 b'unavailable - try again later'))
            d.wait_log(r'the hook timed out while waiting for the milter')
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_command_timeout_accept(self):
        plan = {'delay': {'envfrom': 3}}
        with ScriptedMilter(plan) as m, \
                self.daemon(m.address, on_failure='accept',
                            timeouts={'command': '1s'}) as d:
            d.start()
            with smtp(d, timeout=20) as c:
                c.ehlo('client.example')
                t0 = time.monotonic()
                self.assertEqual(c.sendmail('bob@remote.test', [ALICE],
                                            MESSAGE), {})
                self.assertLess(time.monotonic() - t0, 2.9)
            self.assertEqual(len(read_mail(d, ALICE)), 1)
            # after the failure the milter is left alone for the session
            self.assertEqual(m.events('header'), [])


if __name__ == '__main__':
    unittest.main()
