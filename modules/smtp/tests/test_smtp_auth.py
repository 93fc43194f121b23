#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# smtp module: STARTTLS, implicit TLS, SASL (PLAIN/LOGIN) and the relay
# policy against the real satcheld, with smtplib, swaks, curl and raw
# sockets: 530, 535, 538, the relay 550 text, open-relay tricks,
# enforce_sender, relay_networks.
import base64
import os
import subprocess
import time
import unittest

import satchel_harness as h

ALICE, ALICE_PW = 'alice@example.test', 'alice-password-1'
USERS = {ALICE: ALICE_PW, 'bob@example.test': 'bob-password-22'}
RELAY_550 = ('5.7.1 Please turn on SMTP Authentication in your mail client. '
             '%s is not permitted to relay through this server without '
             'authentication.')


def b64(s):
    return base64.b64encode(s.encode()).decode()


def plain(user, pw, authz=''):
    return b64('%s\0%s\0%s' % (authz, user, pw))


class SmtpAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = h.Daemon(users=USERS, main={'domains': {
            'example.test': {'routing': 'local'},
            'partner.test': {'routing': 'remote'}}})
        d.extra_plugins['51-smtp-trusted.yaml'] = {
            'module': 'smtp',
            'listen': [{'address': '127.0.0.1:%d' % d.port('plain'),
                        'mode': 'mx', 'tls': 'none'}],
            'enforce_sender': True,
            'relay_networks': ['127.0.0.2/32', '::1'],
            'auth_failure_delay': '1s',
        }
        # enforce_sender lets a user send as an alias that reaches them
        aliases = os.path.join(d.tmp, 'aliases')
        with open(aliases, 'w') as f:
            f.write('sales: alice, carol\nsupport: carol\n')
        d.extra_plugins['40-router.yaml'] = {'module': 'router',
                                             'aliases': aliases}
        d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def raw(self, name='smtp', **kw):
        c = h.raw(self.d, name, **kw)
        self.addCleanup(c.close)
        c.expect(220)
        return c

    def tls_raw(self, name='submission'):
        c = self.raw(name)
        c.expect(250, 'EHLO client.example')
        c.expect(220, 'STARTTLS')
        c.starttls()
        return c

    # ---- TLS ----
    def test_starttls_then_mail(self):
        before = len(self.d.maildir_files(ALICE))
        c = h.smtp(self.d)
        self.addCleanup(c.close)
        c.ehlo('client.example')
        c.starttls(context=h.tls_context())
        c.ehlo('client.example')
        c.sendmail('x@example.org', [ALICE], b'Subject: tls\r\n\r\nvia TLS\r\n')
        c.quit()
        files = self.d.wait_maildir(ALICE, before + 1)
        datas = []
        for p in files:
            with open(p, 'rb') as f:
                datas.append(f.read())
        data = [x for x in datas if b'via TLS' in x][0]
        self.assertRegex(data, rb'with ESMTPS \(TLS[^)]*\)\r\n')

    def test_starttls_discards_pipelined_plaintext(self):
        c = self.raw()
        c.expect(250, 'EHLO client.example')
        # CVE-2011-0411: commands after STARTTLS in the same packet must
        # not be executed inside the TLS session
        c.send('STARTTLS\r\nRSET\r\n')
        c.expect(220)
        c.starttls()
        # the first reply inside TLS answers this EHLO, not the RSET
        text = c.expect(250, 'EHLO client.example')
        self.assertIn('mail.example.test', text)
        self.assertIn('AUTH PLAIN LOGIN', text)
        c.expect(221, 'QUIT')

    def test_starttls_resets_session(self):
        c = self.raw()
        c.expect(250, 'EHLO client.example')
        c.expect(220, 'STARTTLS')
        c.starttls()
        c.expect(503, 'MAIL FROM:<a@example.org>')
        c.expect(503, 'STARTTLS')

    def test_implicit_tls_auth_and_relay(self):
        c = h.smtp(self.d, 'smtps')
        self.addCleanup(c.close)
        c.ehlo('client.example')
        self.assertIn('auth', c.esmtp_features)
        self.assertNotIn('starttls', c.esmtp_features)
        self.assertEqual(c.login(ALICE, ALICE_PW)[0], 235)
        c.mail(ALICE)
        # authenticated: any domain may be reached
        self.assertEqual(c.rcpt('bob@partner.test')[0], 250)
        c.rset()
        c.quit()

    # ---- AUTH ----
    def test_538_before_tls(self):
        c = self.raw('submission')
        text = c.expect(250, 'EHLO client.example')
        self.assertNotIn('AUTH', text)
        self.assertEqual(c.expect(538, 'AUTH PLAIN ' + plain(ALICE, ALICE_PW)),
                         '5.7.11 Encryption required for requested '
                         'authentication mechanism')
        c.expect(538, 'AUTH LOGIN')

    def test_530_submission_needs_auth(self):
        c = self.tls_raw()
        c.expect(250, 'EHLO client.example')
        self.assertEqual(c.expect(530, 'MAIL FROM:<%s>' % ALICE),
                         '5.7.0 Authentication required')
        c.expect(235, 'AUTH PLAIN ' + plain(ALICE, ALICE_PW))
        c.expect(250, 'MAIL FROM:<%s> AUTH=%s' % (ALICE, ALICE))
        c.expect(250, 'RCPT TO:<bob@partner.test>')

    def test_auth_plain_and_login_variants(self):
        c = self.tls_raw()
        c.expect(250, 'EHLO client.example')
        # PLAIN without initial response
        c.expect(334, 'AUTH PLAIN')
        self.assertEqual(c.expect(235, plain(ALICE, ALICE_PW)),
                         '2.7.0 Authentication successful')
        c.expect(503, 'AUTH PLAIN ' + plain(ALICE, ALICE_PW))
        # LOGIN with and without initial response
        c = self.tls_raw()
        c.expect(250, 'EHLO client.example')
        self.assertEqual(c.expect(334, 'AUTH LOGIN'), 'VXNlcm5hbWU6')
        self.assertEqual(c.expect(334, b64(ALICE)), 'UGFzc3dvcmQ6')
        c.expect(235, b64(ALICE_PW))
        c = self.tls_raw()
        c.expect(250, 'EHLO client.example')
        self.assertEqual(c.expect(334, 'AUTH LOGIN ' + b64(ALICE)),
                         'UGFzc3dvcmQ6')
        c.expect(235, b64(ALICE_PW))
        # cancel, junk, unknown mechanism
        c = self.tls_raw()
        c.expect(250, 'EHLO client.example')
        c.expect(334, 'AUTH LOGIN')
        c.expect(501, '*')
        c.expect(501, 'AUTH PLAIN *')
        c.expect(334, 'AUTH PLAIN')
        c.expect(501, '!!!not base64!!!')
        c.expect(504, 'AUTH CRAM-MD5')
        c.expect(235, 'AUTH PLAIN ' + plain(ALICE, ALICE_PW))

    def test_535_with_growing_delay(self):
        c = self.tls_raw()
        c.expect(250, 'EHLO client.example')
        t0 = time.monotonic()
        self.assertEqual(c.expect(535, 'AUTH PLAIN ' +
                                  plain(ALICE, 'wrong-password')),
                         '5.7.8 Authentication credentials invalid')
        t1 = time.monotonic()
        c.expect(535, 'AUTH PLAIN ' + plain('nobody@example.test', 'x' * 9))
        t2 = time.monotonic()
        self.assertGreaterEqual(t1 - t0, 0.9)
        self.assertGreaterEqual(t2 - t1, 1.9)
        # an authzid naming someone else is refused too
        c.expect(535, 'AUTH PLAIN ' + plain(ALICE, ALICE_PW,
                                            'bob@example.test'))
        self.d.wait_log(r'authentication of .* failed')

    def test_smtplib_login_over_starttls(self):
        c = h.smtp(self.d, 'submission')
        self.addCleanup(c.close)
        c.starttls(context=h.tls_context())
        c.ehlo('client.example')
        self.assertEqual(c.login(ALICE, ALICE_PW)[0], 235)
        c.sendmail(ALICE, ['bob@example.test'],
                   b'Subject: submitted\r\n\r\nsubmitted\r\n')
        c.quit()
        self.d.wait_maildir('bob@example.test')

    def test_swaks_auth(self):
        if not h.which('swaks'):
            self.skipTest('swaks not installed')
        for mech in ('PLAIN', 'LOGIN'):
            r = subprocess.run(
                ['swaks', '--to', 'bob@example.test', '--from', ALICE,
                 '--server', '127.0.0.1:%d' % self.d.port('submission'),
                 '--tls', '--auth', mech, '--auth-user', ALICE,
                 '--auth-password', ALICE_PW, '--helo', 'swaks.test'],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn('235 2.7.0', r.stdout)
            self.assertRegex(r.stdout, r'250 2\.0\.0 Ok: queued as')
        r = subprocess.run(
            ['swaks', '--to', 'bob@example.test', '--from', ALICE,
             '--server', '127.0.0.1:%d' % self.d.port('submission'),
             '--tls', '--auth', 'PLAIN', '--auth-user', ALICE,
             '--auth-password', 'not-the-password'],
            capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('535 5.7.8 Authentication credentials invalid',
                      r.stdout)

    def test_curl_ssl_reqd_user(self):
        if not h.which('curl'):
            self.skipTest('curl not installed')
        before = len(self.d.maildir_files('bob@example.test'))
        msg = self.d.tmp + '/curl-auth.txt'
        with open(msg, 'wb') as f:
            f.write(b'Subject: curl auth\r\n\r\ncurl with auth\r\n')
        for url in ('smtp://127.0.0.1:%d' % self.d.port('submission'),
                    'smtps://127.0.0.1:%d' % self.d.port('smtps')):
            r = subprocess.run(
                ['curl', '-sS', '--ssl-reqd', '-k', url, '--user',
                 '%s:%s' % (ALICE, ALICE_PW), '--mail-from', ALICE,
                 '--mail-rcpt', 'bob@example.test', '--upload-file', msg],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, url + r.stdout + r.stderr)
        self.d.wait_maildir('bob@example.test', before + 2)

    def test_user_added_while_running(self):
        r = self.d.ctl('user', 'add', 'carol@example.test',
                       '--password-stdin', input='carol-password-3\n')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        deadline = time.monotonic() + 10
        while True:
            c = h.smtp(self.d, 'smtps')
            try:
                c.ehlo('client.example')
                try:
                    self.assertEqual(c.login('carol@example.test',
                                             'carol-password-3')[0], 235)
                    break
                except smtplib_auth_error():
                    if time.monotonic() > deadline:
                        raise
            finally:
                c.close()
            time.sleep(0.5)

    # ---- relay policy ----
    def test_relay_refused_without_auth(self):
        c = h.smtp(self.d)
        self.addCleanup(c.close)
        c.ehlo('client.example')
        c.mail('someone@example.org')
        code, msg = c.rcpt('bob@partner.test')
        self.assertEqual(code, 550)
        self.assertEqual(msg.decode(), RELAY_550 % '127.0.0.1')
        code, msg = c.rcpt('someone@unlisted.example')
        self.assertEqual((code, msg.decode()), (550, RELAY_550 % '127.0.0.1'))
        # local mail is still fine
        self.assertEqual(c.rcpt(ALICE)[0], 250)

    def test_open_relay_tricks(self):
        tricks = ['bob%partner.test@example.test',
                  '"bob@partner.test"@example.test',
                  '@example.test:bob@partner.test',
                  '@example.test,@mail.example.test:bob@partner.test',
                  'partner.test!bob@example.test',
                  'bob@partner.test@example.test']
        for authed in (False, True):
            c = self.tls_raw('smtp')
            c.expect(250, 'EHLO client.example')
            if authed:
                c.expect(235, 'AUTH PLAIN ' + plain(ALICE, ALICE_PW))
            c.expect(250, 'MAIL FROM:<%s>' % ALICE)
            for t in tricks:
                code, text = c.cmd('RCPT TO:<%s>' % t)
                self.assertIn(code, (550, 501), (t, code, text))
                if code == 550:
                    self.assertTrue(text.startswith('5.7.1'), (t, text))
            c.expect(250, 'RCPT TO:<%s>' % ALICE)

    def test_relay_networks(self):
        c = self.raw('plain', source='127.0.0.2')
        c.expect(250, 'EHLO trusted.example')
        c.expect(250, 'MAIL FROM:<app@example.org>')
        c.expect(250, 'RCPT TO:<bob@partner.test>')
        # another address of the same instance is not trusted
        c = self.raw('plain', source='127.0.0.3')
        c.expect(250, 'EHLO untrusted.example')
        c.expect(250, 'MAIL FROM:<app@example.org>')
        self.assertEqual(c.expect(550, 'RCPT TO:<bob@partner.test>'),
                         RELAY_550 % '127.0.0.3')

    def test_tls_none_listener_allows_plain_auth(self):
        c = self.raw('plain')
        text = c.expect(250, 'EHLO client.example')
        self.assertIn('AUTH PLAIN LOGIN', text)
        self.assertNotIn('STARTTLS', text)
        c.expect(235, 'AUTH PLAIN ' + plain(ALICE, ALICE_PW))

    def test_enforce_sender(self):
        c = self.raw('plain', source='127.0.0.3')
        c.expect(250, 'EHLO client.example')
        c.expect(235, 'AUTH PLAIN ' + plain(ALICE, ALICE_PW))
        text = c.expect(553, 'MAIL FROM:<bob@example.test>')
        self.assertTrue(text.startswith('5.7.1'), text)
        c.expect(250, 'MAIL FROM:<%s>' % ALICE.upper())
        c.expect(250, 'RCPT TO:<bob@partner.test>')
        c.expect(250, 'RSET')
        # an alias that delivers to alice: hers to send as
        c.expect(250, 'MAIL FROM:<sales@example.test>')
        c.expect(250, 'RSET')
        # an alias of somebody else's is not
        text = c.expect(553, 'MAIL FROM:<support@example.test>')
        self.assertIn('not owned by user %s' % ALICE, text)
        # the instance without enforce_sender lets alice send as anyone
        c = self.tls_raw()
        c.expect(250, 'EHLO client.example')
        c.expect(235, 'AUTH PLAIN ' + plain(ALICE, ALICE_PW))
        c.expect(250, 'MAIL FROM:<bob@example.test>')


def smtplib_auth_error():
    import smtplib
    return smtplib.SMTPAuthenticationError


if __name__ == '__main__':
    unittest.main(verbosity=2)
