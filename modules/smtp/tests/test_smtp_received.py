#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# smtp module: our Received: line (issue 13 item 5) against the real
# satcheld and a real DNS server (dnsmasq): the client's name from a PTR
# lookup confirmed by a forward lookup - "from HELO (name [ip])" - and
# "unknown" when the PTR's name does not lead back to the address; the
# outcome is cached per address; "with UTF8SMTPS" for an SMTPUTF8
# transaction over STARTTLS (RFC 6531 3.7.3).
import os
import smtplib
import subprocess
import sys
import unittest

import satchel_harness as h

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', '..', '..', 'tests', 'harness'))
from dnsserver import DnsServer  # noqa: E402

ALICE = 'alice@example.test'
USERS = {ALICE: 'alice-password-1'}
SOURCES = ('192.0.2.5', '192.0.2.6', '192.0.2.7')
RECORDS = {
    # 192.0.2.5: PTR and A agree
    '5.2.0.192.in-addr.arpa': {'PTR': ['client5.example.test']},
    'client5.example.test': {'A': ['192.0.2.5']},
    # 192.0.2.6: the PTR's name points elsewhere
    '6.2.0.192.in-addr.arpa': {'PTR': ['client6.example.test']},
    'client6.example.test': {'A': ['192.0.2.66']},
}


class SmtpReceived(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # unbound answers 127.in-addr.arpa itself (RFC 6303 local zones);
        # the documentation network's reverse zone it leaves to the
        # configured server (core/dns.c), so the clients come from
        # 192.0.2.x, added to loopback in this test's own namespace
        if os.environ.get('SATCHEL_IN_NETNS') != '1':
            raise unittest.SkipTest('needs its own network namespace '
                                    '(tests/run-test.sh)')
        for ip in SOURCES:
            subprocess.run(['ip', 'addr', 'add', ip + '/32', 'dev', 'lo'],
                           check=True)
        cls.dns = DnsServer(RECORDS, local=('test', 'example', 'invalid',
                                            '2.0.192.in-addr.arpa'))
        cls.dns.start()
        cls.d = h.Daemon(users=USERS,
                         main={'dns': {'servers': [cls.dns.server]}})
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.close()
        cls.dns.stop()

    def send(self, src, wait_name=None, utf8=False):
        """A message from source address src (after the log shows the
        lookup's outcome, when wait_name is given); the stored Received:
        line of ours, unfolded."""
        before = len(self.d.maildir_files(ALICE))
        marker = ('from %s %d' % (src, before)).encode()
        with smtplib.SMTP('127.0.0.1', self.d.port('smtp'), timeout=10,
                          source_address=(src, 0)) as s:
            if wait_name is not None:
                self.d.wait_log(r'smtp: client name of %s: %s'
                                % (src.replace('.', r'\.'), wait_name))
            s.ehlo('helo.example')
            opts = []
            if utf8:
                s.starttls(context=h.tls_context())
                s.ehlo('helo.example')
                opts = ['SMTPUTF8']
            s.sendmail('s@example.org', [ALICE],
                       b'Subject: r\r\n\r\n' + marker + b'\r\n',
                       mail_options=opts)
        for p in self.d.wait_maildir(ALICE, before + 1):
            with open(p, 'rb') as f:
                data = f.read()
            if marker in data:
                hdr = data.split(b'\r\n\r\n', 1)[0]
                i = hdr.index(b'Received: from helo.example')
                line = hdr[i:].split(b';', 1)[0]
                return line.replace(b'\r\n\t', b' ').decode()
        self.fail('message from %s not delivered' % src)

    def test_confirmed_ptr_then_cached(self):
        line = self.send('192.0.2.5', r'client5\.example\.test '
                         r'\(PTR confirmed\)')
        self.assertTrue(line.startswith(
            'Received: from helo.example (client5.example.test '
            '[192.0.2.5]) by mail.example.test (satchel) with ESMTP '), line)
        # a second connection takes it from the cache at once, without
        # waiting for (or starting) any lookup
        mark = self.d.log_mark()
        line = self.send('192.0.2.5')
        self.assertIn('(client5.example.test [192.0.2.5])', line)
        self.assertNotIn('dns: 5.2.0.192.in-addr.arpa',
                         self.d.log_text()[mark:])

    def test_unconfirmed_ptr_is_unknown(self):
        line = self.send('192.0.2.6', r'unknown \(no PTR that leads back')
        self.assertIn('Received: from helo.example (unknown [192.0.2.6])',
                      line)
        self.assertNotIn('client6', line)
        # no PTR at all (the name does not exist): unknown too
        line = self.send('192.0.2.7', r'unknown')
        self.assertIn('(unknown [192.0.2.7])', line)

    def test_utf8smtps(self):
        line = self.send('192.0.2.5', r'client5\.example\.test', utf8=True)
        self.assertRegex(line, r'\(client5\.example\.test \[192\.0\.2\.5\]\)'
                         r' by mail\.example\.test \(satchel\) with '
                         r'UTF8SMTPS \(TLS')


if __name__ == '__main__':
    unittest.main(verbosity=2)
