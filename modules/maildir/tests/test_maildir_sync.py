#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_maildir_sync - a Maildir copy is durable before the queue lets go
of the message, with the fsyncs of new/ shared by deliveries that run at
the same time (maildir_dirsync.c), seen in the real daemon's system calls
(strace -f).

Many sessions deliver to one mailbox at once. For every copy renamed into
new/ (its name carries the queue id), an fsync of new/ must have begun
after that rename returned and returned before the message's queue file
was removed - a shared sync that began before the rename would not cover
it. How many syncs were shared is the benchmark's business (bench/), not a
timed test's; the log line below only reports it.
"""

import os
import re
import shutil
import tempfile
import threading
import unittest

import satchel_harness as h

if shutil.which('strace') is None:
    h.skip('strace is needed')
if h.VALGRIND:
    h.skip('the daemon runs under strace here, not valgrind')

ALICE = 'alice@example.test'
SESSIONS, PER = 12, 4

NEW_FD = re.compile(r'^\d+</[^>]*/alice/new>')


def events(path):
    """('rename', qid) when a copy's rename into new/ returned,
    ('sync_begin', n) / ('sync_done', n) for fsyncs of new/,
    ('unlink', qid) when the queue file went - in order."""
    out = []
    for ev in h.strace_events(path):
        if ev[0] == 'begin':
            if ev[2] == 'fsync' and NEW_FD.match(ev[3]):
                out.append(('sync_begin', ev[1]))
            continue
        _, n, call, args, rest = ev
        if not re.search(r'\)\s+=\s+0', rest):
            continue
        if call in ('rename', 'renameat', 'renameat2', 'link', 'linkat'):
            q = re.search(r'/alice/new/[^"]*\.Q([0-9a-f]{16})R', args)
            if q:
                out.append(('rename', q.group(1)))
        elif call == 'fsync' and NEW_FD.match(args):
            out.append(('sync_done', n))
        elif call in ('unlink', 'unlinkat'):
            q = re.search(r'/queue/active/([0-9a-f]{16})"', args)
            if q:
                out.append(('unlink', q.group(1)))
    return out


class MaildirSync(unittest.TestCase):
    def test_copy_durable_before_the_queue_lets_go(self):
        out = tempfile.mkdtemp(prefix='strace-')
        try:
            with h.Daemon(users={ALICE: 'secret-password'}) as d:
                trace = h.under_strace(
                    d, out, '-f -qq -y -s 300 -e trace=fsync,rename,'
                    'renameat,renameat2,link,linkat,unlink,unlinkat')
                d.start(timeout=60)
                go = threading.Barrier(SESSIONS)

                def send(n):
                    c = h.smtp(d, timeout=60)
                    c.ehlo('sync%d.example' % n)
                    go.wait(60)
                    for i in range(PER):
                        c.sendmail('x@example.org', [ALICE],
                                   b'Subject: sync\r\n\r\nbody\r\n')
                    c.quit()

                errors = h.in_parallel(send, SESSIONS, timeout=120)
                self.assertEqual(errors, [])
                d.wait_maildir(ALICE, SESSIONS * PER, timeout=60)
                active = os.path.join(d.state_dir, 'queue', 'active')
                deadline = 600
                while os.listdir(active) and deadline > 0:
                    threading.Event().wait(0.1)
                    deadline -= 1
                self.assertEqual(os.listdir(active), [])
                h.stop_traced(d)
            ev = events(trace)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        renamed = [q for k, q in ev if k == 'rename']
        self.assertEqual(len(set(renamed)), SESSIONS * PER, ev[:40])
        began = {v: i for i, (k, v) in enumerate(ev) if k == 'sync_begin'}
        for qid in set(renamed):
            at = ev.index(('rename', qid))
            self.assertIn(('unlink', qid), ev[at:],
                          '%s: its queue file was not removed after the '
                          'copy' % qid)
            gone = ev.index(('unlink', qid), at)
            self.assertTrue(any(k == 'sync_done' and began[v] > at
                                for k, v in ev[at:gone]),
                            '%s: the queue let go of it before an fsync of '
                            'new/ that began after its rename' % qid)
        syncs = sum(1 for k, v in ev if k == 'sync_done')
        print('%d copies, %d fsyncs of new/' % (len(set(renamed)), syncs))


if __name__ == '__main__':
    unittest.main(verbosity=2)
