#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""relay: peers that misbehave or lack features. A peer trickling reply
lines (each read re-arms an idle timeout) is cut off at the reply's
deadline, a reply of more than 100 lines and timeouts.total end the
attempt; a smarthost's second address gets AUTH again; an undeclared
8-bit body never goes raw to a peer without 8BITMIME. Real peers: raw
sockets and aiosmtpd on 127.0.0.x, DNS from dnsmasq."""

import os
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaycommon import (ALICE, Handler, Peer,  # noqa: E402
                         RelayTestCase, dsn_text, relay_daemon, submit,
                         wait_dsn)


RECORDS = {
    # the best MX trickles its greeting, the second one works
    'trickle.test': {'MX': [(10, 'mx1.trickle.test'),
                            (20, 'mx2.trickle.test')]},
    'mx1.trickle.test': {'A': '127.0.0.2'},
    'mx2.trickle.test': {'A': '127.0.0.3'},
    # only a trickling MX
    'tarpit.test': {'MX': [(10, 'mx.tarpit.test')]},
    'mx.tarpit.test': {'A': '127.0.0.2'},
    # the best MX answers EHLO with 150 lines, the second one works
    'long.test': {'MX': [(10, 'mx1.long.test'), (20, 'mx2.long.test')]},
    'mx1.long.test': {'A': '127.0.0.4'},
    'mx2.long.test': {'A': '127.0.0.5'},
    # greets, then trickles its EHLO reply
    'slowehlo.test': {'MX': [(10, 'mx.slowehlo.test')]},
    'mx.slowehlo.test': {'A': '127.0.0.6'},
    # says 220 to STARTTLS, then never answers the ClientHello
    'stalltls.test': {'MX': [(10, 'mx.stalltls.test')]},
    'mx.stalltls.test': {'A': '127.0.0.6'},
    # a smarthost name with two addresses
    'smart.test': {'A': ['127.0.0.7', '127.0.0.8']},
    # a peer without 8BITMIME
    'seven.test': {'MX': [(10, 'mx.seven.test')]},
    'mx.seven.test': {'A': '127.0.0.9'},
}


class RawPeer:
    """A scripted SMTP peer on a raw socket. mode: trickle_greeting (a
    "220-" line every 0.5 s, forever), long_ehlo (greets, answers EHLO
    with 150 "250-" lines), trickle_ehlo (greets, then a "250-" line every
    0.5 s), stall_tls (offers STARTTLS, says 220 to it, then nothing).
    Records every line it receives."""

    def __init__(self, host, port, mode):
        self.mode = mode
        self.lines = []
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(20)
        self.sock.settimeout(0.2)
        self.conns = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()
        for c in self.conns:
            c.close()
        return False

    def run(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def readline(self, f):
        line = f.readline()
        if line:
            self.lines.append(line.decode('ascii', 'replace').strip())
        return line

    def trickle(self, c, text):
        while not self.stop.is_set():
            c.sendall(text)
            self.stop.wait(0.5)

    def serve(self, c):
        try:
            c.settimeout(30)
            f = c.makefile('rb')
            if self.mode == 'trickle_greeting':
                self.trickle(c, b'220-still greeting\r\n')
                return
            c.sendall(b'220 raw.test ESMTP\r\n')
            if not self.readline(f):
                return
            if self.mode == 'trickle_ehlo':
                self.trickle(c, b'250-still thinking\r\n')
                return
            if self.mode == 'stall_tls':
                c.sendall(b'250-raw.test\r\n250 STARTTLS\r\n')
                if self.readline(f):
                    c.sendall(b'220 go ahead\r\n')
                self.stop.wait(30)
                return
            c.sendall(b''.join(b'250-LINE%d\r\n' % i for i in range(150)) +
                      b'250 OK\r\n')
            while self.readline(f):
                c.sendall(b'250 OK\r\n')
        except OSError:
            pass


class RelayLimitsTest(RelayTestCase):
    RECORDS = RECORDS

    def daemon(self, **relay):
        conf = self.conf(**relay)
        return relay_daemon(self.dns, conf)

    def test_trickled_greeting_times_out(self):
        # each "220-" line re-arms the connection's idle timeout; the
        # greeting must still be complete within timeouts.greeting
        with RawPeer('127.0.0.2', self.port, 'trickle_greeting'), \
                Peer('127.0.0.3', self.port, 'mx2.trickle.test') as mx2, \
                self.daemon(timeouts={'greeting': '3s'}) as d:
            d.start()
            t0 = time.monotonic()
            submit(d, 'bob@trickle.test')
            mx2.handler.wait(1, timeout=15)
            took = time.monotonic() - t0
            self.assertGreater(took, 2.5)
            self.assertLess(took, 10)
            self.assertIn('timeout talking to mx1.trickle.test[127.0.0.2]',
                          d.log_text())

            # with no other MX the mail is deferred, within about 3 s
            t0 = time.monotonic()
            submit(d, 'carol@tarpit.test')
            d.wait_log(r'to=<carol@tarpit\.test> deferred: timeout '
                       r'talking to mx\.tarpit\.test', timeout=12)
            self.assertLess(time.monotonic() - t0, 10)
            out = d.ctl('queue', 'list').stdout
            self.assertRegex(out, r'deferred\s+<carol@tarpit\.test>')

    def test_reply_of_too_many_lines(self):
        # 150 EHLO lines at once: no timeout helps here, the line cap does
        with RawPeer('127.0.0.4', self.port, 'long_ehlo') as raw, \
                Peer('127.0.0.5', self.port, 'mx2.long.test') as mx2, \
                self.daemon() as d:
            d.start()
            submit(d, 'dan@long.test')
            got = mx2.handler.wait(1, timeout=15)[0]
            self.assertEqual(got.rcpt_tos, ['dan@long.test'])
            self.assertIn('mx1.long.test[127.0.0.4] sent a reply of more '
                          'than 100 lines', d.log_text())
            self.assertFalse([ln for ln in raw.lines
                              if ln.upper().startswith('MAIL')], raw.lines)

    def test_total_deadline(self):
        # the EHLO reply trickles and timeouts.ehlo is long: only the
        # deadline of the whole attempt ends it
        with RawPeer('127.0.0.6', self.port, 'trickle_ehlo'), \
                self.daemon(timeouts={'total': '4s'}) as d:
            d.start()
            t0 = time.monotonic()
            submit(d, 'erin@slowehlo.test')
            d.wait_log(r'to=<erin@slowehlo\.test> deferred: delivery to '
                       r'slowehlo\.test took longer than timeouts\.total',
                       timeout=15)
            self.assertLess(time.monotonic() - t0, 12)

    def test_stalled_tls_handshake(self):
        # the handshake has the deadline of a reply (timeouts.ehlo); the
        # sanitizer build checks that nothing leaks when it expires
        with RawPeer('127.0.0.6', self.port, 'stall_tls') as raw, \
                self.daemon(timeouts={'ehlo': '3s'}) as d:
            d.start()
            t0 = time.monotonic()
            submit(d, 'jim@stalltls.test')
            d.wait_log(r'to=<jim@stalltls\.test> deferred: timeout '
                       r'talking to mx\.stalltls\.test', timeout=15)
            self.assertLess(time.monotonic() - t0, 12)
            self.assertIn('STARTTLS', raw.lines)
            d.stop()

    def test_smarthost_auth_on_every_address(self):
        # the first address (whichever DNS lists first) defers MAIL; the
        # second must get AUTH again, not a bare MAIL and a 530 bounce
        pw = tempfile.NamedTemporaryFile('w', delete=False)
        pw.write('s3cret\n')
        pw.close()
        os.chmod(pw.name, 0o644)
        mails = []

        class H(Handler):
            async def handle_MAIL(self, server, session, envelope, address,
                                  mail_options):
                mails.append(session.authenticated)
                if len(mails) == 1:
                    return '451 4.3.0 try the other one'
                envelope.mail_from = address
                envelope.mail_options.extend(mail_options)
                return '250 OK'
        try:
            p1 = Peer('127.0.0.7', self.port, 'smart.test', tls=True,
                      auth=('relayuser', 's3cret'))
            p2 = Peer('127.0.0.8', self.port, 'smart.test', tls=True,
                      auth=('relayuser', 's3cret'))
            h = H()
            p1.controller.handler = h
            p2.controller.handler = h
            with p1, p2, self.daemon(
                    smarthost='smart.test:%d' % self.port,
                    smarthost_auth={'user': 'relayuser',
                                    'password_file': pw.name}) as d:
                d.start()
                submit(d, 'fred@far.test')
                got = h.wait(1, timeout=15)[0]
                self.assertEqual(got.auth, 'relayuser')
                self.assertEqual(mails, [True, True])
                d.wait_log(r'to=<fred@far\.test> delivered', timeout=10)
                self.assertNotIn('failed', d.log_text())
                self.assertEqual(d.maildir_files(ALICE), [])
        finally:
            os.unlink(pw.name)

    def test_8bit_to_peer_without_8bitmime(self):
        # aiosmtpd with decode_data=True does not offer 8BITMIME
        with Peer('127.0.0.9', self.port, 'mx.seven.test',
                  decode_data=True) as peer, self.daemon() as d:
            d.start()
            # undeclared 8-bit: scanned anyway, failed with 5.6.3
            submit(d, 'gus@seven.test', subject='undeclared',
                   body='caf\u00e9 without BODY=8BITMIME\r\n')
            dsn = dsn_text(wait_dsn(d, count=1)[0])
            self.assertIn('5.6.3', dsn)
            self.assertIn('gus@seven.test', dsn)
            # declared 8-bit: the same
            submit(d, 'hal@seven.test', subject='declared',
                   body='na\u00efve with BODY=8BITMIME\r\n',
                   mail_options=['BODY=8BITMIME'])
            dsns = wait_dsn(d, count=2)
            self.assertTrue(any('hal@seven.test' in dsn_text(m) and
                                '5.6.3' in dsn_text(m) for m in dsns))
            self.assertEqual(peer.messages, [])
            # 7-bit, even when declared 8BITMIME: delivered, without BODY=
            submit(d, 'ida@seven.test', subject='plain',
                   body='plain ASCII\r\n', mail_options=['BODY=8BITMIME'])
            got = peer.handler.wait(1, timeout=15)[0]
            self.assertEqual(got.rcpt_tos, ['ida@seven.test'])
            self.assertNotIn('BODY=8BITMIME', got.mail_options)
            self.assertIn(b'plain ASCII', got.content)
            self.assertEqual(len(peer.messages), 1)


if __name__ == '__main__':
    unittest.main(verbosity=2)
