#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""maildir module: local delivery end to end with the real satcheld.

A message sent over SMTP must land in the recipient's Maildir new/ with
Return-Path:, Delivered-To: and Received: prepended in that order, the queued
message after them byte for byte, a unique name with ,S=<file size>, nothing
left in tmp/, and mode 0600 files in 0700 directories. Also: the mailboxes
list, unknown users refused at RCPT, a 3 MiB message, bad path templates, and
a mailbox that cannot be created (deferred, no partial file, delivered once
the fault is gone).
"""

import os
import re
import smtplib
import stat
import subprocess
import sys
import time
import unittest

from satchel_harness import Daemon, default_plugins, smtp

ALICE = 'alice@example.test'
BOB = 'bob@example.test'
USERS = {ALICE: 'alice-secret-pw', BOB: 'bob-secret-pw'}

# <arrival>.Q<queue id>R<recipient hash>.<host>,S=<size>: derived from the
# queue id and recipient, so a redelivery after a crash finds its copy.
NAME_RE = re.compile(r'^(\d+)\.Q([0-9A-Za-z_]+)R([0-9a-f]{8})'
                     r'\.mail\.example\.test,S=(\d+)$')


def message(subject, body):
    """An RFC 5322 message with CRLF line ends, as the client sends it."""
    return ('From: Bob <%s>\r\nTo: Alice <%s>\r\nSubject: %s\r\n'
            'Message-ID: <%s@test>\r\n\r\n' % (BOB, ALICE, subject,
                                                 subject)).encode() + body


def send(d, sender, rcpts, data):
    with smtp(d) as s:
        s.ehlo('client.test')
        refused = s.sendmail(sender, rcpts, data)
        assert refused == {}, refused


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def split_headers(raw):
    """The first three header lines and the rest."""
    lines = raw.split(b'\r\n', 3)
    return lines[:3], lines[3]


def blocked_plugins(d):
    """The default plugins with every Maildir under <state>/blocked."""
    p = default_plugins(d)
    p['60-maildir.yaml']['path'] = os.path.join(
        d.state_dir, 'blocked', '%d', '%u')
    return p


def send_blocked(d):
    """A file where <state>/blocked should be a directory: a message to
    ALICE, sent, is deferred (451) as its Maildir cannot be created."""
    with open(os.path.join(d.state_dir, 'blocked'), 'w') as f:
        f.write('a file where a directory should be\n')
    d.start()
    send(d, BOB, [ALICE], message('later', b'deferred\r\n'))
    d.wait_log(r'451 4\.3\.0 <alice@example\.test>: cannot create '
               r'the mailbox', timeout=15)


def unblock(d):
    """<state>/blocked a directory (the daemon's user's); ALICE's Maildir
    path in it."""
    blocker = os.path.join(d.state_dir, 'blocked')
    os.unlink(blocker)
    os.mkdir(blocker)
    if os.geteuid() == 0:
        import pwd
        pw = pwd.getpwnam('nobody')
        os.chown(blocker, pw.pw_uid, pw.pw_gid)
    return os.path.join(blocker, 'example.test', 'alice')


class MaildirDelivery(unittest.TestCase):

    def check_file(self, d, path, rcpt, sender, sent):
        raw = read(path)
        mine, rest = split_headers(raw)
        self.assertEqual(mine[0], b'Return-Path: <%s>' % sender.encode())
        self.assertEqual(mine[1], b'Delivered-To: %s' % rcpt.encode())
        self.assertRegex(mine[2].decode(),
                         r'^Received: by mail\.example\.test \(satchel '
                         r'maildir\) for <%s>; \w{3}, \d{2} \w{3} \d{4} '
                         r'\d\d:\d\d:\d\d [+-]\d{4}$' % re.escape(rcpt))
        # the queued message follows: the smtp listener's own trace
        # headers, then exactly what the client sent
        self.assertTrue(rest.endswith(sent),
                        'message not byte-exact in %s' % path)
        name = os.path.basename(path)
        m = NAME_RE.match(name)
        self.assertIsNotNone(m, 'bad Maildir name %r' % name)
        self.assertEqual(int(m.group(4)), len(raw), 'S= is not the size')
        self.assertEqual(os.path.basename(os.path.dirname(path)), 'new')
        st = os.stat(path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        box = d.maildir(rcpt)
        for sub in ('tmp', 'new', 'cur'):
            st = os.stat(os.path.join(box, sub))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o700, sub)
        self.assertEqual(os.listdir(os.path.join(box, 'tmp')), [],
                         'tmp/ not empty')
        return raw

    def test_delivery_headers_body_names(self):
        """Three headers in order, body byte-exact (8-bit, dot-stuffing,
        long lines), unique names with S=, modes, empty tmp/."""
        body = (b'Hello Alice,\r\n'
                b'.a line that starts with a dot\r\n'
                b'..two dots\r\n'
                b'.\r\n' +
                'caf\u00e9 \u00fcber \u2603\r\n'.encode() +
                bytes(range(0x80, 0x100)) + b'\r\n' +
                b'x' * 990 + b'\r\n'
                b'end\r\n')
        with Daemon(users=USERS) as d:
            d.start()
            sent = message('first', body)
            with smtp(d) as s:
                s.ehlo('client.test')
                # smtplib dot-stuffs; the daemon must unstuff
                self.assertEqual(s.sendmail(BOB, [ALICE], sent), {})
            files = d.wait_maildir(ALICE, 1)
            self.check_file(d, files[0], ALICE, BOB, sent)

            # several messages in one session, and one message to two
            # recipients: every file has its own name and headers
            more = [message('m%d' % i, b'body %d\r\n' % i) for i in range(5)]
            with smtp(d) as s:
                s.ehlo('client.test')
                for m in more:
                    self.assertEqual(s.sendmail(BOB, [ALICE], m), {})
                two = message('two', b'for both\r\n')
                self.assertEqual(s.sendmail(ALICE, [ALICE, BOB], two), {})
            files = d.wait_maildir(ALICE, 7)
            self.assertEqual(len(files), 7)
            names = [os.path.basename(f) for f in files]
            self.assertEqual(len(set(names)), 7)
            for f in files:
                raw = read(f)
                sender = BOB if b'Subject: two' not in raw else ALICE
                sent_msg = [m for m in more + [two, sent]
                            if raw.endswith(m)]
                self.assertEqual(len(sent_msg), 1, f)
                self.check_file(d, f, ALICE, sender, sent_msg[0])
            bob = d.wait_maildir(BOB, 1)
            self.check_file(d, bob[0], BOB, ALICE, two)

    def test_null_sender_and_large_message(self):
        """Return-Path: <> for a bounce; a 3 MiB message copied whole."""
        big = b''.join(b'%07d ' % i + b'z' * 70 + b'\r\n'
                       for i in range(40000))
        with Daemon(users=USERS) as d:
            d.start()
            sent = message('big', big)
            send(d, '', [ALICE], sent)
            files = d.wait_maildir(ALICE, 1, timeout=30)
            raw = self.check_file(d, files[0], ALICE, '', sent)
            self.assertGreater(len(raw), 3 * 1024 * 1024)

    def test_mailboxes_list_and_unknown_user(self):
        """mailboxes: addresses exist without an auth backend; anything
        else in a local domain is refused at RCPT with the exact text."""
        def plugins(d):
            p = default_plugins(d)
            p['60-maildir.yaml']['mailboxes'] = ['Info@Example.test',
                                                 'sales@example.test']
            return p
        with Daemon(plugins=plugins) as d:
            d.start()
            with smtp(d) as s:
                s.ehlo('client.test')
                self.assertEqual(s.mail('someone@example.org')[0], 250)
                self.assertEqual(s.rcpt('info@example.test')[0], 250)
                self.assertEqual(s.rcpt('SALES@example.test')[0], 250)
                code, msg = s.rcpt('nobody@example.test')
                self.assertEqual(code, 550)
                self.assertEqual(msg, b'5.1.1 <nobody@example.test>: '
                                      b'no such user here')
                code, msg = s.rcpt('alice@example.test')
                self.assertEqual((code, msg), (550, b'5.1.1 '
                                 b'<alice@example.test>: no such user here'))
                s.rset()
                self.assertEqual(s.sendmail('someone@example.org',
                                            ['SALES@example.test'],
                                            message('list', b'hi\r\n')), {})
            # the local part is lower-cased for the path only
            files = d.wait_maildir('sales@example.test', 1)
            self.assertIn(b'Delivered-To: SALES@example.test\r\n',
                          read(files[0]))

    def test_bad_config(self):
        """A path template without %u, an unknown % sequence or a bad mode
        stop the start-up with a message naming the problem."""
        cases = [
            ({'path': '/tmp/mail/%d'}, r'must contain %u'),
            ({'path': '/tmp/mail/%d/%x/%u'}, r'unknown % sequence'),
            ({'mode': '0755'}, r'mode: an octal file mode'),
            ({'mode': 'rw'}, r'mode: an octal file mode'),
        ]
        for extra, rx in cases:
            def plugins(d, extra=extra):
                p = default_plugins(d)
                p['60-maildir.yaml'].update(extra)
                return p
            with self.subTest(extra=extra):
                with Daemon(plugins=plugins) as d:
                    with self.assertRaises(AssertionError) as cm:
                        d.start()
                    self.assertRegex(str(cm.exception), rx)

    def test_default_path_follows_localstatedir(self):
        """path's default is ./configure's --localstatedir + mail/vhosts
        (issue 13 item 10), not a hard-coded /var."""
        lsd = os.environ.get('SATCHEL_LOCALSTATEDIR')
        if not lsd:
            self.skipTest('SATCHEL_LOCALSTATEDIR not set (run by make check)')
        with Daemon() as d:
            d.start()
            keys = d.ctl('modules', '--keys')
            self.assertEqual(keys.returncode, 0, keys.stderr)
            m = re.search(r'(?m)^maildir .*\n(?:\s+.*\n)*?\s+path: path, '
                          r'default (\S+)', keys.stdout)
            self.assertIsNotNone(m, keys.stdout)
            self.assertEqual(m.group(1),
                             os.path.join(lsd, 'mail/vhosts/%d/%u'))

    def test_path_template(self):
        """%d, %u and %% expand; the mode key applies to files and dirs."""
        def plugins(d):
            p = default_plugins(d)
            p['60-maildir.yaml']['path'] = os.path.join(
                d.state_dir, 'boxes', '%d', '100%%', '%u', 'Maildir')
            p['60-maildir.yaml']['mode'] = '0640'
            return p
        with Daemon(plugins=plugins, users=USERS) as d:
            d.start()
            send(d, BOB, [ALICE], message('tmpl', b'x\r\n'))
            box = os.path.join(d.state_dir, 'boxes', 'example.test', '100%',
                               'alice', 'Maildir')
            deadline = time.monotonic() + 10
            new = os.path.join(box, 'new')
            while time.monotonic() < deadline:
                if os.path.isdir(new) and os.listdir(new):
                    break
                time.sleep(0.05)
            files = os.listdir(new)
            self.assertEqual(len(files), 1)
            st = os.stat(os.path.join(new, files[0]))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
            self.assertEqual(stat.S_IMODE(os.stat(new).st_mode), 0o750)

    def test_base_directory_prepared_before_the_privilege_drop(self):
        """The fixed part of `path` (here <tmp>/vhosts, in a root-owned
        directory) is created for the daemon's user before it drops root,
        so the first delivery works; an existing base the user cannot
        write is reported at start with the fix."""
        if os.geteuid() != 0:
            print('SKIP part: needs root (privilege drop)')
            return
        import pwd
        nobody = pwd.getpwnam('nobody')

        def plugins(d):
            p = default_plugins(d)
            p['60-maildir.yaml']['path'] = os.path.join(d.tmp, 'vhosts',
                                                        '%d', '%u')
            return p
        with Daemon(plugins=plugins, users=USERS) as d:
            d.start()
            base = os.path.join(d.tmp, 'vhosts')
            st = os.stat(base)
            self.assertEqual(st.st_uid, nobody.pw_uid)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o750)
            send(d, BOB, [ALICE], message('base', b'x\r\n'))
            new = os.path.join(base, 'example.test', 'alice', 'new')
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if os.path.isdir(new) and os.listdir(new):
                    break
                time.sleep(0.05)
            self.assertEqual(len(os.listdir(new)), 1)

        def plugins2(d):
            p = default_plugins(d)
            p['60-maildir.yaml']['path'] = os.path.join(d.tmp, 'rootbox',
                                                        '%d', '%u')
            return p
        with Daemon(plugins=plugins2, users=USERS) as d:
            os.mkdir(os.path.join(d.tmp, 'rootbox'), 0o755)
            d.start()
            d.wait_log(r'maildir: \S+/rootbox is not writable by nobody: '
                       r'.*fix: chown nobody \S+/rootbox', timeout=5)

    def test_unwritable_mailbox_defers(self):
        """A Maildir that cannot be created defers the recipient (451
        4.3.0 in the log), leaves no file behind, and the message arrives
        once the fault is fixed and the queue is flushed."""
        with Daemon(plugins=blocked_plugins, users=USERS) as d:
            send_blocked(d)
            box = unblock(d)
            r = d.ctl('queue', 'flush')
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                new = os.path.join(box, 'new')
                if os.path.isdir(new) and os.listdir(new):
                    break
                time.sleep(0.1)
            self.assertEqual(len(os.listdir(os.path.join(box, 'new'))), 1)
            self.assertEqual(os.listdir(os.path.join(box, 'tmp')), [])

    def test_redelivery_finds_the_earlier_copy(self):
        """A crash between the rename into new/ and the queue's record of
        it: the queue file as it was before the delivery, the copy in the
        Maildir. Delivered again, the message is not written twice, whether
        its copy is still in new/ or a client moved it to cur/ (":2,S")."""
        with Daemon(plugins=blocked_plugins, users=USERS) as d:
            send_blocked(d)
            d.stop()
            active = os.path.join(d.state_dir, 'queue', 'active')
            (qid,) = os.listdir(active)
            saved = os.path.join(d.tmp, 'saved-queue-file')
            # cp -a: the owner too (the daemon's user when run as root)
            subprocess.run(['cp', '-a', os.path.join(active, qid), saved],
                           check=True)
            box = unblock(d)
            new, cur = os.path.join(box, 'new'), os.path.join(box, 'cur')

            def deliver():
                mark = d.log_mark()
                d.start()
                r = d.ctl('queue', 'flush')
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                m = d.wait_log(r'<alice@example\.test> delivered to maildir '
                               r'as (\S+)', timeout=20, since=mark)
                d.stop()
                self.assertEqual(os.listdir(active), [])
                return m.group(1)

            name = deliver()
            self.assertEqual(os.listdir(new), [name])
            first = read(os.path.join(new, name))
            for where in ('new', 'cur'):
                if where == 'cur':
                    os.rename(os.path.join(new, name),
                              os.path.join(cur, name + ':2,S'))
                subprocess.run(['cp', '-a', saved,
                                os.path.join(active, qid)], check=True)
                self.assertEqual(deliver(), name, where)
                self.assertEqual(os.listdir(os.path.join(box, 'tmp')), [])
                files = ([os.path.join(new, f) for f in os.listdir(new)] +
                         [os.path.join(cur, f) for f in os.listdir(cur)])
                self.assertEqual(len(files), 1, (where, files))
                self.assertEqual(read(files[0]), first, where)

    def test_missing_subdirectories_are_made_again(self):
        """A Maildir whose tmp/ or new/ (and cur/) went away after its
        first message gets them back, mode 0700, and the message is
        delivered: the module makes the Maildir when a file cannot be
        created in tmp/ or renamed into new/ (not for every message)."""
        with Daemon(users=USERS) as d:
            d.start()
            send(d, BOB, [ALICE], message('one', b'1\r\n'))
            d.wait_maildir(ALICE, 1, timeout=15)
            box = d.maildir(ALICE)
            for n, gone in enumerate((['tmp'], ['new'], ['new', 'cur'])):
                for f in d.wait_maildir(ALICE, 1):
                    os.rename(f, os.path.join(d.tmp, os.path.basename(f)))
                for sub in gone:
                    os.rmdir(os.path.join(box, sub))
                send(d, BOB, [ALICE], message('m%d' % n, b'x\r\n'))
                files = d.wait_maildir(ALICE, 1, timeout=15)
                self.assertEqual(len(files), 1, gone)
                self.assertIn(b'Subject: m%d\r\n' % n, read(files[0]))
                for sub in ('tmp', 'new', 'cur'):
                    st = os.stat(os.path.join(box, sub))
                    self.assertEqual(stat.S_IMODE(st.st_mode), 0o700,
                                     (gone, sub))


if __name__ == '__main__':
    unittest.main(verbosity=2)
