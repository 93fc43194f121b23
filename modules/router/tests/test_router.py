#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""router module: RCPT decisions and routing with the real satcheld.

postmaster accepted for every local domain; unknown users refused with the
exact 550 5.1.1 text; aliases (local and several targets, per-domain, re-read
when the file changes); the postmaster: key; auto routing decided from a real
DNS server on loopback (dnsmasq) both ways, NXDOMAIN bounced; the >100
Received: loop bounce.
"""

import email
import os
import smtplib
import time
import unittest

from satchel_harness import Daemon, default_plugins, smtp, skip, which

try:
    from dnsserver import DnsServer
except ImportError:
    DnsServer = None

ALICE = 'alice@example.test'
BOB = 'bob@example.test'
USERS = {ALICE: 'alice-secret-pw', BOB: 'bob-secret-pw'}
DOMAINS = {'example.test': {'routing': 'local'},
           'example.org': {'routing': 'local'}}


def message(subject, body=b'hello\r\n', extra=b''):
    return (b'From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n' %
            (BOB.encode(), ALICE.encode(), subject.encode()) + extra +
            b'\r\n' + body)


def send(d, sender, rcpts, data):
    with smtp(d) as s:
        s.ehlo('client.test')
        return s.sendmail(sender, rcpts, data)


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def router_plugins(aliases=None, postmaster=None, mailboxes=None,
                   relay_networks=None):
    def plugins(d):
        p = default_plugins(d, with_auth=True)
        if aliases is not None:
            p['40-router.yaml']['aliases'] = os.path.join(d.tmp, 'aliases')
        if postmaster is not None:
            p['40-router.yaml']['postmaster'] = postmaster
        if mailboxes is not None:
            p['60-maildir.yaml']['mailboxes'] = mailboxes
        if relay_networks is not None:
            p['50-smtp.yaml']['relay_networks'] = relay_networks
        return p
    return plugins


def write_aliases(d, text):
    path = os.path.join(d.tmp, 'aliases')
    tmp = path + '.new'
    with open(tmp, 'w') as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def rcpt_code(d, rcpt, sender=BOB):
    with smtp(d) as s:
        s.ehlo('client.test')
        s.mail(sender)
        return s.rcpt(rcpt)


class Rcpt(unittest.TestCase):

    def test_postmaster_and_unknown(self):
        """postmaster@ of every local domain is accepted (any case) and
        delivered to the postmaster Maildir; unknown users get the exact
        550 5.1.1 text; users of the auth backend are accepted."""
        with Daemon(users=USERS, main={'domains': DOMAINS},
                    plugins=router_plugins()) as d:
            d.start()
            with smtp(d) as s:
                s.ehlo('client.test')
                self.assertEqual(s.mail('someone@elsewhere.test')[0], 250)
                for dom in ('example.test', 'example.org'):
                    self.assertEqual(s.rcpt('postmaster@' + dom)[0], 250,
                                     dom)
                self.assertEqual(s.rcpt('PostMaster@example.test')[0], 250)
                self.assertEqual(s.rcpt(ALICE)[0], 250)
                for who in ('nobody@example.test', 'alice@example.org'):
                    self.assertEqual(s.rcpt(who), (
                        550, b'5.1.1 <%s>: no such user here' %
                        who.encode()))
            self.assertEqual(send(d, 'x@elsewhere.test',
                                  ['postmaster@example.org'],
                                  message('pm')), {})
            files = d.wait_maildir('postmaster@example.org', 1)
            self.assertIn(b'Delivered-To: postmaster@example.org\r\n',
                          read(files[0]))


class Aliases(unittest.TestCase):

    def test_aliases(self):
        """Local and several targets; domain-less aliases apply to every
        local domain, domain ones only to theirs; the file is re-read when
        it changes, and a broken new version keeps the old aliases."""
        with Daemon(users=USERS, main={'domains': DOMAINS},
                    plugins=router_plugins(aliases=True)) as d:
            write_aliases(d, '# test aliases\n'
                             'info: alice, bob@example.test\n'
                             'sales@example.org: alice@example.test\n'
                             'Abuse: postmaster  # a comment\n')
            d.start()
            self.assertEqual(rcpt_code(d, 'info@example.org')[0], 250)
            self.assertEqual(rcpt_code(d, 'ABUSE@example.test')[0], 250)
            self.assertEqual(rcpt_code(d, 'sales@example.org')[0], 250)
            self.assertEqual(rcpt_code(d, 'sales@example.test'), (
                550, b'5.1.1 <sales@example.test>: no such user here'))

            # several targets: alice of the alias's domain and bob
            self.assertEqual(send(d, 'x@elsewhere.test', ['info@example.test'],
                                  message('info')), {})
            a = d.wait_maildir(ALICE, 1)
            b = d.wait_maildir(BOB, 1)
            self.assertIn(b'Delivered-To: alice@example.test\r\n', read(a[0]))
            self.assertIn(b'Delivered-To: bob@example.test\r\n', read(b[0]))
            self.assertFalse(os.path.exists(d.maildir('info@example.test')))
            # a domain-specific alias
            self.assertEqual(send(d, 'x@elsewhere.test', ['sales@example.org'],
                                  message('sales')), {})
            a = d.wait_maildir(ALICE, 2)
            self.assertTrue(any(b'Subject: sales' in read(f) for f in a))

            # re-read on change (polled every 2 s)
            mark = d.log_mark()
            write_aliases(d, 'info: alice\nnewbie: bob\n')
            d.wait_log(r'aliases .* reloaded: 2 entries', timeout=10,
                       since=mark)
            self.assertEqual(rcpt_code(d, 'newbie@example.test')[0], 250)
            self.assertEqual(rcpt_code(d, 'abuse@example.test')[0], 550)
            self.assertEqual(rcpt_code(d, 'sales@example.org')[0], 550)

            # a broken version is refused, the old aliases stay
            mark = d.log_mark()
            write_aliases(d, 'info alice\n')
            d.wait_log(r'aliases:1: missing .:. after the alias; keeping '
                       r'the previous aliases', timeout=10, since=mark)
            self.assertEqual(rcpt_code(d, 'newbie@example.test')[0], 250)

    def test_broken_aliases_at_start(self):
        with Daemon(users=USERS, plugins=router_plugins(aliases=True)) as d:
            write_aliases(d, 'ok: alice\nbad: |/bin/sh\n')
            with self.assertRaises(AssertionError) as cm:
                d.start()
            self.assertRegex(str(cm.exception),
                             r'aliases:2: pipes and files are not supported')

    def test_postmaster_key(self):
        """postmaster: sends postmaster@ mail without a mailbox there."""
        with Daemon(users=USERS, main={'domains': DOMAINS},
                    plugins=router_plugins(postmaster=[ALICE])) as d:
            d.start()
            self.assertEqual(send(d, 'x@elsewhere.test',
                                  ['postmaster@example.org'],
                                  message('to-pm')), {})
            files = d.wait_maildir(ALICE, 1)
            raw = read(files[0])
            self.assertIn(b'Subject: to-pm', raw)
            self.assertIn(b'Delivered-To: alice@example.test\r\n', raw)
            self.assertFalse(os.path.exists(
                d.maildir('postmaster@example.org')))


def wait_dsn(d, addr, pattern, timeout=20):
    """A delivery status notification in addr's Maildir whose text matches
    pattern; returns the parsed message."""
    deadline = time.monotonic() + timeout
    while True:
        for f in d.maildir_files(addr):
            raw = read(f)
            if pattern.encode() in raw:
                return email.message_from_bytes(raw)
        if time.monotonic() >= deadline:
            raise AssertionError('no DSN with %r for %s; log:\n%s'
                                 % (pattern, addr, d.log_text()[-6000:]))
        time.sleep(0.1)


class Loop(unittest.TestCase):

    def test_received_loop(self):
        """More than 100 Received: headers: the route fails with 5.4.6 and
        the sender gets a bounce; 99 (+1 from our listener) are still
        delivered; 101 from the client are refused at DATA or bounced."""
        def received(n):
            return b''.join(b'Received: from hop%d.test by hop%d.test; '
                            b'Mon, 1 Jan 2024 00:00:00 +0000\r\n' % (i, i)
                            for i in range(n))
        with Daemon(users=USERS, plugins=router_plugins()) as d:
            d.start()
            self.assertEqual(send(d, BOB, [ALICE],
                                  received(99) + message('ok99')), {})
            d.wait_maildir(ALICE, 1)
            # 100 from the client plus the listener's own make 101 in the
            # queue: the router's loop check bounces it
            self.assertEqual(send(d, BOB, [ALICE],
                                  received(100) + message('loop100')), {})
            dsn = wait_dsn(d, BOB, 'loops back to myself')
            text = dsn.as_string()
            self.assertIn('5.4.6', text)
            self.assertIn('mail for example.test loops back to myself', text)
            try:
                send(d, BOB, [ALICE], received(101) + message('loop101'))
            except smtplib.SMTPDataError as e:
                self.assertEqual(e.smtp_code // 100, 5)
                self.assertIn(b'5.4.6', e.smtp_error)
            else:
                d.wait_log(r'to=<alice@example\.test> failed: 554 5\.4\.6 '
                           r'mail for example\.test loops back to myself.*'
                           r'\n(?:.*\n)*.*to=<alice@example\.test> failed: '
                           r'554 5\.4\.6')
            time.sleep(1)
            files = d.maildir_files(ALICE)
            self.assertEqual(len(files), 1)
            self.assertIn(b'Subject: ok99', read(files[0]))


class Peer:
    """A real SMTP server (aiosmtpd) standing in for a remote MX host."""

    def __init__(self, host):
        from aiosmtpd.controller import Controller
        from satchel_harness import free_port
        self.received = []
        self.port = free_port(host)
        peer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                peer.received.append(envelope)
                return '250 2.0.0 Ok: got it'
        self.ctl = Controller(Handler(), hostname=host, port=self.port)
        self.ctl.start()

    def wait(self, count, timeout=20):
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() >= deadline:
                raise AssertionError('the peer got %d message(s), wanted '
                                     '%d' % (len(self.received), count))
            time.sleep(0.05)
        return self.received

    def stop(self):
        self.ctl.stop()


class Auto(unittest.TestCase):

    def setUp(self):
        if DnsServer is None or not which('dnsmasq') and \
                not os.path.exists('/usr/sbin/dnsmasq'):
            skip('dnsmasq (dnsmasq-base) or tests/harness/dnsserver.py '
                 'missing')

    def test_auto_routing(self):
        """auto domains: local when the best MX is us (one of our addresses
        or our hostname) or, without MX, the domain's own A is ours;
        remote otherwise; NXDOMAIN bounces with 5.1.2."""
        records = {
            'here.test': {'MX': [(10, 'mx.here.test'),
                                 (20, 'backup.elsewhere.test')]},
            'mx.here.test': {'A': ['127.0.0.1']},
            'byname.test': {'MX': [(5, 'mail.example.test')]},
            'nomx.test': {'A': ['127.0.0.1']},
            'there.test': {'MX': [(10, 'mx.there.test'),
                                  (20, 'mx.here.test')]},
            'mx.there.test': {'A': ['127.0.0.2']},
            'backup.elsewhere.test': {'A': ['127.0.0.3']},
        }
        domains = dict(DOMAINS)
        for dom in ('here.test', 'byname.test', 'nomx.test', 'there.test',
                    'gone.test', 'flaky.example.net'):
            domains[dom] = {'routing': 'auto'}
        mailboxes = ['u@here.test', 'u@byname.test', 'u@nomx.test']
        peer = Peer('127.0.0.2')
        self.addCleanup(peer.stop)
        with DnsServer(records) as dns, \
                Daemon(users=USERS, main={'domains': domains,
                                          'dns': {'servers': [dns.server]}},
                       plugins=router_plugins(
                           mailboxes=mailboxes,
                           relay_networks=['127.0.0.0/8']),
                       extra_plugins={'70-relay.yaml': {
                           'module': 'relay', 'port': peer.port,
                           'tls': 'opportunistic'}}) as d:
            d.start()
            # RCPT: an auto domain accepts its known mailboxes
            self.assertEqual(rcpt_code(d, 'u@here.test')[0], 250)
            for dom in ('here.test', 'byname.test', 'nomx.test'):
                self.assertEqual(send(d, BOB, ['u@' + dom],
                                      message('auto ' + dom)), {})
                files = d.wait_maildir('u@' + dom, 1)
                self.assertIn(b'Subject: auto ' + dom.encode(),
                              read(files[0]))
            d.wait_log(r'router: u@here\.test: mx\.here\.test is '
                       r'127\.0\.0\.1, ours: local delivery')
            d.wait_log(r'router: u@byname\.test: MX mail\.example\.test '
                       r'is our hostname')

            # the best MX of there.test is another host: remote, even
            # though a worse MX is us
            mark = d.log_mark()
            self.assertEqual(send(d, BOB, ['v@there.test'],
                                  message('auto remote')), {})
            d.wait_log(r'router: v@there\.test: mx\.there\.test is not this '
                       r'server: remote delivery', since=mark)
            env = peer.wait(1)[0]
            self.assertEqual(env.rcpt_tos, ['v@there.test'])
            self.assertIn(b'Subject: auto remote', env.content)
            self.assertFalse(os.path.exists(d.maildir('v@there.test')))

            # a DNS failure (our dnsmasq refuses names outside its zones)
            # defers the recipient with 451 4.4.3
            mark = d.log_mark()
            self.assertEqual(send(d, BOB, ['w@flaky.example.net'],
                                  message('auto tempfail')), {})
            d.wait_log(r'to=<w@flaky\.example\.net> deferred .*: 451 '
                       r'4\.4\.3 MX lookup for flaky\.example\.net failed',
                       since=mark)

            # gone.test does not exist: 550 5.1.2, bounced to the sender
            self.assertEqual(send(d, BOB, ['w@gone.test'],
                                  message('auto gone')), {})
            dsn = wait_dsn(d, BOB, '5.1.2')
            self.assertIn('domain gone.test does not exist', dsn.as_string())


if __name__ == '__main__':
    unittest.main(verbosity=2)
