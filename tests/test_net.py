#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Integration tests of the core's network and queue parts: privileged
listeners survive a reload after the privilege drop, a session in progress
finishes on the old generation, TLS works before and after, concurrent
commits all reach the Maildir, and `satchelctl queue list` works with the
daemon stopped. Runs inside run-test.sh's loopback-only namespace."""

import os
import smtplib
import socket
import threading
import time
import unittest

from satchel_harness import Daemon, skip, smtp, tls_context

ALICE = 'alice@example.test'


def plugins_on(port_mx, port_smtps):
    def f(d):
        return {
            '40-router.yaml': {'module': 'router'},
            '50-smtp.yaml': {
                'module': 'smtp',
                'listen': [
                    {'address': '127.0.0.1:%d' % port_mx, 'mode': 'mx',
                     'tls': 'starttls'},
                    {'address': '127.0.0.1:%d' % port_smtps, 'mode': 'mx',
                     'tls': 'implicit'},
                ],
            },
            '60-maildir.yaml': {
                'module': 'maildir',
                'path': os.path.join(d.state_dir, 'mail', '%d', '%u'),
                'mailboxes': [ALICE],
            },
        }
    return f


def message(n):
    return ('From: <x@example.test>\r\nTo: <%s>\r\nSubject: net %d\r\n'
            'Message-ID: <net-%d@test>\r\n\r\nbody %d\r\n' % (ALICE, n, n, n))


class NetTest(unittest.TestCase):

    def test_privileged_ports_survive_reload(self):
        if os.geteuid() != 0:
            skip('needs root: binds ports 25 and 465 and drops privileges')
        with Daemon(plugins=plugins_on(25, 465)) as d:
            d.start()
            self.assertIn('running as', d.log_text())
            # a session in progress across the reload
            old = socket.create_connection(('127.0.0.1', 25), timeout=10)
            f = old.makefile('rb')
            self.assertTrue(f.readline().startswith(b'220 '))
            old.sendall(b'EHLO old.example\r\n')
            while True:
                line = f.readline()
                self.assertTrue(line.startswith(b'250'), line)
                if line[3:4] == b' ':
                    break
            d.main = dict(d.main or {}, log={'level': 'info'})
            d.reload()
            d.wait_log(r'configuration reloaded')
            # new connections on both privileged ports, TLS included
            with smtplib.SMTP('127.0.0.1', 25, timeout=10) as s:
                s.ehlo('new.example')
                s.starttls(context=tls_context())
                s.ehlo('new.example')
                s.sendmail('x@example.test', [ALICE], message(1))
            with smtplib.SMTP_SSL('127.0.0.1', 465, timeout=10,
                                  context=tls_context()) as s:
                s.sendmail('x@example.test', [ALICE], message(2))
            # the old session still works
            old.sendall(b'MAIL FROM:<x@example.test>\r\n')
            self.assertTrue(f.readline().startswith(b'250'))
            old.sendall(('RCPT TO:<%s>\r\n' % ALICE).encode())
            self.assertTrue(f.readline().startswith(b'250'))
            old.sendall(b'DATA\r\n')
            self.assertTrue(f.readline().startswith(b'354'))
            old.sendall(message(3).encode() + b'.\r\n')
            self.assertTrue(f.readline().startswith(b'250 2.0.0'))
            old.sendall(b'QUIT\r\n')
            self.assertTrue(f.readline().startswith(b'221'))
            f.close()
            old.close()
            files = d.wait_maildir(ALICE, count=3)
            self.assertEqual(len(files), 3)
            # a second reload still takes the sockets over
            d.reload()
            with smtplib.SMTP('127.0.0.1', 25, timeout=10) as s:
                self.assertEqual(s.noop()[0], 250)

    def test_wildcard_listens_on_ipv4_and_ipv6(self):
        """'*:PORT' (the shipped default) is one dual-stack socket: clients
        reach it over 127.0.0.1 and ::1; '[::1]:PORT' stays IPv6 only."""
        def f(d):
            return {
                '50-smtp.yaml': {'module': 'smtp', 'listen': [
                    {'address': '*:%d' % d.port('any'), 'mode': 'mx',
                     'tls': 'none'},
                    {'address': '[::1]:%d' % d.port('v6'), 'mode': 'mx',
                     'tls': 'none'}]},
            }
        with Daemon(plugins=f) as d:
            d.start()
            for host in ('127.0.0.1', '::1'):
                c = smtplib.SMTP(host, d.port('any'), timeout=10)
                self.assertEqual(c.noop()[0], 250)
                c.quit()
            with self.assertRaises(OSError):
                socket.create_connection(('127.0.0.1', d.port('v6')), 5)

    def test_client_that_never_reads_cannot_grow_memory(self):
        """Output back-pressure: a client pipelining EHLOs (8 bytes in,
        ~200 out) without ever reading the replies stalls once 256 KiB of
        replies wait; the daemon's memory stays bounded and others are
        served meanwhile."""
        def rss_kib(pid):
            with open('/proc/%d/status' % pid) as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        return int(line.split()[1])
            return 0

        def f(d):
            return {'50-smtp.yaml': {'module': 'smtp', 'listen': [
                {'address': '127.0.0.1:%d' % d.port('mx'), 'mode': 'mx',
                 'tls': 'none'}]}}
        with Daemon(plugins=f) as d:
            d.start()
            # one session first: what the first client costs once (the
            # resolver's caches for smtp's PTR lookup, pool threads) is
            # not what this test measures
            with smtplib.SMTP('127.0.0.1', d.port('mx'), timeout=30) as c:
                c.ehlo('warm.example')
                c.noop()
            time.sleep(1)
            before = rss_kib(d.proc.pid)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(('127.0.0.1', d.port('mx')))
            s.setblocking(False)
            flood = b'EHLO x\r\n' * 4096
            sent = 0
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and sent < 64 << 20:
                try:
                    sent += s.send(flood)
                except BlockingIOError:
                    time.sleep(0.01)
            grown = rss_kib(d.proc.pid) - before
            # Unthrottled, this input produced hundreds of MB of replies.
            self.assertLess(grown, 32 * 1024,
                            'RSS grew %d KiB after %d bytes of EHLOs'
                            % (grown, sent))
            c = smtplib.SMTP('127.0.0.1', d.port('mx'), timeout=10)
            self.assertEqual(c.noop()[0], 250)
            c.quit()
            s.close()

    def test_concurrent_commits(self):
        with Daemon(users={ALICE: 'secret-password'}) as d:
            d.start()
            errors = []

            def send(n):
                try:
                    with smtp(d) as s:
                        s.sendmail('x@example.test', [ALICE], message(n))
                except Exception as e:      # reported below
                    errors.append(repr(e))

            threads = [threading.Thread(target=send, args=(n,))
                       for n in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            self.assertEqual(errors, [])
            files = d.wait_maildir(ALICE, count=20, timeout=20)
            self.assertEqual(len(files), 20)
            bodies = set()
            for p in files:
                with open(p, 'rb') as fh:
                    data = fh.read()
                self.assertIn(b'Received:', data)
                bodies.add(data.split(b'\r\n\r\n', 1)[1]
                           if b'\r\n\r\n' in data
                           else data.split(b'\n\n', 1)[1])
            self.assertEqual(len(bodies), 20)

    def test_tls_junk_and_queue_list_offline(self):
        with Daemon(users={ALICE: 'secret-password'}) as d:
            d.start()
            # plaintext and garbage to the implicit TLS port
            for junk in (b'EHLO plain.example\r\n',
                         b'\x16\x03\x01\xff\xff' + os.urandom(300)):
                s = socket.create_connection(('127.0.0.1', d.port('smtps')),
                                             timeout=10)
                s.sendall(junk)
                s.settimeout(10)
                try:
                    while s.recv(4096):
                        pass
                except OSError:
                    pass
                s.close()
            with smtp(d, 'smtps') as s:
                self.assertEqual(s.noop()[0], 250)
            d.stop()
            out = d.ctl('queue', 'list')
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn('the queue is empty', out.stdout)
            out = d.ctl('queue', 'show', 'nonsense')
            self.assertEqual(out.returncode, 1)
            out = d.ctl('queue', 'delete', '0123456789abcdef')
            self.assertEqual(out.returncode, 1)
            self.assertIn('no message', out.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
