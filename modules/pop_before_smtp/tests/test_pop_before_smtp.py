#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""pop_before_smtp against the real satcheld (issue 6's "Must show"): from
distinct loopback source addresses, relay is refused with the contract's
550 text before a POP3 login, allowed after a login from that address only,
refused again after the window, kept across a restart and a reload, and
opened by a line in the feed file."""

import os
import re
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.join(
    os.environ.get('SATCHEL_SRCDIR',
                   os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', '..', '..')),
    'modules', 'pop3', 'tests'))

from satchel_harness import Daemon, tls_context  # noqa: E402
from popcommon import (PASSWORD, pop3_plugins, pop_login,  # noqa: E402
                       relay_refusal as refusal)

ALICE = 'alice@example.test'
REMOTE = 'bob@partner.test'


def relay(d, src):
    """RCPT to a remote domain from source address src: (code, text)."""
    with smtplib.SMTP('127.0.0.1', d.port('smtp'), timeout=10,
                      source_address=(src, 0)) as s:
        s.ehlo('client.example.test')
        code, msg = s.mail('someone@example.test')
        assert code == 250, (code, msg)
        code, msg = s.rcpt(REMOTE)
        s.rset()
        return code, msg


def submit(d, src, rcpt=REMOTE):
    """MAIL and RCPT without AUTH on the submission listener (after
    STARTTLS) from src: the (code, text) of MAIL, or of RCPT after a 250."""
    with smtplib.SMTP('127.0.0.1', d.port('submission'), timeout=10,
                      source_address=(src, 0)) as s:
        s.ehlo('client.example.test')
        s.starttls(context=tls_context())
        s.ehlo('client.example.test')
        code, msg = s.mail('someone@example.test')
        if code != 250:
            return code, msg
        code, msg = s.rcpt(rcpt)
        s.rset()
        return code, msg


def pop_session(d, src):
    """A full POP3 login (over STLS) from src, then QUIT."""
    p = pop_login(d, ALICE, source=src)
    p.stat()
    p.quit()


class PopBeforeSmtpTest(unittest.TestCase):
    def assertRefused(self, d, src):
        self.assertEqual(relay(d, src), (550, refusal(src)))

    def assertAllowed(self, d, src):
        code, msg = relay(d, src)
        self.assertEqual(code, 250, msg)

    def test_window(self):
        # The window starts when the daemon sees the login, at the latest
        # at t_logged_in; 8 s leaves room for the checks
        # below on a loaded machine, and the expiry is awaited from the
        # latest possible start.
        with Daemon(plugins=pop3_plugins(window='8s'),
                    users={ALICE: PASSWORD}) as d:
            d.start()
            self.assertRefused(d, '127.0.0.5')
            self.assertRefused(d, '127.0.0.6')
            pop_session(d, '127.0.0.5')
            t_logged_in = time.monotonic()
            self.assertAllowed(d, '127.0.0.5')
            self.assertRefused(d, '127.0.0.6')
            d.wait_log(r'pop_before_smtp: relay allowed for 127\.0\.0\.5 '
                       r'to bob@partner\.test')
            # a failed POP3 login opens nothing
            try:
                pop_login(d, ALICE, password='wrong-password',
                          source='127.0.0.6')
                self.fail('wrong password accepted')
            except Exception as e:  # poplib.error_proto
                self.assertIn(b'[AUTH]', e.args[0])
            self.assertRefused(d, '127.0.0.6')
            delay = t_logged_in + 8.5 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.assertRefused(d, '127.0.0.5')

    def test_restart_reload_and_feed(self):
        def plugins(d):
            return pop3_plugins(window='1h',
                                feed=os.path.join(d.tmp, 'feed.log'))(d)
        with Daemon(plugins=plugins, users={ALICE: PASSWORD}) as d:
            feed = os.path.join(d.tmp, 'feed.log')
            with open(feed, 'w') as f:
                f.write('127.0.0.9\n')      # old lines do not count
            os.chmod(feed, 0o644)
            d.start()
            self.assertRefused(d, '127.0.0.9')
            # login, then restart at once: the table was saved (the
            # debounced write is flushed at shutdown)
            pop_session(d, '127.0.0.5')
            d.restart()
            self.assertAllowed(d, '127.0.0.5')
            self.assertRefused(d, '127.0.0.6')
            table = os.path.join(d.state_dir, 'modules', 'pop_before_smtp',
                                 'table')
            with open(table) as f:
                self.assertIn('127.0.0.5 ', f.read())
            # a reload keeps it too
            d.reload()
            self.assertAllowed(d, '127.0.0.5')
            # the feed: a line appended by another server opens that IP
            self.assertRefused(d, '127.0.0.7')
            with open(feed, 'a') as f:
                f.write('127.0.0.7\n')
            deadline = time.monotonic() + 5
            while relay(d, '127.0.0.7')[0] != 250:
                self.assertLess(time.monotonic(), deadline,
                                'feed line not picked up')
                time.sleep(0.2)
            self.assertRefused(d, '127.0.0.8')
            # rotation: a new, shorter file is read from its start
            os.rename(feed, feed + '.1')
            with open(feed, 'w') as f:
                f.write('127.0.0.8\n')
            deadline = time.monotonic() + 5
            while relay(d, '127.0.0.8')[0] != 250:
                self.assertLess(time.monotonic(), deadline,
                                'rotated feed not picked up')
                time.sleep(0.2)
            self.assertRefused(d, '127.0.0.6')

    def test_listeners(self):
        """`listeners` (issue 13 item 4): by default mx only, so a
        submission listener still wants AUTH after a POP3 login; with
        [mx, submission] the login lets the client send there without
        AUTH (to remote and local recipients); with [submission] mx
        relaying stays refused. The 250 names the module and the login."""
        def plugins(listeners):
            def f(d):
                p = pop3_plugins(window='1h')(d)
                if listeners is not None:
                    p['45-pop_before_smtp.yaml']['listeners'] = listeners
                return p
            return f
        auth_required = (530, b'5.7.0 Authentication required')
        allowed = re.compile(r'2\.1\.5 Ok, relay allowed by pop_before_smtp '
                             r'for 127\.0\.0\.5 \(POP login at '
                             r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$')
        with Daemon(plugins=plugins(None), users={ALICE: PASSWORD}) as d:
            d.start()
            pop_session(d, '127.0.0.5')
            code, msg = relay(d, '127.0.0.5')
            self.assertEqual(code, 250, msg)
            self.assertRegex(msg.decode(), allowed)
            self.assertEqual(submit(d, '127.0.0.5'), auth_required)
        with Daemon(plugins=plugins(['mx', 'submission']),
                    users={ALICE: PASSWORD}) as d:
            d.start()
            self.assertEqual(submit(d, '127.0.0.5'), auth_required)
            pop_session(d, '127.0.0.5')
            code, msg = submit(d, '127.0.0.5')
            self.assertEqual(code, 250, msg)
            self.assertRegex(msg.decode(), allowed)
            self.assertEqual(submit(d, '127.0.0.5', ALICE),
                             (250, b'2.1.5 Ok'))
            self.assertEqual(submit(d, '127.0.0.6'), auth_required)
            self.assertEqual(relay(d, '127.0.0.5')[0], 250)
            d.wait_log(r'smtp: submission without AUTH from 127\.0\.0\.5: '
                       r'relay allowed by pop_before_smtp')
        with Daemon(plugins=plugins(['submission']),
                    users={ALICE: PASSWORD}) as d:
            d.start()
            pop_session(d, '127.0.0.5')
            self.assertRefused(d, '127.0.0.5')
            self.assertEqual(submit(d, '127.0.0.5')[0], 250)
        # a bad mode is a config error
        with Daemon(plugins=plugins(['mx', 'smtps']),
                    users={ALICE: PASSWORD}) as d:
            with self.assertRaises(AssertionError) as cm:
                d.start()
            self.assertIn('listeners: each must be mx or submission',
                          str(cm.exception))


if __name__ == '__main__':
    unittest.main(verbosity=2)
