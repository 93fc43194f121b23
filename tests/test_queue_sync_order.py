#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_queue_sync_order - "250 only once the message is durable", seen in
the system calls of the real daemon (run under strace -f).

A kill -9 (test_smtp_crash) shows that an accepted message is in active/;
only the order of the syncs shows that a crash of the machine could not
lose it. Many sessions at once (so the group commit's batches hold several
messages); for every message that got "250 2.0.0 Ok: queued as ID", in the
daemon's threads, one of the two commit paths:
  the file path (messages over the journal's size limit):
  1. fdatasync of queue/tmp/ID returned,
  2. then the rename of tmp/ID to active/ID returned,
  3. then an fsync of queue/active began and returned,
  4. and only then was the 250 written;
  the journal path (core/queue_journal.c):
  1. a pwrite to queue/journal.N holding ID (its ACCEPT record) returned,
  2. then an fdatasync of that journal.N began and returned,
  3. and only then was the 250 written.
Each session sends small messages and one over the journal's limit, so
both paths are checked; then again with every message edited at commit
(example_header adds its field through the message API): the new file,
tmp/ID.new, takes the same two paths.
"""

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
BIG = 300 * 1024        # over SC_JOURNAL_MAX_FILE (64 KiB): the file path

def events(path):
    """(kind, queue id or None) in the order the calls returned; an fsync
    of active/ gives ('dirsync_begin', n) when it began and
    ('dirsync_done', n) when it returned; a write to a journal segment
    gives ('jwrite', (segment, ids)), an fdatasync of one ('jsync_begin',
    (n, segment)) and ('jsync_done', n)."""
    out = []
    for ev in h.strace_events(path):
        if ev[0] == 'begin':
            _, n, call, args = ev
            j = re.search(r'^\d+</[^>]*/queue/(journal\.\d)>', args)
            if call == 'fsync' and '/queue/active>' in args:
                out.append(('dirsync_begin', n))
            elif call == 'fdatasync' and j:
                out.append(('jsync_begin', (n, j.group(1))))
            continue
        _, n, call, args, rest = ev
        if not re.search(r'\)\s+=\s+(\d+)', rest) or \
                re.search(r'=\s+-1', rest):
            continue
        j = re.search(r'^\d+</[^>]*/queue/(journal\.\d)>', args)
        if call == 'fdatasync' and j:
            out.append(('jsync_done', n))
        elif call == 'pwrite64' and j:
            out.append(('jwrite', (j.group(1), frozenset(
                re.findall(r'(?<![0-9a-f])([0-9a-f]{16})(?![0-9a-f])',
                           args)))))
        elif call == 'fdatasync':
            q = re.search(r'/queue/tmp/([0-9a-f]{16})(?:\.new)?>', args)
            if q:
                out.append(('datasync', q.group(1)))
        elif call in ('rename', 'renameat', 'renameat2'):
            q = re.search(r'/queue/tmp/([0-9a-f]{16})(?:\.new)?".*'
                          r'/queue/active/([0-9a-f]{16})"', args)
            if q and q.group(1) == q.group(2):
                out.append(('rename', q.group(1)))
        elif call == 'fsync' and '/queue/active>' in args:
            out.append(('dirsync_done', n))
        elif call in ('write', 'writev', 'sendmsg', 'sendto') and \
                re.match(r'\d+<(socket|TCP)', args):    # not the log's copy
            for q in re.finditer(r'250 2\.0\.0 Ok: queued as '
                                 r'([0-9a-f]{16})', args):
                out.append(('reply', q.group(1)))
    return out


class SyncOrder(unittest.TestCase):
    def test_250_after_file_or_journal_is_durable(self):
        self.check_order({})

    def test_edited_messages_too(self):
        self.check_order({'55-stamp.yaml': {'module': 'example_header',
                                            'text': 'sync-order'}},
                         edited=True)

    def check_order(self, plugins, edited=False):
        out = tempfile.mkdtemp(prefix='strace-')
        try:
            with h.Daemon(users={ALICE: 'secret-password'},
                          extra_plugins=plugins) as d:
                trace = h.under_strace(
                    d, out, '-f -qq -y -s 1048576 '
                    '-e trace=fdatasync,fsync,rename,renameat,'
                    'renameat2,write,writev,sendmsg,sendto,pwrite64')
                d.start(timeout=60)
                go = threading.Barrier(SESSIONS)

                def send(n):
                    c = h.smtp(d, timeout=60)
                    c.ehlo('order%d.example' % n)
                    go.wait(60)
                    for i in range(PER):
                        c.sendmail('x@example.org', [ALICE],
                                   b'From: <x@example.org>\r\n'
                                   b'Subject: order\r\n\r\nbody\r\n')
                    c.sendmail('x@example.org', [ALICE],
                               b'From: <x@example.org>\r\n'
                               b'Subject: big\r\n\r\n' +
                               (b'x' * 998 + b'\r\n') * (BIG // 1000))
                    c.quit()

                errors = h.in_parallel(send, SESSIONS, timeout=120)
                self.assertEqual(errors, [])
                d.wait_maildir(ALICE, SESSIONS * (PER + 1), timeout=60)
                if edited:      # they were edited indeed
                    files = d.wait_maildir(ALICE, SESSIONS * (PER + 1))
                    for f in files:
                        with open(f, 'rb') as m:
                            self.assertIn(b'X-Satchel-Checked: sync-order',
                                          m.read(), f)
                h.stop_traced(d)
            ev = events(trace)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        replies = [i for k, i in ev if k == 'reply']
        self.assertEqual(len(replies), SESSIONS * (PER + 1),
                         [e for e in ev if e[0] != 'jwrite'][:50])
        began, jbegan = {}, {}
        for pos, (k, v) in enumerate(ev):
            if k == 'dirsync_begin':
                began[v] = pos
            elif k == 'jsync_begin':
                jbegan[v[0]] = (pos, v[1])

        def file_path(rid, at):
            synced = ev.index(('datasync', rid)) \
                if ('datasync', rid) in ev[:at] else None
            if synced is None:
                return '250 before its fdatasync'
            if ('rename', rid) not in ev[synced:at]:
                return 'no rename between fdatasync and 250'
            ren = ev.index(('rename', rid), synced)
            if not any(k == 'dirsync_done' and began[v] > ren
                       for k, v in ev[ren:at]):
                return ('250 before an fsync of active/ that began after '
                        'its rename had returned')
            return None

        def journal_path(rid, at):
            for w in range(at - 1, -1, -1):
                k, v = ev[w]
                if k == 'jwrite' and rid in v[1]:
                    break
            else:
                return 'no journal write holding it before the 250'
            if any(k == 'jsync_done' and jbegan[v][0] > w and
                   jbegan[v][1] == ev[w][1][0] for k, v in ev[w:at]):
                return None
            return ('250 before an fdatasync of %s that began after its '
                    'journal write had returned' % ev[w][1][0])

        paths = {'file': 0, 'journal': 0}
        for rid in replies:
            at = ev.index(('reply', rid))
            f, j = file_path(rid, at), journal_path(rid, at)
            self.assertTrue(f is None or j is None,
                            '%s: file path: %s; journal path: %s'
                            % (rid, f, j))
            paths['file' if f is None else 'journal'] += 1
        # the big ones take the file path, the small ones the journal
        self.assertEqual(paths, {'file': SESSIONS,
                                 'journal': SESSIONS * PER}, paths)


if __name__ == '__main__':
    unittest.main(verbosity=2)
