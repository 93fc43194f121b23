#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_web_tls - `tls: implicit` web listeners (HTTPS) against the real
satcheld, with python's ssl as the client:
  - with the generated self-signed certificate: /metrics, the status page
    and autoconfiguration answer over HTTPS, verified against the
    certificate under state_dir (the one SMTP serves too); plain HTTP to
    that port gets no HTTP answer; a tls: none listener of the same
    instance still speaks plain HTTP;
  - with a configured certificate (tls.certificate/tls.key, the key 0600
    root when the test runs as root, read through the privileged helper
    on a reload): after it is replaced and `satchelctl reload`, the HTTPS
    listener serves the new one, as SMTPS does.
"""

import http.client
import os
import shutil
import ssl
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from satchel_harness import (Daemon, file_der, make_pair,  # noqa: E402
                             served_der, skip)
from webcommon import web_plugins  # noqa: E402

if shutil.which('certtool') is None:
    skip('certtool (gnutls-bin) is needed')


def ctx_for(cafile):
    """A client that trusts exactly cafile (no hostname: the generated
    certificate names the daemon's hostname, we dial 127.0.0.1)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=cafile)
    return ctx


def https(d, path, ctx, method='GET', body=None, headers=None):
    """(status, body, the served certificate's DER) of one request."""
    c = http.client.HTTPSConnection('127.0.0.1', d.port('web'), timeout=10,
                                    context=ctx)
    try:
        c.connect()
        der = c.sock.getpeercert(binary_form=True)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read(), der
    finally:
        c.close()


def tls_web(d):
    """the web instance: HTTPS on port('web'), plain HTTP on
    port('web2')"""
    p = web_plugins()(d)
    p['80-web.yaml']['listen'] = [
        {'address': '127.0.0.1:%d' % d.port('web'), 'tls': 'implicit'},
        {'address': '127.0.0.1:%d' % d.port('web2'), 'tls': 'none'},
    ]
    return p


class WebTlsGenerated(unittest.TestCase):

    def test_https_with_the_generated_certificate(self):
        with Daemon(plugins=tls_web) as d:
            d.start()
            cert = os.path.join(d.state_dir, 'tls', 'cert.pem')
            ctx = ctx_for(cert)
            st, body, der = https(d, '/metrics', ctx)
            self.assertEqual(st, 200, body)
            self.assertIn(b'satchel_connections_limit', body)
            self.assertEqual(der, file_der(cert))
            # the same certificate as the core's SMTPS listener
            self.assertEqual(served_der(d, 'smtps'), der)
            st, body, _ = https(d, '/', ctx)
            self.assertEqual(st, 200, body)
            self.assertIn(b'<html', body.lower())
            st, body, _ = https(
                d, '/.well-known/autoconfig/mail/config-v1.1.xml'
                '?emailaddress=alice@example.test', ctx)
            self.assertEqual(st, 200, body)
            self.assertIn(b'<clientConfig', body)
            st, body, _ = https(
                d, '/autodiscover/autodiscover.xml', ctx, method='POST',
                body=b'<?xml version="1.0"?><Autodiscover><Request>'
                     b'<EMailAddress>alice@example.test</EMailAddress>'
                     b'</Request></Autodiscover>',
                headers={'Content-Type': 'text/xml'})
            self.assertEqual(st, 200, body)

            # plain HTTP to the HTTPS port: no HTTP answer
            c = http.client.HTTPConnection('127.0.0.1', d.port('web'),
                                           timeout=10)
            with self.assertRaises((http.client.HTTPException, OSError)):
                try:
                    c.request('GET', '/metrics')
                    c.getresponse().read()
                finally:
                    c.close()

            # the tls: none listener next to it speaks plain HTTP
            c = http.client.HTTPConnection('127.0.0.1', d.port('web2'),
                                           timeout=10)
            try:
                c.request('GET', '/metrics')
                r = c.getresponse()
                self.assertEqual(r.status, 200)
                r.read()
            finally:
                c.close()
            # and the HTTPS one still answers after that garbage
            self.assertEqual(https(d, '/metrics', ctx)[0], 200)
            d.wait_log(r'serving HTTPS on 127\.0\.0\.1:%d' % d.port('web'))


class WebTlsConfigured(unittest.TestCase):

    def test_reload_serves_the_new_certificate(self):
        tlsdir = os.path.join('/run' if os.path.isdir('/run') and
                              os.access('/run', os.W_OK) else '/tmp',
                              'satchel-test-webtls-%d' % os.getpid())
        try:
            cert, key = make_pair(tlsdir, 'first')
            first = file_der(cert)
            with Daemon(plugins=tls_web,
                        main={'tls': {'certificate': cert,
                                      'key': key}}) as d:
                d.start()
                st, body, der = https(d, '/metrics', ctx_for(cert))
                self.assertEqual(st, 200, body)
                self.assertEqual(der, first)

                make_pair(tlsdir, 'second')
                second = file_der(cert)
                self.assertNotEqual(first, second)
                r = d.ctl('reload')
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                st, body, der = https(d, '/metrics', ctx_for(cert))
                self.assertEqual(st, 200, body)
                self.assertEqual(der, second)
                self.assertEqual(served_der(d, 'smtps'), second)
        finally:
            shutil.rmtree(tlsdir, ignore_errors=True)


if __name__ == '__main__':
    unittest.main(verbosity=2)
