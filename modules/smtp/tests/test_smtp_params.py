#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# smtp module: MAIL/RCPT arguments against the real satcheld with raw
# sockets: the null recipient RCPT TO:<> gets a fixed 501 5.1.3 (it once
# formatted an uninitialised pointer: a crash, or heap bytes of other
# sessions such as their AUTH lines in the reply), every refused address
# or parameter is answered with a fixed text and never with bytes of
# another session, control bytes a client sends are not echoed.
import base64
import re
import time
import unittest

import satchel_harness as h

ALICE, ALICE_PW = 'alice@example.test', 'Pw-0f-alice-7Hq2LmX9ZtR4'
NULL_RCPT = (501, '5.1.3 Bad recipient address syntax: the null address '
             '<> cannot receive mail')


def plain(user, pw):
    return base64.b64encode(('\0%s\0%s' % (user, pw)).encode()).decode()


class SmtpParams(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # log level info, the default: at debug the extra logging calls
        # happened to leave a NULL where the bad pointer was read, which
        # hid the fault in the test suite
        cls.d = h.Daemon(users={ALICE: ALICE_PW},
                         main={'log': {'level': 'info'}})
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def raw(self, name='smtp'):
        c = h.raw(self.d, name)
        self.addCleanup(c.close)
        c.expect(220)
        return c

    def assert_alive(self, c):
        self.assertEqual(c.expect(250, 'NOOP'), '2.0.0 Ok')
        self.assertTrue(self.d.running(), self.d.log_text()[-3000:])

    def test_null_recipient_refused_with_fixed_text(self):
        c = self.raw()
        c.expect(250, 'EHLO x')
        c.expect(250, 'MAIL FROM:<>')
        self.assertEqual(c.cmd('RCPT TO:<>'), NULL_RCPT)
        self.assertEqual(c.cmd('RCPT TO: <>'), NULL_RCPT)
        self.assert_alive(c)
        # the transaction goes on
        self.assertEqual(c.expect(250, 'RCPT TO:<%s>' % ALICE), '2.1.5 Ok')

    def test_replies_carry_no_bytes_of_other_sessions(self):
        # an AUTH session and MAIL parameters fill the heap and stack with
        # secrets and client bytes just before each refused command
        auth_line = plain(ALICE, ALICE_PW)
        envid = 'ENVIDMARK4c1e9'
        markers = [auth_line[-12:], ALICE_PW, envid, 'BITMIME', 'HDRS']
        bad = [
            ('RCPT TO:<>', NULL_RCPT),
            ('RCPT TO:<bob>', (501, '5.1.3 Bad recipient address syntax: '
                                    'missing @domain')),
            ('RCPT TO:<bob@>', (501, '5.1.3 Bad recipient address '
                                     'syntax: missing domain after \'@\'')),
            ('RCPT TO:<@relay.example:bob@example.test>',
             (550, '5.7.1 <@relay.example:bob@example.test>: source '
                   'routes are not permitted')),
            ('RCPT TO:<bob@example.test> NOTIFY=SOMETIMES',
             (501, '5.5.4 Bad NOTIFY parameter')),
            ('RCPT TO:<bob@example.test> ORCPT=rfc822',
             (501, '5.5.4 Bad ORCPT parameter')),
            ('RCPT TO:<bob@example.test> XYZ=1',
             (555, '5.5.4 Unsupported option: XYZ=1')),
            ('RCPT TO:bob@example.test',
             (501, '5.5.4 Syntax: RCPT TO:<address>')),
        ]
        for rnd in range(3):
            a = self.raw('submission')
            a.expect(250, 'EHLO a.example')
            a.expect(220, 'STARTTLS')
            a.starttls()
            a.expect(250, 'EHLO a.example')
            b = self.raw()
            b.expect(250, 'EHLO x')
            a.expect(235, 'AUTH PLAIN ' + auth_line)
            b.expect(250, 'MAIL FROM:<> BODY=8BITMIME SIZE=100 RET=HDRS '
                          'ENVID=%s' % envid)
            for line, want in bad:
                got = b.cmd(line)
                self.assertEqual(got, want, (rnd, line))
                for m in markers:
                    self.assertNotIn(m, got[1], (rnd, line))
            self.assert_alive(b)
            a.expect(221, 'QUIT')

    def test_mail_errors_have_fixed_texts(self):
        c = self.raw()
        c.expect(250, 'EHLO x')
        cases = [
            ('MAIL FROM:<bob>', (501, '5.1.7 Bad sender address syntax: '
                                      'missing @domain')),
            ('MAIL FROM:<@x>', (501, '5.1.7 Bad sender address syntax')),
            ('MAIL FROM:<> SIZE=12x', (501, '5.5.4 Bad SIZE parameter')),
            ('MAIL FROM:<> BODY=9BIT', (555, '5.5.4 Unsupported BODY '
                                             'type')),
            ('MAIL FROM:<> RET=ALL', (501, '5.5.4 Bad RET parameter')),
            ('MAIL FROM:<> ENVID=a=b', (501, '5.5.4 Bad ENVID parameter')),
            ('MAIL FROM:<> AUTH=a\x01b', (501, '5.5.4 Bad AUTH parameter')),
            ('MAIL FROM:<> RET=FULL RET=HDRS',
             (501, '5.5.4 Duplicate RET parameter')),
            ('MAIL FROM:<> ENVID=a ENVID=b',
             (501, '5.5.4 Duplicate ENVID parameter')),
            # a control byte the client sent is not echoed back
            ('MAIL FROM:<> X\x01\x1b[2J=1',
             (555, '5.5.4 Unsupported option: X??[2J=1')),
        ]
        for line, want in cases:
            self.assertEqual(c.cmd(line), want, line)
        self.assert_alive(c)

    def test_orcpt_validated(self):
        # RFC 3461 4.2: ORCPT=addr-type;xtext, addr-type an atom; the
        # value goes into DSNs and to the next hop, so no control byte may
        # hide in the addr-type or in the decoded xtext
        c = self.raw()
        c.expect(250, 'EHLO x')
        c.expect(250, 'MAIL FROM:<>')
        bad_orcpt = (501, '5.5.4 Bad ORCPT parameter')
        for value in ('rfc\x01822;bob@example.test',
                      'rfc822\x7f;bob@example.test',
                      'rfc(822);bob@example.test',
                      'rfc\u00e9;bob@example.test',
                      ';bob@example.test',
                      'rfc822;',
                      'rfc822',
                      'rfc822;bob+0D+0ABcc:evil@example.test',
                      'rfc822;bob+00@example.test',
                      'rfc822;bob+7F@example.test',
                      'rfc822;bob+4@example.test',
                      'rfc822;bob=x@example.test'):
            self.assertEqual(c.cmd('RCPT TO:<%s> ORCPT=%s' % (ALICE, value)),
                             bad_orcpt, repr(value))
            c.expect(250, 'NOOP')  # not 10 errors in a row: no 421
        # good ones, xtext escapes included
        for value in ('rfc822;bob@example.test',
                      'RFC822;bob+2Bfilter@example.test',
                      'utf-8;b+C3+A9b@example.test',
                      'x-local!#$%;what+20ever'):
            self.assertEqual(c.cmd('RCPT TO:<%s> ORCPT=%s' % (ALICE, value)),
                             (250, '2.1.5 Ok'), repr(value))
        self.assert_alive(c)

    def test_rcpt_duplicate_parameters_refused(self):
        c = self.raw()
        c.expect(250, 'EHLO x')
        c.expect(250, 'MAIL FROM:<>')
        self.assertEqual(
            c.cmd('RCPT TO:<%s> NOTIFY=NEVER NOTIFY=FAILURE' % ALICE),
            (501, '5.5.4 Duplicate NOTIFY parameter'))
        self.assertEqual(
            c.cmd('RCPT TO:<%s> ORCPT=rfc822;a@b.example '
                  'ORCPT=rfc822;c@d.example' % ALICE),
            (501, '5.5.4 Duplicate ORCPT parameter'))
        self.assert_alive(c)


if __name__ == '__main__':
    unittest.main(verbosity=2)
