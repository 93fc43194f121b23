#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""DSNs (RFC 3461/3464) end to end (issue 13): NOTIFY=SUCCESS on local
delivery and on relaying to a peer without DSN, delay notices only after
`delay_warning`, a notice that says truly what it attaches (RET), and a
bounce that cannot be delivered going to postmaster@hostname.

Real satcheld, real SMTP peers (aiosmtpd, which offers no DSN extension),
dnsmasq for the DNS; loopback only (run-test.sh's namespace).
"""

import os
import re
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaycommon import (ALICE, ALICE_PW, Peer, RelayTestCase,  # noqa: E402
                         dsn_text, relay_daemon, submit, wait_dsn, wait_for,
                         tls_context)
from test_relay_replies import ScriptPeer  # noqa: E402

BOB = 'bob@example.test'
POSTMASTER = 'postmaster@mail.example.test'

RECORDS = {
    'partner.test': {'MX': [(10, 'mx.partner.test')]},
    'mx.partner.test': {'A': ['127.0.0.2']},
    # only where the hostname's domain is routed remote (to the peer)
    'mail.example.test': {'MX': [(10, 'mx.partner.test')]},
}


def send_null_sender(d, rcpt):
    """A bounce-like message: MAIL FROM:<> over authenticated
    submission."""
    msg = ('From: MAILER-DAEMON@elsewhere.test\r\nTo: <%s>\r\n'
           'Subject: a bounce nobody wants\r\n\r\nbounced text\r\n' % rcpt)
    with smtplib.SMTP('127.0.0.1', d.port('submission'), timeout=20) as s:
        s.ehlo('client.example.test')
        s.starttls(context=tls_context())
        s.ehlo('client.example.test')
        s.login(ALICE, ALICE_PW)
        s.sendmail('', [rcpt], msg.encode())


class DsnTest(RelayTestCase):
    RECORDS = RECORDS
    RETRY = ['1s']

    def test_success_dsn_local_delivery(self):
        """NOTIFY=SUCCESS to a local mailbox: a success DSN (Action:
        delivered, Status 2.x.x) with the headers only, and it says so."""
        with relay_daemon(self.dns, self.conf(),
                          users={ALICE: ALICE_PW, BOB: 'bob-password'}) as d:
            d.start()
            submit(d, BOB, subject='deliver me', body='secret body\r\n',
                   rcpt_options=['NOTIFY=SUCCESS'])
            d.wait_maildir(BOB, count=1, timeout=20)
            msg = wait_dsn(d, ALICE, timeout=20)[0]
            text = dsn_text(msg)
            self.assertEqual(msg['Subject'], 'Successful Mail Delivery Report')
            self.assertEqual(str(msg['To']), ALICE)
            self.assertIn('Final-Recipient: rfc822; %s' % BOB, text)
            self.assertIn('Action: delivered', text)
            self.assertRegex(text, r'Status: 2\.\d+\.\d+')
            self.assertIn('Only the header section of the message is '
                          'attached below, not its body.', text)
            self.assertIn('Content-Type: text/rfc822-headers', text)
            self.assertIn('Subject: deliver me', text)
            self.assertNotIn('secret body', text)
            d.wait_log(r'success DSN to <%s> queued as' % re.escape(ALICE))

    def test_no_success_dsn_without_notify(self):
        """Without NOTIFY=SUCCESS a delivery sends nothing back."""
        with relay_daemon(self.dns, self.conf(),
                          users={ALICE: ALICE_PW, BOB: 'bob-password'}) as d:
            d.start()
            submit(d, BOB)
            d.wait_maildir(BOB, count=1, timeout=20)
            d.wait_log(r'to=<%s> delivered' % re.escape(BOB))
            time.sleep(1.5)
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_relayed_dsn_peer_without_dsn(self):
        """A peer without the DSN extension cannot report delivery: the
        sender who asked NOTIFY=SUCCESS gets Action: relayed from us."""
        with Peer('127.0.0.2', self.port, 'mx.partner.test') as peer, \
                relay_daemon(self.dns, self.conf()) as d:
            d.start()
            submit(d, 'rose@partner.test',
                   rcpt_options=['NOTIFY=SUCCESS,FAILURE'])
            got = peer.handler.wait(1, timeout=20)[0]
            # no DSN offered: the request is not passed on
            self.assertEqual(got.rcpt_options, [])
            msg = wait_dsn(d, ALICE, timeout=20)[0]
            text = dsn_text(msg)
            self.assertEqual(msg['Subject'], 'Successful Mail Delivery Report')
            self.assertIn('Final-Recipient: rfc822; rose@partner.test', text)
            self.assertIn('Action: relayed', text)
            self.assertIn('Remote-MTA: dns; mx.partner.test', text)
            self.assertIn('does not report delivery', text)

    def test_no_relayed_dsn_when_peer_has_dsn(self):
        """A peer offering DSN gets the NOTIFY request and reports
        itself: no "relayed" notice from us."""
        with ScriptPeer('127.0.0.2', self.port) as peer, \
                relay_daemon(self.dns, self.conf()) as d:
            d.start()
            submit(d, 'rose@partner.test',
                   rcpt_options=['NOTIFY=SUCCESS,FAILURE'])
            d.wait_log(r'to=<rose@partner\.test> delivered', timeout=20)
            self.assertEqual(peer.messages, 1)
            self.assertTrue([l for l in peer.lines if l.startswith(
                'RCPT TO:<rose@partner.test>') and
                'NOTIFY=SUCCESS,FAILURE' in l], peer.lines)
            time.sleep(1.5)
            self.assertNotIn('success DSN', d.log_text())
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_delay_notice_not_at_first_deferral_by_default(self):
        """delay_warning defaults to 4h: deferral after deferral, no
        delay notice although NOTIFY=DELAY asked for one."""
        with Peer('127.0.0.2', self.port, 'mx.partner.test',
                  mode='defer') as peer, \
                relay_daemon(self.dns, self.conf()) as d:
            d.start()
            submit(d, 'rose@partner.test',
                   rcpt_options=['NOTIFY=DELAY,FAILURE'])
            d.wait_log(r'to=<rose@partner\.test> deferred \(attempt 3',
                       timeout=30)
            time.sleep(0.5)
            self.assertGreaterEqual(
                peer.handler.rcpt_attempts['rose@partner.test'], 3)
            self.assertNotIn('delay DSN', d.log_text())
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_delay_notice_after_delay_warning(self):
        """delay_warning: 4s: the first deferrals send nothing; the first
        deferral after 4 s sends one delay notice, once."""
        with Peer('127.0.0.2', self.port, 'mx.partner.test',
                  mode='defer'), \
                relay_daemon(self.dns, self.conf()) as d:
            d.main['delay_warning'] = '4s'
            d.start()
            t0 = time.monotonic()
            submit(d, 'rose@partner.test',
                   rcpt_options=['NOTIFY=DELAY,FAILURE'])
            d.wait_log(r'to=<rose@partner\.test> deferred \(attempt 1',
                       timeout=20)
            msg = wait_dsn(d, ALICE, timeout=30)[0]
            self.assertGreaterEqual(time.monotonic() - t0, 4.0)
            log = d.log_text()
            first = log.index('deferred (attempt 1')
            notice = log.index('delay DSN to <%s>' % ALICE)
            self.assertGreater(notice, first)
            # deferrals came before the notice, none of them sent one
            self.assertRegex(log[first:notice],
                             r'deferred \(attempt [2-9]')
            text = dsn_text(msg)
            self.assertEqual(msg['Subject'],
                             'Delayed Mail (still being retried)')
            self.assertIn('Action: delayed', text)
            self.assertIn('Only the header section of the message is '
                          'attached below, not its body.', text)
            # one notice per recipient, not one per deferral
            d.wait_log(r'deferred \(attempt %d' %
                       (len(re.findall(r'deferred \(attempt',
                                       d.log_text())) + 1), timeout=20)
            self.assertEqual(len(d.maildir_files(ALICE)), 1)

    def test_failure_dsn_says_what_it_attaches(self):
        """RET=HDRS (the default): the notice says only the headers are
        attached, and only they are; RET=FULL: the whole message."""
        with Peer('127.0.0.2', self.port, 'mx.partner.test',
                  mode='reject'), \
                relay_daemon(self.dns, self.conf()) as d:
            d.start()
            submit(d, 'rose@partner.test', subject='headers only',
                   body='the body of the first\r\n',
                   mail_options=['RET=HDRS'])
            text = dsn_text(wait_dsn(d, ALICE, count=1, timeout=20)[0])
            self.assertIn('Only the header section of the message is '
                          'attached below, not its body.', text)
            self.assertIn('Content-Type: text/rfc822-headers', text)
            self.assertNotIn('the body of the first', text)
            self.assertNotIn('It is attached below', text)
            submit(d, 'rose@partner.test', subject='all of it',
                   body='the body of the second\r\n',
                   mail_options=['RET=FULL'])
            msgs = wait_dsn(d, ALICE, count=2, timeout=20)
            full = [dsn_text(m) for m in msgs
                    if 'all of it' in dsn_text(m)][0]
            self.assertIn('The message is attached below, whole.', full)
            self.assertIn('Content-Type: message/rfc822', full)
            self.assertIn('the body of the second', full)


class DoubleBounceTest(RelayTestCase):
    RECORDS = RECORDS
    RETRY = ['1s']

    def daemon(self, users, routing='local'):
        return relay_daemon(self.dns, self.conf(), users=users, domains={
            'mail.example.test': {'routing': routing}})

    def test_double_bounce_to_postmaster(self):
        """A bounce (null sender) that fails goes to postmaster@hostname,
        from double-bounce@hostname, with the bounce attached; the log
        says so."""
        with Peer('127.0.0.2', self.port, 'mx.partner.test',
                  mode='reject'), \
                self.daemon({ALICE: ALICE_PW, POSTMASTER: 'postmaster-password'}) as d:
            d.start()
            send_null_sender(d, 'rose@partner.test')
            m = d.wait_log(r'(\w+): undeliverable bounce: double bounce to '
                           r'<%s> queued as (\w+)' % re.escape(POSTMASTER),
                           timeout=20)
            files = d.wait_maildir(POSTMASTER, count=1, timeout=20)
            with open(files[0], 'rb') as f:
                raw = f.read().decode('utf-8', 'replace')
            self.assertIn('Subject: Postmaster Copy: Undelivered Mail', raw)
            self.assertIn('Return-Path: <double-bounce@mail.example.test>',
                          raw)
            self.assertIn('Action: failed', raw)
            self.assertIn('a bounce nobody wants', raw)
            self.assertIn('bounced text', raw)
            self.assertIn('X-Satchel-Queue-ID: %s' % m.group(1), raw)
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_double_bounce_undeliverable_is_logged(self):
        """The double bounce fails too (postmaster@hostname is routed to
        the peer, which refuses everything): it is discarded, not bounced
        again, and the log says so."""
        with Peer('127.0.0.2', self.port, 'mx.partner.test',
                  mode='reject') as peer, \
                self.daemon({ALICE: ALICE_PW}, routing='remote') as d:
            d.start()
            send_null_sender(d, 'rose@partner.test')
            d.wait_log(r'undeliverable bounce: double bounce to <%s>'
                       % re.escape(POSTMASTER), timeout=20)
            d.wait_log(r'double bounce to <%s> undeliverable, discarded'
                       % re.escape(POSTMASTER), timeout=20)
            time.sleep(1)
            self.assertEqual(len(re.findall(r'double bounce to',
                                            d.log_text())), 2)
            self.assertEqual(peer.handler.rcpt_attempts.get(POSTMASTER), 1)
            wait_for(lambda: 'partner.test' not in
                     d.ctl('queue', 'list').stdout, 10, 'an empty queue')


if __name__ == '__main__':
    unittest.main(verbosity=2)
