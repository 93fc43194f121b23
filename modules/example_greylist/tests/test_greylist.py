#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""example_greylist against the real satcheld: the first attempt of a
triple is deferred with 451 4.7.1, a retry after `delay` is accepted and
delivered, the table stays within max_entries, status shows the counters."""

import time
import unittest

from satchel_harness import Daemon, smtp

ALICE = 'alice@example.test'


def greylist(file='35-greylist.yaml', **keys):
    conf = {'module': 'example_greylist', 'delay': '2s'}
    conf.update(keys)
    return {file: conf}


class GreylistTest(unittest.TestCase):
    def rcpt(self, d, sender, rcpt=ALICE):
        with smtp(d) as c:
            c.ehlo('client.example')
            code, _ = c.mail(sender)
            self.assertEqual(code, 250)
            return c.rcpt(rcpt)

    def test_defer_then_accept(self):
        with Daemon(users={ALICE: 'secret-password'},
                    extra_plugins=greylist()) as d:
            d.start()
            first = time.monotonic()
            code, text = self.rcpt(d, 'bob@remote.test')
            self.assertEqual(code, 451, text)
            self.assertRegex(text.decode(),
                             r'^4\.7\.1 Greylisted, please try again in '
                             r'[12] seconds$')
            # too early: still deferred
            code, _ = self.rcpt(d, 'bob@remote.test')
            self.assertEqual(code, 451)
            # another sender is another triple
            code, _ = self.rcpt(d, 'carol@remote.test')
            self.assertEqual(code, 451)

            time.sleep(max(0, 2.2 - (time.monotonic() - first)))
            with smtp(d) as c:
                c.ehlo('client.example')
                c.mail('bob@remote.test')
                code, text = c.rcpt(ALICE)
                self.assertEqual(code, 250, text)
                code, _ = c.data(b'Subject: hi\r\n\r\ngreylisted once\r\n')
                self.assertEqual(code, 250)
            files = d.wait_maildir(ALICE, 1)
            with open(files[0], 'rb') as f:
                self.assertIn(b'greylisted once', f.read())
            # a triple that passed is known: accepted at once
            code, _ = self.rcpt(d, 'bob@remote.test')
            self.assertEqual(code, 250)

            st = d.ctl('status')
            self.assertEqual(st.returncode, 0, st.stderr)
            self.assertIn('35-greylist:', st.stdout)
            self.assertIn('deferred: 3', st.stdout)
            self.assertIn('passed: 1', st.stdout)
            mods = d.ctl('modules')
            self.assertRegex(mods.stdout, r'instance 35-greylist: hooks rcpt')

    def test_bounded_and_unknown_users(self):
        with Daemon(users={ALICE: 'secret-password'},
                    extra_plugins=greylist(max_entries=3, delay='1h')) as d:
            d.start()
            for i in range(10):
                code, _ = self.rcpt(d, 'spammer%d@remote.test' % i)
                self.assertEqual(code, 451)
            st = d.ctl('status').stdout
            self.assertIn('entries: 3 of 3', st)
            self.assertIn('evicted: 7', st)
            # authenticated or relay-allowed sessions are never greylisted
            # (covered by the module code); unknown users still meet the
            # router after greylisting passes - not reached with delay 1h
            self.assertTrue(d.running())

    def test_after_the_router_in_file_order(self):
        # The router (40-) ends the chain with OK for a known user; the
        # greylister's file sorts after it and must still run first (it
        # registers in the policy phase).
        with Daemon(users={ALICE: 'secret-password'},
                    extra_plugins=greylist(file='70-greylist.yaml')) as d:
            d.start()
            code, text = self.rcpt(d, 'bob@remote.test')
            self.assertEqual(code, 451, text)
            self.assertRegex(text.decode(), r'^4\.7\.1 Greylisted')

    def test_bad_config(self):
        with Daemon(extra_plugins=greylist(max_entries=0)) as d:
            d.write_config()
            r = d.ctl('check')
            # keys are valid; the module's own check runs at start
            self.assertEqual(r.returncode, 0, r.stderr)
            with self.assertRaises(Exception) as cm:
                d.start(timeout=10)
            self.assertIn('max_entries must be at least 1', str(cm.exception))


if __name__ == '__main__':
    unittest.main()
