#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""maildir module: the system calls of a delivery to a Maildir that exists
(issue 15), seen with strace -ff on the real satcheld.

A mailbox's first message makes its Maildir (cur/, new/, tmp/: each mkdir
succeeds); no delivery tries to make it again (before: three mkdir()s per
message, each failing with EEXIST), and no message looks in new/ for an earlier copy
of itself with a stat (publishing never replaces one: RENAME_NOREPLACE says
it is there). cur/ is still looked in, for the copy a POP3 or IMAP client
moved there after a crash lost the queue's record of the delivery: those
stats show that strace sees the module's stats at all.
"""

import os
import re
import shutil
import tempfile
import unittest

import satchel_harness as h

if shutil.which('strace') is None:
    h.skip('strace is needed')
if h.VALGRIND:
    h.skip('the daemon runs under strace here, not valgrind')

ALICE = 'alice@example.test'
MORE = 20

CALL_RE = re.compile(r'^(mkdir|mkdirat|stat|lstat|newfstatat|statx)'
                     r'\((?:AT_FDCWD(?:<[^>]*>)?, |\d+<[^>]*>, )?'
                     r'"([^"]*)".*= (-?\d+)(?: (E[A-Z]+))?')


def message(n):
    return ('From: <x@example.org>\r\nTo: <%s>\r\nSubject: sys %d\r\n'
            'Message-ID: <sys-%d@test>\r\n\r\nbody %d\r\n' % (ALICE, n, n, n))


def calls(trace, box):
    """(syscall, path, result, errno name) of each call on a path in box,
    from strace -ff's file per thread (no call is split in two there)."""
    out = []
    d, base = os.path.split(trace)
    for name in sorted(os.listdir(d)):
        if not name.startswith(base + '.'):
            continue
        with open(os.path.join(d, name), errors='replace') as f:
            for line in f:
                m = CALL_RE.match(line)
                if m and (m.group(2) == box or
                          m.group(2).startswith(box + '/')):
                    out.append((m.group(1), m.group(2)[len(box):],
                                int(m.group(3)), m.group(4)))
    return out


class MaildirSyscalls(unittest.TestCase):

    def test_no_mkdir_and_no_new_stat_for_an_existing_maildir(self):
        out = tempfile.mkdtemp(prefix='strace-')
        try:
            with h.Daemon(users={ALICE: 'secret-password'}) as d:
                trace = h.under_strace(d, out, "-ff -qq -s 1000 "
                                       "-e 'trace=/^mkdir(at)?$,%%stat'")
                d.start(timeout=60)
                box = d.maildir(ALICE)
                with h.smtp(d, timeout=60) as c:
                    c.sendmail('x@example.org', [ALICE], message(0))
                d.wait_maildir(ALICE, 1, timeout=60)
                with h.smtp(d, timeout=60) as c:
                    for n in range(1, MORE + 1):
                        c.sendmail('x@example.org', [ALICE], message(n))
                d.wait_maildir(ALICE, MORE + 1, timeout=60)
                h.stop_traced(d)
            every = calls(trace, box)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        # the first message made the Maildir: strace sees the mkdirs
        mkdirs = [x for x in every if x[0].startswith('mkdir')]
        made = sorted(p for _, p, r, _ in mkdirs if r == 0)
        self.assertEqual(made, ['', '/cur', '/new', '/tmp'], mkdirs)
        # and no delivery tried to make it again
        again = [x for x in mkdirs if x[3] == 'EEXIST']
        self.assertEqual(again, [], '%d mkdir calls failing with EEXIST '
                         'for %d deliveries' % (len(again), MORE + 1))
        # no stat in new/
        in_new = [x for x in every if x[1].startswith('/new/')]
        self.assertEqual(in_new, [], '%d stats in new/ for %d deliveries'
                         % (len(in_new), MORE + 1))
        # cur/ is still searched for a moved copy, three names each
        in_cur = [x for x in every if x[1].startswith('/cur/')]
        self.assertEqual(len(in_cur), 3 * (MORE + 1), every)
        self.assertTrue(all(r == -1 and e == 'ENOENT'
                            for _, _, r, e in in_cur), in_cur)

if __name__ == '__main__':
    unittest.main(verbosity=2)
