#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_relay_record_sync - which delivery results are worth an fdatasync,
seen in the real daemon's system calls (strace -f).

A remote next hop that said 250 must never get the message again because
of a crash: the "D" record of a relayed recipient is fdatasync'd before
the queue file is removed. A Maildir copy is found again by its name on a
retry (maildir calls sc_delivery_idempotent), so its "D" record goes to
the file without a sync of its own (or not at all when the message is
removed next), and a message that needed no DSN gets no "B" record: after
its 250 the queue file of a local message is never fdatasync'd (two syncs
per message saved).
"""

import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaycommon import (ALICE, Peer, RelayTestCase,  # noqa: E402
                         relay_daemon, submit, wait_for)
import satchel_harness as h  # noqa: E402

if shutil.which('strace') is None:
    h.skip('strace is needed')
if h.VALGRIND:
    h.skip('the daemon runs under strace here, not valgrind')

RECORDS = {
    'partner.test': {'MX': [(10, 'mx.partner.test')]},
    'mx.partner.test': {'A': '127.0.0.2'},
}
LOCAL, REMOTE = 4, 4

ACTIVE_FD = re.compile(r'^\d+</[^>]*/queue/active/([0-9a-f]{16})>')


def events(path):
    """(call, queue id, args) for the calls on active/ID that returned,
    in the order they returned."""
    out = []
    for ev in h.strace_events(path):
        if ev[0] != 'done' or not re.search(r'\)\s+=\s+\d+', ev[4]):
            continue
        _, _, call, args, _ = ev
        if call in ('unlink', 'unlinkat'):
            q = re.search(r'/queue/active/([0-9a-f]{16})"', args)
        else:
            q = ACTIVE_FD.match(args)
        if q:
            out.append((call, q.group(1), args))
    return out


class RecordSync(RelayTestCase):
    RECORDS = RECORDS

    def test_relayed_results_durable_local_ones_not_synced(self):
        out = tempfile.mkdtemp(prefix='strace-')
        try:
            with Peer('127.0.0.2', self.port, 'mx.partner.test') as peer, \
                    relay_daemon(self.dns, self.conf()) as d:
                trace = h.under_strace(
                    d, out, '-f -qq -y -s 100 -e trace=fdatasync,fsync,'
                    'write,unlink,unlinkat')
                d.start(timeout=60)
                for i in range(LOCAL):
                    submit(d, ALICE, subject='local %d' % i)
                for i in range(REMOTE):
                    submit(d, 'pat%d@partner.test' % i,
                           subject='remote %d' % i)
                d.wait_maildir(ALICE, LOCAL, timeout=60)
                peer.handler.wait(REMOTE, timeout=60)
                wait_for(lambda: not os.listdir(
                    os.path.join(d.state_dir, 'queue', 'active')), 30,
                    'an empty queue')
                h.stop_traced(d)
                # the relay module logs its own line too: once each
                ids = list(dict.fromkeys(re.findall(
                    r'(\S+): to=<([^>]+)> delivered', d.log_text())))
            ev = events(trace)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        local = [q for q, rcpt in ids if rcpt == ALICE]
        remote = [q for q, rcpt in ids if rcpt.endswith('@partner.test')]
        self.assertEqual(len(local), LOCAL, ids)
        self.assertEqual(len(remote), REMOTE, ids)
        for qid in local:
            mine = [(c, a) for c, q, a in ev if q == qid]
            self.assertIn('unlink', [c for c, a in mine], mine)
            self.assertEqual([c for c, a in mine if c == 'fdatasync'], [],
                             '%s: a Maildir delivery synced its queue '
                             'file: %s' % (qid, mine))
        for qid in remote:
            mine = [(c, a) for c, q, a in ev if q == qid]
            calls = [c for c, a in mine]
            wrote = [i for i, (c, a) in enumerate(mine)
                     if c == 'write' and '"D 0 ' in a]
            self.assertTrue(wrote, mine)
            self.assertIn('unlink', calls, mine)
            gone = calls.index('unlink')
            self.assertIn('fdatasync', calls[wrote[0]:gone],
                          '%s: the relayed result was not durable before '
                          'the message was removed: %s' % (qid, mine))


if __name__ == '__main__':
    unittest.main(verbosity=2)
