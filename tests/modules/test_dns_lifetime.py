#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""DNS lookups bound to an instance (sc_dns_resolve_inst), end to end:
the real satcheld, dnsmasq behind the harness's slow relay, and fx_dns,
which starts one lookup from a timer (outside any hook) and logs the
answer with its tag, read from its instance data.

A reload that drops fx_dns while its lookup is pending must not free the
instance (nor unload the module) before the answer: the old generation
waits for the lookup like for a pool job. A cancelled lookup never calls
back, and its generation then goes at once. Under the sanitizer build a
use of the freed instance is reported (the harness fails on a report); in
the plain build the answer would jump into an unloaded module.
Also: PTR lookups."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'harness'))
from satchel_harness import Daemon, builddir, default_plugins, raw  # noqa
from dnsserver import DnsServer  # noqa: E402

SLOW = 4.0      # seconds the relay holds the answers for slow.test


def link_fixture(d, name):
    """Puts the built fixture module into the daemon's module_dir."""
    src = os.path.join(builddir(), 'tests', 'modules', '.libs',
                       name + '.so')
    dst = os.path.join(d.module_dir, name + '.so')
    if not os.path.lexists(dst):
        os.symlink(src, dst)


def fx_daemon(dns, fx):
    """A daemon with the default plugins and 10-fx_dns (fx['conf'], or
    none when it is None: set it to None and reload to drop it)."""
    def plugins(d):
        p = default_plugins(d)
        if fx['conf'] is not None:
            p['10-fx_dns.yaml'] = dict(module='fx_dns', **fx['conf'])
        return p
    d = Daemon(plugins=plugins, main={'dns': {'servers': [dns.server]}})
    link_fixture(d, 'fx_dns')
    return d


class DnsLifetimeTest(unittest.TestCase):
    def serves(self, d):
        c = raw(d, 'smtp')
        c.expect(220)
        c.expect(221, 'QUIT')
        c.close()

    def test_reload_while_lookup_pending(self):
        fx = {'conf': {'lookup': 'slow.test', 'type': 'a'}}
        with DnsServer({'slow.test': {'A': '198.18.0.7'}},
                       delay={'slow.test': SLOW}) as dns, \
                fx_daemon(dns, fx) as d:
            d.start()
            d.wait_log(r'fx_dns 10-fx_dns: lookup of slow.test started')
            mark = d.log_mark()
            fx['conf'] = None
            d.reload()
            d.wait_log(r'configuration reloaded \(generation 2\)',
                       since=mark)
            d.wait_log(r'config generation 1: teardown waits for 1 job\b',
                       since=mark)
            # The answer has not come yet: the instance is still there,
            # and generation 2 serves meanwhile.
            self.assertNotIn('fx_dns 10-fx_dns: answer',
                             d.log_text()[mark:])
            self.assertNotIn('instance freed', d.log_text()[mark:])
            self.serves(d)
            m1 = d.wait_log(r'fx_dns 10-fx_dns: answer for slow.test: '
                            r'status 0, 1 record\(s\): 198\.18\.0\.7\n',
                            since=mark, timeout=SLOW + 15)
            m2 = d.wait_log(r'config generation 1: last job done',
                            since=mark)
            m3 = d.wait_log(r'fx_dns 10-fx_dns: instance freed(.*)\n',
                            since=mark)
            self.assertEqual(m3.group(1), '')
            self.assertLess(m1.start(), m2.start())
            self.assertLess(m2.start(), m3.start())
            self.serves(d)

    def test_cancel_in_retired_generation(self):
        # The lookup is cancelled (from the instance's timer) after the
        # reload retired its generation, before the answer: the callback
        # never runs, and the cancel ends the wait.
        fx = {'conf': {'lookup': 'slow.test', 'type': 'a',
                       'cancel_ms': 1500}}
        with DnsServer({'slow.test': {'A': '198.18.0.7'}},
                       delay={'slow.test': SLOW}) as dns, \
                fx_daemon(dns, fx) as d:
            d.start()
            d.wait_log(r'fx_dns 10-fx_dns: lookup of slow.test started')
            started = time.monotonic()
            mark = d.log_mark()
            fx['conf'] = None
            d.reload()
            d.wait_log(r'config generation 1: teardown waits for 1 job\b',
                       since=mark)
            m1 = d.wait_log(r'fx_dns 10-fx_dns: lookup of slow.test '
                            r'cancelled', since=mark)
            m2 = d.wait_log(r'config generation 1: last job done',
                            since=mark)
            m3 = d.wait_log(r'fx_dns 10-fx_dns: instance freed(.*)\n',
                            since=mark)
            self.assertEqual(m3.group(1), '')
            self.assertLess(m1.start(), m2.start())
            self.assertLess(m2.start(), m3.start())
            # Past the moment the relay lets the answer go: it reached
            # the resolver, but no callback ran.
            time.sleep(max(0.0, started + SLOW + 1.5 - time.monotonic()))
            self.assertNotIn('fx_dns 10-fx_dns: answer',
                             d.log_text()[mark:])
            self.serves(d)

    def test_ptr(self):
        fx = {'conf': {'lookup': '25.2.0.192.in-addr.arpa', 'type': 'ptr'}}
        # a documentation address (RFC 5737): the resolver treats its
        # reverse zone as unsigned, as it does the test. zone
        with DnsServer({'25.2.0.192.in-addr.arpa':
                        {'PTR': 'host.example.test'}},
                       local=('test', 'example', 'invalid',
                              '2.0.192.in-addr.arpa')) as dns, \
                fx_daemon(dns, fx) as d:
            d.start()
            d.wait_log(r'fx_dns 10-fx_dns: answer for '
                       r'25\.2\.0\.192\.in-addr\.arpa: status 0, '
                       r'1 record\(s\): host\.example\.test\n')
            # a name without a PTR record
            fx['conf'] = {'lookup': '26.2.0.192.in-addr.arpa',
                          'type': 'ptr'}
            mark = d.log_mark()
            d.reload()
            m = d.wait_log(r'fx_dns 10-fx_dns: answer for '
                           r'26\.2\.0\.192\.in-addr\.arpa: status (\d)',
                           since=mark)
            self.assertEqual(m.group(1), '2')   # NXDOMAIN


if __name__ == '__main__':
    unittest.main(verbosity=2)
