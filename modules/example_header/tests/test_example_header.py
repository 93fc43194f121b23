#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""example_header against the real satcheld: the stamp is added once (at
the top, above our Received:, or at the bottom) and a forged one removed,
fields in `remove` go, a message without a required field is refused
with 550 5.6.0, a body containing reject_text (also across the 64 KiB
read chunks, for DATA and BDAT) is refused with 550 5.7.1, status counts."""

import re
import unittest

from satchel_harness import Daemon, raw

BOB = 'bob@example.test'
NEEDLE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE'


def stamp(**keys):
    conf = {'module': 'example_header', 'text': 'checked',
            'remove': ['X-Spam-Flag'], 'reject_text': NEEDLE}
    conf.update(keys)
    return {'55-stamp.yaml': conf}


class ExampleHeaderTest(unittest.TestCase):
    def send(self, d, msg, bdat=False):
        """(code, text) of the final reply."""
        with raw(d) as c:
            c.expect(220)
            c.expect(250, 'EHLO client.example')
            c.expect(250, 'MAIL FROM:<alice@remote.test>')
            c.expect(250, 'RCPT TO:<%s>' % BOB)
            data = msg.encode()
            if bdat:
                c.send(b'BDAT %d LAST\r\n' % len(data) + data)
            else:
                c.expect(354, 'DATA')
                c.send(data.replace(b'\r\n.', b'\r\n..') + b'.\r\n')
            return c.reply()

    def stored(self, d, n=1):
        files = d.wait_maildir(BOB, n, timeout=15)
        with open(files[-1], 'rb') as f:
            return f.read()

    def test_stamp_top_and_forged_removed(self):
        with Daemon(users={BOB: 'bob-secret-pw'},
                    extra_plugins=stamp()) as d:
            d.start()
            msg = ('X-Satchel-Checked: forged\r\nFrom: <alice@remote.test>'
                   '\r\nX-Spam-Flag: NO\r\nSubject: hi\r\n\r\nbody\r\n')
            code, text = self.send(d, msg)
            self.assertEqual(code, 250, text)
            qid = text.split()[-1]
            got = self.stored(d)
            # maildir's three fields, then the stamp above our Received:
            head = got.split(b'\r\n', 3)[3]
            want = ('X-Satchel-Checked: checked (mail.example.test; %s)'
                    '\r\nReceived: from ' % qid).encode()
            self.assertTrue(head.startswith(want), head[:300])
            self.assertEqual(got.count(b'X-Satchel-Checked:'), 1)
            self.assertNotIn(b'forged', got)
            self.assertNotIn(b'X-Spam-Flag', got)
            self.assertTrue(got.endswith(b'From: <alice@remote.test>\r\n'
                                         b'Subject: hi\r\n\r\nbody\r\n'),
                            got[-200:])

    def test_stamp_bottom(self):
        with Daemon(users={BOB: 'bob-secret-pw'},
                    extra_plugins=stamp(position='bottom',
                                        field='X-Scanned-By')) as d:
            d.start()
            msg = 'From: <alice@remote.test>\r\nSubject: hi\r\n\r\nbody\r\n'
            code, text = self.send(d, msg, bdat=True)
            self.assertEqual(code, 250, text)
            got = self.stored(d)
            self.assertRegex(got.decode(), r'Subject: hi\r\nX-Scanned-By: '
                             r'checked \(mail\.example\.test; [0-9a-f]{16}\)'
                             r'\r\n\r\nbody\r\n$')

    def test_refusals(self):
        with Daemon(users={BOB: 'bob-secret-pw'},
                    extra_plugins=stamp()) as d:
            d.start()
            code, text = self.send(d, 'Subject: no from\r\n\r\nbody\r\n')
            self.assertEqual((code, text), (550, '5.6.0 Message lacks a '
                                            'From: field'))
            for bdat in (False, True):
                # the needle straddles the first 64 KiB read of the body
                body = ('y' * 98 + '\r\n') * 655 + 'y' * 26 + NEEDLE + '\r\n'
                self.assertLess(body.index(NEEDLE), 65536)
                self.assertGreater(body.index(NEEDLE) + len(NEEDLE), 65536)
                msg = 'From: <a@remote.test>\r\n\r\n' + body
                code, text = self.send(d, msg, bdat=bdat)
                self.assertEqual((code, text),
                                 (550, '5.7.1 Message content rejected'))
            # a large clean message passes, stamped once
            body = ('z' * 990 + '\r\n') * 300
            code, text = self.send(d, 'From: <a@remote.test>\r\n\r\n' +
                                   body)
            self.assertEqual(code, 250, text)
            got = self.stored(d)
            self.assertTrue(got.endswith(body.encode()))
            self.assertEqual(got.count(b'X-Satchel-Checked:'), 1)
            out = d.ctl('status').stdout
            self.assertTrue(re.search(r'stamped: 1\b', out), out)
            self.assertTrue(re.search(r'refused: 3\b', out), out)


if __name__ == '__main__':
    unittest.main(verbosity=2)
