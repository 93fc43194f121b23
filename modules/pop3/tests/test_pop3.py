#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""pop3 against the real satcheld: messages delivered through SMTP are read
back with poplib (STLS, implicit TLS, plaintext listener) and getmail6,
byte-exact; DELE/RSET/QUIT/drop semantics; UIDL across restarts; the
[AUTH] and [IN-USE] response codes; plaintext logins refused before TLS."""

import base64
import os
import poplib
import pwd
import re
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from satchel_harness import Daemon, tls_context, which  # noqa: E402
from popcommon import (PASSWORD, crlf, deliver, pop3_plugins,  # noqa: E402
                       pop_connect, pop_login, retr_bytes)

ALICE = 'alice@example.test'
BOB = 'bob@example.test'

BODY_DOTS = (b'From: sender@example.test\r\nTo: alice@example.test\r\n'
             b'Subject: dots and 8 bits\r\n\r\n'
             b'.leading dot\r\n.\r\n..two dots\r\n'
             b'caf\xc3\xa9 8-bit line\r\n\r\nlast line\r\n')


def big_body(kib=600):
    lines = [b'From: sender@example.test', b'To: alice@example.test',
             b'Subject: big', b'']
    i = 0
    while sum(len(x) + 2 for x in lines) < kib * 1024:
        lines.append(b'%06d ' % i + b'x' * 70 + (b'.' if i % 7 else b''))
        if i % 50 == 0:
            lines.append(b'.dot-start line %d' % i)
        i += 1
    return b'\r\n'.join(lines) + b'\r\n'


SMALL = (b'From: sender@example.test\r\nTo: alice@example.test\r\n'
         b'Subject: small\r\n\r\nhello\r\n')


def file_bytes(path):
    with open(path, 'rb') as f:
        return f.read()


def unfold(msg):
    """(unfolded header, exact body) of a CRLF message."""
    head, sep, body = msg.partition(b'\r\n\r\n')
    head = re.sub(rb'\s+', b' ', re.sub(rb'\r\n[ \t]+', b' ', head))
    return head, sep + body


def login_when_free(d, user, timeout=5):
    """Logs in, retrying while a session that just hung up still holds
    the mailbox ([IN-USE])."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return pop_login(d, user)
        except poplib.error_proto as e:
            if b'[IN-USE]' not in e.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Pop3Test(unittest.TestCase):
    def daemon(self):
        return Daemon(plugins=pop3_plugins(),
                      users={ALICE: PASSWORD, BOB: PASSWORD})

    def deliver_three(self, d):
        deliver(d, ALICE, BODY_DOTS, count=1)
        deliver(d, ALICE, big_body(), count=2)
        files = deliver(d, ALICE, SMALL, count=3)
        return {crlf(file_bytes(f)) for f in files}

    def test_retrieve_byte_exact(self):
        with self.daemon() as d:
            d.start()
            expected = self.deliver_three(d)
            p = pop_login(d, ALICE)
            count, size = p.stat()
            self.assertEqual(count, 3)
            self.assertEqual(size, sum(len(m) for m in expected))
            resp, listing, _ = p.list()
            sizes = {int(n): int(s) for n, s in
                     (x.split() for x in listing)}
            got = set()
            for n in range(1, 4):
                m = retr_bytes(p, n)
                self.assertEqual(len(m), sizes[n], 'LIST size of %d' % n)
                got.add(m)
            self.assertEqual(got, expected)
            # the bodies as sent are the tails of what POP3 hands out
            for body in (BODY_DOTS, big_body(), SMALL):
                self.assertTrue(any(m.endswith(body) for m in got))
            # TOP: the header, the blank line and n body lines
            for n in range(1, 4):
                full = retr_bytes(p, n)
                head = full[:full.index(b'\r\n\r\n') + 4]
                resp, lines, _ = p.top(n, 0)
                self.assertEqual(b''.join(x + b'\r\n' for x in lines), head)
                resp, lines, _ = p.top(n, 2)
                body = full[len(head):].splitlines(keepends=True)[:2]
                self.assertEqual(b''.join(x + b'\r\n' for x in lines),
                                 head + b''.join(body))
            resp, uids, _ = p.uidl()
            uids = [u.split()[1] for u in uids]
            self.assertEqual(len(set(uids)), 3)
            for u in uids:
                self.assertTrue(1 <= len(u) <= 70)
            self.assertEqual(p.uidl(2).split()[2], uids[1])
            self.assertTrue(p.noop().startswith(b'+OK'))
            self.assertTrue(p.quit().startswith(b'+OK'))
            # seen messages moved from new/ to cur/ with ":2,"
            md = d.maildir(ALICE)
            self.assertEqual(os.listdir(os.path.join(md, 'new')), [])
            cur = os.listdir(os.path.join(md, 'cur'))
            self.assertEqual(len(cur), 3)
            self.assertTrue(all(':2,' in f for f in cur), cur)
            self.assertEqual(sorted(f.split(':')[0] for f in cur),
                             sorted(x.decode() for x in uids))

    def test_dele_rset_drop_quit(self):
        with self.daemon() as d:
            d.start()
            self.deliver_three(d)
            # DELE then RSET: nothing removed
            p = pop_login(d, ALICE)
            p.dele(1)
            with self.assertRaises(poplib.error_proto) as e:
                p.retr(1)
            self.assertIn(b'deleted', e.exception.args[0])
            self.assertEqual(p.stat()[0], 2)
            p.rset()
            self.assertEqual(p.stat()[0], 3)
            p.quit()
            self.assertEqual(len(d.maildir_files(ALICE)), 3)
            # DELE then a dropped connection: nothing removed
            p = pop_login(d, ALICE)
            p.dele(1)
            p.dele(2)
            # a hard drop: poplib's file object keeps the socket open, so
            # shut the connection down explicitly
            p.sock.shutdown(socket.SHUT_RDWR)
            p.file.close()
            p.sock.close()
            p = login_when_free(d, ALICE)
            self.assertEqual(len(d.maildir_files(ALICE)), 3)
            self.assertEqual(p.stat()[0], 3)
            # DELE then QUIT: removed
            uid1 = p.uidl(1).split()[2]
            p.dele(1)
            resp = p.quit()
            self.assertEqual(resp, b'+OK Logging out, messages deleted.')
            left = d.maildir_files(ALICE)
            self.assertEqual(len(left), 2)
            self.assertFalse(any(os.path.basename(f).startswith(
                uid1.decode() + ':') for f in left))
            p = pop_login(d, ALICE)
            self.assertEqual(p.stat()[0], 2)
            p.quit()

    def test_uidl_stable_across_restart(self):
        with self.daemon() as d:
            d.start()
            self.deliver_three(d)
            p = pop_login(d, ALICE)
            before = p.uidl()[1]
            p.quit()
            p = pop_login(d, ALICE)
            self.assertEqual(p.uidl()[1], before)
            p.quit()
            d.restart()
            p = pop_login(d, ALICE)
            self.assertEqual(p.uidl()[1], before)
            p.quit()

    def test_tls_and_capa(self):
        with self.daemon() as d:
            d.start()
            deliver(d, ALICE, SMALL)
            # STLS listener: CAPA before and after TLS
            p = poplib.POP3('127.0.0.1', d.port('pop3'), timeout=10)
            self.assertTrue(p.getwelcome().startswith(b'+OK'))
            capa = p.capa()
            for c in ('TOP', 'USER', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE',
                      'PIPELINING', 'STLS', 'IMPLEMENTATION'):
                self.assertIn(c, capa)
            self.assertNotIn('SASL', capa)
            p.stls(tls_context())
            capa = p.capa()
            self.assertNotIn('STLS', capa)
            self.assertEqual(capa.get('SASL'), ['PLAIN'])
            p.user(ALICE)
            p.pass_(PASSWORD)
            self.assertEqual(retr_bytes(p, 1),
                             crlf(file_bytes(d.maildir_files(ALICE)[0])))
            p.quit()
            # implicit TLS
            p = pop_login(d, ALICE, name='pop3s')
            self.assertIsInstance(p.sock, ssl.SSLSocket)
            self.assertEqual(p.stat()[0], 1)
            p.quit()

    def test_plaintext_refused_before_tls(self):
        refusal = (b'-ERR Plaintext authentication disallowed on '
                   b'non-secure connections')
        with self.daemon() as d:
            d.start()
            p = poplib.POP3('127.0.0.1', d.port('pop3'), timeout=10)
            with self.assertRaises(poplib.error_proto) as e:
                p.user(ALICE)
            self.assertEqual(e.exception.args[0], refusal)
            with self.assertRaises(poplib.error_proto) as e:
                p._shortcmd('AUTH PLAIN ' + base64.b64encode(
                    b'\0' + ALICE.encode() + b'\0' +
                    PASSWORD.encode()).decode())
            self.assertEqual(e.exception.args[0], refusal)
            self.assertTrue(p.quit().startswith(b'+OK'))
            # tls: none says plaintext is fine on this listener
            p = pop_login(d, ALICE, name='pop3plain')
            self.assertEqual(p.stat(), (0, 0))
            p.quit()

    def test_auth_plain(self):
        cred = base64.b64encode(b'\0' + BOB.encode() + b'\0' +
                                PASSWORD.encode()).decode()
        with self.daemon() as d:
            d.start()
            deliver(d, BOB, SMALL)
            # initial response
            p = pop_connect(d, 'pop3')
            self.assertTrue(p._shortcmd('AUTH PLAIN ' + cred)
                            .startswith(b'+OK'))
            self.assertEqual(p.stat()[0], 1)
            p.quit()
            # continuation, then "*" cancels
            p = pop_connect(d, 'pop3s')
            p._putcmd('AUTH PLAIN')
            self.assertEqual(p._getline()[0].rstrip(), b'+')
            p._putcmd('*')
            with self.assertRaises(poplib.error_proto):
                p._getresp()
            p._putcmd('AUTH PLAIN')
            self.assertEqual(p._getline()[0].rstrip(), b'+')
            p._putcmd(cred)
            self.assertTrue(p._getresp().startswith(b'+OK'))
            self.assertEqual(p.stat()[0], 1)
            p.quit()
            d.wait_log(r'pop3: login user=bob@example.test')

    def test_wrong_password(self):
        with self.daemon() as d:
            d.start()
            p = pop_connect(d, 'pop3')
            p.user(ALICE)
            t0 = time.monotonic()
            with self.assertRaises(poplib.error_proto) as e:
                p.pass_('not-the-password')
            self.assertGreaterEqual(time.monotonic() - t0, 0.9)
            self.assertEqual(e.exception.args[0],
                             b'-ERR [AUTH] Authentication failed')
            # unknown user: the same answer
            p.user('nobody-here@example.test')
            with self.assertRaises(poplib.error_proto) as e:
                p.pass_(PASSWORD)
            self.assertEqual(e.exception.args[0],
                             b'-ERR [AUTH] Authentication failed')
            # still usable: the right password works
            p.user(ALICE)
            self.assertTrue(p.pass_(PASSWORD).startswith(b'+OK'))
            p.quit()
            d.wait_log(r'pop3: authentication failed user=alice')

    def test_in_use(self):
        with self.daemon() as d:
            d.start()
            deliver(d, ALICE, SMALL)
            p1 = pop_login(d, ALICE)
            p2 = pop_connect(d, 'pop3s')
            p2.user(ALICE)
            with self.assertRaises(poplib.error_proto) as e:
                p2.pass_(PASSWORD)
            self.assertEqual(e.exception.args[0],
                             b'-ERR [IN-USE] Mailbox is locked by another '
                             b'session')
            # another mailbox is not affected
            p3 = pop_login(d, BOB, name='pop3plain')
            p3.quit()
            p1.quit()
            p2.user(ALICE)
            self.assertTrue(p2.pass_(PASSWORD).startswith(b'+OK'))
            self.assertEqual(p2.stat()[0], 1)
            p2.quit()

    def test_pipelining_and_bad_input(self):
        with self.daemon() as d:
            d.start()
            deliver(d, ALICE, SMALL)
            with socket.create_connection(('127.0.0.1', d.port('pop3plain')),
                                          timeout=10) as s:
                f = s.makefile('rb')
                self.assertTrue(f.readline().startswith(b'+OK'))
                s.sendall(b'USER ' + ALICE.encode() + b'\r\nPASS ' +
                          PASSWORD.encode() + b'\r\nSTAT\r\nLIST 1\r\n'
                          b'RETR 9\r\nLIST x\x1b[2J\r\nTOP 1\r\nFOO\r\n' +
                          b'NOOP ' + b'y' * 5000 + b'\r\nQUIT\r\n')
                lines = [f.readline() for _ in range(10)]
                self.assertEqual(lines[0], b'+OK\r\n')
                self.assertTrue(lines[1].startswith(b'+OK'))
                self.assertTrue(lines[2].startswith(b'+OK 1 '))
                self.assertTrue(lines[3].startswith(b'+OK 1 '))
                for x in lines[4:9]:
                    self.assertTrue(x.startswith(b'-ERR'), lines)
                # a control byte the client sent is not echoed back
                self.assertEqual(lines[5], b'-ERR Invalid message number: '
                                           b'x?[2J\r\n')
                self.assertTrue(lines[9].startswith(b'+OK'), lines)
                self.assertEqual(f.readline(), b'')
            # random junk and an early hang-up leave the daemon working
            with socket.create_connection(('127.0.0.1', d.port('pop3plain')),
                                          timeout=10) as s:
                s.recv(100)
                s.sendall(os.urandom(20000) + b'\r\n\0\r\n')
            p = pop_login(d, ALICE, name='pop3plain')
            self.assertEqual(p.stat()[0], 1)
            p.quit()

    def test_foreign_maildir(self):
        """Files as Dovecot or procmail leave them: LF line ends, with
        and without S=/W= in the name, no final newline."""
        files = {
            'new/1700000000.M1P1.other,S=%d,W=%d': b'Subject: a\n\n'
            b'.dot\nbody a\n',
            'cur/1700000001.M2P2.other:2,S': b'Subject: b\n\nno newline',
            'new/1700000002.M3P3.other,S=999': b'Subject: c\r\n\r\n'
            b'mixed\nends\r\n',
        }
        with self.daemon() as d:
            md = d.maildir(BOB)
            expected = {}
            for name, data in files.items():
                if '%d' in name:
                    name = name % (len(data), len(crlf(data)))
                path = os.path.join(md, name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, 'wb') as f:
                    f.write(data)
                expected[os.path.basename(name).split(':')[0]] = data
            os.makedirs(os.path.join(md, 'tmp'), exist_ok=True)
            d.start()   # chowns the state dir to the daemon's user
            p = pop_login(d, BOB)
            count, size = p.stat()
            self.assertEqual(count, 3)
            self.assertEqual(size, sum(len(crlf(x))
                                       for x in expected.values()))
            uids = dict(reversed(x.split()) for x in p.uidl()[1])
            self.assertEqual(set(u.decode() for u in uids), set(expected))
            for uid, n in uids.items():
                data = crlf(expected[uid.decode()])
                self.assertEqual(int(p.list(int(n)).split()[2]), len(data))
                if not data.endswith(b'\r\n'):
                    data += b'\r\n'   # RETR ends the last line
                self.assertEqual(retr_bytes(p, int(n)), data)
            p.quit()
            self.assertEqual(os.listdir(os.path.join(md, 'new')), [])

    def test_reload_keeps_session(self):
        with self.daemon() as d:
            d.start()
            deliver(d, ALICE, SMALL)
            p = pop_login(d, ALICE)
            d.reload()
            d.wait_log(r'generation 2|reload', timeout=10)
            # the session in progress goes on over the old generation
            self.assertEqual(p.stat()[0], 1)
            self.assertEqual(retr_bytes(p, 1),
                             crlf(file_bytes(d.maildir_files(ALICE)[0])))
            p.dele(1)
            self.assertTrue(p.quit().startswith(b'+OK'))
            self.assertEqual(d.maildir_files(ALICE), [])
            # new sessions reach the new instance
            p = pop_login(d, ALICE, name='pop3s')
            self.assertEqual(p.stat(), (0, 0))
            p.quit()

    def test_getmail(self):
        if not which('getmail'):
            print('SKIP: getmail (Debian package getmail6) not installed')
            return
        with self.daemon() as d:
            d.start()
            expected = self.deliver_three(d)
            # getmail refuses to deliver as root: run it as nobody
            gdir = os.path.join(d.tmp, 'getmail')
            dest = os.path.join(gdir, 'fetched')
            for sub in ('cur', 'new', 'tmp'):
                os.makedirs(os.path.join(dest, sub))
            rc = os.path.join(gdir, 'getmailrc')
            user = None
            if os.geteuid() == 0:
                user = 'nobody'
                pw = pwd.getpwnam(user)
                for root, dirs, files in os.walk(gdir):
                    os.chown(root, pw.pw_uid, pw.pw_gid)
            with open(rc, 'w') as f:
                f.write('[retriever]\ntype = SimplePOP3SSLRetriever\n'
                        'server = 127.0.0.1\nport = %d\nusername = %s\n'
                        'password = %s\n\n'
                        '[destination]\ntype = Maildir\npath = %s/\n\n'
                        '[options]\nread_all = true\ndelete = true\n'
                        'delivered_to = false\nreceived = false\n'
                        'verbose = 1\n'
                        % (d.port('pop3s'), ALICE, PASSWORD, dest))
            if user is not None:
                os.chown(rc, pw.pw_uid, pw.pw_gid)
            r = subprocess.run(['getmail', '--getmaildir', gdir,
                                '--rcfile', rc], capture_output=True,
                               text=True, timeout=60, user=user,
                               group=pw.pw_gid if user else None,
                               extra_groups=[] if user else None,
                               env=dict(os.environ, HOME=gdir))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            got = set()
            for sub in ('new', 'cur'):
                for name in os.listdir(os.path.join(dest, sub)):
                    got.add(crlf(file_bytes(os.path.join(dest, sub, name))))
            self.assertEqual(len(got), 3)
            # getmail (Python's email package) re-folds long header lines:
            # headers are compared unfolded, bodies byte for byte
            self.assertEqual({unfold(m) for m in got},
                             {unfold(m) for m in expected})
            # delete = true: the server's mailbox is empty now
            self.assertEqual(d.maildir_files(ALICE), [])


if __name__ == '__main__':
    unittest.main(verbosity=2)
