#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_tls_server - satcheld's TLS as a server, seen by real clients.

- The server's cipher order wins (%SERVER_PRECEDENCE): a client that
  prefers AES-128-GCM gets AES-256-GCM, over TLS 1.2 (python ssl) and
  TLS 1.3 (gnutls-cli).
- Session resumption with tickets, TLS 1.2 and 1.3 (python ssl); the
  ticket key is new after a reload, so an older ticket no longer resumes.
- After STARTTLS, the TLS 1.3 ticket answers the client's Finished (so
  that answer carries the ACK a client with Nagle's algorithm waits for
  before its first command; without it each session lost ~40 ms).
- The generated self-signed certificate lives a year, no longer; one
  near its end is made anew at a reload; doctor says it is self-signed.
"""

import datetime
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import unittest

from satchel_harness import Daemon, raw, skip

if shutil.which('certtool') is None or shutil.which('gnutls-cli') is None:
    skip('certtool and gnutls-cli (gnutls-bin) are needed')


def client_ctx(version=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    return ctx


def smtps(d, ctx, session=None):
    """(cipher name, session_reused, session) of one implicit-TLS visit;
    the banner is read, so TLS 1.3 tickets have arrived."""
    with socket.create_connection(('127.0.0.1', d.port('smtps')), 10) as s:
        with ctx.wrap_socket(s, session=session) as t:
            banner = t.recv(512)
            assert banner.startswith(b'220 '), banner
            t.sendall(b'QUIT\r\n')
            t.recv(512)
            return t.cipher()[0], t.session_reused, t.session


def not_after(pem_path):
    r = subprocess.run(['certtool', '--certificate-info', '--infile',
                        pem_path], capture_output=True, text=True,
                       check=True, timeout=30)
    m = re.search(r'Not After: (.+)', r.stdout)
    return datetime.datetime.strptime(m.group(1).strip(),
                                      '%a %b %d %H:%M:%S UTC %Y')


class ServerTls(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def test_server_cipher_order_tls12(self):
        ctx = client_ctx(ssl.TLSVersion.TLSv1_2,
                         'ECDHE-ECDSA-AES128-GCM-SHA256:'
                         'ECDHE-ECDSA-AES256-GCM-SHA384')
        cipher, _, _ = smtps(self.d, ctx)
        self.assertEqual(cipher, 'ECDHE-ECDSA-AES256-GCM-SHA384')

    def test_server_cipher_order_tls13(self):
        r = subprocess.run(
            ['gnutls-cli', '--insecure', '--port',
             str(self.d.port('smtps')), '--priority',
             'NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:'
             '+AES-256-GCM', '127.0.0.1'],
            input='QUIT\r\n', capture_output=True, text=True, timeout=30)
        self.assertRegex(r.stdout, r'Description: \(TLS1\.3[^)]*\)-.*'
                         r'\(AES-256-GCM\)', r.stdout + r.stderr)

    def resumes(self, version):
        ctx = client_ctx(version)
        _, reused, sess = smtps(self.d, ctx)
        self.assertFalse(reused)
        self.assertIsNotNone(sess)
        _, reused, _ = smtps(self.d, ctx, sess)
        self.assertTrue(reused, 'a %s session was not resumed' % version)
        return ctx, sess

    def test_resumption_tls12(self):
        self.resumes(ssl.TLSVersion.TLSv1_2)

    def test_resumption_tls13(self):
        self.resumes(ssl.TLSVersion.TLSv1_3)

    def test_tls13_ticket_answers_the_finished(self):
        # the handshake by hand (memory BIOs), so that the client's
        # Finished is held back until all the server sent before it is
        # read; then the server must answer the Finished on its own
        ctx = client_ctx(ssl.TLSVersion.TLSv1_3)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        with raw(self.d) as c:
            c.expect(220)
            c.expect(250, 'EHLO client.test')
            c.expect(220, 'STARTTLS')
            s = c.sock
            obj = ctx.wrap_bio(inc, out)
            for _ in range(20):
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    s.sendall(out.read())
                    data = s.recv(65536)
                    self.assertTrue(data, 'closed during the handshake')
                    inc.write(data)
            finished = out.read()
            self.assertTrue(finished)
            s.settimeout(0.5)
            try:
                while s.recv(65536):
                    pass    # a ticket sent before the Finished
            except socket.timeout:
                pass
            s.settimeout(10)
            s.sendall(finished)
            try:
                answer = s.recv(65536)
            except socket.timeout:
                answer = b''
            self.assertTrue(answer, 'nothing answered the client Finished')
            inc.write(answer)
            with self.assertRaises(ssl.SSLWantReadError):
                obj.read(1)
            self.assertTrue(obj.session.has_ticket)

    def test_zz_reload_rotates_the_ticket_key(self):
        ctx, sess = self.resumes(ssl.TLSVersion.TLSv1_2)
        r = self.d.ctl('reload')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        _, reused, _ = smtps(self.d, ctx, sess)
        self.assertFalse(reused, 'a ticket from before the reload resumed')
        self.resumes(ssl.TLSVersion.TLSv1_2)

    def test_generated_certificate_lives_a_year(self):
        cert = os.path.join(self.d.state_dir, 'tls', 'cert.pem')
        days = (not_after(cert) - datetime.datetime.utcnow()).days
        self.assertLessEqual(days, 366)
        self.assertGreaterEqual(days, 360)

    def test_doctor_says_self_signed(self):
        r = self.d.ctl('doctor')
        self.assertRegex(r.stdout, r'(?m)^warn tls: the certificate is '
                         r'self-signed: clients will warn')


class GeneratedRenewal(unittest.TestCase):

    def test_generated_certificate_near_its_end_is_made_anew(self):
        with Daemon() as d:
            d.start()
            tls = os.path.join(d.state_dir, 'tls')
            cert, key = (os.path.join(tls, 'cert.pem'),
                         os.path.join(tls, 'key.pem'))
            tmpl = os.path.join(d.tmp, 'old.tmpl')
            with open(tmpl, 'w') as f:
                f.write('cn = "mail.example.test"\nexpiration_days = 10\n'
                        'tls_www_server\nsigning_key\n')
            subprocess.run(['certtool', '--generate-privkey',
                            '--key-type=ecdsa', '--outfile', key],
                           check=True, capture_output=True, timeout=60)
            subprocess.run(['certtool', '--generate-self-signed',
                            '--load-privkey', key, '--template', tmpl,
                            '--outfile', cert], check=True,
                           capture_output=True, timeout=60)
            if os.geteuid() == 0:
                pw = pwd.getpwnam('nobody')
                for p in (cert, key):
                    os.chown(p, pw.pw_uid, pw.pw_gid)
            with open(cert) as f:
                old = ssl.PEM_cert_to_DER_cert(f.read())
            r = d.ctl('reload')
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            d.wait_log(r'ends within 30 days: making a new one')
            _, _, _ = smtps(d, client_ctx())
            with socket.create_connection(('127.0.0.1', d.port('smtps')),
                                          10) as s:
                with client_ctx().wrap_socket(s) as t:
                    served = t.getpeercert(binary_form=True)
            self.assertNotEqual(served, old)
            days = (not_after(cert) - datetime.datetime.utcnow()).days
            self.assertGreaterEqual(days, 360)


if __name__ == '__main__':
    unittest.main(verbosity=2)
