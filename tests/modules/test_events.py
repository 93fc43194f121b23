#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The notify-only events helo, mail and rcpt (ABI 1.2), end to end.

fx_events subscribes from the FIRST plugins.d file (05-), before the
router that refuses unknown local recipients: it must still see only what
smtp accepted after the whole chain - the HELO name, the sender, and the
one recipient the router took, not the one it refused - with the fields
the session knows."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'harness'))
from satchel_harness import Daemon, builddir, default_plugins, raw  # noqa

ALICE = 'alice@example.test'


def link_fixture(d, name):
    """Puts the built fixture module into the daemon's module_dir."""
    src = os.path.join(builddir(), 'tests', 'modules', '.libs',
                       name + '.so')
    dst = os.path.join(d.module_dir, name + '.so')
    if not os.path.lexists(dst):
        os.symlink(src, dst)


class EventsTest(unittest.TestCase):
    def test_helo_mail_rcpt_events_after_the_chain(self):
        def plugins(d):
            p = default_plugins(d)
            p['05-fx_events.yaml'] = {
                'module': 'fx_events', 'events': ['helo', 'mail', 'rcpt'],
            }
            return p

        with Daemon(plugins=plugins, users={ALICE: 'pw-alice-1'}) as d:
            link_fixture(d, 'fx_events')
            d.start()
            mark = d.log_mark()
            c = raw(d, 'smtp')
            c.expect(220)
            c.expect(250, 'EHLO client.example.test')
            c.expect(250, 'MAIL FROM:<bob@remote.test>')
            c.expect(550, 'RCPT TO:<nobody@example.test>')
            c.expect(250, 'RCPT TO:<%s>' % ALICE)
            c.expect(250, 'RSET')
            c.expect(221, 'QUIT')
            c.close()
            d.wait_log(r'fx_events rcpt ', since=mark, timeout=10)
            got = [line.split(': fx_events ', 1)[1]
                   for line in d.log_text()[mark:].splitlines()
                   if ': fx_events ' in line]
            self.assertEqual(got, [
                'helo sender=- rcpt=- text=client.example.test user=-',
                'mail sender=bob@remote.test rcpt=- text=- user=-',
                'rcpt sender=bob@remote.test rcpt=%s text=- user=-' % ALICE,
            ])
            self.assertIn('05-fx_events: fx_events helo', d.log_text())


if __name__ == '__main__':
    unittest.main(verbosity=2)
