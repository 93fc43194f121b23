#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_queue_spare - queue files are made ahead on the thread pool
(core/queue_spare.c): the loop thread, which serves every session, does
not block creating a file for each message; the spares (empty files in
queue/tmp/) are gone after a stop.

Seen in the real daemon's system calls (strace -f): the creations of
queue/tmp/ID files, by thread. satcheld's loop is its main thread (the
thread id equal to the process id).
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
MESSAGES = 40

CREATE = re.compile(r'^(\d+)\s+openat\(AT_FDCWD, "[^"]*/queue/tmp/'
                    r'([0-9a-f]{16})", [^)]*O_CREAT')


class Spares(unittest.TestCase):
    def test_files_made_off_the_loop_and_removed_at_stop(self):
        out = tempfile.mkdtemp(prefix='strace-')
        try:
            with h.Daemon(users={ALICE: 'secret-password'}) as d:
                trace = h.under_strace(d, out, '-f -qq -e trace=openat')
                d.start(timeout=60)
                c = h.smtp(d, timeout=60)
                c.ehlo('spare.example')
                for i in range(MESSAGES):
                    c.sendmail('x@example.org', [ALICE],
                               b'Subject: spare %d\r\n\r\nbody\r\n' % i)
                c.quit()
                d.wait_maildir(ALICE, MESSAGES, timeout=60)
                tmp = os.path.join(d.state_dir, 'queue', 'tmp')
                spares = os.listdir(tmp)
                self.assertTrue(spares, 'no file made ahead in tmp/')
                for f in spares:
                    self.assertEqual(os.path.getsize(os.path.join(tmp, f)),
                                     0, f)
                sp = d.proc.pid
                with open('/proc/%d/task/%d/children' % (sp, sp)) as f:
                    daemon = int(f.read().split()[0])
                h.stop_traced(d)
                self.assertEqual(os.listdir(tmp), [],
                                 'spares left in tmp/ after the stop')
                ids = re.findall(r'queued as ([0-9a-f]{16})', d.log_text())
            by_loop, by_pool = [], []
            with open(trace, errors='replace') as f:
                for line in f:
                    m = CREATE.match(line)
                    if m and m.group(2) in ids:
                        (by_loop if int(m.group(1)) == daemon
                         else by_pool).append(m.group(2))
        finally:
            shutil.rmtree(out, ignore_errors=True)
        self.assertEqual(len(set(ids)), MESSAGES)
        self.assertEqual(len(by_loop) + len(by_pool), MESSAGES)
        # the first message finds none made yet; one at a time, a refill
        # always keeps some ready after that
        self.assertLessEqual(len(by_loop), 2,
                             'the loop created %d of %d queue files itself'
                             % (len(by_loop), MESSAGES))


if __name__ == '__main__':
    unittest.main(verbosity=2)
