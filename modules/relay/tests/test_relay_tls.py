#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""relay: STARTTLS to the peer, tls: required against a peer without
STARTTLS, and a smarthost that needs AUTH over TLS. Real peers (aiosmtpd
with a self-signed certificate) on 127.0.0.x, DNS from dnsmasq."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaycommon import (ALICE, Peer, RelayTestCase,  # noqa: E402
                         relay_daemon, submit, wait_for)


RECORDS = {
    'tls.test': {'MX': [(10, 'mx.tls.test')]},
    'mx.tls.test': {'A': '127.0.0.2'},
    'plain.test': {'MX': [(10, 'mx.plain.test')]},
    'mx.plain.test': {'A': '127.0.0.3'},
    'smarthost.test': {'A': '127.0.0.4'},
    'far.test': {'MX': [(10, 'mx.far.test')]},
    'mx.far.test': {'A': '127.0.0.5'},
}


class RelayTlsTest(RelayTestCase):
    RECORDS = RECORDS


    def test_starttls_to_peer(self):
        with Peer('127.0.0.2', self.port, 'mx.tls.test', tls=True) as peer, \
                relay_daemon(self.dns, self.conf()) as d:
            d.start()
            submit(d, 'ivy@tls.test')
            got = peer.handler.wait(1)[0]
            self.assertTrue(got.tls, 'the relay did not use STARTTLS')
            self.assertEqual(got.helo, 'mail.example.test')

    def test_opportunistic_plaintext_without_starttls(self):
        with Peer('127.0.0.3', self.port, 'mx.plain.test') as peer, \
                relay_daemon(self.dns, self.conf()) as d:
            d.start()
            submit(d, 'jack@plain.test')
            got = peer.handler.wait(1)[0]
            self.assertFalse(got.tls)

    def test_tls_required_refuses_plain_peer(self):
        with Peer('127.0.0.3', self.port, 'mx.plain.test') as peer, \
                relay_daemon(self.dns, self.conf(tls='required')) as d:
            d.start()
            submit(d, 'kim@plain.test')
            d.wait_log(r'does not offer STARTTLS', timeout=15)
            self.assertEqual(peer.messages, [])
            out = d.ctl('queue', 'list')
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn('kim@plain.test', out.stdout)
            # deferred, not bounced
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_tls_required_uses_tls_peer(self):
        with Peer('127.0.0.2', self.port, 'mx.tls.test', tls=True) as peer, \
                relay_daemon(self.dns, self.conf(tls='required')) as d:
            d.start()
            submit(d, 'lee@tls.test')
            self.assertTrue(peer.handler.wait(1)[0].tls)

    def test_dane_insecure_is_opportunistic(self):
        # dnsmasq serves no DNSSEC: no secure TLSA, so dane falls back to
        # opportunistic TLS and the mail goes out
        with Peer('127.0.0.2', self.port, 'mx.tls.test', tls=True) as peer, \
                relay_daemon(self.dns, self.conf(tls='dane')) as d:
            d.start()
            submit(d, 'max@tls.test')
            self.assertTrue(peer.handler.wait(1)[0].tls)

    def test_smarthost_with_auth(self):
        pwfile = tempfile.NamedTemporaryFile('w', delete=False)
        pwfile.write('smart-secret\n')
        pwfile.close()
        try:
            conf = self.conf(smarthost='smarthost.test:%d' % self.port,
                             smarthost_auth={'user': 'relayuser',
                                             'password_file': pwfile.name})
            with Peer('127.0.0.4', self.port, 'smarthost.test', tls=True,
                      auth=('relayuser', 'smart-secret')) as smart, \
                    Peer('127.0.0.5', self.port, 'mx.far.test') as mx, \
                    relay_daemon(self.dns, conf) as d:
                d.start()
                submit(d, 'ned@far.test')
                got = smart.handler.wait(1)[0]
                self.assertEqual(got.auth, 'relayuser')
                self.assertTrue(got.tls)
                self.assertEqual(got.rcpt_tos, ['ned@far.test'])
                self.assertEqual(mx.messages, [])
        finally:
            os.unlink(pwfile.name)

    def test_smarthost_wrong_password_defers(self):
        pwfile = tempfile.NamedTemporaryFile('w', delete=False)
        pwfile.write('wrong-secret\n')
        pwfile.close()
        try:
            conf = self.conf(smarthost='smarthost.test:%d' % self.port,
                             smarthost_auth={'user': 'relayuser',
                                             'password_file': pwfile.name})
            with Peer('127.0.0.4', self.port, 'smarthost.test', tls=True,
                      auth=('relayuser', 'smart-secret')) as smart, \
                    relay_daemon(self.dns, conf) as d:
                d.start()
                submit(d, 'olga@far.test')
                wait_for(lambda: '4.7.8' in d.log_text(), 15,
                         'the AUTH failure in the log')
                self.assertEqual(smart.messages, [])
                self.assertEqual(d.maildir_files(ALICE), [])
        finally:
            os.unlink(pwfile.name)


if __name__ == '__main__':
    unittest.main(verbosity=2)
