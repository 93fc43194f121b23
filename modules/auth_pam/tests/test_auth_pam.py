#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""auth_pam against the real satcheld running as `nobody`: a real system
user (useradd + chpasswd) and a pam_unix service file, SMTP AUTH PLAIN over
TLS, wrong passwords, the account hook, and the privileged helper's death.
Needs root (creating users); skipped with a message otherwise."""

import os
import pwd
import secrets
import signal
import smtplib
import subprocess
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


def auth(d, user, password, name='submission'):
    """One AUTH PLAIN over TLS; returns the reply code."""
    if name == 'smtps':
        s = smtp(d, 'smtps')
        s.ehlo('client.example.test')
    else:
        s = smtp(d, name)
        s.ehlo('client.example.test')
        s.starttls(context=tls_context())
        s.ehlo('client.example.test')
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


def children(pid):
    """Direct children of pid with their uid, from /proc."""
    out = []
    for ent in os.listdir('/proc'):
        if not ent.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % ent) as f:
                fields = f.read().rsplit(')', 1)[1].split()
            with open('/proc/%s/status' % ent) as f:
                uid = [l for l in f if l.startswith('Uid:')][0].split()[1]
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append((int(ent), int(uid)))
    return out


def proc_uid(pid):
    with open('/proc/%d/status' % pid) as f:
        return int([l for l in f if l.startswith('Uid:')][0].split()[1])


class AuthPam(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        preconditions()
        tag = secrets.token_hex(3)
        cls.user = 'satpt' + tag
        cls.password = 'Pam-pass-' + secrets.token_hex(4)
        cls.service = 'satchel-test-' + tag
        cls.pam_file = os.path.join(PAM_DIR, cls.service)
        cls.d = None
        try:
            subprocess.run([sbin('useradd'), '-M', '-s', '/usr/sbin/nologin',
                            cls.user], check=True, capture_output=True,
                           timeout=30)
            cls.user_made = True
            subprocess.run([sbin('chpasswd')], check=True,
                           input='%s:%s\n' % (cls.user, cls.password),
                           text=True, capture_output=True, timeout=30)
            with open(cls.pam_file, 'w') as f:
                f.write('auth required pam_unix.so\n'
                        'account required pam_unix.so\n')

            def plugins(d):
                p = default_plugins(d, with_auth=False)
                p['30-auth_pam.yaml'] = {'module': 'auth_pam',
                                         'service': cls.service}
                return p
            cls.d = Daemon(plugins=plugins)
            cls.d.start()
        except BaseException:
            cls.cleanup()
            raise

    @classmethod
    def cleanup(cls):
        try:
            if cls.d is not None:
                cls.d.__exit__(None, None, None)
        finally:
            if os.path.exists(cls.pam_file):
                os.unlink(cls.pam_file)
            if getattr(cls, 'user_made', False):
                subprocess.run([sbin('userdel'), cls.user],
                               capture_output=True, timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.cleanup()

    def test_1_daemon_runs_as_nobody_helper_as_root(self):
        self.assertEqual(proc_uid(self.d.pid), pwd.getpwnam('nobody').pw_uid)
        helpers = [pid for pid, uid in children(self.d.pid) if uid == 0]
        self.assertEqual(len(helpers), 1, children(self.d.pid))

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


class AuthPamHelperExit(unittest.TestCase):
    def test_helper_exits_with_daemon(self):
        preconditions()
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
