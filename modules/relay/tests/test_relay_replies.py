#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""relay: peers whose replies break RFC 5321 4.2. A reply code outside
2xx-5xx or a multi-line reply whose lines carry different codes is a
protocol error: a temporary failure, never a verdict (no bounce, no
"delivered"), and after the final dot no second host gets the message at
once. An enhanced status code of another class than the reply code is
text, not a status. An ORCPT of 400 characters goes to the next hop
whole. The misbehaving peers are scripted SMTP servers on asyncio."""

import asyncio
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaycommon import (ALICE, Peer, RelayTestCase,  # noqa: E402
                         dsn_text, relay_daemon, submit, wait_dsn,
                         wait_for)


RECORDS = {
    # the best MX answers RCPT with 650, the second one works
    'range.test': {'MX': [(10, 'mx1.range.test'), (20, 'mx2.range.test')]},
    'mx1.range.test': {'A': '127.0.0.2'},
    'mx2.range.test': {'A': '127.0.0.3'},
    # RCPT: "550-" then "250 "
    'mixed.test': {'MX': [(10, 'mx.mixed.test')]},
    'mx.mixed.test': {'A': '127.0.0.4'},
    # the reply to the final dot is "250-" then "550 "; a second MX
    'dot.test': {'MX': [(10, 'mx1.dot.test'), (20, 'mx2.dot.test')]},
    'mx1.dot.test': {'A': '127.0.0.5'},
    'mx2.dot.test': {'A': '127.0.0.6'},
    # RCPT: 550 with a 2.x.x enhanced code
    'esc.test': {'MX': [(10, 'mx.esc.test')]},
    'mx.esc.test': {'A': '127.0.0.7'},
    # a well-behaved peer offering DSN
    'orcpt.test': {'MX': [(10, 'mx.orcpt.test')]},
    'mx.orcpt.test': {'A': '127.0.0.8'},
}

DEFAULT = {
    'greeting': b'220 script.test ESMTP\r\n',
    'EHLO': b'250-script.test\r\n250-PIPELINING\r\n250-DSN\r\n'
            b'250 8BITMIME\r\n',
    'HELO': b'250 script.test\r\n',
    'MAIL': b'250 2.1.0 ok\r\n',
    'RCPT': b'250 2.1.5 ok\r\n',
    'DATA': b'354 go ahead\r\n',
    'DOT': b'250 2.0.0 queued\r\n',
    'RSET': b'250 2.0.0 ok\r\n',
    'NOOP': b'250 2.0.0 ok\r\n',
    'QUIT': b'221 2.0.0 bye\r\n',
}


class ScriptPeer:
    """An SMTP peer on its own asyncio loop (in a thread) that answers each
    command with the raw bytes its script gives for the verb (DOT: the
    reply to the end of data), however malformed. Records the command
    lines and the number of messages whose data it read."""

    def __init__(self, host, port, **replies):
        self.host, self.port = host, port
        self.replies = dict(DEFAULT, **replies)
        self.lines = []
        self.messages = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever,
                                       daemon=True)
        self.server = None

    def __enter__(self):
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self.serve, self.host, self.port,
                                 reuse_address=True),
            self.loop).result(10)
        return self

    def __exit__(self, *exc):
        async def close():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        return False

    async def serve(self, reader, writer):
        try:
            writer.write(self.replies['greeting'])
            await writer.drain()
            while True:
                line = await asyncio.wait_for(reader.readline(), 30)
                if not line:
                    break
                text = line.decode('ascii', 'replace').rstrip('\r\n')
                self.lines.append(text)
                verb = text.split(' ', 1)[0].upper()
                if verb == 'DATA':
                    writer.write(self.replies['DATA'])
                    await writer.drain()
                    while True:
                        data = await asyncio.wait_for(reader.readline(), 30)
                        if not data:
                            return
                        if data == b'.\r\n':
                            break
                    self.messages += 1
                    writer.write(self.replies['DOT'])
                elif verb == 'QUIT':
                    writer.write(self.replies['QUIT'])
                    await writer.drain()
                    break
                else:
                    writer.write(self.replies.get(
                        verb, b'502 5.5.2 unknown command\r\n'))
                await writer.drain()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def rcpt_lines(self):
        return [ln for ln in self.lines if ln.upper().startswith('RCPT')]


class RelayRepliesTest(RelayTestCase):
    RECORDS = RECORDS

    def daemon(self, **relay):
        return relay_daemon(self.dns, self.conf(**relay))

    def assert_deferred(self, d, rcpt, peer):
        d.wait_log(r'to=<%s> deferred: host %s sent a malformed reply'
                   % (rcpt.replace('.', r'\.'), peer.replace('.', r'\.')
                      .replace('[', r'\[').replace(']', r'\]')), timeout=20)
        out = d.ctl('queue', 'list').stdout
        self.assertRegex(out, r'deferred\s+<%s>' % rcpt.replace('.', r'\.'))
        # a protocol error is no verdict: no bounce
        time.sleep(1)
        self.assertEqual(d.maildir_files(ALICE), [])

    def test_reply_code_out_of_range_is_a_protocol_error(self):
        # 650 is no reply code: not a failure of the recipient (which
        # would keep the mail on this host), the next MX gets it
        with ScriptPeer('127.0.0.2', self.port,
                        RCPT=b'650 5.1.1 what is this\r\n') as mx1, \
                Peer('127.0.0.3', self.port, 'mx2.range.test') as mx2, \
                self.daemon() as d:
            d.start()
            submit(d, 'amy@range.test')
            got = mx2.handler.wait(1, timeout=20)[0]
            self.assertEqual(got.rcpt_tos, ['amy@range.test'])
            self.assertEqual(len(mx1.rcpt_lines()), 1, mx1.lines)
            self.assertEqual(mx1.messages, 0)
            self.assertIn('mx1.range.test[127.0.0.2] sent a malformed '
                          'reply', d.log_text())
            # the reply itself is never taken as the recipient's answer
            # (a bare '650' would also match inside a hex queue id)
            self.assertNotIn('650 5.1.1', d.log_text())
            self.assertNotIn('what is this', d.log_text())

    def test_codes_differing_within_a_reply_defer(self):
        # "550-" then "250 ": neither a rejection (bounce) nor a success
        with ScriptPeer('127.0.0.4', self.port,
                        RCPT=b'550-5.1.1 no such user\r\n'
                             b'250 2.1.5 ok after all\r\n') as mx, \
                self.daemon() as d:
            d.start()
            submit(d, 'ben@mixed.test')
            self.assert_deferred(d, 'ben@mixed.test',
                                 'mx.mixed.test[127.0.0.4]')
            self.assertIn('(250 after 550 within one reply)', d.log_text())
            self.assertEqual(mx.messages, 0)
        # a first line outside 2xx-5xx does the same
        with ScriptPeer('127.0.0.4', self.port,
                        RCPT=b'199 2.1.5 sure\r\n') as mx, \
                self.daemon() as d:
            d.start()
            submit(d, 'cat@mixed.test')
            self.assert_deferred(d, 'cat@mixed.test',
                                 'mx.mixed.test[127.0.0.4]')
            self.assertEqual(mx.messages, 0)

    def test_bad_reply_to_the_dot_defers_without_next_host(self):
        # after the dot mx1 may have the message: retry later rather than
        # send a second copy through mx2 now
        with ScriptPeer('127.0.0.5', self.port,
                        DOT=b'250-2.0.0 queued\r\n'
                            b'550 5.7.1 or rather not\r\n') as mx1, \
                Peer('127.0.0.6', self.port, 'mx2.dot.test') as mx2, \
                self.daemon() as d:
            d.start()
            submit(d, 'dora@dot.test')
            self.assert_deferred(d, 'dora@dot.test',
                                 'mx1.dot.test[127.0.0.5]')
            self.assertEqual(mx1.messages, 1)
            self.assertEqual(mx2.messages, [])
            self.assertNotRegex(d.log_text(), r'to=<dora@dot\.test> '
                                r'(sent|delivered)')

    def test_enhanced_code_of_another_class_is_text(self):
        with ScriptPeer('127.0.0.7', self.port,
                        RCPT=b'550 2.1.5 looks fine to me\r\n'), \
                self.daemon() as d:
            d.start()
            submit(d, 'eve@esc.test')
            text = dsn_text(wait_dsn(d, timeout=30)[0])
            self.assertIn('looks fine to me', text)
            self.assertIn('Status: 5.0.0', text)
            self.assertNotIn('Status: 2.1.5', text)

    def test_orcpt_passed_on_whole(self):
        orcpt = 'rfc822;' + 'o' * 400 + '+2Btag@example.org'
        with ScriptPeer('127.0.0.8', self.port) as mx, \
                self.daemon() as d:
            d.start()
            submit(d, 'fay@orcpt.test',
                   rcpt_options=['ORCPT=' + orcpt, 'NOTIFY=FAILURE'])
            wait_for(lambda: mx.messages, 20, 'the message at the peer')
            self.assertEqual(mx.rcpt_lines(),
                             ['RCPT TO:<fay@orcpt.test> NOTIFY=FAILURE '
                              'ORCPT=' + orcpt])


if __name__ == '__main__':
    unittest.main(verbosity=2)
