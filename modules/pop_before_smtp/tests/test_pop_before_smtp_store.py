#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""pop_before_smtp with `store:` (issue 16): two real satcheld (SMTP and
POP3 on 127.0.0.1, and on 127.0.0.2) share a real redis-server in the
test's network namespace. A POP3 login on one host lets that IP relay
through the other, for the window only; another IP stays refused. With
redis stopped, store_failure decides (local: this host's own logins;
tempfail: 451), promptly; sharing resumes when redis is back."""

import os
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.join(
    os.environ.get('SATCHEL_SRCDIR',
                   os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', '..', '..')),
    'modules', 'pop3', 'tests'))

from satchel_harness import Daemon, tls_context  # noqa: E402
from popcommon import (PASSWORD, SourcePOP3, pop3_plugins,  # noqa: E402
                       relay_refusal as refusal)
from redis_server import DaemonPair, RedisServer  # noqa: E402

ALICE = 'alice@example.test'
REMOTE = 'bob@partner.test'
HOSTS = ('127.0.0.1', '127.0.0.2')


def pbs_daemon(host, redis, window, failure):
    def plugins(d):
        p = pop3_plugins(window=window)(d)
        for name in ('50-smtp.yaml', '55-pop3.yaml'):
            for lst in p[name]['listen']:
                lst['address'] = lst['address'].replace('127.0.0.1', host)
        p['45-pop_before_smtp.yaml'].update(
            {'store': redis.url, 'store_failure': failure,
             'store_timeout': '200ms'})
        return p
    d = Daemon(plugins=plugins, users={ALICE: PASSWORD})
    d.host = host
    return d


def relay(d, src):
    """RCPT to a remote domain through d from src: (code, text, seconds)."""
    t0 = time.monotonic()
    with smtplib.SMTP(d.host, d.port('smtp'), timeout=10,
                      source_address=(src, 0)) as s:
        s.ehlo('client.example.test')
        code, msg = s.mail('someone@example.test')
        assert code == 250, (code, msg)
        code, msg = s.rcpt(REMOTE)
        s.rset()
        return code, msg, time.monotonic() - t0


def pop_session(d, src):
    """A full POP3 login (over STLS) to d from src."""
    p = SourcePOP3(d.host, d.port('pop3'), src)
    p.stls(tls_context())
    p.user(ALICE)
    p.pass_(PASSWORD)
    p.stat()
    p.quit()


def Pair(redis, window='1h', failure='local'):
    return DaemonPair(pbs_daemon(h, redis, window, failure) for h in HOSTS)


class PopBeforeSmtpStoreTest(unittest.TestCase):
    def assertRefused(self, d, src):
        code, msg, _ = relay(d, src)
        self.assertEqual((code, msg), (550, refusal(src)))

    def assertAllowed(self, d, src):
        code, msg, _ = relay(d, src)
        self.assertEqual(code, 250, msg)

    def test_login_on_one_relays_through_the_other(self):
        with RedisServer() as redis, Pair(redis, window='6s') as (a, b):
            self.assertRefused(b, '127.0.0.5')
            pop_session(a, '127.0.0.5')
            t_login = time.monotonic()
            self.assertAllowed(b, '127.0.0.5')
            b.wait_log(r'pop_before_smtp: relay allowed for 127\.0\.0\.5 '
                       r'to bob@partner\.test \(login on a host sharing '
                       r'the store, within the last 6s\)')
            self.assertAllowed(a, '127.0.0.5')
            self.assertRefused(b, '127.0.0.6')
            self.assertRefused(a, '127.0.0.6')
            # and the other way round
            pop_session(b, '127.0.0.6')
            self.assertAllowed(a, '127.0.0.6')
            # the window holds in the store too (its key expires)
            delay = t_login + 6.5 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.assertRefused(b, '127.0.0.5')

    def test_store_down_local_then_back(self):
        with RedisServer() as redis, Pair(redis) as (a, b):
            redis.stop()
            pop_session(a, '127.0.0.5')
            # a knows its own login; b cannot ask, so refuses, promptly
            self.assertAllowed(a, '127.0.0.5')
            code, msg, took = relay(b, '127.0.0.5')
            self.assertEqual((code, msg), (550, refusal('127.0.0.5')))
            self.assertLess(took, 3.0)
            b.wait_log(r'pop_before_smtp: store redis://\S+ failed: .*'
                       r'this host\'s logins only')
            redis.start()
            for d in (a, b):
                d.wait_log(r'store redis://\S+: connected again', timeout=20)
            pop_session(a, '127.0.0.7')
            self.assertAllowed(b, '127.0.0.7')

    def test_store_down_tempfail(self):
        with RedisServer() as redis, \
                Pair(redis, failure='tempfail') as (a, b):
            redis.stop()
            code, msg, took = relay(b, '127.0.0.5')
            self.assertEqual(code, 451)
            self.assertIn(b'4.3.0 Cannot check POP-before-SMTP now', msg)
            self.assertLess(took, 3.0)
            redis.start()
            b.wait_log(r'store redis://\S+: connected again', timeout=20)
            self.assertRefused(b, '127.0.0.5')


if __name__ == '__main__':
    unittest.main(verbosity=2)
