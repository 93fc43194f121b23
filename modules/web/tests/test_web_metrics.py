#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""/metrics of the web module against the real satcheld: the values move
after a message, a refused connection and a failed AUTH; the open
connections show while they are open; Prometheus' own promtool accepts
the exposition."""

import base64
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from satchel_harness import Daemon, raw, smtp, tls_context  # noqa: E402
from webcommon import (ALICE, PASSWORD, get, metrics,  # noqa: E402
                       web_plugins)

MESSAGE = (b'From: sender@example.test\r\nTo: alice@example.test\r\n'
           b'Subject: metrics\r\n\r\nhello\r\n')

HITS_IP = 'satchel_limit_hits_total{limit="max_connections_per_ip"}'
LOCAL = 'satchel_messages_delivered_total{kind="local"}'
SMTP_NOW = 'satchel_connections_current{protocol="smtp"}'


def wait_metric(d, name, want, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        m = metrics(d)
        if m.get(name) == want:
            return m
        if time.monotonic() > deadline:
            raise AssertionError('%s is %r, not %r' % (name, m.get(name),
                                                       want))
        time.sleep(0.1)


class WebMetricsTest(unittest.TestCase):
    def daemon(self):
        return Daemon(plugins=web_plugins(ratelimit={
            'max_connections_per_ip': 2}), users={ALICE: PASSWORD})

    def test_values_move(self):
        with self.daemon() as d:
            d.start()
            m0 = metrics(d)
            for name in ('satchel_connections_limit',
                         'satchel_messages_accepted_total', LOCAL,
                         'satchel_messages_deferred_total',
                         'satchel_messages_bounced_total',
                         'satchel_queue_messages',
                         'satchel_auth_failures_total', HITS_IP):
                self.assertIn(name, m0)
            self.assertTrue(any(k.startswith('satchel_build_info{version=')
                                for k in m0), m0)
            self.assertEqual(m0['satchel_connections_limit'], 50)
            self.assertEqual(m0['satchel_messages_accepted_total'], 0)
            self.assertEqual(m0[LOCAL], 0)
            self.assertEqual(m0['satchel_auth_failures_total'], 0)
            self.assertEqual(m0[HITS_IP], 0)

            # a message: accepted, then delivered locally
            with smtp(d) as s:
                s.sendmail('sender@example.test', [ALICE], MESSAGE)
            d.wait_maildir(ALICE, 1)
            m1 = wait_metric(d, LOCAL, 1)
            self.assertEqual(m1['satchel_messages_accepted_total'], 1)
            self.assertEqual(
                m1['satchel_connections_total{protocol="smtp"}'], 1)

            # open connections show; a third from the same address is
            # refused (max_connections_per_ip: 2)
            a, b = raw(d), raw(d)
            a.expect(220)
            b.expect(220)
            m2 = wait_metric(d, SMTP_NOW, 2)
            self.assertEqual(m2[HITS_IP], 0)
            c = raw(d)
            c.expect(421)
            c.close()
            m3 = wait_metric(d, HITS_IP, 1)
            self.assertEqual(m3[SMTP_NOW], 2)
            a.close()
            b.close()
            wait_metric(d, SMTP_NOW, 0)

            # a failed AUTH (over TLS, on the submission port)
            with smtp(d, 'submission') as s:
                s.starttls(context=tls_context())
                s.ehlo()
                code, _ = s.docmd('AUTH', 'PLAIN ' + base64.b64encode(
                    b'\0' + ALICE.encode() + b'\0wrong').decode())
                self.assertEqual(code, 535)
            m4 = wait_metric(d, 'satchel_auth_failures_total', 1)
            # ... and a good one counts as a login
            with smtp(d, 'submission') as s:
                s.starttls(context=tls_context())
                s.ehlo()
                s.login(ALICE, PASSWORD)
            m5 = wait_metric(d, 'satchel_logins_total{protocol="smtp"}', 1)
            self.assertEqual(m5['satchel_auth_failures_total'], 1)
            self.assertEqual(m4['satchel_messages_accepted_total'], 1)

    def test_promtool_accepts(self):
        if shutil.which('promtool') is None:
            self.skipTest('promtool (Debian: prometheus) is not installed')
        with self.daemon() as d:
            d.start()
            with smtp(d) as s:
                s.sendmail('sender@example.test', [ALICE], MESSAGE)
            d.wait_maildir(ALICE, 1)
            wait_metric(d, LOCAL, 1)
            status, hdr, body = get(d, '/metrics')
            self.assertEqual(status, 200)
            self.assertTrue(hdr['content-type'].startswith(
                'text/plain; version=0.0.4'))
            r = subprocess.run(['promtool', 'check', 'metrics'],
                               input=body, capture_output=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            # promtool also passes its lint: nothing to say at all
            self.assertEqual(r.stdout + r.stderr, b'')

    def test_metrics_off(self):
        with Daemon(plugins=web_plugins(web={'metrics': False}),
                    users={ALICE: PASSWORD}) as d:
            d.start()
            self.assertEqual(get(d, '/metrics')[0], 404)
            self.assertEqual(get(d, '/')[0], 200)


if __name__ == '__main__':
    unittest.main()
