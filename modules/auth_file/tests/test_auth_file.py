#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""auth_file against the real satcheld: every hash scheme over SMTP AUTH
(STARTTLS and implicit TLS), wrong passwords, bad file lines (NUL bytes),
empty files, the time an unknown user's AUTH takes, live re-reads of the
file, and `satchelctl user` with its refusals and file modes."""

import base64
import ctypes
import ctypes.util
import grp
import os
import pwd
import pty
import select
import signal
import smtplib
import stat
import statistics
import sys
import time
import unittest

from satchel_harness import (Daemon, default_plugins, skip, smtp,
                             tls_context)


def _libcrypt():
    name = ctypes.util.find_library('crypt') or 'libcrypt.so.1'
    try:
        lc = ctypes.CDLL(name)
    except OSError as e:
        skip('libcrypt not loadable from Python (%s)' % e)
    lc.crypt.restype = ctypes.c_char_p
    lc.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lc.crypt_gensalt.restype = ctypes.c_char_p
    lc.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong,
                                 ctypes.c_char_p, ctypes.c_int]
    return lc


LC = _libcrypt()


def mkhash(prefix, password, count=0):
    """crypt(3) hash with a fresh salt from libxcrypt (prefix '$6$', ...)."""
    setting = LC.crypt_gensalt(prefix.encode(), count, None, 0)
    assert setting, 'crypt_gensalt(%s) failed' % prefix
    h = LC.crypt(password.encode(), setting)
    assert h and not h.startswith(b'*'), 'crypt(%s) failed' % prefix
    return h.decode()


def submission(d, name='submission'):
    """A client on a TLS session: STARTTLS on submission, or implicit."""
    if name == 'smtps':
        s = smtp(d, 'smtps')
        s.ehlo('client.example.test')
        return s
    s = smtp(d, name)
    s.ehlo('client.example.test')
    s.starttls(context=tls_context())
    s.ehlo('client.example.test')
    return s


def auth(d, user, password, name='submission', mech='PLAIN'):
    """One AUTH attempt with exactly one mechanism; returns the reply code."""
    s = submission(d, name)
    try:
        s.user, s.password = user, password
        authobj = s.auth_plain if mech == 'PLAIN' else s.auth_login
        try:
            code, _ = s.auth(mech, authobj, initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as e:
            code = e.smtp_code
        return code
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


def make_readable_for_daemon(path):
    """0640 with the group of the daemon's user (nobody when root)."""
    os.chmod(path, 0o640)
    if os.geteuid() == 0:
        os.chown(path, 0, pwd.getpwnam('nobody').pw_gid)


def file_plugins(d):
    return default_plugins(d, with_auth=True)


class AuthFileSchemes(unittest.TestCase):
    """A hand-written file with every supported scheme and some bad lines."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(plugins=file_plugins)
        cls.pw = {
            'sha@example.test': 'sha512-password',
            'bcrypt@example.test': 'bcrypt-password',
            'yes@example.test': 'yescrypt-password',
            'crypt@example.test': 'crypt-any-password',
            'bare@example.test': 'bare-yescrypt-pw',
            'dup@example.test': 'first-line-wins',
        }
        lines = [
            '# satchel auth_file test',
            '',
            'sha@example.test:{SHA512-CRYPT}' +
            mkhash('$6$', cls.pw['sha@example.test']),
            'bcrypt@example.test:{BCRYPT}' +
            mkhash('$2b$', cls.pw['bcrypt@example.test'], 5),
            'Yes@Example.TEST:{YESCRYPT}' +
            mkhash('$y$', cls.pw['yes@example.test']),
            'crypt@example.test:{CRYPT}' +
            mkhash('$5$', cls.pw['crypt@example.test']),
            '  bare@example.test:' +
            mkhash('$y$', cls.pw['bare@example.test']),
            'this line has no colon',                       # line 8
            'plain@example.test:{PLAIN}secret-password',    # line 9
            'mismatch@example.test:{BCRYPT}' + mkhash('$6$', 'whatever1'),
            'dup@example.test:{SHA512-CRYPT}' +
            mkhash('$6$', cls.pw['dup@example.test']),
            'dup@example.test:{SHA512-CRYPT}' + mkhash('$6$', 'second-line'),
        ]
        cls.path = os.path.join(cls.d.tmp, 'passwd')
        with open(cls.path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        make_readable_for_daemon(cls.path)
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def test_each_scheme_starttls(self):
        for user, password in self.pw.items():
            with self.subTest(user=user):
                self.assertEqual(auth(self.d, user, password), 235)

    def test_implicit_tls_and_login_mechanism(self):
        self.assertEqual(auth(self.d, 'yes@example.test',
                              self.pw['yes@example.test'], name='smtps'),
                         235)
        self.assertEqual(auth(self.d, 'sha@example.test',
                              self.pw['sha@example.test'], mech='LOGIN'),
                         235)

    def test_wrong_password_is_535(self):
        for user in ('sha@example.test', 'bcrypt@example.test',
                     'yes@example.test'):
            with self.subTest(user=user):
                self.assertEqual(auth(self.d, user, 'wrong-password'), 535)
        self.assertEqual(auth(self.d, 'bare@example.test', ''), 535)
        self.d.wait_log(r'auth_file: wrong password for sha@example\.test')

    def test_unknown_user_is_535(self):
        self.assertEqual(auth(self.d, 'nobody-here@example.test',
                              'secret-password'), 535)

    def test_domain_case_insensitive(self):
        self.assertEqual(auth(self.d, 'yes@EXAMPLE.test',
                              self.pw['yes@example.test']), 235)
        self.assertEqual(auth(self.d, 'SHA@Example.Test',
                              self.pw['sha@example.test']), 235)

    def test_duplicate_first_wins(self):
        self.assertEqual(auth(self.d, 'dup@example.test', 'second-line'),
                         535)

    def test_bad_lines_logged_and_skipped(self):
        log = self.d.wait_log(r'passwd:8: ').string
        self.assertRegex(log, r'passwd:9: unsupported \{SCHEME\}')
        self.assertRegex(log, r'passwd:10: hash does not match')
        self.assertEqual(auth(self.d, 'plain@example.test',
                              'secret-password'), 535)
        self.assertEqual(auth(self.d, 'mismatch@example.test',
                              'whatever1'), 535)

    def test_daemon_is_unprivileged(self):
        if os.geteuid() != 0:
            self.skipTest('not root: no privilege drop')
        with open('/proc/%d/status' % self.d.pid) as f:
            uid = [l for l in f if l.startswith('Uid:')][0].split()[1]
        self.assertEqual(int(uid), pwd.getpwnam('nobody').pw_uid)


class AuthFileBadFiles(unittest.TestCase):
    """Files that once crashed or confused the parser."""

    def write(self, d, data):
        path = os.path.join(d.tmp, 'passwd')
        with open(path, 'wb') as f:
            f.write(data)
        make_readable_for_daemon(path)
        return path

    def test_empty_file_at_start_and_after_truncation(self):
        """qsort/bsearch on an empty table: under UBSan (nonnull) this
        aborted the daemon at start and at a re-read."""
        with Daemon(plugins=file_plugins) as d:
            self.write(d, b'')
            d.start()
            d.wait_log(r'loaded 0 users from')
            self.assertEqual(auth(d, 'alice@example.test',
                                  'alice-password'), 535)
            mark = d.log_mark()
            self.write(d, b'# only a comment\n\n')
            d.wait_log(r'loaded 0 users from', since=mark)
            self.assertEqual(auth(d, 'alice@example.test',
                                  'alice-password'), 535)
            # a user after all, then the file emptied under the daemon
            mark = d.log_mark()
            self.write(d, ('alice@example.test:{YESCRYPT}%s\n' %
                           mkhash('$y$', 'alice-password')).encode())
            d.wait_log(r'loaded 1 users from', since=mark)
            self.assertEqual(auth(d, 'alice@example.test',
                                  'alice-password'), 235)
            mark = d.log_mark()
            self.write(d, b'')
            d.wait_log(r'loaded 0 users from', since=mark)
            self.assertEqual(auth(d, 'alice@example.test',
                                  'alice-password'), 535)
            self.assertTrue(d.running())
            d.stop()    # fails on a crash or a sanitizer report

    def test_nul_byte_skips_only_its_line(self):
        """A NUL inside a line refuses that line (FILE:LINE in the log); the
        next line is an account like any other."""
        pw = {'nul@example.test': 'nul-password-1',
              'next@example.test': 'next-password-2',
              'last@example.test': 'last-password-3'}
        lines = [
            b'nul@example.test:{YESCRYPT}' +
            mkhash('$y$', pw['nul@example.test']).encode() + b'\0junk',
            b'next@example.test:{YESCRYPT}' +
            mkhash('$y$', pw['next@example.test']).encode(),
            b'# a comment with a NUL \0 inside',
            b'last@example.test:{SHA512-CRYPT}' +
            mkhash('$6$', pw['last@example.test']).encode(),
            b'x\0@example.test:{SHA512-CRYPT}' + mkhash('$6$', 'x').encode(),
        ]
        with Daemon(plugins=file_plugins) as d:
            self.write(d, b'\n'.join(lines))     # no final newline
            d.start()
            log = d.wait_log(r'loaded \d+ users').string
            self.assertRegex(log, r'passwd:1: NUL byte in the line; line '
                             r'skipped')
            self.assertRegex(log, r'passwd:3: NUL byte')
            self.assertRegex(log, r'passwd:5: NUL byte')
            self.assertRegex(log, r'loaded 2 users')
            self.assertNotRegex(log, r'passwd:[24]:')
            self.assertEqual(auth(d, 'next@example.test',
                                  pw['next@example.test']), 235)
            self.assertEqual(auth(d, 'last@example.test',
                                  pw['last@example.test']), 235)
            self.assertEqual(auth(d, 'nul@example.test',
                                  pw['nul@example.test']), 535)


def auth_time(d, user, password):
    """Seconds from sending AUTH PLAIN to its reply, on a fresh TLS
    session (no failure delay carried over); (code, seconds)."""
    s = submission(d)
    try:
        resp = base64.b64encode(('\0%s\0%s' % (user, password))
                                .encode()).decode()
        t0 = time.perf_counter()
        code, _ = s.docmd('AUTH', 'PLAIN ' + resp)
        return code, time.perf_counter() - t0
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


class AuthFileTiming(unittest.TestCase):
    """An unknown user is answered no faster than a known one with a wrong
    password (both checked with crypt at the same cost), so the time does
    not tell which accounts exist. smtp's own failure delay is off here,
    or it would hide the difference. The file's first entry (in address
    order) is a cheap sha512crypt one: the dummy hash must follow the
    yescrypt majority, not whichever entry comes first."""

    ROUNDS = 7

    def test_unknown_user_takes_as_long_as_known(self):
        users = {'alice@example.test': 'alice-password',
                 'bob@example.test': 'bob-password',
                 'carol@example.test': 'carol-password'}

        def plugins(d):
            p = file_plugins(d)
            p['50-smtp.yaml']['auth_failure_delay'] = '0s'
            return p
        with Daemon(plugins=plugins, users=users) as d:
            path = os.path.join(d.tmp, 'passwd')
            with open(path, 'w') as f:
                f.write('aaron@example.test:{SHA512-CRYPT}%s\n'
                        % mkhash('$6$', 'aaron-password'))
            make_readable_for_daemon(path)
            d.start()       # satchelctl adds the users after aaron
            d.wait_log(r'loaded 4 users')
            self.assertEqual(auth(d, 'bob@example.test', 'bob-password'),
                             235)
            known, unknown = [], []
            for i in range(self.ROUNDS):
                # interleaved, alternating who goes first: load on the
                # machine hits both sides alike
                pair = [(known, 'alice@example.test'),
                        (unknown, 'nosuch%d@example.test' % i)]
                if i % 2:
                    pair.reverse()
                for out, user in pair:
                    code, secs = auth_time(d, user, 'wrong-password-%d' % i)
                    self.assertEqual(code, 535, user)
                    out.append(secs)
            k, u = statistics.median(known), statistics.median(unknown)
            msg = ('median AUTH time: known user %.1f ms, unknown %.1f ms '
                   '(known %s, unknown %s)' %
                   (k * 1e3, u * 1e3, ['%.1f' % (x * 1e3) for x in known],
                    ['%.1f' % (x * 1e3) for x in unknown]))
            print(msg)
            self.assertGreaterEqual(u, 0.6 * k, msg)


class AuthFileLive(unittest.TestCase):
    """satchelctl changes reach the running daemon without a reload."""

    def test_add_passwd_del_while_running(self):
        with Daemon(users={'alice@example.test': 'alice-password'}) as d:
            d.start()
            self.assertEqual(auth(d, 'alice@example.test',
                                  'alice-password'), 235)

            mark = d.log_mark()
            t0 = time.monotonic()
            r = d.ctl('user', 'add', 'bob@example.test', '--password-stdin',
                      input='bob-password\n')
            self.assertEqual(r.returncode, 0, r.stderr)
            d.wait_log(r'loaded 2 users', timeout=2, since=mark)
            self.assertLess(time.monotonic() - t0, 2.0)
            self.assertEqual(auth(d, 'bob@example.test', 'bob-password'),
                             235)

            mark = d.log_mark()
            r = d.ctl('user', 'passwd', 'bob@example.test',
                      '--password-stdin', input='bob-new-password\n')
            self.assertEqual(r.returncode, 0, r.stderr)
            d.wait_log(r'loaded 2 users', timeout=2, since=mark)
            self.assertEqual(auth(d, 'bob@example.test', 'bob-password'),
                             535)
            self.assertEqual(auth(d, 'bob@example.test',
                                  'bob-new-password'), 235)

            mark = d.log_mark()
            r = d.ctl('user', 'del', 'bob@example.test')
            self.assertEqual(r.returncode, 0, r.stderr)
            d.wait_log(r'loaded 1 users', timeout=2, since=mark)
            self.assertEqual(auth(d, 'bob@example.test',
                                  'bob-new-password'), 535)
            self.assertEqual(auth(d, 'alice@example.test',
                                  'alice-password'), 235)

    def test_file_created_after_start(self):
        with Daemon(plugins=file_plugins) as d:
            d.start()
            d.wait_log(r'does not exist yet')
            mark = d.log_mark()
            r = d.ctl('user', 'add', 'carol@example.test',
                      '--password-stdin', input='carol-password\n')
            self.assertEqual(r.returncode, 0, r.stderr)
            d.wait_log(r'loaded 1 users', timeout=2, since=mark)
            self.assertEqual(auth(d, 'carol@example.test', 'carol-password'),
                             235)

    def test_mail_to_file_user_is_delivered(self):
        """The account hook: a user of the file has a mailbox."""
        with Daemon(users={'dave@example.test': 'dave-password'}) as d:
            d.start()
            s = smtp(d)
            try:
                s.ehlo('client.example.test')
                s.sendmail('someone@remote.test', ['dave@example.test'],
                           b'Subject: hi\r\n\r\nhello dave\r\n')
                with self.assertRaises(smtplib.SMTPRecipientsRefused) as cm:
                    s.sendmail('someone@remote.test',
                               ['nosuch@example.test'],
                               b'Subject: hi\r\n\r\nhello\r\n')
                code = cm.exception.recipients['nosuch@example.test'][0]
                self.assertEqual(code, 550)
            finally:
                s.quit()
            d.wait_maildir('dave@example.test')


class SatchelctlUser(unittest.TestCase):
    """`satchelctl user` on its own (the daemon need not run)."""

    def setUp(self):
        domains = {'example.test': {'routing': 'local'},
                   'other.test': {'routing': 'remote'}}
        self.d = Daemon(plugins=file_plugins, main={'domains': domains})
        self.d.write_config()
        self.path = os.path.join(self.d.tmp, 'passwd')

    def tearDown(self):
        self.d.__exit__(None, None, None)

    def ctl(self, *args, input=None):
        return self.d.ctl('user', *args, input=input)

    def entries(self):
        with open(self.path) as f:
            return [l.split(':', 1) for l in f.read().splitlines()
                    if l and not l.startswith('#')]

    def test_add_creates_0640_for_daemon_group(self):
        r = self.ctl('add', 'Alice@Example.TEST', '--password-stdin',
                     input='alice-password\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        st = os.stat(self.path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
        if os.geteuid() == 0:
            self.assertEqual(st.st_gid, pwd.getpwnam('nobody').pw_gid,
                             grp.getgrgid(st.st_gid).gr_name)
        (addr, field), = self.entries()
        self.assertEqual(addr, 'alice@example.test')
        # {CRYPT}: what Dovecot's passwd-file reads too (issue 13)
        self.assertTrue(field.startswith('{CRYPT}$y$'), field)
        h = field[len('{CRYPT}'):]
        self.assertEqual(LC.crypt(b'alice-password', h.encode()).decode(), h)

    def test_refusals(self):
        r = self.ctl('add', 'bob@unknown.test', '--password-stdin',
                     input='bob-password\n')
        self.assertEqual(r.returncode, 1)
        self.assertIn("domain 'unknown.test' is not configured", r.stderr)
        self.assertIn('example.test, other.test', r.stderr)

        r = self.ctl('add', 'bob@example.test', '--password-stdin',
                     input='short\n')
        self.assertEqual(r.returncode, 1)
        self.assertIn('too weak', r.stderr)
        r = self.ctl('add', 'bob@example.test', '--password-stdin',
                     input='\n')
        self.assertEqual(r.returncode, 1)
        self.assertIn('empty password', r.stderr)
        r = self.ctl('add', 'not-an-address', '--password-stdin',
                     input='bob-password\n')
        self.assertEqual(r.returncode, 1)
        self.assertIn('user@domain', r.stderr)
        r = self.ctl('add', 'b:ob@example.test', '--password-stdin',
                     input='bob-password\n')
        self.assertEqual(r.returncode, 1)
        self.assertFalse(os.path.exists(self.path))

        self.assertEqual(self.ctl('add', 'bob@example.test',
                                  '--password-stdin',
                                  input='bob-password\n').returncode, 0)
        r = self.ctl('add', 'BOB@example.test', '--password-stdin',
                     input='bob-password2\n')
        self.assertEqual(r.returncode, 1)
        self.assertIn('already exists', r.stderr)
        r = self.ctl('passwd', 'carol@example.test', '--password-stdin',
                     input='carol-password\n')
        self.assertEqual(r.returncode, 1)
        self.assertIn('no such user', r.stderr)
        r = self.ctl('del', 'carol@example.test')
        self.assertEqual(r.returncode, 1)
        self.assertIn('no such user', r.stderr)
        self.assertEqual(self.ctl('frobnicate').returncode, 2)
        self.assertEqual(len(self.entries()), 1)

    def test_no_terminal_needs_password_stdin(self):
        r = self.ctl('add', 'erin@example.test', input='')
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('--password-stdin', r.stderr)

    def tty_ctl(self, answers, *args):
        """Runs satchelctl on a pseudo-terminal, answering each prompt;
        returns (exit status, everything it wrote to the terminal)."""
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execv(self.d.satchelctl, [self.d.satchelctl, '-c',
                                             self.d.config_path] + list(args))
            finally:
                os._exit(127)
        out = b''
        deadline = time.monotonic() + 20
        try:
            for ans in answers:
                while not out.rstrip().endswith(b':'):
                    self.assertLess(time.monotonic(), deadline, out)
                    r, _, _ = select.select([fd], [], [], 1)
                    if r:
                        out += os.read(fd, 1024)
                os.write(fd, ans.encode() + b'\n')
                out += b'\n--\n'
            while time.monotonic() < deadline:
                r, _, _ = select.select([fd], [], [], 1)
                if not r:
                    continue
                try:
                    chunk = os.read(fd, 1024)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            # Never hang on a child still waiting at its prompt.
            for _ in range(50):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
            os.close(fd)
        return os.waitstatus_to_exitcode(status), out.decode(errors='replace')

    def test_prompt_twice_without_echo(self):
        rc, out = self.tty_ctl(['tty-password-1', 'tty-password-1'],
                               'user', 'add', 'tty@example.test')
        self.assertEqual(rc, 0, out)
        self.assertIn('Password for tty@example.test:', out)
        self.assertIn('Retype password:', out)
        self.assertNotIn('tty-password-1', out)     # not echoed
        (addr, field), = self.entries()
        h = field[len('{CRYPT}'):]
        self.assertEqual(LC.crypt(b'tty-password-1', h.encode()).decode(), h)
        rc, out = self.tty_ctl(['tty-password-2', 'tty-password-3'],
                               'user', 'passwd', 'tty@example.test')
        self.assertEqual(rc, 1, out)
        self.assertIn('do not match', out)

    def test_list_passwd_del_keep_other_lines_mode_owner(self):
        keep = ('# hand-written comment\n'
                'zed@other.test:{SHA512-CRYPT}%s:extra:fields\n'
                % mkhash('$6$', 'zed-password'))
        with open(self.path, 'w') as f:
            f.write(keep)
        os.chmod(self.path, 0o600)
        before = os.stat(self.path)
        # held open so its inode cannot be reused by a later file
        held = open(self.path)
        self.addCleanup(held.close)
        for addr, pw_ in (('a1@example.test', 'a1-password'),
                          ('a2@other.test', 'a2-password')):
            r = self.ctl('add', addr, '--password-stdin', input=pw_ + '\n')
            self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl('list')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(),
                         ['zed@other.test', 'SHA512-CRYPT',
                          'a1@example.test', 'CRYPT',
                          'a2@other.test', 'CRYPT'])
        r = self.ctl('passwd', 'zed@other.test', '--password-stdin',
                     input='zed-new-password\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.path) as f:
            text = f.read()
        self.assertTrue(text.startswith('# hand-written comment\n'))
        zed = [l for l in text.splitlines() if l.startswith('zed@')][0]
        self.assertTrue(zed.endswith(':extra:fields'), zed)
        h = zed.split(':')[1][len('{CRYPT}'):]
        self.assertEqual(LC.crypt(b'zed-new-password', h.encode()).decode(),
                         h)
        r = self.ctl('del', 'a1@example.test')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([e[0] for e in self.entries()],
                         ['zed@other.test', 'a2@other.test'])
        after = os.stat(self.path)
        self.assertEqual(stat.S_IMODE(after.st_mode), 0o600)
        self.assertEqual((after.st_uid, after.st_gid),
                         (before.st_uid, before.st_gid))
        self.assertNotEqual(after.st_ino, before.st_ino)  # renamed in
        leftovers = [f for f in os.listdir(self.d.tmp)
                     if f.startswith('.passwd.')]
        self.assertEqual(leftovers, [])

    def test_no_auth_file_configured(self):
        self.d.plugins = lambda d: default_plugins(d, with_auth=False)
        self.d.write_config()
        r = self.ctl('list')
        self.assertEqual(r.returncode, 1)
        self.assertIn('no auth_file module is configured', r.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
