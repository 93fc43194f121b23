#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""relay with the queue: retry then success, a permanent failure coming
back as an RFC 3464 DSN, a rejected message body, and the satchelctl queue
commands (list, show, flush, delete)."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaycommon import (ALICE, Peer, RelayTestCase,  # noqa: E402
                         dsn_text, relay_daemon, submit, wait_dsn,
                         wait_for)


RECORDS = {
    'partner.test': {'MX': [(10, 'mx.partner.test')]},
    'mx.partner.test': {'A': '127.0.0.2'},
}


def counts(d):
    """(messages, deferred recipients) from satchelctl status"""
    m = re.search(r'queue: (\d+) messages, (\d+) deferred',
                  d.ctl('status').stdout)
    return (int(m.group(1)), int(m.group(2))) if m else None


class RelayQueueTest(RelayTestCase):
    RECORDS = RECORDS
    RETRY = ['2s']


    def test_retry_then_success(self):
        with Peer('127.0.0.2', self.port, 'mx.partner.test',
                  mode='defer_once') as peer, \
                relay_daemon(self.dns, self.conf()) as d:
            d.start()
            submit(d, 'pat@partner.test')
            got = peer.handler.wait(1, timeout=30)[0]
            self.assertEqual(got.rcpt_tos, ['pat@partner.test'])
            self.assertEqual(peer.handler.rcpt_attempts['pat@partner.test'],
                             2)
            self.assertRegex(d.log_text(), r'451 4\.3\.0 try again later')
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_must_show_rejecting_peer_gives_dsn(self):
        with Peer('127.0.0.2', self.port, 'mx.partner.test',
                  mode='reject') as peer, \
                relay_daemon(self.dns, self.conf()) as d:
            d.start()
            submit(d, 'bob@partner.test', subject='will bounce')
            dsn = wait_dsn(d, timeout=30)[0]
            self.assertEqual(dsn.get_content_type(), 'multipart/report')
            self.assertEqual(dsn.get_param('report-type'),
                             'delivery-status')
            types = [p.get_content_type() for p in dsn.walk()]
            self.assertIn('message/delivery-status', types)
            text = dsn_text(dsn)
            self.assertIn('bob@partner.test', text)
            self.assertIn('mx.partner.test[127.0.0.2]', text)
            self.assertIn('550 5.1.1', text)
            self.assertIn('will bounce', text)  # the original headers
            self.assertEqual(peer.messages, [])

    def test_rejected_data_gives_dsn(self):
        with Peer('127.0.0.2', self.port, 'mx.partner.test',
                  mode='reject_data'), \
                relay_daemon(self.dns, self.conf()) as d:
            d.start()
            submit(d, 'quinn@partner.test')
            text = dsn_text(wait_dsn(d, timeout=30)[0])
            self.assertIn('554 5.7.1', text)

    def test_queue_commands(self):
        with Peer('127.0.0.2', self.port, 'mx.partner.test',
                  mode='defer') as peer, \
                relay_daemon(self.dns, self.conf(retry=['1h'])) as d:
            d.start()
            submit(d, 'rose@partner.test')
            wait_for(lambda: peer.handler.rcpt_attempts.get(
                'rose@partner.test'), 15, 'the first attempt')
            out = wait_for(lambda: (lambda r: r if 'rose@partner.test'
                                    in r.stdout else None)(
                d.ctl('queue', 'list')), 10, 'the queue entry')
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn(ALICE, out.stdout)
            qid = re.search(r'queued as (\S+)', d.log_text()).group(1)
            self.assertIn(qid, out.stdout)
            show = d.ctl('queue', 'show', qid)
            self.assertEqual(show.returncode, 0, show.stdout + show.stderr)
            self.assertIn('rose@partner.test', show.stdout)
            # dates people read, not unix seconds (issue 13)
            date = r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}'
            self.assertRegex(show.stdout, r'\n  arrival +%s \(\d+s ago\)\n'
                             % date)
            self.assertRegex(show.stdout, r'deferred +<rose@partner\.test> '
                             r'attempts 1, next try in \d+m \(%s\)' % date)
            # flush: retried now, not in an hour
            before = peer.handler.rcpt_attempts['rose@partner.test']
            fl = d.ctl('queue', 'flush')
            self.assertEqual(fl.returncode, 0, fl.stderr)
            wait_for(lambda: peer.handler.rcpt_attempts[
                'rose@partner.test'] > before, 15, 'a flushed attempt')
            # delete: gone from the list, and no bounce for it
            de = d.ctl('queue', 'delete', qid)
            self.assertEqual(de.returncode, 0, de.stdout + de.stderr)
            wait_for(lambda: 'rose@partner.test' not in
                     d.ctl('queue', 'list').stdout, 10, 'the deletion')
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_deferred_backlog(self):
        """A backlog of deferred messages (the runner keeps them in a
        heap of due times and by id, issue 15): a local message goes
        through beside it, a flush retries every one, a deleted one is
        never tried again."""
        rcpts = ['b%02d@partner.test' % i for i in range(12)]
        with Peer('127.0.0.2', self.port, 'mx.partner.test',
                  mode='defer') as peer, \
                relay_daemon(self.dns, self.conf(retry=['1h'])) as d:
            d.start()
            for r in rcpts:
                submit(d, r)
            tries = peer.handler.rcpt_attempts
            wait_for(lambda: all(tries.get(r) == 1 for r in rcpts), 30,
                     'a first attempt of each')
            wait_for(lambda: counts(d) == (12, 12), 15, 'all 12 deferred')
            submit(d, ALICE, subject='beside the backlog')
            d.wait_maildir(ALICE, count=1, timeout=30)
            # flush: each one due now, each tried once more
            fl = d.ctl('queue', 'flush')
            self.assertEqual(fl.returncode, 0, fl.stderr)
            wait_for(lambda: all(tries.get(r) == 2 for r in rcpts), 30,
                     'a flushed attempt of each')
            # one deleted, the rest flushed again: only those come back
            ids = dict((m.group(2), m.group(1)) for m in re.finditer(
                r'(\S+): to=<(b\d\d@partner\.test)> deferred',
                d.log_text()))
            wait_for(lambda: counts(d) == (12, 12), 15,
                     'all 12 deferred again')
            de = d.ctl('queue', 'delete', ids[rcpts[5]])
            self.assertEqual(de.returncode, 0, de.stdout + de.stderr)
            fl = d.ctl('queue', 'flush')
            self.assertEqual(fl.returncode, 0, fl.stderr)
            others = [r for r in rcpts if r != rcpts[5]]
            wait_for(lambda: all(tries.get(r) == 3 for r in others), 30,
                     'a second flushed attempt of the others')
            wait_for(lambda: counts(d) == (11, 11), 15, '11 deferred')
            self.assertEqual(tries[rcpts[5]], 2)
            self.assertEqual(peer.messages, [])


if __name__ == '__main__':
    unittest.main(verbosity=2)
