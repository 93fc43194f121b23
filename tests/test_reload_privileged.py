#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_reload_privileged - what a reload needs root for, after the drop.

satcheld starts as root with `user: nobody` and drops privileges; its
privileged helper (core/privops.c) keeps root for a reload:
  - a certificate renewed in place whose key is 0600 root (as certbot
    writes it): `satchelctl reload` makes the new one served, with a real
    TLS client looking; doctor compares what the listener serves with the
    file;
  - a reload that cannot take a part (a bad key, a state_dir change)
    exits non-zero and says what, and the old certificate stays served;
  - a listener added on a port below 1024, or moved to another one,
    answers after a reload (the helper binds it and passes the socket).
Needs root (it is what satcheld drops from); skipped otherwise.
"""

import os
import shutil
import socket
import subprocess
import time
import unittest

import procmem
from satchel_harness import (Daemon, default_plugins, file_der,
                             make_pair, raw, served_der, skip)

if os.geteuid() != 0:
    skip('test_reload_privileged needs root: satcheld starts as root '
         'and drops to nobody')
if shutil.which('certtool') is None or shutil.which('gnutls-cli') is None:
    skip('certtool and gnutls-cli (gnutls-bin) are needed')


def served_starttls_gnutls_cli(d):
    """What gnutls-cli prints of the STARTTLS listener's certificate."""
    r = subprocess.run(['gnutls-cli', '--insecure', '--starttls-proto=smtp',
                        '--port', str(d.port('smtp')), '127.0.0.1'],
                       input='QUIT\r\n', capture_output=True, text=True,
                       timeout=30)
    return r.stdout + r.stderr


def key_lines(key):
    """The base64 lines of a PEM key: its transport form, which must not
    linger in the daemon's memory (the key itself is in use there)."""
    with open(key) as f:
        text = f.read()
    body = text[text.index('-----BEGIN'):text.index('-----END')]
    return [l.strip().encode() for l in body.splitlines()[1:] if l.strip()]


class CertificateReload(unittest.TestCase):

    def daemon(self, tlsdir):
        cert, key = make_pair(tlsdir, 'first')
        return Daemon(main={'tls': {'certificate': cert, 'key': key}}), \
            cert, key

    def test_renewed_certificate_is_served_after_reload(self):
        tlsdir = os.path.join('/run' if os.path.isdir('/run') else '/tmp',
                              'satchel-test-le-%d' % os.getpid())
        try:
            d, cert, key = self.daemon(tlsdir)
            with d:
                d.start()
                first = file_der(cert)
                self.assertEqual(served_der(d), first)
                r = d.ctl('doctor')
                self.assertRegex(r.stdout, r'(?m)^ok +tls: the listener '
                                 r'on 127\.0\.0\.1:\d+ serves the '
                                 r'certificate of ')

                make_pair(tlsdir, 'second')     # the renewal
                self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
                second = file_der(cert)
                self.assertNotEqual(first, second)
                # doctor sees that the listener still serves the old one
                r = d.ctl('doctor')
                self.assertRegex(r.stdout, r'(?m)^FAIL +tls: the listener '
                                 r'on 127\.0\.0\.1:\d+ serves another '
                                 r'certificate than ')
                r = d.ctl('reload')
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn('configuration reloaded', r.stdout)
                self.assertEqual(served_der(d), second)
                self.assertRegex(served_starttls_gnutls_cli(d),
                                 r"subject `CN=second'")
                # the key travelled from the helper: no copy of its PEM
                # is left in the daemon's memory
                if procmem.can_scan(d.pid):
                    self.assertEqual(procmem.find(d.pid, key_lines(key)),
                                     [])
                r = d.ctl('doctor')
                self.assertNotRegex(r.stdout, r'serves another')
                self.assertRegex(r.stdout, r'(?m)^ok +tls: the listener')
                # the key never became readable to the daemon's user
                self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
                self.assertEqual(os.stat(key).st_uid, 0)
        finally:
            shutil.rmtree(tlsdir, ignore_errors=True)

    def test_bad_key_fails_the_reload_loudly(self):
        tlsdir = os.path.join('/tmp', 'satchel-test-badkey-%d' % os.getpid())
        try:
            d, cert, key = self.daemon(tlsdir)
            with d:
                d.start()
                first = file_der(cert)
                with open(key, 'w') as f:
                    f.write('-----BEGIN PRIVATE KEY-----\nnot a key\n'
                            '-----END PRIVATE KEY-----\n')
                make = make_pair(os.path.join(tlsdir, 'other'), 'x')
                shutil.copy(make[0], cert)   # a cert without its key
                r = d.ctl('reload')
                self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn('reload incomplete', r.stderr)
                self.assertIn(key, r.stderr)
                self.assertIn('still serving the old certificate', r.stderr)
                self.assertEqual(served_der(d), first)
                d.wait_log(r'not all of it took: .*privkey\.pem: not a '
                           r'usable private key')
        finally:
            shutil.rmtree(tlsdir, ignore_errors=True)

    def test_key_the_user_can_change_is_not_read_by_root(self):
        """A key in a directory nobody owns: the helper refuses it (root
        reads nothing the daemon's user could swap) and the reload says
        so."""
        tlsdir = os.path.join('/tmp', 'satchel-test-userkey-%d' % os.getpid())
        try:
            d, cert, key = self.daemon(tlsdir)
            with d:
                d.start()
                os.chown(tlsdir, 65534, 65534)
                r = d.ctl('reload')
                self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertRegex(r.stderr, r'can be changed by the '
                                 r"daemon's user")
        finally:
            shutil.rmtree(tlsdir, ignore_errors=True)

    def test_restart_only_key_fails_the_reload(self):
        """user: and state_dir: take effect at a restart only: the reload
        says so. (satchelctl finds the daemon through both, so this one
        is seen in the log of a SIGHUP reload.)"""
        with Daemon() as d:
            d.start()
            d.main['user'] = 'daemon'
            d.main['state_dir'] = os.path.join(d.tmp, 'state2')
            os.makedirs(d.main['state_dir'])
            os.chown(d.main['state_dir'], 65534, 65534)
            mark = d.log_mark()
            d.reload()
            d.wait_log(r'not all of it took: state_dir changed: it takes '
                       r'effect at the next restart; user changed: it '
                       r'takes effect at the next restart', since=mark)


class PrivilegedPortReload(unittest.TestCase):

    def test_new_and_moved_listener_below_1024(self):
        extra = []

        def plugins(d):
            p = default_plugins(d)
            p['50-smtp.yaml']['listen'] = (
                list(p['50-smtp.yaml']['listen']) + extra)
            return p

        with Daemon(plugins=plugins) as d:
            d.start()
            extra.append({'address': '127.0.0.1:25', 'mode': 'mx',
                          'tls': 'starttls'})
            d.write_config()
            r = d.ctl('reload')
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with raw(d, 'smtp') as c:   # the old listener still answers
                c.expect(220)
            d._ports['p25'] = 25
            with raw(d, 'p25') as c:
                c.expect(220)
                c.expect(250, 'EHLO client.test')
            d.wait_log(r'127\.0\.0\.1:25 .*bound by the privileged helper')
            with open('/proc/%d/status' % d.pid) as f:
                self.assertRegex(f.read(), r'(?m)^Uid:\t65534\t')
            # moved to another port below 1024: the new one answers, the
            # old one is closed once the old generation is gone
            extra[0] = {'address': '127.0.0.1:26', 'mode': 'mx',
                        'tls': 'starttls'}
            d.write_config()
            r = d.ctl('reload')
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            d._ports['p26'] = 26
            with raw(d, 'p26') as c:
                c.expect(220)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(('127.0.0.1', 25), 2).close()
                except ConnectionRefusedError:
                    break
                time.sleep(0.1)
            else:
                self.fail('127.0.0.1:25 still accepts after the move')


if __name__ == '__main__':
    unittest.main(verbosity=2)
