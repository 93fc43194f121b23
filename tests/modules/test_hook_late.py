#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A hook answer that comes after hook_timeout, end to end.

fx_hook answers HELO 1.5 s late; the instance's hook_timeout is 0.5 s, so
the client gets 451 4.4.3 first, then quits: by the time the module
answers, its chain has ended and its session is freed. The module must
then see its call cancelled, with no session and no argument (it logs
what it sees, reading the session's id if it got one), and its
sc_hook_done must read nothing of the freed session - the sanitizer build
reports any such read (the harness fails on a report), the plain build
would print garbage or crash."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'harness'))
from satchel_harness import Daemon, builddir, default_plugins, raw  # noqa


def link_fixture(d, name):
    """Puts the built fixture module into the daemon's module_dir."""
    src = os.path.join(builddir(), 'tests', 'modules', '.libs',
                       name + '.so')
    dst = os.path.join(d.module_dir, name + '.so')
    if not os.path.lexists(dst):
        os.symlink(src, dst)


class HookLateTest(unittest.TestCase):
    def test_late_answer_after_timeout_and_close(self):
        def plugins(d):
            p = default_plugins(d)
            p['45-fx_hook.yaml'] = {
                'module': 'fx_hook', 'hooks': ['helo'], 'result': 'ok',
                'late_ms': 1500, 'hook_timeout': '500ms',
            }
            return p

        with Daemon(plugins=plugins) as d:
            link_fixture(d, 'fx_hook')
            d.start()
            c = raw(d, 'smtp')
            c.expect(220)
            text = c.expect(451, 'EHLO client.example.test')
            self.assertIn('4.4.3', text)
            c.expect(221, 'QUIT')
            self.assertTrue(c.closed())
            c.close()
            mark = d.log_mark()
            m = d.wait_log(r'fx_hook 45-fx_hook: late answer to helo: '
                           r'(.*)\n', since=mark, timeout=10)
            self.assertEqual(m.group(1),
                             'cancelled=yes session=none arg=none')
            # The daemon serves on (and a timely answer still counts).
            c = raw(d, 'smtp')
            c.expect(220)
            c.expect(221, 'QUIT')
            c.close()
            self.assertTrue(d.running())


if __name__ == '__main__':
    unittest.main(verbosity=2)
