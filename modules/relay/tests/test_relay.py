#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""relay: next-hop choice from DNS (MX preference, fallback, implicit MX,
null MX, NXDOMAIN, backup routing, loops) against a real DNS server
(dnsmasq) and real SMTP peers (aiosmtpd) on 127.0.0.x."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaycommon import (ALICE, Daemon, DnsServer, Peer,  # noqa: E402
                         RelayTestCase, dsn_text, relay_daemon, submit,
                         wait_dsn, wait_for)


RECORDS = {
    # partner.test: the best MX is down, the second one answers
    'partner.test': {'MX': [(10, 'mx1.partner.test'),
                            (20, 'mx2.partner.test'),
                            (30, 'mx3.partner.test')]},
    'mx1.partner.test': {'A': '127.0.0.2'},     # nothing listens there
    'mx2.partner.test': {'A': '127.0.0.3'},
    'mx3.partner.test': {'A': '127.0.0.4'},
    # single.test: the Must-show domain, one MX
    'single.test': {'MX': [(10, 'mx.single.test')]},
    'mx.single.test': {'A': '127.0.0.5'},
    # amx.test: no MX, only an A record (implicit MX)
    'amx.test': {'A': '127.0.0.6'},
    # nullmx.test: RFC 7505
    'nullmx.test': {'MX': [(0, '.')]},
    # backup.test: we are the MX 20, a better MX 10 exists
    'backup.test': {'MX': [(10, 'mx.backup.test'),
                           (20, 'mail.example.test')]},
    'mx.backup.test': {'A': '127.0.0.7'},
    # backup2.test: we are the best MX
    'backup2.test': {'MX': [(10, 'mail.example.test'),
                            (20, 'mx.backup2.test')]},
    'mx.backup2.test': {'A': '127.0.0.8'},
    # loop.test: a remote domain whose MX is this server
    'loop.test': {'MX': [(10, 'mail.example.test')]},
    'mail.example.test': {'A': '127.0.0.1'},
}


class RelayDnsTest(RelayTestCase):
    RECORDS = RECORDS
    # fail.test is forwarded to a server that does not exist: dnsmasq
    # answers nothing, libunbound ends with SERVFAIL (a TEMPFAIL)
    DNS_ARGS = ['--server=/fail.test/127.0.0.1#9']

    def daemon(self, **relay):
        conf = self.conf(**relay)
        return relay_daemon(self.dns, conf, domains={
            'backup.test': {'routing': 'backup'},
            'backup2.test': {'routing': 'backup'},
            'loop.test': {'routing': 'remote'},
        })

    def test_must_show_submit_with_auth_reaches_mx(self):
        with Peer('127.0.0.5', self.port, 'mx.single.test') as peer, \
                self.daemon() as d:
            d.start()
            body = ('Line one\r\n.leading dot\r\n..two dots\r\n'
                    'caf\u00e9 8-bit\r\n' + 'x' * 900 + '\r\n')
            submit(d, 'bob@single.test', body=body)
            got = peer.handler.wait(1)[0]
            self.assertEqual(got.mail_from, ALICE)
            self.assertEqual(got.rcpt_tos, ['bob@single.test'])
            # dot-stuffing undone by the peer: the body arrives intact
            self.assertTrue(got.content.endswith(body.encode()),
                            got.content[-300:])
            self.assertIn(b'Subject: relay test', got.content)
            d.wait_log(r'delivered', timeout=10)

    def test_mx_preference_and_fallback(self):
        # mx1 (pref 10) refuses connections; mx2 (20) must get the mail,
        # mx3 (30) must not
        with Peer('127.0.0.3', self.port, 'mx2.partner.test') as mx2, \
                Peer('127.0.0.4', self.port, 'mx3.partner.test') as mx3, \
                self.daemon() as d:
            d.start()
            submit(d, ['bob@partner.test', 'carol@partner.test'])
            got = mx2.handler.wait(1)[0]
            # one transaction for both recipients of the domain
            self.assertEqual(sorted(got.rcpt_tos),
                             ['bob@partner.test', 'carol@partner.test'])
            self.assertEqual(mx3.messages, [])
            self.assertRegex(d.log_text(),
                             r'mx1\.partner\.test\[127\.0\.0\.2\]')

    def test_mx_preference_best_first(self):
        # when every MX answers, the best (mx2 here, as mx1 is down)
        # gets all the mail and mx3 none, over several messages
        with Peer('127.0.0.3', self.port, 'mx2.partner.test') as mx2, \
                Peer('127.0.0.4', self.port, 'mx3.partner.test') as mx3, \
                self.daemon() as d:
            d.start()
            for i in range(3):
                submit(d, 'user%d@partner.test' % i)
            mx2.handler.wait(3)
            self.assertEqual(mx3.messages, [])

    def test_no_mx_falls_back_to_a(self):
        with Peer('127.0.0.6', self.port, 'amx.test') as peer, \
                self.daemon() as d:
            d.start()
            submit(d, 'dave@amx.test')
            got = peer.handler.wait(1)[0]
            self.assertEqual(got.rcpt_tos, ['dave@amx.test'])

    def test_null_mx_bounces_at_once(self):
        with self.daemon() as d:
            d.start()
            submit(d, 'nobody@nullmx.test')
            dsn = wait_dsn(d)[0]
            self.assertEqual(dsn.get_content_type(), 'multipart/report')
            text = dsn_text(dsn)
            self.assertIn('5.1.10', text)
            self.assertIn('null MX', text)

    def test_nxdomain_bounces(self):
        with self.daemon() as d:
            d.start()
            submit(d, 'someone@does-not-exist.test')
            text = dsn_text(wait_dsn(d)[0])
            self.assertIn('5.1.2', text)

    def test_dns_failure_defers(self):
        with self.daemon() as d:
            d.start()
            submit(d, 'ola@x.fail.test')
            d.wait_log(r'MX lookup for x\.fail\.test failed', timeout=60)
            self.assertIn('ola@x.fail.test', d.ctl('queue', 'list').stdout)
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_backup_relays_to_better_mx_only(self):
        with Peer('127.0.0.7', self.port, 'mx.backup.test') as peer, \
                self.daemon() as d:
            d.start()
            submit(d, 'erin@backup.test')
            got = peer.handler.wait(1)[0]
            self.assertEqual(got.rcpt_tos, ['erin@backup.test'])

    def test_backup_without_better_mx_defers(self):
        # we are the best MX of backup2.test: the worse MX must not be
        # used, the mail waits in the queue
        with Peer('127.0.0.8', self.port, 'mx.backup2.test') as peer, \
                self.daemon() as d:
            d.start()
            submit(d, 'frank@backup2.test')
            d.wait_log(r'better preference', timeout=15)
            self.assertEqual(peer.messages, [])
            out = d.ctl('queue', 'list')
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn('frank@backup2.test', out.stdout)
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_loop_to_myself_bounces(self):
        with self.daemon() as d:
            d.start()
            submit(d, 'gina@loop.test')
            dsn = wait_dsn(d)[0]
            text = dsn_text(dsn)
            self.assertIn('5.4.6', text)
            self.assertIn('mail for loop.test loops back to myself', text)

    def test_loop_by_greeting_bounces(self):
        # a static route that points at our own MX listener: the greeting
        # names our hostname, so the relay recognises itself
        with relay_daemon(self.dns, {'port': self.port, 'retry': ['1h']},
                          extra=None) as d:
            d.plugins = None
            d.extra_plugins['70-relay.yaml']['routes'] = {
                'loop2.test': '127.0.0.1:%d' % d.port('smtp')}
            d.start()
            submit(d, 'hank@loop2.test')
            text = dsn_text(wait_dsn(d)[0])
            self.assertIn('mail for loop2.test loops back to myself', text)
            wait_for(lambda: 'loops back' in d.log_text(), 5, 'log line')


class RelayToSatchelTest(unittest.TestCase):
    """The peer is a second satcheld (hostname mx.other.test): its smtp
    module offers PIPELINING, STARTTLS, 8BITMIME and DSN, so the pipelined
    path runs against a real server, and the body must arrive byte-exact
    in the peer's Maildir."""

    def test_pipelined_relay_to_another_satchel(self):
        dns = DnsServer(RECORDS).start()
        try:
            with Daemon(main={'hostname': 'mx.other.test', 'domains': {
                    'other.test': {'routing': 'local'}}},
                    users={'bob@other.test': 'bob-secret-pw',
                           'carl@other.test': 'carl-secret-pw'}) as peer:
                peer.start()
                with relay_daemon(dns, {'retry': ['1h'], 'routes': {
                        'other.test': '127.0.0.1:%d' % peer.port('smtp')}},
                        ) as d:
                    d.start()
                    body = ('.starts with a dot\r\n'
                            'caf\u00e9\r\n' + 'y' * 990 + '\r\n'
                            '.\r\nlast line\r\n') * 50
                    submit(d, ['bob@other.test', 'carl@other.test',
                               'nobody@other.test'], body=body)
                    for rcpt in ('bob@other.test', 'carl@other.test'):
                        f = peer.wait_maildir(rcpt, timeout=20)[0]
                        with open(f, 'rb') as fh:
                            data = fh.read()
                        self.assertTrue(data.endswith(body.encode()),
                                        data[-200:])
                    # the unknown user is refused by the peer at RCPT
                    # (pipelined with the others) and bounces to alice
                    text = dsn_text(wait_dsn(d, timeout=20)[0])
                    self.assertIn('nobody@other.test', text)
                    self.assertIn('5.1.1', text)
                    self.assertRegex(d.log_text(),
                                     r'offers PIPELINING.*\(TLS on\)')
                    self.assertRegex(d.log_text(), r'TLS with')
        finally:
            dns.stop()


if __name__ == '__main__':
    unittest.main(verbosity=2)
