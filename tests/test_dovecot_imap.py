#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""IMAP alongside satchel, served by Dovecot (issue 13, README "IMAP with
Dovecot"): Debian's dovecot-imapd on satchel's Maildirs and satchel's
password file (passwd-file), its logins feeding pop_before_smtp.

A self-contained Dovecot (its config, runtime and state in a temp dir,
not /etc/dovecot; no system service) on 127.0.0.1 in run-test.sh's
namespace. The account is made by `satchelctl user add` (the harness),
the message is delivered by the real satcheld, the client is python3's
imaplib over IMAPS.
"""

import imaplib
import os
import pwd
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'harness'))
from satchel_harness import Daemon, default_plugins, free_port, skip  # noqa
from test_satchelctl_diag import make_cert  # noqa: E402

DOVECOT = '/usr/sbin/dovecot'
ALICE = 'alice@example.test'
PASSWORD = 'alice-imap-password'

# The README's post-login script: the client address to satchel's
# pop_before_smtp feed, then the IMAP session.
POSTLOGIN = '''#!/bin/sh
# Dovecot post-login: tell satchel's pop_before_smtp who logged in
echo "$IP" >> "%s"
exec "$@"
'''

# The README's Dovecot config, with the test's paths and ports.
CONF = '''# dovecot.conf for satchel's Maildirs and password file
protocols = imap
listen = 127.0.0.1
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
default_login_user = {login_user}
default_internal_user = {internal_user}
ssl = required
ssl_cert = <{tmp}/cert.pem
ssl_key = <{tmp}/key.pem
auth_mechanisms = plain

# satchel's auth_file password file: user@domain:{{CRYPT}}$y$...
passdb {{
  driver = passwd-file
  args = username_format=%Lu {passwd}
}}
# the Maildir satchel's maildir module writes (path: {mail}/%d/%u),
# owned by satchel's user
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%Ld/%Ln
}}
mail_location = maildir:~

service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
# optional: feed pop_before_smtp with IMAP logins
service imap {{
  executable = imap postlogin
}}
service postlogin {{
  executable = script-login {tmp}/postlogin.sh
  user = {internal_user}
  unix_listener postlogin {{
  }}
}}
'''


class Dovecot:
    """dovecot -F with a config of its own; a context manager."""

    def __init__(self, d, feed):
        self.tmp = tempfile.mkdtemp(prefix='satchel-dovecot-')
        os.chmod(self.tmp, 0o755)
        self.port = free_port()
        self.conf = os.path.join(self.tmp, 'dovecot.conf')
        self.proc = None
        if os.geteuid() == 0:
            # satchel's user (nobody in the tests) owns the Maildirs and
            # is in the password file's group: Dovecot's internal user
            # (auth, post-login) is that user here, as README says to add
            # the dovecot user to satchel's group
            user = pwd.getpwnam('nobody')
            login_user, internal_user = 'dovenull', 'nobody'
        else:
            user = pwd.getpwuid(os.geteuid())
            login_user = internal_user = user.pw_name
        make_cert(self.tmp, 'mail.example.test', 2, ['mail.example.test'])
        script = os.path.join(self.tmp, 'postlogin.sh')
        with open(script, 'w') as f:
            f.write(POSTLOGIN % feed)
        os.chmod(script, 0o755)
        with open(self.conf, 'w') as f:
            f.write(CONF.format(
                tmp=self.tmp, login_user=login_user,
                internal_user=internal_user,
                passwd=os.path.join(d.tmp, 'passwd'),
                mail=os.path.join(d.state_dir, 'mail'),
                uid=user.pw_uid, gid=user.pw_gid, port=self.port))

    def log(self):
        try:
            with open(os.path.join(self.tmp, 'dovecot.log')) as f:
                return f.read()
        except OSError:
            return ''

    def __enter__(self):
        self.proc = subprocess.Popen([DOVECOT, '-F', '-c', self.conf],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError('dovecot exited %d:\n%s\n%s'
                                     % (self.proc.returncode,
                                        self.proc.stdout.read().decode(),
                                        self.log()))
            try:
                socket.create_connection(('127.0.0.1', self.port),
                                         timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError('dovecot did not listen:\n' + self.log())

    def __exit__(self, exc_type, *a):
        if exc_type is not None:
            sys.stderr.write('dovecot log:\n' + self.log())
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False


def imap_client(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx, timeout=20)


class DovecotTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(DOVECOT):
            skip('dovecot-imapd is not installed')
        if not shutil.which('certtool'):
            skip('certtool (gnutls-bin) is not installed')

    def daemon(self, feed):
        def plugins(d):
            p = default_plugins(d, with_auth=True)
            p['20-pop_before_smtp.yaml'] = {
                'module': 'pop_before_smtp', 'feed': feed}
            return p
        return Daemon(plugins=plugins, users={ALICE: PASSWORD},
                      main={'domains': {'example.test':
                                        {'routing': 'local'},
                                        'partner.test':
                                        {'routing': 'remote'}}})

    def test_imap_login_reads_satchel_mail(self):
        feed_dir = tempfile.mkdtemp(prefix='satchel-feed-')
        self.addCleanup(shutil.rmtree, feed_dir, True)
        os.chmod(feed_dir, 0o777)
        feed = os.path.join(feed_dir, 'logins.ips')
        with self.daemon(feed) as d:
            d.start()
            with open(os.path.join(d.tmp, 'passwd')) as f:
                line = f.read()
            # satchelctl user add writes the scheme Dovecot reads
            self.assertTrue(line.startswith(ALICE + ':{CRYPT}$y$'), line)
            # the message, over SMTP to the real daemon
            with smtplib.SMTP('127.0.0.1', d.port('smtp'), timeout=20) as s:
                s.sendmail('carol@elsewhere.test', [ALICE],
                           b'From: carol@elsewhere.test\r\nTo: ' +
                           ALICE.encode() + b'\r\nSubject: read me over '
                           b'IMAP\r\n\r\nDelivered by satchel, read '
                           b'through Dovecot.\r\n')
            d.wait_maildir(ALICE, count=1, timeout=20)
            # before any login, 127.0.0.1 may not relay
            with smtplib.SMTP('127.0.0.1', d.port('smtp'), timeout=20) as s:
                s.ehlo('client.example.test')
                s.mail('alice@example.test')
                code, _ = s.rcpt('rose@partner.test')
                self.assertEqual(code // 100, 5)
            with Dovecot(d, feed) as dc:
                c = imap_client(dc.port)
                try:
                    with self.assertRaises(imaplib.IMAP4.error):
                        c.login(ALICE, 'wrong-password')
                finally:
                    c.logout()
                c = imap_client(dc.port)
                try:
                    typ, _ = c.login(ALICE.upper(), PASSWORD)
                    self.assertEqual(typ, 'OK')
                    typ, data = c.select('INBOX', readonly=True)
                    self.assertEqual((typ, data), ('OK', [b'1']))
                    typ, data = c.fetch('1', '(RFC822)')
                    self.assertEqual(typ, 'OK')
                    msg = data[0][1]
                    self.assertIn(b'Subject: read me over IMAP', msg)
                    self.assertIn(b'Delivered by satchel, read through '
                                  b'Dovecot.', msg)
                    self.assertIn(b'Return-Path: <carol@elsewhere.test>',
                                  msg)
                finally:
                    c.logout()
                self.assertIn('imap-login: Info: Login: user=<%s>' % ALICE,
                              dc.log())
            # the post-login script fed pop_before_smtp: now it may relay
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if os.path.exists(feed) and '127.0.0.1' in open(feed).read():
                    break
                time.sleep(0.1)
            with open(feed) as f:
                self.assertEqual(f.read().split(), ['127.0.0.1'])
            deadline = time.monotonic() + 10
            code = None
            while time.monotonic() < deadline:
                with smtplib.SMTP('127.0.0.1', d.port('smtp'),
                                  timeout=20) as s:
                    s.ehlo('client.example.test')
                    s.mail('alice@example.test')
                    code, _ = s.rcpt('rose@partner.test')
                    s.rset()
                if code == 250:
                    break
                time.sleep(0.3)
            self.assertEqual(code, 250)
            d.wait_log(r'pop_before_smtp')


if __name__ == '__main__':
    unittest.main(verbosity=2)
