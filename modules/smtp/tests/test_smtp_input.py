#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# smtp module: reply sync and message input against the real satcheld with
# raw sockets: one reply per BDAT when the queue cannot take the message,
# bare CR / bare LF normalised to CRLF (SMTP smuggling), BDAT before RCPT.
import os
import re
import socket
import time
import unittest

import satchel_harness as h

USERS = {'alice@example.test': 'alice-password-1'}
RCPT = 'alice@example.test'
# a CR not followed by LF, or an LF not preceded by CR
BARE_RE = re.compile(rb'\r(?!\n)|(?<!\r)\n')


def body_of(path):
    with open(path, 'rb') as f:
        return f.read()


class SmtpInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = h.Daemon(users=USERS)
        smtp = h.default_plugins(cls.d)['50-smtp.yaml']
        smtp['max_message_size'] = '10K'
        cls.d.extra_plugins['50-smtp.yaml'] = smtp
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def raw(self):
        c = h.raw(self.d)
        self.addCleanup(c.close)
        code, text = c.reply()
        self.assertEqual(code, 220, text)
        c.expect(250, 'EHLO client.example')
        return c

    def count(self):
        return len(self.d.maildir_files(RCPT))

    def assert_no_more_replies(self, c):
        """Nothing beyond the replies read so far: a NOOP's 250 is next."""
        self.assertEqual(c.buf, b'', 'unexpected extra reply data')
        c.sock.settimeout(0.3)
        try:
            extra = c.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            extra = b''
        finally:
            c.sock.settimeout(10)
        self.assertEqual(extra, b'', 'unexpected extra reply')
        self.assertEqual(c.expect(250, 'NOOP'), '2.0.0 Ok')

    def message_with(self, needle, before, timeout=10):
        """The one new Maildir file (exactly one arrives) containing
        needle."""
        files = self.d.wait_maildir(RCPT, before + 1, timeout=timeout)
        time.sleep(0.3)
        self.assertEqual(self.count(), before + 1,
                         'more than one message was stored')
        for p in files:
            data = body_of(p)
            if needle in data:
                return data
        self.fail('no message with %r' % needle)

    def break_queue(self):
        """Makes <state>/queue/tmp unwritable for the daemon (it runs as
        nobody when the test runs as root, else as its owner) and returns
        a function that repairs it; repaired at cleanup in any case."""
        tmp = os.path.join(self.d.state_dir, 'queue', 'tmp')
        mode = os.stat(tmp).st_mode & 0o7777
        # the queue makes files ahead (empty spares, core/queue_spare.c):
        # they go too, once no refill runs (refills start only when a
        # transaction takes one, and none runs between the tests)
        spares = None
        for _ in range(50):
            now = sorted(f for f in os.listdir(tmp)
                         if os.path.getsize(os.path.join(tmp, f)) == 0)
            if now == spares:
                break
            spares = now
            time.sleep(0.2)
        for f in spares:
            os.unlink(os.path.join(tmp, f))
        os.chmod(tmp, 0)
        done = []

        def repair():
            if not done:
                os.chmod(tmp, mode)
                done.append(True)
        self.addCleanup(repair)
        return repair

    # ---- 1: queue-open failure keeps BDAT replies in sync ----
    def test_bdat_queue_failure_one_reply_per_command(self):
        repair = self.break_queue()
        c = self.raw()
        c.expect(250, 'MAIL FROM:<a@b.test>')
        c.expect(250, 'RCPT TO:<%s>' % RCPT)
        c.send(b'BDAT 3\r\nabcBDAT 3 LAST\r\nxyzNOOP\r\n')
        # BDAT 3, BDAT 3 LAST, NOOP: one reply each, in order
        self.assertEqual(c.expect(451), '4.3.0 Error: queue file write '
                         'error')
        self.assertEqual(c.expect(451), '4.3.0 Error: queue file write '
                         'error')
        self.assertEqual(c.expect(250), '2.0.0 Ok')
        self.assert_no_more_replies(c)
        # the failed transaction is void until RSET
        c.send(b'BDAT 2 LAST\r\nzz')
        self.assertIn('4.3.0', c.expect(451))
        c.expect(503, 'MAIL FROM:<a@b.test>')
        c.expect(250, 'RSET')
        # repaired, a BDAT message goes through on the same session
        repair()
        before = self.count()
        c.expect(250, 'MAIL FROM:<a@b.test>')
        c.expect(250, 'RCPT TO:<%s>' % RCPT)
        body = b'Subject: after repair\r\n\r\nok\r\n'
        c.send(b'BDAT %d LAST\r\n' % len(body) + body)
        self.assertIn('queued as', c.expect(250))
        self.assertTrue(self.message_with(b'Subject: after repair',
                                          before).endswith(body))

    def test_data_queue_failure_then_retry(self):
        repair = self.break_queue()
        c = self.raw()
        c.expect(250, 'MAIL FROM:<a@b.test>')
        c.expect(250, 'RCPT TO:<%s>' % RCPT)
        # a second DATA after a failed one reallocates (no leak: the
        # sanitizer build's LeakSanitizer checks at daemon exit)
        self.assertIn('4.3.0', c.expect(451, 'DATA'))
        self.assertIn('4.3.0', c.expect(451, 'DATA'))
        repair()
        before = self.count()
        c.expect(354, 'DATA')
        c.send(b'Subject: data after repair\r\n\r\nok\r\n.\r\n')
        self.assertIn('queued as', c.expect(250))
        self.assert_no_more_replies(c)
        self.message_with(b'Subject: data after repair', before)

    # ---- 2: bare CR / bare LF become CRLF ----
    def test_data_bare_cr_smuggling_normalised(self):
        before = self.count()
        c = self.raw()
        c.expect(250, 'MAIL FROM:<a@b.test>')
        c.expect(250, 'RCPT TO:<%s>' % RCPT)
        c.send(b'DATA\r\nSubject: x-cr\r\n\r\nhi\r.\rMAIL FROM:<z@z>\r\n'
               b'.\r\nNOOP\r\n')
        c.expect(354)
        self.assertIn('queued as', c.expect(250))
        # exactly one 250 for the message: the NOOP's is next, nothing
        # answered a smuggled MAIL
        self.assertEqual(c.expect(250), '2.0.0 Ok')
        self.assert_no_more_replies(c)
        data = self.message_with(b'Subject: x-cr', before)
        self.assertIsNone(BARE_RE.search(data), data)
        self.assertTrue(data.endswith(b'Subject: x-cr\r\n\r\nhi\r\n.\r\n'
                                      b'MAIL FROM:<z@z>\r\n'), data)

    def test_data_bare_lf_and_mixed_normalised(self):
        before = self.count()
        c = self.raw()
        c.expect(250, 'MAIL FROM:<a@b.test>')
        c.expect(250, 'RCPT TO:<%s>' % RCPT)
        c.expect(354, 'DATA')
        # bare LF lines, a bare-LF dot (text, unstuffed like any dot
        # line), CR CR LF, a stuffed dot line with a bare CR
        c.send(b'Subject: x-lf\r\n\r\none\ntwo\n.\nthree\r\r\n'
               b'..four\r.five\r\n.\r\n')
        self.assertIn('queued as', c.expect(250))
        self.assert_no_more_replies(c)
        data = self.message_with(b'Subject: x-lf', before)
        self.assertIsNone(BARE_RE.search(data), data)
        self.assertTrue(data.endswith(b'Subject: x-lf\r\n\r\none\r\ntwo\r\n'
                                      b'\r\nthree\r\n\r\n.four\r\n'
                                      b'.five\r\n'), data)

    def test_bdat_bare_cr_lf_normalised(self):
        before = self.count()
        c = self.raw()
        c.expect(250, 'MAIL FROM:<a@b.test>')
        c.expect(250, 'RCPT TO:<%s>' % RCPT)
        # chunk 1 ends in a CR whose LF starts chunk 2 (one CRLF); chunk
        # 2 ends in a CR followed by text in chunk 3 (a bare CR); the
        # message ends in a bare CR
        chunks = [b'Subject: x-bdat\r\n\r\nhi\r.\rMAIL FROM:<z@z>\r',
                  b'\nbare\nlf\r',
                  b'x\r\n.\r\nend\r']
        c.send(b''.join(b'BDAT %d%s\r\n' % (len(p), b' LAST' if i == 2
                                              else b'') + p
                        for i, p in enumerate(chunks)) + b'NOOP\r\n')
        self.assertIn('%d bytes' % len(chunks[0]), c.expect(250))
        self.assertIn('%d bytes' % len(chunks[1]), c.expect(250))
        self.assertIn('queued as', c.expect(250))
        self.assertEqual(c.expect(250), '2.0.0 Ok')
        self.assert_no_more_replies(c)
        data = self.message_with(b'Subject: x-bdat', before)
        self.assertIsNone(BARE_RE.search(data), data)
        self.assertTrue(data.endswith(b'Subject: x-bdat\r\n\r\nhi\r\n.\r\n'
                                      b'MAIL FROM:<z@z>\r\nbare\r\nlf\r\n'
                                      b'x\r\n.\r\nend\r\n'), data)

    def test_crlf_only_bodies_byte_exact(self):
        body = (b'Subject: exact\r\n\r\nline one\r\n\r\n\t tab\r\n'
                b'\xc3\xa9 8bit\r\nlast\r\n')
        before = self.count()
        c = self.raw()
        c.expect(250, 'MAIL FROM:<a@b.test>')
        c.expect(250, 'RCPT TO:<%s>' % RCPT)
        c.expect(354, 'DATA')
        c.send(body.replace(b'exact', b'exact-data') + b'.\r\n')
        self.assertIn('queued as', c.expect(250))
        data = self.message_with(b'exact-data', before)
        self.assertTrue(data.endswith(body.replace(b'exact',
                                                   b'exact-data')), data)
        # BDAT with a CRLF split across chunks
        b = body.replace(b'exact', b'exact-bdat')
        cut = b.index(b'\r\n\t') + 1
        c.expect(250, 'MAIL FROM:<a@b.test>')
        c.expect(250, 'RCPT TO:<%s>' % RCPT)
        c.send(b'BDAT %d\r\n' % cut + b[:cut] +
               b'BDAT %d LAST\r\n' % (len(b) - cut) + b[cut:])
        c.expect(250)
        self.assertIn('queued as', c.expect(250))
        data = self.message_with(b'exact-bdat', before + 1)
        self.assertTrue(data.endswith(b), data)

    def test_normalised_line_ends_count_toward_size(self):
        before = self.count()
        c = self.raw()
        # DATA: 7000 bytes sent, over 14000 stored (limit 10K)
        c.expect(250, 'MAIL FROM:<a@b.test>')
        c.expect(250, 'RCPT TO:<%s>' % RCPT)
        c.expect(354, 'DATA')
        c.send(b'Subject: crs\r\n\r\n' + (b'\r' * 700 + b'\r\n') * 10 +
               b'.\r\n')
        self.assertIn('5.3.4', c.expect(552))
        c.expect(250, 'NOOP')
        # BDAT: a 7000-byte chunk of bare LFs is over the limit stored
        c.expect(250, 'MAIL FROM:<a@b.test>')
        c.expect(250, 'RCPT TO:<%s>' % RCPT)
        c.send(b'BDAT 7000\r\n' + b'\n' * 7000 + b'BDAT 1 LAST\r\nx')
        self.assertIn('5.3.4', c.expect(552))
        c.expect(503)
        self.assert_no_more_replies(c)
        time.sleep(0.3)
        self.assertEqual(self.count(), before)

    # ---- 3: BDAT before RCPT leaves the transaction usable ----
    def test_bdat_before_rcpt(self):
        before = self.count()
        c = self.raw()
        c.expect(250, 'MAIL FROM:<a@b.test>')
        c.send(b'BDAT 5\r\nhello')
        self.assertEqual(c.expect(503), '5.5.1 Error: need RCPT command')
        c.expect(250, 'RCPT TO:<%s>' % RCPT)
        body = b'Subject: after early bdat\r\n\r\nhello\r\n'
        c.send(b'BDAT %d LAST\r\n' % len(body) + body)
        self.assertIn('queued as', c.expect(250))
        self.assertTrue(self.message_with(b'after early bdat', before)
                        .endswith(body))
        # pipelined, with LAST, and no MAIL at all
        c.send(b'BDAT 3 LAST\r\nabcMAIL FROM:<a@b.test>\r\n'
               b'BDAT 2 LAST\r\nzzRCPT TO:<%s>\r\n' % RCPT.encode() +
               b'BDAT %d LAST\r\n' % len(body) + body)
        self.assertEqual(c.expect(503), '5.5.1 Error: need MAIL command')
        c.expect(250)
        self.assertEqual(c.expect(503), '5.5.1 Error: need RCPT command')
        c.expect(250)
        self.assertIn('queued as', c.expect(250))
        self.assert_no_more_replies(c)
        self.d.wait_maildir(RCPT, before + 2)


if __name__ == '__main__':
    unittest.main(verbosity=2)
