#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The queue journal (core/queue_journal.c) with the real daemon, a real
SMTP peer (aiosmtpd) and the test DNS server.

A journaled message's file is not synced before its 250: the journal
holds it until the checkpoint. The tests read the journal segments with
their own parser (the format in queue_journal.c's opening comment) and
simulate what a machine crash can leave: files gone from active/ or cut
short (the page cache lost). Checks: (a) every message comes back exactly
once with its exact bytes, and a file that survived keeps its records;
(b) a delivered message is not brought back (its DONE record); (c) a torn
or corrupt journal is ignored and the daemon starts; (d) a message over
the journal's size limit takes the file path and survives kill -9, also
when rewritten at commit (the submission port adds Date and Message-ID);
a small rewritten one is journaled: its new file comes back when lost; (e) half a segment full: the next commit goes to
the other segment and the full one is checkpointed and reset; (f) an
idle daemon checkpoints its records once the oldest is due, with no
commit to do it (the age shortened for the test through
SATCHEL_JOURNAL_AGE_MS).
"""

import glob
import os
import re
import smtplib
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.join(
    os.environ.get('SATCHEL_SRCDIR',
                   os.path.join(os.path.dirname(__file__), '..')),
    'modules', 'relay', 'tests'))

from relaycommon import (ALICE, ALICE_PW, DnsServer, Peer,  # noqa: E402
                         free_port_on, relay_daemon, tls_context, wait_for)

PEER = '127.0.0.7'
RECORDS = {
    'fast.test': {'MX': [(10, 'mx.fast.test')]},
    'mx.fast.test': {'A': PEER},
}
SEG_SIZE = 8 << 20
HDR_SIZE = 4096
ACCEPT, DONE = 1, 2


def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC = _crc_table()


def crc32c(data, crc=0):
    crc ^= 0xffffffff
    for b in data:
        crc = CRC[(crc ^ b) & 0xff] ^ (crc >> 8)
    return crc ^ 0xffffffff


def segment(path):
    """(generation, [(type, id, payload)], end offset) of a journal
    segment's valid records, or None when its header is not valid."""
    with open(path, 'rb') as f:
        img = f.read()
    if len(img) < HDR_SIZE or img[:8] != b'SCJOURN1' or \
            struct.unpack_from('=I', img, 32)[0] != crc32c(img[:32]):
        return None
    gen, nonce = struct.unpack_from('=QQ', img, 16)
    recs, off = [], HDR_SIZE
    while len(img) - off >= 40:
        magic, typ, rnonce = struct.unpack_from('=IIQ', img, off)
        rid = img[off + 16:off + 32]
        plen, crc = struct.unpack_from('=II', img, off + 32)
        if magic != 0x4c4e524a or rnonce != nonce or \
                typ not in (ACCEPT, DONE) or \
                plen > len(img) - off - 40 or \
                crc32c(img[off + 40:off + 40 + plen],
                       crc32c(img[off:off + 36])) != crc:
            break
        recs.append((typ, rid.decode(), img[off + 40:off + 40 + plen]))
        off += 40 + plen
    return gen, recs, off


def journal(d):
    """Every valid record of both segments: {id: payload} of the ACCEPTs
    and the set of DONE ids."""
    acc, done = {}, set()
    for n in (0, 1):
        seg = segment(os.path.join(d.state_dir, 'queue', 'journal.%d' % n))
        if seg is None:
            continue
        for typ, rid, payload in seg[1]:
            if typ == ACCEPT:
                acc[rid] = payload
            else:
                done.add(rid)
    return acc, done


def send(d, rcpt, subject, body, complete=True):
    """Submits one message (AUTH over STARTTLS); its queue id. Without
    Date and Message-ID (complete=False) the submission port adds them
    through the message API: the message is rewritten at commit."""
    msg = ('From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n%s\r\n%s'
           % (ALICE, rcpt, subject, 'Date: Mon, 07 Dec 2026 22:00:00 +0000'
              '\r\nMessage-ID: <%s.%f@client.test>\r\n'
              % (subject.replace(' ', '-'), time.time())
              if complete else '', body))
    with smtplib.SMTP('127.0.0.1', d.port('submission'), timeout=30) as s:
        s.ehlo('client.example.test')
        s.starttls(context=tls_context())
        s.ehlo('client.example.test')
        s.login(ALICE, ALICE_PW)
        s.mail(ALICE)
        s.rcpt(rcpt)
        code, reply = s.data(msg.encode())
    if code != 250:
        raise AssertionError('DATA: %d %r' % (code, reply))
    return re.search(r'queued as ([0-9a-f]{16})', reply.decode()).group(1)


def active(d, qid=None):
    base = os.path.join(d.state_dir, 'queue', 'active')
    return os.path.join(base, qid) if qid else base


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def committed(data):
    """A queue file's bytes up to its END line (and a Q record): what the
    daemon wrote at commit, without the runner's records."""
    m = re.search(rb'\nEND received=\d+\n', data)
    return data[:m.end()] if m else None


class QueueJournal(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer(RECORDS).start()
        cls.port = free_port_on([PEER])

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def daemon(self):
        return relay_daemon(self.dns, {'port': self.port, 'retry': ['1h'],
                                       'connect_timeout': '5s'})

    def wait_deferred(self, d, ids):
        """Every message has its first attempt recorded (a T record)."""
        wait_for(lambda: all(b'\nT ' in read(active(d, i)) for i in ids),
                 timeout=30, what='the deferral records')

    def test_a_lost_files_come_back_from_the_journal(self):
        with Peer(PEER, self.port, 'mx.fast.test', mode='defer') as peer, \
                self.daemon() as d:
            d.start()
            sent = {}
            for i in range(6):
                body = 'journal message %d\r\n' % i + 'line\r\n' * (i * 50)
                sent[send(d, 'bob@fast.test', 'journal %d' % i, body)] = i
            ids = sorted(sent)
            self.wait_deferred(d, ids)
            d.kill9()
            acc, done = journal(d)
            for qid in ids:
                self.assertIn(qid, acc, 'no ACCEPT record for %s' % qid)
                self.assertNotIn(qid, done)
            before = {qid: read(active(d, qid)) for qid in ids}
            for qid in ids:
                # the record holds the file as it was at commit
                self.assertEqual(acc[qid], committed(before[qid]), qid)
            # what a machine crash may leave: two files gone, two cut
            # short, two whole (with the runner's records after END)
            for qid in ids[:2]:
                os.unlink(active(d, qid))
            for qid in ids[2:4]:
                with open(active(d, qid), 'r+b') as f:
                    f.truncate(len(before[qid]) // 2)
            mark = d.log_mark()
            d.restart()
            d.wait_log(r'queue: recovered 4 messages from the journal',
                       since=mark)
            for qid in ids[:4]:
                self.assertTrue(read(active(d, qid)).startswith(
                    committed(before[qid])), qid)
            for qid in ids[4:]:
                self.assertTrue(read(active(d, qid)).startswith(
                    before[qid]), '%s lost its records' % qid)
            listing = d.ctl('queue', 'list').stdout
            for qid in ids:
                self.assertEqual(listing.count(qid), 1, listing)
            # delivered now: each exactly once, byte for byte what was sent
            peer.handler.mode = 'accept'
            d.ctl('queue', 'flush')
            peer.handler.wait(len(ids), timeout=30)
            time.sleep(2)   # time for a second copy to show up
            self.assertEqual(len(peer.messages), len(ids))
            got = sorted(int(re.search(r'journal (\d+)',
                                       m.message()['Subject']).group(1))
                         for m in peer.messages)
            self.assertEqual(got, list(range(6)))
            for m in peer.messages:
                i = int(re.search(r'journal (\d+)',
                                  m.message()['Subject']).group(1))
                self.assertIn(('journal message %d\r\n' % i +
                               'line\r\n' * (i * 50)).encode(),
                              m.content.replace(b'\r\n', b'\n')
                              .replace(b'\n', b'\r\n'))
            wait_for(lambda: os.listdir(active(d)) == [], timeout=15,
                     what='the queue to empty')

    def test_b_delivered_messages_stay_delivered(self):
        n = 10
        with Peer(PEER, self.port, 'mx.fast.test') as peer, \
                self.daemon() as d:
            d.start()
            ids = [send(d, 'bob@fast.test', 'done %d' % i, 'body %d\r\n' % i)
                   for i in range(n)]
            peer.handler.wait(n, timeout=30)
            wait_for(lambda: os.listdir(active(d)) == [], timeout=15,
                     what='the delivered messages to leave active/')
            # no checkpoint yet: the journal still holds their ACCEPTs,
            # and their DONEs say they are gone
            acc, done = journal(d)
            for qid in ids:
                self.assertIn(qid, acc)
                self.assertIn(qid, done)
            d.kill9()
            mark = d.log_mark()
            d.restart()
            time.sleep(3)   # time for a resurrected copy to go out
            self.assertNotIn('recovered', d.log_text()[mark:])
            self.assertEqual(os.listdir(active(d)), [])
            self.assertEqual(len(peer.messages), n, 'a duplicate delivery')

    def test_c_torn_or_corrupt_journal_is_ignored(self):
        with Peer(PEER, self.port, 'mx.fast.test', mode='defer') as peer, \
                self.daemon() as d:
            d.start()
            ids = [send(d, 'bob@fast.test', 'torn %d' % i, 'body %d\r\n' % i)
                   for i in range(3)]
            self.wait_deferred(d, ids)
            d.kill9()
            j0 = os.path.join(d.state_dir, 'queue', 'journal.0')
            j1 = os.path.join(d.state_dir, 'queue', 'journal.1')
            gen, recs, end = segment(j0)
            self.assertEqual(sorted(r[1] for r in recs if r[0] == ACCEPT),
                             sorted(ids))
            before = {qid: read(active(d, qid)) for qid in ids}
            # a torn tail: a record header that promises more than follows,
            # then garbage; the other segment cut short
            with open(j0, 'r+b') as f:
                f.seek(end)
                f.write(struct.pack('=II', 0x4c4e524a, ACCEPT) +
                        os.urandom(4096))
            with open(j1, 'r+b') as f:
                f.truncate(100)
            os.unlink(active(d, ids[0]))
            mark = d.log_mark()
            d.restart()
            d.wait_log(r'journal\.1 has the wrong size', since=mark)
            d.wait_log(r'recovered 1 messages from the journal', since=mark)
            self.assertEqual(os.path.getsize(j1), 8 << 20)
            self.assertTrue(read(active(d, ids[0])).startswith(
                committed(before[ids[0]])))
            for qid in ids:
                self.assertIn(qid, d.ctl('queue', 'list').stdout)
            # a header that is not one at all: taken as empty, made anew
            d.kill9()
            with open(j0, 'r+b') as f:
                f.write(b'garbage!' * 8)
            mark = d.log_mark()
            d.restart()
            d.wait_log(r'journal\.0 has no valid header', since=mark)
            self.assertIsNotNone(segment(j0))
            # and it still takes mail through the journal
            qid = send(d, 'bob@fast.test', 'after', 'after\r\n')
            self.assertIn(qid, journal(d)[0])
            self.assertEqual(len(peer.messages), 0)

    def test_d_big_take_the_file_path_edits_the_journal(self):
        big = ('x' * 998 + '\r\n') * 300        # ~300 KiB: over 64 KiB
        with Peer(PEER, self.port, 'mx.fast.test', mode='defer') as peer, \
                self.daemon() as d:
            d.start()
            qid = send(d, 'bob@fast.test', 'big', big)
            bigedit = send(d, 'bob@fast.test', 'big edited', big,
                           complete=False)
            edited = send(d, 'bob@fast.test', 'edited', 'edited\r\n',
                          complete=False)
            small = send(d, 'bob@fast.test', 'small', 'small\r\n')
            ids = [qid, bigedit, edited, small]
            self.wait_deferred(d, ids)
            d.kill9()
            acc, _ = journal(d)
            self.assertNotIn(qid, acc, 'the big message went to the journal')
            self.assertNotIn(bigedit, acc, 'a big edit went to the journal')
            self.assertIn(edited, acc, 'a small edit missed the journal')
            self.assertIn(small, acc)
            before = {i: read(active(d, i)) for i in ids}
            for i in (bigedit, edited):
                self.assertIn(b'Message-ID: <', before[i])
            # the edit's record holds its new file, not the received one
            self.assertEqual(acc[edited], committed(before[edited]))
            self.assertEqual(glob.glob(os.path.join(
                d.state_dir, 'queue', 'tmp', '*.new')), [])
            # a machine crash that lost the edit's unsynced file
            os.unlink(active(d, edited))
            mark = d.log_mark()
            d.restart()
            d.wait_log(r'queue: recovered 1 messages from the journal',
                       since=mark)
            self.assertTrue(read(active(d, edited)).startswith(
                committed(before[edited])))
            for i in (qid, bigedit, small):
                self.assertEqual(read(active(d, i))[:len(before[i])],
                                 before[i])
            peer.handler.mode = 'accept'
            d.ctl('queue', 'flush')
            peer.handler.wait(4, timeout=30)
            time.sleep(1)
            self.assertEqual(len(peer.messages), 4)
            subjects = sorted(m.message()['Subject'] for m in peer.messages)
            self.assertEqual(subjects, ['big', 'big edited', 'edited',
                                        'small'])
            for m in peer.messages:
                subject = m.message()['Subject']
                if subject.startswith('big'):
                    self.assertIn(b'x' * 998, m.content)
                    self.assertGreater(len(m.content), 300 * 1000)
                if subject.endswith('edited'):
                    self.assertIsNotNone(m.message()['Message-ID'])
                    self.assertIsNotNone(m.message()['Date'])

    def test_e_checkpoint_switches_and_resets(self):
        body = ('y' * 998 + '\r\n') * 60       # ~59 KiB: journaled
        with Peer(PEER, self.port, 'mx.fast.test', mode='defer'), \
                self.daemon() as d:
            d.start()
            j0 = os.path.join(d.state_dir, 'queue', 'journal.0')
            j1 = os.path.join(d.state_dir, 'queue', 'journal.1')
            gen0 = segment(j0)[0]
            ids = []
            # past half of journal.0 (4 MiB): the next commit goes to
            # journal.1 and journal.0 is checkpointed and reset
            for i in range(90):
                ids.append(send(d, 'bob@fast.test', 'ckpt %d' % i, body))
                if segment(j1)[1]:
                    break
            self.assertTrue(segment(j1)[1], 'no switch to journal.1')
            wait_for(lambda: segment(j0)[0] > gen0 and not segment(j0)[1],
                     timeout=30, what='journal.0 checkpointed and reset')
            acc1 = [r[1] for r in segment(j1)[1] if r[0] == ACCEPT]
            self.assertEqual(acc1, ids[-len(acc1):])
            self.assertGreater(len(ids), len(acc1))
            d.kill9()
            mark = d.log_mark()
            d.restart()
            self.assertNotIn('recovered', d.log_text()[mark:])
            listing = d.ctl('queue', 'list').stdout
            for qid in ids:
                self.assertEqual(listing.count(qid), 1, listing)
                self.assertTrue(committed(read(active(d, qid))), qid)

    def test_f_idle_daemon_checkpoints_on_time(self):
        old = os.environ.get('SATCHEL_JOURNAL_AGE_MS')
        os.environ['SATCHEL_JOURNAL_AGE_MS'] = '1000'
        try:
            with Peer(PEER, self.port, 'mx.fast.test', mode='defer'), \
                    self.daemon() as d:
                d.start()
                self._idle_checkpoints(d)
        finally:
            if old is None:
                del os.environ['SATCHEL_JOURNAL_AGE_MS']
            else:
                os.environ['SATCHEL_JOURNAL_AGE_MS'] = old

    def _idle_checkpoints(self, d):
        j = [os.path.join(d.state_dir, 'queue', 'journal.%d' % n)
             for n in (0, 1)]
        for n in (0, 1):
            gen0 = segment(j[n])[0]
            # one commit, then nothing: journal.N holds its ACCEPT until
            # the timer's checkpoint resets it (a new generation, empty)
            # and the next commit goes to the other segment
            t0 = time.monotonic()
            qid = send(d, 'bob@fast.test', 'idle %d' % n, 'idle\r\n')
            accepted = [r[1] for r in segment(j[n])[1] if r[0] == ACCEPT]
            if time.monotonic() - t0 < 0.8:
                self.assertEqual(accepted, [qid])
            wait_for(lambda: segment(j[n])[0] > gen0 and
                     not segment(j[n])[1], timeout=20,
                     what='journal.%d checkpointed while idle' % n)
            self.assertFalse(segment(j[1 - n])[1])
            self.assertTrue(committed(read(active(d, qid))), qid)
        d.kill9()
        mark = d.log_mark()
        d.restart()
        self.assertNotIn('recovered', d.log_text()[mark:])
        self.assertEqual(len(os.listdir(active(d))), 2)


if __name__ == '__main__':
    unittest.main(verbosity=2)
