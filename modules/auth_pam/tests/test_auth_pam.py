#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""auth_pam against the real satcheld running as `nobody`: real system
users (useradd + chpasswd: a person, a second person, a system account below
uid 1000) and a pam_unix service file, SMTP AUTH PLAIN over TLS, wrong
passwords answered after PAM's fail delay while other logins go on,
root and system accounts refused without PAM (min_uid, deny_users), the
account hook, and the privileged helper's death. Needs root (creating
users); skipped with a message otherwise."""

import base64
import os
import pwd
import secrets
import signal
import smtplib
import subprocess
import threading
import time
import unittest

from satchel_harness import (Daemon, default_plugins, skip, smtp, tls_context,
                             which)

PAM_DIR = '/etc/pam.d'


def preconditions():
    if os.geteuid() != 0:
        skip('auth_pam test needs root (it creates a system user and '
             '/etc/pam.d/satchel-test-*)')
    for prog in ('useradd', 'userdel', 'chpasswd'):
        if which(prog) is None and not os.path.exists('/usr/sbin/' + prog):
            skip('%s not installed (package passwd)' % prog)
    if not os.path.isdir(PAM_DIR):
        skip('%s missing: PAM is not configured on this system' % PAM_DIR)
    mods = [p for p in ('/lib/x86_64-linux-gnu/security/pam_unix.so',
                        '/usr/lib/x86_64-linux-gnu/security/pam_unix.so',
                        '/lib/security/pam_unix.so',
                        '/usr/lib/security/pam_unix.so')
            if os.path.exists(p)]
    if not mods:
        try:
            out = subprocess.run(['find', '/lib', '/usr/lib', '-name',
                                  'pam_unix.so'], capture_output=True,
                                 text=True, timeout=20).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ''
        if not out.strip():
            skip('pam_unix.so not found (package libpam-modules)')


def sbin(prog):
    return which(prog) or '/usr/sbin/' + prog


def session(d, name='submission'):
    """A client on a TLS session, ready for AUTH."""
    if name == 'smtps':
        s = smtp(d, 'smtps')
        s.ehlo('client.example.test')
    else:
        s = smtp(d, name)
        s.ehlo('client.example.test')
        s.starttls(context=tls_context())
        s.ehlo('client.example.test')
    return s


def close(s):
    try:
        s.quit()
    except (smtplib.SMTPException, OSError):
        s.close()


def timed_auth(s, user, password):
    """AUTH PLAIN on session s; (code, seconds until the reply)."""
    resp = base64.b64encode(('\0%s\0%s' % (user, password)).encode())
    t0 = time.perf_counter()
    code, _ = s.docmd('AUTH', 'PLAIN ' + resp.decode())
    return code, time.perf_counter() - t0


def auth_time(d, user, password):
    """One AUTH PLAIN on a fresh TLS session; (code, seconds)."""
    s = session(d)
    try:
        return timed_auth(s, user, password)
    finally:
        close(s)


# PAM's fail delay for pam_unix is 2 s spread by up to half either way
# (pam_fail_delay(3)); auth_pam's own refusals wait 1.5-2.5 s. Anything at
# or over this counts as "delayed"; a success must come well before it.
DELAYED = 0.9


def auth(d, user, password, name='submission'):
    """One AUTH PLAIN over TLS; returns the reply code."""
    s = session(d, name)
    try:
        s.user, s.password = user, password
        try:
            code, _ = s.auth('PLAIN', s.auth_plain, initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as e:
            code = e.smtp_code
        return code
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


RELOAD_HELPER = 'satcheld-reload'   # core/privops.c, also root


def children(pid, with_reload_helper=False):
    """Direct children of pid with their uid, from /proc; the privileged
    reload helper (named RELOAD_HELPER) only when asked for."""
    out = []
    for ent in os.listdir('/proc'):
        if not ent.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % ent) as f:
                fields = f.read().rsplit(')', 1)[1].split()
            with open('/proc/%s/status' % ent) as f:
                uid = [l for l in f if l.startswith('Uid:')][0].split()[1]
            with open('/proc/%s/comm' % ent) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm == RELOAD_HELPER and not with_reload_helper:
            continue
        if int(fields[1]) == pid:
            out.append((int(ent), int(uid)))
    return out


def proc_uid(pid):
    with open('/proc/%d/status' % pid) as f:
        return int([l for l in f if l.startswith('Uid:')][0].split()[1])


class Users:
    """The system users and the PAM service file of this test run: made
    once, removed at the end (also after a failure)."""
    made = []
    pam_file = None

    @classmethod
    def add(cls, name, password, system=False):
        args = [sbin('useradd'), '-M', '-s', '/usr/sbin/nologin']
        if system:
            args.append('-r')       # a uid from SYS_UID_MIN..SYS_UID_MAX
        subprocess.run(args + [name], check=True, capture_output=True,
                       timeout=30)
        cls.made.append(name)
        # sha512crypt at its default 5000 rounds, not yescrypt: a check
        # costs milliseconds even on a loaded machine, so the times the
        # tests measure are the fail delays, not the hashing
        subprocess.run([sbin('chpasswd'), '-c', 'SHA512', '-s', '5000'],
                       check=True,
                       input='%s:%s\n' % (name, password),
                       text=True, capture_output=True, timeout=30)

    @classmethod
    def setup(cls):
        preconditions()
        tag = secrets.token_hex(3)
        cls.service = 'satchel-test-' + tag
        cls.pam_file = os.path.join(PAM_DIR, cls.service)
        cls.user = 'satpt' + tag
        cls.password = 'Pam-pass-' + secrets.token_hex(4)
        cls.user2 = 'satpu' + tag
        cls.password2 = 'Pam-pass2-' + secrets.token_hex(4)
        cls.sysuser = 'satps' + tag
        cls.syspassword = 'Pam-sys-' + secrets.token_hex(4)
        try:
            with open(cls.pam_file, 'w') as f:
                f.write('auth required pam_unix.so\n'
                        'account required pam_unix.so\n')
            cls.add(cls.user, cls.password)
            cls.add(cls.user2, cls.password2)
            cls.add(cls.sysuser, cls.syspassword, system=True)
        except BaseException:
            cls.cleanup()
            raise

    @classmethod
    def cleanup(cls):
        if cls.pam_file is not None and os.path.exists(cls.pam_file):
            os.unlink(cls.pam_file)
        while cls.made:
            subprocess.run([sbin('userdel'), cls.made.pop()],
                           capture_output=True, timeout=30)


def setUpModule():
    Users.setup()


def tearDownModule():
    Users.cleanup()


def pam_plugins(**keys):
    """auth_pam with the test's service (and keys), and no smtp failure
    delay: what is measured is PAM's and auth_pam's own."""
    def plugins(d):
        p = default_plugins(d, with_auth=False)
        p['50-smtp.yaml']['auth_failure_delay'] = '0s'
        p['30-auth_pam.yaml'] = dict({'module': 'auth_pam',
                                      'service': Users.service}, **keys)
        return p
    return plugins


class AuthPam(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.user = Users.user
        cls.password = Users.password
        cls.d = Daemon(plugins=pam_plugins())
        try:
            cls.d.start()
        except BaseException:
            cls.d.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def test_1_daemon_runs_as_nobody_helper_as_root(self):
        self.assertEqual(proc_uid(self.d.pid), pwd.getpwnam('nobody').pw_uid)
        helpers = [pid for pid, uid in children(self.d.pid) if uid == 0]
        self.assertEqual(len(helpers), 1, children(self.d.pid))
        # beside it only the reload helper, as root too
        self.assertEqual(len(children(self.d.pid, True)), 2,
                         children(self.d.pid, True))

    def test_2_login_ok(self):
        self.assertEqual(auth(self.d, self.user + '@example.test',
                              self.password), 235)
        self.assertEqual(auth(self.d, self.user + '@example.test',
                              self.password, name='smtps'), 235)
        # a bare user name is passed to PAM as it is
        self.assertEqual(auth(self.d, self.user, self.password), 235)

    def test_3_wrong_password_535_reason_logged(self):
        mark = self.d.log_mark()
        self.assertEqual(auth(self.d, self.user + '@example.test',
                              'not-the-password'), 535)
        self.d.wait_log(r'auth_pam: PAM denied %s@example\.test: '
                        r'authenticate: Authentication failure'
                        % self.user, since=mark)
        self.assertEqual(auth(self.d, 'nosuchuser-xyz@example.test',
                              'whatever-password'), 535)

    def test_4_foreign_domain_is_not_stripped(self):
        # alice@elsewhere is not the local unix user alice
        self.assertEqual(auth(self.d, self.user + '@elsewhere.test',
                              self.password), 535)

    def test_5_account_hook_delivers_to_unix_user(self):
        s = smtp(self.d)
        try:
            s.ehlo('client.example.test')
            s.sendmail('someone@remote.test', [self.user + '@example.test'],
                       b'Subject: pam\r\n\r\nhello unix user\r\n')
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as cm:
                s.sendmail('someone@remote.test',
                           ['nosuchuser-xyz@example.test'],
                           b'Subject: x\r\n\r\nx\r\n')
            self.assertEqual(list(cm.exception.recipients.values())[0][0],
                             550)
        finally:
            s.quit()
        self.d.wait_maildir(self.user + '@example.test')

    def test_6_root_refused_without_pam(self):
        """deny_users defaults to [root]: refused like a wrong password,
        after a delay like PAM's, and PAM is never asked."""
        for login in ('root@example.test', 'root'):
            with self.subTest(login=login):
                mark = self.d.log_mark()
                code, secs = auth_time(self.d, login, 'any-password')
                self.assertEqual(code, 535)
                self.assertGreaterEqual(secs, DELAYED)
                log = self.d.wait_log(
                    r'auth_pam: refused %s \(PAM user root\): in '
                    r'deny_users; PAM not asked' % login, since=mark).string
                self.assertNotIn('PAM denied', log[mark:])

    def test_7_system_account_refused_with_right_password(self):
        """min_uid defaults to 1000: a system account (useradd -r) is
        refused even with its right password."""
        uid = pwd.getpwnam(Users.sysuser).pw_uid
        self.assertLess(uid, 1000)
        mark = self.d.log_mark()
        code, secs = auth_time(self.d, Users.sysuser + '@example.test',
                               Users.syspassword)
        self.assertEqual(code, 535)
        self.assertGreaterEqual(secs, DELAYED)
        self.d.wait_log(r'auth_pam: refused %s@example\.test \(PAM user '
                        r'%s\): uid %d is below min_uid 1000'
                        % (Users.sysuser, Users.sysuser, uid), since=mark)

    def test_8_wrong_password_delayed_others_served_meanwhile(self):
        """PAM's fail delay really delays a wrong password, but neither
        the loop nor the PAM helper sleeps it: a good login started later
        is answered at once, before the refusal."""
        slow, fast = session(self.d), session(self.d)
        out = {}
        sent = threading.Event()

        def wrong():
            try:
                sent.set()
                out['code'], out['secs'] = timed_auth(
                    slow, self.user + '@example.test', 'not-the-password')
            finally:
                out['end'] = time.perf_counter()
        try:
            th = threading.Thread(target=wrong)
            th.start()
            self.assertTrue(sent.wait(10))
            time.sleep(0.3)     # its PAM check is done or under way
            code, secs = timed_auth(fast, self.user + '@example.test',
                                    self.password)
            fast_end = time.perf_counter()
            th.join(20)
            self.assertFalse(th.is_alive())
        finally:
            close(slow)
            close(fast)
        self.assertEqual(code, 235)
        self.assertLess(secs, DELAYED)     # success is not delayed
        self.assertEqual(out.get('code'), 535)
        self.assertGreaterEqual(out['secs'], DELAYED)
        self.assertLess(fast_end, out['end'])

    def test_9_helper_death_gives_454(self):
        helpers = [pid for pid, uid in children(self.d.pid) if uid == 0]
        self.assertEqual(len(helpers), 1)
        mark = self.d.log_mark()
        os.kill(helpers[0], signal.SIGKILL)
        self.d.wait_log(r'PAM helper gone', since=mark)
        self.assertEqual(auth(self.d, self.user + '@example.test',
                              self.password), 454)
        # the daemon itself carries on
        s = smtp(self.d)
        self.assertEqual(s.noop()[0], 250)
        s.quit()


class AuthPamPolicy(unittest.TestCase):
    """min_uid and deny_users set in the config."""

    def test_deny_users_and_min_uid_configured(self):
        with Daemon(plugins=pam_plugins(min_uid=0,
                                        deny_users=[Users.user2])) as d:
            d.start()
            mark = d.log_mark()
            code, secs = auth_time(d, Users.user2 + '@example.test',
                                   Users.password2)
            self.assertEqual(code, 535)
            self.assertGreaterEqual(secs, DELAYED)
            d.wait_log(r'refused %s@example\.test \(PAM user %s\): in '
                       r'deny_users' % (Users.user2, Users.user2), since=mark)
            # min_uid 0: the system account may log in
            self.assertEqual(auth(d, Users.sysuser + '@example.test',
                                  Users.syspassword), 235)
            self.assertEqual(auth(d, Users.user + '@example.test',
                                  Users.password), 235)

    def test_empty_deny_users_still_min_uid(self):
        with Daemon(plugins=pam_plugins(deny_users=[])) as d:
            d.start()
            self.assertEqual(auth(d, Users.user2 + '@example.test',
                                  Users.password2), 235)
            mark = d.log_mark()
            self.assertEqual(auth(d, 'root@example.test', 'any-password'),
                             535)
            d.wait_log(r'refused root@example\.test \(PAM user root\): '
                       r'uid 0 is below min_uid 1000', since=mark)


class AuthPamHelperExit(unittest.TestCase):
    def test_helper_exits_with_daemon(self):
        with Daemon(plugins=lambda d: dict(default_plugins(d),
                                           **{'30-auth_pam.yaml':
                                              {'module': 'auth_pam'}})) as d:
            d.start()
            helpers = [pid for pid, uid in children(d.pid) if uid == 0]
            self.assertEqual(len(helpers), 1)
            d.kill9()
            deadline = time.monotonic() + 5
            while os.path.exists('/proc/%d' % helpers[0]):
                with open('/proc/%d/stat' % helpers[0]) as f:
                    if f.read().rsplit(')', 1)[1].split()[0] == 'Z':
                        break   # exited; a zombie of init's until reaped
                self.assertLess(time.monotonic(), deadline,
                                'PAM helper outlived the daemon')
                time.sleep(0.05)


if __name__ == '__main__':
    unittest.main(verbosity=2)
