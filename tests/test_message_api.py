#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The message API (satchel/message.h, issue 12) through a third-party
module: tests/sdk/msgedit.c, built out of tree against the headers of a
`make install` into a temporary prefix, edits messages in DATA_POST. The
real satcheld stores them; the Maildir copy and what the relay hands a real
SMTP peer (aiosmtpd) must show every edit exactly once, byte for byte, for
DATA and for BDAT. Also: chained modules see each other's edits, an
asynchronous (PENDING) edit, quarantine (kept, listed by satchelctl queue,
not delivered), a message left without recipients (discarded), and a
session that closes while the hook is PENDING (cancelled cleanly: ASan/
the harness check the daemon at stop)."""

import base64
import os
import re
import shutil
import subprocess
import sys
import socket
import struct
import tempfile
import time
import unittest

from satchel_harness import builddir, raw, skip, srcdir

sys.path.insert(0, os.path.join(srcdir(), 'modules', 'relay', 'tests'))
from relaycommon import (ALICE, ALICE_PW, Peer, RelayTestCase,  # noqa: E402
                         relay_daemon, wait_for)

CC = os.environ.get('CC', 'cc')
SO = None
TMP = None

RECORDS = {
    'remote.test': {'MX': [(10, 'mx.remote.test')]},
    'mx.remote.test': {'A': '127.0.0.2'},
}

HEAD = ('From: <alice@example.test>\r\n'
        'To: <bob@example.test>, <carol@remote.test>\r\n'
        'Subject: original\r\n subject folded\r\n'
        'X-Remove-Me: one\r\n'
        'X-Keep: kept\r\n'
        'X-Remove-Me: two\r\n')
BODY = 'Original body line 1\r\n.dot line\r\n\r\nlast line\r\n'
NEW_BODY = 'Replaced body.\r\nSecond line.\r\n'


def tx_files(tmpdir):
    """Transaction files in the queue's tmp/: a transaction writes its
    header at once; empty files are spares made ahead (queue_spare.c)."""
    out = []
    for f in os.listdir(tmpdir):
        try:
            if os.path.getsize(os.path.join(tmpdir, f)) > 0:
                out.append(f)
        except FileNotFoundError:
            pass    # gone meanwhile
    return out


def digest(data):
    """msgedit's body sum (unsigned 32-bit s = s*31 + byte)."""
    s = 0
    for b in data:
        s = (s * 31 + b) & 0xffffffff
    return s


def build_module():
    global SO, TMP
    if shutil.which(CC) is None:
        skip('no C compiler (%s)' % CC)
    if shutil.which('pkg-config') is None:
        skip('pkg-config is not installed')
    TMP = tempfile.mkdtemp(prefix='test-msgapi-')
    prefix = os.path.join(TMP, 'prefix')
    r = subprocess.run(['make', '-s', '-C', builddir(), 'install',
                        'prefix=' + prefix], capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        raise AssertionError('make install failed:\n' + r.stdout + r.stderr)
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, 'lib',
                                                        'pkgconfig'))
    cflags = subprocess.run(['pkg-config', '--define-variable=prefix=' +
                             prefix, '--cflags', 'satchel'], env=env,
                            capture_output=True, text=True, check=True,
                            timeout=60).stdout.split()
    # only the installed headers: no -I into the source or build tree
    for f in cflags:
        assert not f.startswith('-I') or f.startswith('-I' + prefix), f
    SO = os.path.join(TMP, 'msgedit.so')
    subprocess.run([CC, '-shared', '-fPIC', '-Wall', '-Wextra', '-Werror'] +
                   cflags + [os.path.join(srcdir(), 'tests', 'sdk',
                                          'msgedit.c'), '-o', SO],
                   check=True, timeout=120)


def split_received(stored):
    """(our Received: field, the rest): field 0 runs to the first CRLF not
    followed by white space."""
    assert stored.startswith(b'Received: from '), stored[:200]
    i = 0
    while True:
        i = stored.index(b'\r\n', i) + 2
        if stored[i:i + 1] not in (b' ', b'\t'):
            return stored[:i], stored[i:]


class MessageApiTest(RelayTestCase):
    RECORDS = RECORDS

    @classmethod
    def setUpClass(cls):
        build_module()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if TMP:
            shutil.rmtree(TMP, ignore_errors=True)

    def daemon(self, edits):
        """edits: {'45-msgedit-a.yaml': {...keys}, ...}"""
        extra = {name: dict({'module': 'msgedit'}, **keys)
                 for name, keys in edits.items()}
        users = {ALICE: ALICE_PW}
        for u in ('bob', 'dave', 'erin', 'bounce'):
            users[u + '@example.test'] = u + '-secret-pw'
        d = relay_daemon(self.dns, self.conf(), users=users, extra=extra)
        os.symlink(SO, os.path.join(d.module_dir, 'msgedit.so'))
        return d

    def send(self, d, rcpts, data, bdat, close_early=False):
        """Submits data (bytes, CRLF) as ALICE over STARTTLS with AUTH,
        by DATA or BDAT; the final reply text (with close_early: the
        client, before the reply, for the caller to close)."""
        c = raw(d, 'submission', timeout=20)
        try:
            c.expect(220)
            c.expect(250, 'EHLO client.example.test')
            c.expect(220, 'STARTTLS')
            c.starttls()
            c.expect(250, 'EHLO client.example.test')
            tok = base64.b64encode(('\0%s\0%s' % (ALICE, ALICE_PW))
                                   .encode()).decode()
            c.expect(235, 'AUTH PLAIN ' + tok)
            c.expect(250, 'MAIL FROM:<%s>' % ALICE)
            for r in rcpts:
                c.expect(250, 'RCPT TO:<%s>' % r)
            if bdat:
                half = len(data) // 2
                c.send(b'BDAT %d\r\n' % half + data[:half])
                c.expect(250)
                c.send(b'BDAT %d LAST\r\n' % (len(data) - half) +
                       data[half:])
            else:
                c.expect(354, 'DATA')
                stuffed = b'\r\n'.join(b'.' + ln if ln.startswith(b'.')
                                       else ln for ln in
                                       data.split(b'\r\n'))
                c.send(stuffed + b'.\r\n')
            if close_early:
                return c
            return c.expect(250)
        finally:
            if not close_early:
                c.close()

    def check_edits(self, bdat):
        a = {'tag': 'a', 'subject_prefix': '[edited] ',
             'delete_header': 'X-Remove-Me', 'replace_body':
             'Replaced body.\nSecond line.\n',
             'drop_rcpt': '<dave@example.test>'}
        # b answers later (PENDING) and must see a's edits
        b = {'tag': 'b', 'pending_ms': '300ms'}
        with Peer('127.0.0.2', self.port, 'mx.remote.test') as peer, \
                self.daemon({'45-msgedit-a.yaml': a,
                             '46-msgedit-b.yaml': b}) as d:
            d.start()
            data = (HEAD + '\r\n' + BODY).encode()
            text = self.send(d, ['bob@example.test', 'carol@remote.test',
                                 'dave@example.test'], data, bdat)
            qid = text.split()[-1]
            got = peer.handler.wait(1)[0]
            self.assertEqual(got.rcpt_tos, ['carol@remote.test'])
            stored = got.content
            received, rest = split_received(stored)
            self.assertIn(('id %s' % qid).encode(), received)
            new_body = (NEW_BODY + 'old body: %d bytes\r\n'
                        % len(BODY)).encode()
            seen_a = ('tag=a; subject="original subject folded"; '
                      'body=%d/%d; rcpts=3; first=Received; '
                      'from=<%s>' % (len(BODY), digest(BODY.encode()),
                                     ALICE))
            seen_b = ('tag=b; subject="[edited] original subject folded"; '
                      'body=%d/%d; rcpts=2; first=Received; from=<%s>'
                      % (len(new_body), digest(new_body), ALICE))
            # a submission listener: smtp added Date: and Message-ID:
            # (RFC 6409 8) before DATA_POST, so the modules' fields come
            # after them
            want = (re.escape('From: <alice@example.test>\r\n'
                              'To: <bob@example.test>, <carol@remote.test>'
                              '\r\n'
                              'Subject: [edited] original subject folded\r\n'
                              'X-Keep: kept\r\n') +
                    r'Date: \w{3}, \d\d \w{3} \d{4} [0-9:]{8} [-+]\d{4}\r\n'
                    r'Message-ID: <\d+\.%s@mail\.example\.test>\r\n'
                    % re.escape(qid) +
                    re.escape('X-Msgedit: %s\r\n'
                              'X-Msgedit: %s\r\n'
                              '\r\n' % (seen_a, seen_b))).encode()
            self.assertRegex(rest, b'^' + want + re.escape(new_body) +
                             b'\\Z')
            # the Maildir copy: maildir's three fields, then the same bytes
            files = d.wait_maildir('bob@example.test', 1, timeout=15)
            with open(files[0], 'rb') as f:
                md = f.read()
            self.assertTrue(md.endswith(stored), md[-400:])
            head = md[:len(md) - len(stored)]
            self.assertTrue(head.startswith(b'Return-Path: <%s>\r\n'
                                            % ALICE.encode()), head)
            self.assertEqual(head.count(b'\r\n'), 3, head)
            # each edit exactly once
            for x in (b'Subject: [edited]', b'X-Msgedit: tag=a', b'X-Msgedit: tag=b',
                      b'Replaced body.', b'Received: from '):
                self.assertEqual(stored.count(x), 1, x)
            self.assertNotIn(b'X-Remove-Me', stored)
            self.assertNotIn(b'Original body', stored)
            # the removed recipient got nothing
            time.sleep(0.5)
            self.assertFalse(os.path.isdir(os.path.join(
                d.maildir('dave@example.test'), 'new')) and
                os.listdir(os.path.join(d.maildir('dave@example.test'),
                                        'new')))
            d.wait_log(r'msgedit b: edited %s' % qid)

    def test_edits_data(self):
        self.check_edits(bdat=False)

    def test_edits_bdat(self):
        self.check_edits(bdat=True)

    def test_sender_add_rcpt_top(self):
        e = {'tag': 'c', 'sender': '<bounce@example.test>',
             'add_rcpt': 'erin@example.test', 'top_header': 'top'}
        with self.daemon({'45-msgedit-c.yaml': e}) as d:
            d.start()
            data = (HEAD + '\r\n' + BODY).encode()
            self.send(d, ['bob@example.test'], data, bdat=False)
            for who in ('bob@example.test', 'erin@example.test'):
                f = d.wait_maildir(who, 1, timeout=15)[0]
                with open(f, 'rb') as fh:
                    md = fh.read()
                self.assertTrue(md.startswith(
                    b'Return-Path: <bounce@example.test>\r\n'), md[:200])
                # the top insert lands above our Received:
                body = md.split(b'\r\n', 3)[3]
                self.assertTrue(body.startswith(
                    b'X-Msgedit-Top: top\r\nReceived: from '), body[:200])
                self.assertTrue(md.endswith(b'\r\n\r\n' + BODY.encode()),
                                md[-200:])

    def test_quarantine(self):
        e = {'tag': 'q', 'quarantine': 'held\nby test'}
        with self.daemon({'45-msgedit-q.yaml': e}) as d:
            d.start()
            data = (HEAD + '\r\n' + BODY).encode()
            qid = self.send(d, ['bob@example.test'], data,
                            bdat=True).split()[-1]
            out = wait_for(lambda: (lambda r: r.stdout if 'quarantined'
                                    in r.stdout else None)(
                d.ctl('queue', 'list')), what='quarantine in the list')
            self.assertIn(qid, out)
            self.assertIn('quarantined: held by test', out)
            d.ctl('queue', 'flush')
            time.sleep(1.5)
            self.assertEqual(d.maildir_files('bob@example.test'), [])
            # still there after a restart (the record is in the file)
            d.restart()
            out = d.ctl('queue', 'list').stdout
            self.assertIn('quarantined: held by test', out)
            self.assertEqual(d.maildir_files('bob@example.test'), [])

    def test_no_recipient_left_discards(self):
        e = {'tag': 'x', 'drop_rcpt': 'bob@example.test'}
        with self.daemon({'45-msgedit-x.yaml': e}) as d:
            d.start()
            data = (HEAD + '\r\n' + BODY).encode()
            text = self.send(d, ['bob@example.test'], data, bdat=False)
            self.assertIn('queued as', text)
            d.wait_log(r'discarded by a module \(no recipient left\)')
            self.assertNotIn('quarantined', d.ctl('queue', 'list').stdout)
            self.assertEqual(d.maildir_files('bob@example.test'), [])

    def test_cancel_while_pending(self):
        """The chain ends without the pending call (its hook_timeout): the
        client gets 451 and the message is dropped at once; the call,
        answered later, is cancelled and its message gone."""
        e = {'tag': 'p', 'pending_ms': '1500ms', 'hook_timeout': '300ms',
             'replace_body': 'never stored\n'}
        for bdat in (False, True):
            with self.daemon({'45-msgedit-p.yaml': e}) as d:
                d.start()
                data = (HEAD + '\r\n' + BODY).encode()
                with self.assertRaisesRegex(AssertionError, 'got 451'):
                    self.send(d, ['bob@example.test'], data, bdat=bdat)
                d.wait_log(r'msgedit p: call cancelled', timeout=15)
                tmpdir = os.path.join(d.state_dir, 'queue', 'tmp')
                wait_for(lambda: tx_files(tmpdir) == [], timeout=5,
                         what='an empty queue tmp/')
                self.assertEqual(d.maildir_files('bob@example.test'), [])
                self.assertIn('the queue is empty',
                              d.ctl('queue', 'list').stdout)

    def test_session_closed_while_pending(self):
        """The client resets the connection while the hook is pending: the
        session closes at once, the pending call is cancelled (it finds
        no message when it answers), nothing is stored, the daemon serves
        on, and ASan builds see no error or leak at stop."""
        e = {'tag': 'p', 'pending_ms': '1500ms', 'replace_body': 'never\n'}
        for bdat in (False, True):
            with self.daemon({'45-msgedit-p.yaml': e}) as d:
                d.start()
                data = (HEAD + '\r\n' + BODY).encode()
                c = self.send(d, ['bob@example.test'], data, bdat=bdat,
                              close_early=True)
                d.wait_log(r'msgedit p: pending', timeout=15)
                # RST, not FIN: a FIN is a half-close that may still read
                # the 250 (smtp answers it); a reset connection cannot
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  struct.pack('ii', 1, 0))
                c.close()
                d.wait_log(r'session closed', timeout=15)
                d.wait_log(r'msgedit p: call cancelled', timeout=15)
                tmpdir = os.path.join(d.state_dir, 'queue', 'tmp')
                wait_for(lambda: tx_files(tmpdir) == [], timeout=5,
                         what='an empty queue tmp/')
                self.assertIn('the queue is empty',
                              d.ctl('queue', 'list').stdout)
                self.assertEqual(d.maildir_files('bob@example.test'), [])
                # the daemon serves on: the next message is edited
                self.send(d, ['bob@example.test'], data, bdat=bdat)
                f = d.wait_maildir('bob@example.test', 1, timeout=15)[0]
                with open(f, 'rb') as fh:
                    self.assertTrue(fh.read().endswith(
                        b'\r\n\r\nnever\r\nold body: %d bytes\r\n'
                        % len(BODY)))


if __name__ == '__main__':
    unittest.main(verbosity=2)
