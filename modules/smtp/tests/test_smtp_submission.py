#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# smtp module, submission listeners (RFC 6409; issue 13 item 7), against the
# real satcheld: MAIL before STARTTLS on a listener whose AUTH needs TLS is
# told to start TLS first; a message submitted without Date: or Message-ID:
# gets them (a message that has them keeps its own); mail on the mx
# listener gets neither.
import base64
import email.utils
import os
import re
import unittest

import satchel_harness as h

ALICE = 'alice@example.test'
ALICE_PW = 'alice-password-1'
USERS = {ALICE: ALICE_PW}


def plain(user, pw):
    return base64.b64encode(('\0%s\0%s' % (user, pw)).encode()).decode()


def header_block(data):
    return data.split(b'\r\n\r\n', 1)[0] + b'\r\n'


def fields(headers, name):
    """The values of every field called name (unfolded, stripped)."""
    rx = re.compile(rb'(?im)^' + re.escape(name.encode()) +
                    rb':[ \t]*((?:.*)(?:\r\n[ \t].*)*)\r\n')
    return [m.group(1).replace(b'\r\n', b'').strip()
            for m in rx.finditer(headers)]


class SmtpSubmission(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = cls.d = h.Daemon(users=USERS)
        smtp = h.default_plugins(d)['50-smtp.yaml']
        smtp['listen'].append({'address': '127.0.0.1:%d' % d.port('subplain'),
                               'mode': 'submission', 'tls': 'none'})
        d.extra_plugins['50-smtp.yaml'] = smtp
        d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def raw(self, name):
        c = h.raw(self.d, name)
        self.addCleanup(c.close)
        c.expect(220)
        return c

    def deliver(self, name, message, auth=True):
        """Sends message over listener name (STARTTLS or implicit TLS,
        AUTH when auth); the stored header block."""
        before = len(self.d.maildir_files(ALICE))
        c = h.smtp(self.d, name)
        self.addCleanup(c.close)
        c.ehlo('client.example')
        if name != 'smtps':
            c.starttls(context=h.tls_context())
            c.ehlo('client.example')
        if auth:
            c.login(ALICE, ALICE_PW)
        c.sendmail(ALICE, [ALICE], message)
        c.quit()
        marker = message.split(b'\r\n\r\n', 1)[1]
        for p in self.d.wait_maildir(ALICE, before + 1):
            with open(p, 'rb') as f:
                data = f.read()
            if data.endswith(marker):
                return header_block(data)
        self.fail('message %r not delivered' % marker)

    def test_530_starttls_first(self):
        c = self.raw('submission')
        c.expect(250, 'EHLO client.example')
        self.assertEqual(c.expect(530, 'MAIL FROM:<%s>' % ALICE),
                         '5.7.0 Must issue a STARTTLS command first')
        c.expect(220, 'STARTTLS')
        c.starttls()
        c.expect(250, 'EHLO client.example')
        # TLS is up: now it is AUTH that is missing
        self.assertEqual(c.expect(530, 'MAIL FROM:<%s>' % ALICE),
                         '5.7.0 Authentication required')
        c.expect(235, 'AUTH PLAIN ' + plain(ALICE, ALICE_PW))
        c.expect(250, 'MAIL FROM:<%s>' % ALICE)
        # a listener without TLS cannot offer STARTTLS: AUTH is missing
        c = self.raw('subplain')
        c.expect(250, 'EHLO client.example')
        self.assertEqual(c.expect(530, 'MAIL FROM:<%s>' % ALICE),
                         '5.7.0 Authentication required')

    def test_date_and_message_id_added(self):
        for name in ('submission', 'smtps'):
            with self.subTest(listener=name):
                msg = (b'From: Alice <alice@example.test>\r\n'
                       b'To: alice@example.test\r\n'
                       b'Subject: no date\r\n\r\nbody via %s\r\n'
                       % name.encode())
                hdr = self.deliver(name, msg)
                dates = fields(hdr, 'Date')
                ids = fields(hdr, 'Message-ID')
                self.assertEqual(len(dates), 1, hdr)
                self.assertEqual(len(ids), 1, hdr)
                # an RFC 5322 date, close to now
                self.assertIsNotNone(
                    email.utils.parsedate_to_datetime(dates[0].decode()))
                self.assertRegex(ids[0], rb'^<[^<>@\s]+@mail\.example\.test>$')
                # after the client's fields (Postfix does the same)
                self.assertLess(hdr.index(b'Subject:'), hdr.index(b'Date:'))
        # unique per message
        a = fields(self.deliver('smtps', b'Subject: a\r\n\r\nfirst\r\n'),
                   'Message-ID')
        b = fields(self.deliver('smtps', b'Subject: b\r\n\r\nsecond\r\n'),
                   'Message-ID')
        self.assertNotEqual(a, b)

    def test_own_date_and_message_id_kept(self):
        msg = (b'Date: Tue, 1 Dec 2026 10:00:00 +0100\r\n'
               b'message-id: <mine@client.example>\r\n'
               b'Subject: complete\r\n\r\nhas both\r\n')
        hdr = self.deliver('smtps', msg)
        self.assertEqual(fields(hdr, 'Date'),
                         [b'Tue, 1 Dec 2026 10:00:00 +0100'])
        self.assertEqual(fields(hdr, 'Message-ID'),
                         [b'<mine@client.example>'])

    def test_mx_adds_nothing(self):
        hdr = self.deliver('smtp', b'Subject: from afar\r\n\r\nvia mx\r\n',
                           auth=False)
        self.assertEqual(fields(hdr, 'Date'), [])
        self.assertEqual(fields(hdr, 'Message-ID'), [])



class SubmitHook(unittest.TestCase):
    """Only the submit hook (ABI 1.3) lets a client that did not
    authenticate send through a submission listener: a module that says
    OK to the relay hook (per recipient, on mx) never opens a whole
    submission session."""

    def session(self, hook):
        d = h.Daemon(users=USERS)
        self.addCleanup(d.close)
        smtp = h.default_plugins(d)['50-smtp.yaml']
        smtp['listen'].append({'address': '127.0.0.1:%d' % d.port('subplain'),
                               'mode': 'submission', 'tls': 'none'})
        d.extra_plugins['50-smtp.yaml'] = smtp
        d.extra_plugins['45-fx_hook.yaml'] = {
            'module': 'fx_hook', 'hooks': [hook], 'result': 'ok'}
        os.symlink(os.path.join(h.builddir(), 'tests', 'modules', '.libs',
                                'fx_hook.so'),
                   os.path.join(d.module_dir, 'fx_hook.so'))
        d.start()
        c = h.raw(d, 'subplain')
        self.addCleanup(c.close)
        c.expect(220)
        c.expect(250, 'EHLO client.example')
        return c

    def test_relay_ok_does_not_open_submission(self):
        c = self.session('relay')
        code, text = c.cmd('MAIL FROM:<x@example.test>')
        self.assertEqual((code, text),
                         (530, '5.7.0 Authentication required'))

    def test_submit_ok_opens_the_session(self):
        c = self.session('submit')
        c.expect(250, 'MAIL FROM:<x@example.test>')
        text = c.expect(250, 'RCPT TO:<y@example.invalid>')
        self.assertEqual(text, '2.1.5 Ok, relay allowed by 45-fx_hook')


if __name__ == '__main__':
    unittest.main(verbosity=2)
