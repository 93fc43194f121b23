#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""ratelimit against the real satcheld: the 421 connection limits (the seed
article's "Too many concurrent SMTP connections"), per-IP limits from
distinct loopback sources, the sender rate (450), the AUTH lockout, counts
kept across a reload, the bounded client table, and that every limit holds
whatever the plugins.d files are named (the policy phase)."""

import os
import re
import smtplib
import socket
import time
import unittest

from satchel_harness import Daemon, builddir, default_plugins, tls_context

HOST = 'mail.example.test'
GLOBAL_421 = ('421 4.7.0 %s Too many concurrent SMTP connections; '
              'please try again later' % HOST)


def per_ip_421(ip):
    return '421 4.7.0 Too many connections from %s; please try again later' % ip


def open_conn(d, src='127.0.0.1', timeout=5):
    """Connects to the MX listener from src; returns (socket, first line)."""
    s = socket.create_connection(('127.0.0.1', d.port('smtp')),
                                 timeout=timeout, source_address=(src, 0))
    f = s.makefile('rb')
    line = f.readline().decode('ascii', 'replace').rstrip('\r\n')
    return s, f, line


def close_conn(c):
    """Closes a connection from open_conn (the file holds the fd too)."""
    c[1].close()
    c[0].close()


def closed_after(f, timeout=5):
    """True when the server closes the connection (EOF) within timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if f.readline() == b'':
            return True
    return False


def login_plain(c, user, password):
    """One AUTH PLAIN attempt (smtplib's login() would try LOGIN next)."""
    c.ehlo_or_helo_if_needed()
    c.user, c.password = user, password
    return c.auth('PLAIN', c.auth_plain)


def ratelimit_daemon(users=None, file='10-ratelimit.yaml', rename=None,
                     extra=None, **keys):
    """A daemon with the default plugins and ratelimit in `file`; rename
    maps default plugin file names to others (to reorder them), extra adds
    plugin files."""
    conf = {'module': 'ratelimit', 'max_connections': 100,
            'max_connections_per_ip': 100, 'connections_per_ip': '1000/1m'}
    conf.update(keys)

    def plugins(d):
        p = default_plugins(d, with_auth=bool(users))
        for old, new in (rename or {}).items():
            p[new] = p.pop(old)
        p[file] = conf
        p.update(extra or {})
        return p
    d = Daemon(plugins=plugins, users=users)
    fixture = os.path.join(builddir(), 'tests', 'modules', '.libs',
                           'fx_hook.so')
    os.symlink(fixture, os.path.join(d.module_dir, 'fx_hook.so'))
    return d


def auth_fail_twice(testcase, d):
    """Two failed logins from 127.0.0.1 (auth_failures_per_ip 2/1h)."""
    for _ in range(2):
        c = smtplib.SMTP('127.0.0.1', d.port('submission'), timeout=30)
        c.starttls(context=tls_context())
        with testcase.assertRaises(smtplib.SMTPAuthenticationError) as e:
            login_plain(c, 'alice@example.test', 'wrong-password')
        testcase.assertEqual(e.exception.smtp_code, 535)
        c.close()


def assert_locked_out(testcase, d):
    """The right password is refused from 127.0.0.1 with the lockout."""
    c = smtplib.SMTP('127.0.0.1', d.port('submission'), timeout=30)
    c.starttls(context=tls_context())
    with testcase.assertRaises(smtplib.SMTPAuthenticationError) as e:
        login_plain(c, 'alice@example.test', 'correct-horse-battery')
    testcase.assertEqual(e.exception.smtp_code, 454)
    testcase.assertIn(b'Too many authentication failures from 127.0.0.1',
                      e.exception.smtp_error)
    c.close()


class RateLimitTest(unittest.TestCase):
    def test_max_connections_exact_421(self):
        with ratelimit_daemon(max_connections=5) as d:
            d.start()
            conns = [open_conn(d) for _ in range(5)]
            for _, _, line in conns:
                self.assertTrue(line.startswith('220 '), line)
            s, f, line = open_conn(d)
            self.assertEqual(line, GLOBAL_421)
            self.assertTrue(closed_after(f))
            close_conn((s, f))
            st = d.ctl('status')
            self.assertEqual(st.returncode, 0, st.stderr)
            self.assertRegex(st.stdout, r'connections: 5/5\b')
            self.assertRegex(st.stdout, r'max_connections=1\b')
            # One leaves: a new client gets in again.
            conns[0][0].sendall(b'QUIT\r\n')
            conns[0][1].readline()
            close_conn(conns[0])
            line = ''
            for _ in range(50):
                s, f, line = open_conn(d)
                if line.startswith('220 '):
                    break
                close_conn((s, f))
                time.sleep(0.1)
            self.assertTrue(line.startswith('220 '), line)
            close_conn((s, f))
            for c in conns[1:]:
                close_conn(c)

    def test_per_ip_concurrency_and_rate(self):
        with ratelimit_daemon(max_connections_per_ip=2,
                              connections_per_ip='4/1h') as d:
            d.start()
            a = [open_conn(d, '127.0.0.5') for _ in range(2)]
            for _, _, line in a:
                self.assertTrue(line.startswith('220 '), line)
            s, f, line = open_conn(d, '127.0.0.5')
            self.assertEqual(line, per_ip_421('127.0.0.5'))
            close_conn((s, f))
            # Another address is not affected.
            s, f, line = open_conn(d, '127.0.0.6')
            self.assertTrue(line.startswith('220 '), line)
            close_conn((s, f))
            for c in a:
                close_conn(c)
            # 127.0.0.5 has used 2 of its 4 connections this hour (the one
            # refused for concurrency took none): two more, then the rate
            # refuses.
            time.sleep(0.3)
            s, f, line = open_conn(d, '127.0.0.5')
            self.assertTrue(line.startswith('220 '), line)
            close_conn((s, f))
            time.sleep(0.3)
            s, f, line = open_conn(d, '127.0.0.5')
            self.assertTrue(line.startswith('220 '), line)
            close_conn((s, f))
            time.sleep(0.2)
            s, f, line = open_conn(d, '127.0.0.5')
            self.assertEqual(line, per_ip_421('127.0.0.5'))
            close_conn((s, f))
            s, f, line = open_conn(d, '127.0.0.5')
            self.assertEqual(line, per_ip_421('127.0.0.5'))
            close_conn((s, f))
            log = d.log_text()
            # Logged once per address and period, not once per refusal.
            self.assertEqual(len(re.findall(
                r'ratelimit: connections_per_ip limit hit by 127\.0\.0\.5', log)), 1)

    def test_sender_rate_450(self):
        with ratelimit_daemon(messages_per_sender='3/1h') as d:
            d.start()
            c = smtplib.SMTP('127.0.0.1', d.port('smtp'), timeout=10)
            c.ehlo('client.example.net')
            for i in range(3):
                code, msg = c.mail('bob@example.net')
                self.assertEqual(code, 250, msg)
                c.rset()
            code, msg = c.mail('bob@example.net')
            self.assertEqual(code, 450)
            self.assertEqual(msg.decode(), '4.7.1 <bob@example.net>: message '
                             'rate exceeded; please try again later')
            # Another sender still may.
            c.rset()
            code, msg = c.mail('carol@example.net')
            self.assertEqual(code, 250, msg)
            c.quit()

    def test_auth_failure_lockout(self):
        users = {'alice@example.test': 'correct-horse-battery'}
        with ratelimit_daemon(users=users,
                              auth_failures_per_ip='2/1h') as d:
            d.start()
            auth_fail_twice(self, d)
            # Now even the right password is refused from this address.
            assert_locked_out(self, d)

    def test_auth_lockout_before_auth_file_in_file_order(self):
        # auth_file's file sorts first: it would answer OK to the right
        # password before ratelimit's lockout ran, were the lockout not
        # in the policy phase.
        users = {'alice@example.test': 'correct-horse-battery'}
        with ratelimit_daemon(users=users, file='20-ratelimit.yaml',
                              rename={'30-auth_file.yaml':
                                      '10-auth_file.yaml'},
                              auth_failures_per_ip='2/1h') as d:
            d.start()
            auth_fail_twice(self, d)
            assert_locked_out(self, d)

    def test_limits_hold_when_named_last(self):
        # A module before ratelimit accepts every connection and sender
        # (an allow list, here the fx_hook fixture answering OK): the
        # connection and sender limits still hold, and connections are
        # still counted.
        allow = {'05-allow.yaml': {'module': 'fx_hook',
                                   'hooks': ['connect', 'mail'],
                                   'result': 'ok'}}
        with ratelimit_daemon(file='99-ratelimit.yaml', extra=allow,
                              max_connections=2,
                              messages_per_sender='2/1h') as d:
            d.start()
            c = smtplib.SMTP('127.0.0.1', d.port('smtp'), timeout=10)
            c.ehlo('client.example.net')
            for i in range(2):
                code, msg = c.mail('bob@example.net')
                self.assertEqual(code, 250, msg)
                c.rset()
            code, msg = c.mail('bob@example.net')
            self.assertEqual(code, 450, msg)
            conn = open_conn(d)
            self.assertTrue(conn[2].startswith('220 '), conn[2])
            s, f, line = open_conn(d)
            self.assertEqual(line, GLOBAL_421)
            close_conn((s, f))
            close_conn(conn)
            c.quit()

    def test_reload_keeps_counts(self):
        with ratelimit_daemon(max_connections=3) as d:
            d.start()
            conns = [open_conn(d) for _ in range(3)]
            for _, _, line in conns:
                self.assertTrue(line.startswith('220 '), line)
            d.reload()
            d.wait_log(r'reload', timeout=10)
            s, f, line = open_conn(d)
            self.assertEqual(line, GLOBAL_421)
            close_conn((s, f))
            for c in conns:
                close_conn(c)
            line = ''
            for _ in range(50):
                s, f, line = open_conn(d)
                close_conn((s, f))
                if line.startswith('220 '):
                    break
                time.sleep(0.1)
            self.assertTrue(line.startswith('220 '), line)

    def test_client_table_is_bounded(self):
        bound = 32
        with ratelimit_daemon(max_tracked=bound) as d:
            d.start()
            deadline = time.time() + 60
            n = 0
            for x in range(1, 4):
                for y in range(1, 101):
                    if time.time() > deadline:
                        break
                    src = '127.%d.%d.9' % (x, y)
                    s, f, line = open_conn(d, src)
                    self.assertTrue(line.startswith('220 '), (src, line))
                    close_conn((s, f))
                    n += 1
            self.assertGreaterEqual(n, 200)
            time.sleep(0.3)
            st = d.ctl('status')
            self.assertEqual(st.returncode, 0, st.stderr)
            m = re.search(r'tracked_clients: (\d+) \(bound (\d+)\)', st.stdout)
            self.assertIsNotNone(m, st.stdout)
            self.assertEqual(int(m.group(2)), bound)
            self.assertLessEqual(int(m.group(1)), bound)
            self.assertGreater(int(m.group(1)), 0)


if __name__ == '__main__':
    unittest.main(verbosity=2)
