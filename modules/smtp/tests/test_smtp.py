#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# smtp module: the RFC 5321 conversation against the real satcheld with
# real clients (smtplib, swaks, curl, raw sockets): keywords, delivery
# byte-exact into the Maildir, pipelining, BDAT, limits, junk, timeouts.
import os
import random
import re
import smtplib
import socket
import subprocess
import time
import unittest

import satchel_harness as h

USERS = {'alice@example.test': 'alice-password-1',
         'bob@example.test': 'bob-password-22'}


def body_of(path):
    with open(path, 'rb') as f:
        return f.read()


class SmtpProtocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = h.Daemon(users=USERS)
        smtp = h.default_plugins(cls.d)['50-smtp.yaml']
        smtp['max_message_size'] = '200K'
        smtp['max_recipients'] = 3
        smtp['listen'].append({'address': '[::1]:%d' % cls.d.port('v6'),
                               'mode': 'mx', 'tls': 'starttls'})
        cls.d.extra_plugins['50-smtp.yaml'] = smtp
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def raw(self, **kw):
        c = h.raw(self.d, **kw)
        self.addCleanup(c.close)
        code, text = c.reply()
        self.assertEqual(code, 220, text)
        return c

    def count(self, addr):
        return len(self.d.maildir_files(addr))

    def find_msg(self, addr, needle, timeout=10):
        """The Maildir file of addr that contains needle (bytes)."""
        deadline = time.monotonic() + timeout
        while True:
            for p in self.d.maildir_files(addr):
                if needle in body_of(p):
                    return p
            if time.monotonic() > deadline:
                self.fail('no message with %r for %s' % (needle, addr))
            time.sleep(0.05)

    def deliver_raw(self, message, rcpt='alice@example.test'):
        """Sends message (bytes, already dot-stuffed, without the final
        dot) and returns the Maildir file it lands in."""
        before = self.count(rcpt)
        c = self.raw()
        c.expect(250, 'EHLO client.example')
        c.expect(250, 'MAIL FROM:<sender@example.org>')
        c.expect(250, 'RCPT TO:<%s>' % rcpt)
        c.expect(354, 'DATA')
        c.send(message + b'.\r\n')
        text = c.expect(250)
        self.assertRegex(text, r'^2\.0\.0 Ok: queued as \S+$')
        c.expect(221, 'QUIT')
        self.d.wait_maildir(rcpt, before + 1)
        qid = text.split()[-1]
        return self.find_msg(rcpt, ('\tid %s' % qid).encode()), text

    # ---- greeting and keywords ----
    def test_banner_and_ehlo_keywords(self):
        c = h.smtp(self.d)
        self.addCleanup(c.close)
        code, msg = c.ehlo('client.example')
        self.assertEqual(code, 250)
        self.assertTrue(msg.startswith(b'mail.example.test'), msg)
        f = c.esmtp_features
        for kw in ('pipelining', 'size', '8bitmime', 'enhancedstatuscodes',
                   'starttls', 'smtputf8', 'chunking', 'dsn'):
            self.assertIn(kw, f, msg)
        self.assertEqual(f['size'], str(200 * 1024))
        # AUTH is only offered once TLS is up
        self.assertNotIn('auth', f)
        c.starttls(context=h.tls_context())
        c.ehlo('client.example')
        self.assertNotIn('starttls', c.esmtp_features)
        self.assertEqual(c.esmtp_features.get('auth', '').split(),
                         ['PLAIN', 'LOGIN'])

    def test_helo_is_plain_smtp(self):
        c = self.raw()
        self.assertEqual(c.expect(250, 'HELO client.example'),
                         'mail.example.test')
        c.expect(250, 'MAIL FROM:<a@example.org>')
        c.expect(503, 'AUTH PLAIN AGFsaWNlAHg=')

    def test_misc_commands(self):
        c = self.raw()
        self.assertIn('2.5.2', c.expect(252, 'VRFY alice'))
        c.expect(214, 'HELP')
        c.expect(250, 'NOOP')
        c.expect(250, 'RSET')
        c.expect(502, 'EXPN staff')
        c.expect(221, 'QUIT')
        self.assertTrue(c.closed())

    def test_ipv6_listener(self):
        before = self.count('bob@example.test')
        c = smtplib.SMTP('::1', self.d.port('v6'), timeout=10)
        self.addCleanup(c.close)
        self.assertEqual(c.ehlo('v6.example')[0], 250)
        c.sendmail('v6@example.org', ['bob@example.test'],
                   b'Subject: v6\r\n\r\nover IPv6\r\n')
        self.d.wait_maildir('bob@example.test', before + 1)
        files = self.d.maildir_files('bob@example.test')
        # the client's name: unbound's own localhost zone names ::1
        # (confirmed forward) unless DATA came before the answer
        self.assertTrue(any(b'over IPv6' in body_of(p) and
                            re.search(rb'\((?:localhost|unknown) \[::1\]\)',
                                      body_of(p)) for p in files))

    # ---- delivery, byte-exact ----
    def test_8bit_and_dot_stuffed_body_byte_exact(self):
        original = (b'From: Sender <sender@example.org>\r\n'
                    b'To: alice@example.test\r\n'
                    b'Subject: =?utf-8?q?byte_exact?=\r\n'
                    b'Content-Type: text/plain; charset=utf-8\r\n'
                    b'Content-Transfer-Encoding: 8bit\r\n'
                    b'\r\n'
                    b'Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln \xe2\x82\xac\r\n'
                    b'.leading dot\r\n'
                    b'..two leading dots\r\n'
                    b'.\tdot tab\r\n'
                    b' \r\n'
                    b'trailing spaces   \r\n'
                    b'\xff\xfe raw high bytes \x80\r\n'
                    b'\r\n'
                    b'last line\r\n')
        stuffed = b''.join((b'.' + l if l.startswith(b'.') else l)
                           for l in original.splitlines(keepends=True))
        path, text = self.deliver_raw(stuffed)
        data = body_of(path)
        self.assertTrue(data.endswith(original), data)
        headers = data[:len(data) - len(original)]
        self.assertIn(b'Return-Path: <sender@example.org>\r\n', headers)
        self.assertIn(b'Delivered-To: alice@example.test\r\n', headers)
        qid = text.split()[-1].encode()
        # our Received: header names the client, us, the protocol, the id
        self.assertRegex(headers, rb'Received: from client\.example '
                         rb'\((?:localhost|unknown) \[127\.0\.0\.1\]\)'
                         rb'\r\n\tby '
                         rb'mail\.example\.test \(satchel\) with ESMTP\r\n'
                         rb'\tid ' + qid + rb'\r\n\tfor '
                         rb'<alice@example\.test>;\r\n\t\w{3}, ')

    def test_smtplib_sendmail_two_recipients(self):
        b0, a0 = self.count('bob@example.test'), self.count(
            'alice@example.test')
        c = h.smtp(self.d)
        self.addCleanup(c.close)
        c.sendmail('x@example.org', ['alice@example.test',
                                     'bob@example.test'],
                   b'Subject: both\r\n\r\nfor two\r\n')
        c.quit()
        self.d.wait_maildir('alice@example.test', a0 + 1)
        self.d.wait_maildir('bob@example.test', b0 + 1)

    def test_swaks(self):
        if not h.which('swaks'):
            self.skipTest('swaks not installed')
        before = self.count('alice@example.test')
        r = subprocess.run(
            ['swaks', '--to', 'alice@example.test', '--from',
             'swaks@example.org', '--server',
             '127.0.0.1:%d' % self.d.port('smtp'), '--helo', 'swaks.test',
             '--header', 'Subject: swaks test', '--body', 'hello from swaks',
             '--pipeline'],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r'<[-~]* +250 2\.0\.0 Ok: queued as')
        self.d.wait_maildir('alice@example.test', before + 1)
        self.find_msg('alice@example.test', b'\r\n\r\nhello from swaks')

    def test_curl_upload(self):
        if not h.which('curl'):
            self.skipTest('curl not installed')
        before = self.count('bob@example.test')
        msg = os.path.join(self.d.tmp, 'curl-msg.txt')
        with open(msg, 'wb') as f:
            f.write(b'Subject: curl\r\n\r\nhello from curl\r\n.dot\r\n')
        r = subprocess.run(
            ['curl', '-sS', 'smtp://127.0.0.1:%d' % self.d.port('smtp'),
             '--mail-from', 'curl@example.org', '--mail-rcpt',
             'bob@example.test', '--upload-file', msg],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.d.wait_maildir('bob@example.test', before + 1)
        p = self.find_msg('bob@example.test', b'hello from curl')
        self.assertTrue(body_of(p).endswith(
            b'\r\n\r\nhello from curl\r\n.dot\r\n'))

    # ---- pipelining and BDAT ----
    def test_pipelining(self):
        before = self.count('alice@example.test')
        c = self.raw()
        c.expect(250, 'EHLO pipe.example')
        c.send('MAIL FROM:<p@example.org>\r\nRCPT TO:<alice@example.test>\r\n'
               'RCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>'
               '\r\nDATA\r\n')
        c.expect(250)
        c.expect(250)
        text = c.expect(550)
        self.assertEqual(text, '5.1.1 <nobody@example.test>: no such user '
                         'here')
        c.expect(250)
        c.expect(354)
        # the message, the next transaction and QUIT in one write
        c.send('Subject: pipelined\r\n\r\nfirst\r\n.\r\n'
               'MAIL FROM:<p@example.org>\r\nRCPT TO:<alice@example.test>\r\n'
               'DATA\r\n')
        c.expect(250)
        c.expect(250)
        c.expect(250)
        c.expect(354)
        c.send('Subject: pipelined 2\r\n\r\nsecond\r\n.\r\nQUIT\r\n')
        self.assertIn('queued as', c.expect(250))
        c.expect(221)
        self.assertTrue(c.closed())
        self.d.wait_maildir('alice@example.test', before + 2)

    def test_bdat(self):
        before = self.count('alice@example.test')
        part1 = (b'Subject: chunked\r\n\r\nbinary-ish \xc3\xa9\x00\x01 data'
                 b'\r\n.\r\n.. not a terminator in BDAT\r\n')
        part2 = b'second chunk\r\n'
        c = self.raw()
        c.expect(250, 'EHLO bdat.example')
        c.expect(250, 'MAIL FROM:<b@example.org> BODY=8BITMIME')
        c.expect(250, 'RCPT TO:<alice@example.test>')
        c.send(b'BDAT %d\r\n' % len(part1) + part1)
        self.assertIn('%d bytes' % len(part1), c.expect(250))
        c.send(b'BDAT %d LAST\r\n' % len(part2) + part2)
        self.assertIn('queued as', c.expect(250))
        # BDAT 0 LAST with nothing else is a valid empty last chunk
        c.expect(250, 'MAIL FROM:<b@example.org>')
        c.expect(250, 'RCPT TO:<alice@example.test>')
        c.send(b'BDAT 20\r\nSubject: z\r\n\r\nzero\r\n')
        c.expect(250)
        self.assertIn('queued as', c.expect(250, 'BDAT 0 LAST'))
        files = self.d.wait_maildir('alice@example.test', before + 2)
        datas = [body_of(p) for p in files]
        self.assertTrue(any(d.endswith(part1 + part2) for d in datas))

    def test_bdat_without_transaction(self):
        c = self.raw()
        c.expect(250, 'EHLO bdat.example')
        c.send(b'BDAT 5\r\nhello')
        c.expect(503)
        # still in sync
        c.expect(250, 'NOOP')
        c.expect(250, 'MAIL FROM:<b@example.org>')
        c.send(b'BDAT 3 LAST\r\nabc')
        c.expect(503)
        c.expect(250, 'NOOP')

    # ---- DSN and parameters ----
    def test_dsn_and_params(self):
        c = self.raw()
        c.expect(250, 'EHLO dsn.example')
        c.expect(250, 'MAIL FROM:<d@example.org> RET=HDRS ENVID=abc+2Bdef '
                 'SIZE=1000 BODY=8BITMIME AUTH=<>')
        c.expect(250, 'RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE '
                 'ORCPT=rfc822;alice@example.test')
        c.expect(501, 'RCPT TO:<bob@example.test> NOTIFY=NEVER,SUCCESS')
        c.expect(501, 'RCPT TO:<bob@example.test> ORCPT=nosemicolon')
        c.expect(555, 'RCPT TO:<bob@example.test> FOO=bar')
        c.expect(250, 'RSET')
        c.expect(501, 'MAIL FROM:<d@example.org> RET=MAYBE')
        c.expect(555, 'MAIL FROM:<d@example.org> BODY=BINARYMIME')
        c.expect(555, 'MAIL FROM:<d@example.org> XFOO')
        c.expect(250, 'MAIL FROM:<> SMTPUTF8')
        c.expect(250, 'RCPT TO:<alice@example.test> NOTIFY=NEVER')

    def test_smtputf8_address(self):
        c = self.raw()
        c.expect(250, 'EHLO utf8.example')
        c.expect(553, 'MAIL FROM:<j\u00f6rg@example.org>')
        c.expect(250, 'MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8')

    # ---- refusals and bad sequences ----
    def test_unknown_user(self):
        c = h.smtp(self.d)
        self.addCleanup(c.close)
        c.ehlo('client.example')
        c.mail('a@example.org')
        code, msg = c.rcpt('nosuchuser@example.test')
        self.assertEqual((code, msg), (550, b'5.1.1 <nosuchuser@example.test>:'
                                            b' no such user here'))

    def test_postmaster_without_domain(self):
        c = self.raw()
        c.expect(250, 'EHLO client.example')
        c.expect(250, 'MAIL FROM:<a@example.org>')
        code, text = c.cmd('RCPT TO:<postmaster>')
        # accepted when the router knows postmaster@example.test; never a
        # syntax error
        self.assertIn(code, (250, 550), text)
        self.assertNotEqual(code, 501)

    def test_bad_sequences(self):
        c = self.raw()
        self.assertIn('5.5.1', c.expect(503, 'MAIL FROM:<a@example.org>'))
        c.expect(501, 'EHLO')
        c.expect(250, 'EHLO client.example')
        c.expect(503, 'RCPT TO:<alice@example.test>')
        c.expect(503, 'DATA')
        c.expect(501, 'MAIL FROM:a@example.org')
        c.expect(501, 'MAIL TO:<a@example.org>')
        c.expect(501, 'MAIL FROM:<a@@example.org>')
        c.expect(250, 'MAIL FROM:<a@example.org>')
        c.expect(503, 'MAIL FROM:<a@example.org>')
        c.expect(503, 'DATA')
        c.expect(501, 'DATA now')
        c.expect(501, 'RCPT TO:<>')
        c.expect(500, 'FROB')
        c.expect(503, 'STARTTLS')
        c.expect(250, 'RCPT TO:<alice@example.test>')
        c.expect(250, 'RSET')
        c.expect(503, 'DATA')
        c.expect(221, 'QUIT')

    def test_max_recipients(self):
        c = self.raw()
        c.expect(250, 'EHLO client.example')
        c.expect(250, 'MAIL FROM:<a@example.org>')
        for _ in range(3):
            c.expect(250, 'RCPT TO:<alice@example.test>')
        self.assertTrue(c.expect(452, 'RCPT TO:<bob@example.test>')
                        .startswith('4.5.3'))

    def test_size_limit(self):
        c = self.raw()
        c.expect(250, 'EHLO client.example')
        text = c.expect(552, 'MAIL FROM:<a@example.org> SIZE=300000')
        self.assertEqual(text, '5.3.4 Message size exceeds fixed maximum '
                         'message size')
        before = self.count('alice@example.test')
        c.expect(250, 'MAIL FROM:<a@example.org>')
        c.expect(250, 'RCPT TO:<alice@example.test>')
        c.expect(354, 'DATA')
        line = b'x' * 70 + b'\r\n'
        c.send(b'Subject: big\r\n\r\n' + line * 4000 + b'.\r\n')
        self.assertEqual(c.expect(552), '5.3.4 Message size exceeds fixed '
                         'maximum message size')
        c.expect(250, 'NOOP')
        # and BDAT
        c.expect(250, 'MAIL FROM:<a@example.org>')
        c.expect(250, 'RCPT TO:<alice@example.test>')
        chunk = b'y' * 300000
        c.send(b'BDAT %d LAST\r\n' % len(chunk) + chunk)
        self.assertIn('5.3.4', c.expect(552))
        c.expect(250, 'NOOP')
        time.sleep(0.5)
        self.assertEqual(self.count('alice@example.test'), before)

    def test_long_command_line(self):
        c = self.raw()
        c.expect(250, 'EHLO client.example')
        self.assertIn('too long', c.expect(500, 'NOOP ' + 'a' * 600))
        c.send(b'MAIL FROM:<' + b'a' * (1 << 20) + b'@example.org>\r\n')
        self.assertIn('too long', c.expect(500))
        c.expect(250, 'NOOP')
        c.expect(250, 'MAIL FROM:<a@example.org>')

    def test_long_text_line(self):
        before = self.count('alice@example.test')
        c = self.raw()
        c.expect(250, 'EHLO client.example')
        c.expect(250, 'MAIL FROM:<a@example.org>')
        c.expect(250, 'RCPT TO:<alice@example.test>')
        c.expect(354, 'DATA')
        c.send(b'Subject: long\r\n\r\n' + b'z' * (1 << 20) + b'\r\nok\r\n'
               b'.\r\n')
        self.assertIn('line', c.expect(552))
        c.expect(250, 'NOOP')
        time.sleep(0.5)
        self.assertEqual(self.count('alice@example.test'), before)

    def test_smuggling_bare_lf_dot(self):
        """Only CRLF.CRLF ends DATA: a bare-LF dot is message text."""
        before = self.count('alice@example.test')
        c = self.raw()
        c.expect(250, 'EHLO client.example')
        c.expect(250, 'MAIL FROM:<a@example.org>')
        c.expect(250, 'RCPT TO:<alice@example.test>')
        c.expect(354, 'DATA')
        c.send(b'Subject: smuggle\r\n\r\nhello\n.\n'
               b'MAIL FROM:<evil@example.org>\r\n'
               b'RCPT TO:<alice@example.test>\r\nDATA\r\nsmuggled\r\n'
               b'\r\n.\r'
               b'NOOP\r\n'
               b'end\r\n.\r\n')
        self.assertIn('queued as', c.expect(250))
        c.expect(250, 'NOOP')
        self.d.wait_maildir('alice@example.test', before + 1)
        time.sleep(0.5)
        self.assertEqual(self.count('alice@example.test'), before + 1)
        data = body_of(self.find_msg('alice@example.test',
                                     b'Subject: smuggle'))
        self.assertIn(b'\r\nMAIL FROM:<evil@example.org>\r\n', data)
        self.assertTrue(data.endswith(b'end\r\n'))

    def test_too_many_errors(self):
        c = self.raw()
        for _ in range(9):
            c.expect(500, 'XYZZY')
        code, text = c.cmd('XYZZY')
        self.assertEqual(code, 500)
        code, text = c.reply()
        self.assertEqual(code, 421, text)
        self.assertTrue(c.closed())

    def test_binary_junk(self):
        rnd = random.Random(1234)
        for _ in range(3):
            s = socket.create_connection(('127.0.0.1', self.d.port('smtp')),
                                         timeout=10)
            try:
                s.recv(1024)
                s.sendall(bytes(rnd.getrandbits(8) for _ in range(65536)))
                s.settimeout(5)
                while s.recv(65536):
                    pass
            except OSError:
                pass
            finally:
                s.close()
        c = self.raw()
        c.expect(250, 'EHLO after.junk')

    def test_client_vanishes_mid_data(self):
        before = self.count('bob@example.test')
        c = self.raw()
        c.expect(250, 'EHLO client.example')
        c.expect(250, 'MAIL FROM:<a@example.org>')
        c.expect(250, 'RCPT TO:<bob@example.test>')
        c.expect(354, 'DATA')
        c.send(b'Subject: half\r\n\r\nhalf a message')
        c.close()
        self.d.wait_log(r'vanished during message data|connection lost',
                        timeout=10)
        c2 = self.raw()
        c2.expect(250, 'EHLO client.example')
        time.sleep(0.5)
        self.assertEqual(self.count('bob@example.test'), before)

    def test_http_request_closed(self):
        c = self.raw()
        c.send('GET / HTTP/1.0\r\n\r\n')
        code, text = c.reply()
        self.assertEqual(code, 421)
        self.assertTrue(c.closed())


class SmtpReload(unittest.TestCase):
    def test_session_survives_reload(self):
        with h.Daemon(users=USERS) as d:
            d.start()
            c = h.raw(d)
            c.expect(220)
            c.expect(250, 'EHLO reload.example')
            c.expect(250, 'MAIL FROM:<r@example.org>')
            # a new banner proves the new generation's instance answers
            d.extra_plugins['50-smtp.yaml'] = dict(
                h.default_plugins(d)['50-smtp.yaml'],
                banner='ESMTP reloaded')
            mark = d.reload()
            d.wait_log(r'generation 2|reloaded', since=mark)
            c.expect(250, 'RCPT TO:<alice@example.test>')
            c.expect(354, 'DATA')
            c.send('Subject: across a reload\r\n\r\nstill here\r\n.\r\n')
            self.assertIn('queued as', c.expect(250))
            c.close()
            n = h.raw(d)
            self.assertIn('ESMTP reloaded', n.expect(220))
            n.close()
            d.wait_maildir('alice@example.test')


class SmtpConnectHook(unittest.TestCase):
    def test_connect_refusal_before_banner_and_tls(self):
        with h.Daemon(users=USERS, extra_plugins={
                '20-ratelimit.yaml': {'module': 'ratelimit',
                                      'max_connections': 1}}) as d:
            d.start()
            first = h.raw(d)
            first.expect(220)
            text = ('4.7.0 mail.example.test Too many concurrent SMTP '
                    'connections; please try again later')
            second = h.raw(d)
            self.assertEqual(second.expect(421), text)
            self.assertTrue(second.closed())
            second.close()
            # on the implicit TLS port the 421 comes in plain text, before
            # any handshake
            third = h.raw(d, 'smtps')
            self.assertEqual(third.expect(421), text)
            third.close()
            first.expect(221, 'QUIT')
            first.close()
            deadline = time.monotonic() + 5
            while True:
                c = h.raw(d)
                code, _ = c.reply()
                c.close()
                if code == 220 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertEqual(code, 220)


class SmtpTimeouts(unittest.TestCase):
    def test_slow_client_times_out(self):
        with h.Daemon(users=USERS) as d:
            smtp = h.default_plugins(d)['50-smtp.yaml']
            smtp['timeouts'] = {'command': '1s', 'data': '2s'}
            d.extra_plugins['50-smtp.yaml'] = smtp
            d.start()
            c = h.raw(d)
            c.expect(220)
            t0 = time.monotonic()
            code, text = c.reply()
            self.assertEqual(code, 421, text)
            self.assertIn('4.4.2', text)
            self.assertTrue(c.closed())
            self.assertLess(time.monotonic() - t0, 5)
            c.close()
            # mid-DATA: the data timeout applies, nothing is delivered
            c = h.raw(d)
            c.expect(220)
            c.expect(250, 'EHLO slow.example')
            c.expect(250, 'MAIL FROM:<a@example.org>')
            c.expect(250, 'RCPT TO:<alice@example.test>')
            c.expect(354, 'DATA')
            c.send('Subject: slow\r\n\r\npart')
            t0 = time.monotonic()
            code, text = c.reply()
            self.assertEqual(code, 421, text)
            self.assertGreaterEqual(time.monotonic() - t0, 1.5)
            self.assertTrue(c.closed())
            c.close()
            # a client that never starts the implicit TLS handshake
            t0 = time.monotonic()
            s = socket.create_connection(('127.0.0.1', d.port('smtps')),
                                         timeout=10)
            self.assertEqual(s.recv(100), b'')
            self.assertLess(time.monotonic() - t0, 5)
            s.close()
            # the daemon still answers
            s = h.smtp(d)
            self.assertEqual(s.noop()[0], 250)
            s.quit()
            self.assertEqual(d.maildir_files('alice@example.test'), [])


if __name__ == '__main__':
    unittest.main(verbosity=2)
