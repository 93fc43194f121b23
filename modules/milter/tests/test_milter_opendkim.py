#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""OpenDKIM (Debian's opendkim, libmilter) through the milter module:
mail submitted on the submission port with AUTH is signed, and the
signature verifies (dkimpy, against the key published in the test's DNS
server) on the copy delivered to the Maildir; mail arriving on the MX
port with a valid or a broken signature gets OpenDKIM's
Authentication-Results: dkim=pass / dkim=fail (OpenDKIM reads the same
TXT record from its TestDNSData, see OpenDkim). The key is made with
opendkim-genkey (opendkim-tools)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from satchel_harness import skip, smtp, tls_context
from dnsserver import DnsServer

# the relay tests' SMTP peer (aiosmtpd) plays the next hop
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', '..', 'relay', 'tests'))
from relaycommon import Peer, free_port_on  # noqa: E402
from miltercommon import (ALICE, BOB, PASSWORD, Daemon, free_port,
                          milter_plugin, read_mail, stop_process,
                          wait_port)

try:
    import dkim
    import dns.resolver
except ImportError:  # pragma: no cover
    skip('python3-dkim is not installed')

OPENDKIM = shutil.which('opendkim') or '/usr/sbin/opendkim'
GENKEY = shutil.which('opendkim-genkey') or '/usr/sbin/opendkim-genkey'
SELECTOR = 'sel'
DOMAIN = 'example.test'


def genkey(tmp):
    subprocess.run([GENKEY, '-b', '1024', '-d', DOMAIN, '-s', SELECTOR,
                    '-D', tmp], check=True)
    with open(os.path.join(tmp, SELECTOR + '.txt')) as f:
        txt = ''.join(re.findall(r'"([^"]*)"', f.read()))
    with open(os.path.join(tmp, SELECTOR + '.private'), 'rb') as f:
        key = f.read()
    return txt, key


class OpenDkim:
    """opendkim in the foreground on 127.0.0.1:port (see the XXX below
    for where it finds the public key)."""

    def __init__(self, tmp, keyfile, txt, canon='relaxed/simple'):
        self.port = free_port()
        self.address = 'inet:127.0.0.1:%d' % self.port
        # XXX OpenDKIM's libunbound resolver sent no query to the test's
        # DNS server on loopback whatever we tried (Nameservers,
        # ResolverConfiguration with do-not-query-localhost: no and a
        # forward-zone): it reads the published TXT record from
        # TestDNSData instead, the same text the DNS server serves (which
        # dkimpy's checks below do query).
        testdns = os.path.join(tmp, 'testdns')
        with open(testdns, 'w') as f:
            f.write('%s._domainkey.%s %s\n' % (SELECTOR, DOMAIN, txt))
        self.conf = os.path.join(tmp, 'opendkim.conf')
        with open(self.conf, 'w') as f:
            f.write('Syslog no\n'
                    'Background no\n'
                    'Mode sv\n'
                    'Socket inet:%d@127.0.0.1\n'
                    'Domain %s\n'
                    'Selector %s\n'
                    'KeyFile %s\n'
                    'Canonicalization %s\n'
                    # loopback is the test's client: sign only what was
                    # submitted with AUTH ({auth_type}), verify the rest
                    'InternalHosts 192.0.2.1\n'
                    'TestDNSData file:%s\n'
                    'AuthservID mail.example.test\n'
                    # the key lives under /tmp (world-writable)
                    'RequireSafeKeys false\n'
                    % (self.port, DOMAIN, SELECTOR, keyfile, canon,
                       testdns))
        self.log_path = os.path.join(tmp, 'opendkim.log')
        self.log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen([OPENDKIM, '-f', '-x', self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        wait_port(self.port, self.proc)

    def stop(self):
        stop_process(self.proc, 10)
        self.log.close()
        with open(self.log_path, errors='replace') as f:
            out = f.read()
        if out.strip():
            sys.stderr.write('---- opendkim ----\n%s\n' % out)


class OpenDkimTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(OPENDKIM) or not os.path.exists(GENKEY):
            skip('opendkim or opendkim-tools is not installed')
        cls.tmp = tempfile.mkdtemp(prefix='satchel-dkim-')
        cls.txt, cls.key = genkey(cls.tmp)
        cls.dns = DnsServer({'%s._domainkey.%s' % (SELECTOR, DOMAIN):
                             {'TXT': [cls.txt]},
                             'partner.test': {'MX': [(10, 'mx.partner.test')]},
                             'mx.partner.test': {'A': '127.0.0.5'}}).start()
        cls.peer_port = free_port_on(['127.0.0.5'])

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def dnsfunc(self, name, timeout=5):
        """dkimpy's key lookup, asking the test's DNS server."""
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = ['127.0.0.1']
        r.port = self.dns.port
        if isinstance(name, bytes):
            name = name.decode()
        ans = r.resolve(name.rstrip('.'), 'TXT', lifetime=timeout)
        return b''.join(b''.join(rr.strings) for rr in ans)

    def run_daemon(self, canon='relaxed/simple'):
        self.odk = OpenDkim(self.tmp,
                            os.path.join(self.tmp, SELECTOR + '.private'),
                            self.txt, canon)
        self.addCleanup(self.odk.stop)
        plugins = milter_plugin(self.odk.address)
        plugins['70-relay.yaml'] = {'module': 'relay',
                                    'port': self.peer_port,
                                    'retry': ['1h'],
                                    'connect_timeout': '5s'}
        return Daemon(users={ALICE: PASSWORD, BOB: PASSWORD},
                      main={'dns': {'servers': [self.dns.server]}},
                      extra_plugins=plugins)

    def message(self, sender=ALICE, subject='Signed by OpenDKIM'):
        return ('From: Alice <%s>\r\n'
                'To: Bob <%s>\r\n'
                'Subject: %s\r\n'
                'Date: Mon, 07 Dec 2026 15:00:00 +0000\r\n'
                'Message-ID: <dkim-test-1@example.test>\r\n'
                '\r\n'
                'Hello Bob,\r\n'
                '\r\n'
                ' a line with a leading space and trailing  \r\n'
                'the end.\r\n' % (sender, BOB, subject)).encode()

    def submit(self, d, msg, rcpt=BOB):
        with smtp(d, 'submission') as c:
            c.ehlo('client.example')
            c.starttls(context=tls_context())
            c.ehlo('client.example')
            c.login(ALICE, PASSWORD)
            self.assertEqual(c.sendmail(ALICE, [rcpt], msg), {})

    def check_signed(self, canon):
        with self.run_daemon(canon) as d:
            d.start()
            self.submit(d, self.message())
            got = read_mail(d, BOB)[0]
            self.assertIn(b'DKIM-Signature: v=1; a=rsa-sha256; c=%s;'
                          % canon.encode(), got)
            self.assertIn(b'd=example.test; s=sel;', got)
            self.assertTrue(dkim.verify(got, dnsfunc=self.dnsfunc),
                            got.decode(errors='replace'))
            # a changed body no longer verifies: the check can fail
            bad = got.replace(b'the end.', b'the End.')
            self.assertFalse(dkim.verify(bad, dnsfunc=self.dnsfunc))

    def test_sign_submission_relaxed(self):
        self.check_signed('relaxed/simple')

    def test_sign_submission_simple(self):
        self.check_signed('simple/simple')

    def test_signed_at_next_hop(self):
        # the must-show: an authenticated user's mail reaches the next
        # hop (a real SMTP server, found through the test's DNS) signed
        with Peer('127.0.0.5', self.peer_port, 'mx.partner.test') as peer, \
                self.run_daemon() as d:
            d.start()
            self.submit(d, self.message().replace(
                BOB.encode(), b'carol@partner.test'), 'carol@partner.test')
            got = peer.handler.wait(1)[0]
            self.assertEqual(got.rcpt_tos, ['carol@partner.test'])
            self.assertEqual(got.content.count(b'DKIM-Signature:'), 1)
            self.assertTrue(dkim.verify(got.content, dnsfunc=self.dnsfunc),
                            got.content.decode(errors='replace'))

    def test_verify_on_mx(self):
        with self.run_daemon() as d:
            d.start()
            good = self.message(subject='Signed elsewhere')
            sig = dkim.sign(good, SELECTOR.encode(), DOMAIN.encode(),
                            self.key, canonicalize=(b'relaxed', b'simple'),
                            include_headers=[b'from', b'to', b'subject',
                                             b'date', b'message-id'])
            signed = sig + good
            tampered = sig + good.replace(b'the end.', b'the End!')
            for msg in (signed, tampered):
                with smtp(d) as c:
                    c.ehlo('client.example')
                    self.assertEqual(c.sendmail('alice@remote.test',
                                                [BOB], msg), {})
            got = read_mail(d, BOB, 2)
            results = []
            for g in got:
                m = re.search(rb'Authentication-Results: mail\.example\.'
                              rb'test;\s+dkim=(\w+)', g)
                self.assertIsNotNone(m, g.decode(errors='replace'))
                results.append(m.group(1))
            self.assertEqual(sorted(results), [b'fail', b'pass'], got)
            # unauthenticated mail on the MX port is not signed
            for g in got:
                self.assertEqual(g.count(b'DKIM-Signature:'), 1)


if __name__ == '__main__':
    unittest.main()
