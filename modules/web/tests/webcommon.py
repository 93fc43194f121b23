# SPDX-License-Identifier: MIT
"""Helpers shared by the web module's integration tests: a daemon with
smtp, pop3, ratelimit and web listeners, and HTTP from a chosen loopback
source address (http.client, the standard library's client)."""

import http.client
import re

from satchel_harness import default_plugins

ALICE = 'alice@example.test'
PASSWORD = 'secret-password'


def web_plugins(web=None, ratelimit=None):
    """default plugins (with auth) + two pop3 listeners, a ratelimit
    instance and a web instance on port('web'); `web`/`ratelimit` dicts
    are merged into those instances' keys."""
    def f(d):
        p = default_plugins(d, with_auth=True)
        p['10-ratelimit.yaml'] = dict({'module': 'ratelimit',
                                       'max_connections': 50},
                                      **(ratelimit or {}))
        p['55-pop3.yaml'] = {
            'module': 'pop3',
            'listen': [
                {'address': '127.0.0.1:%d' % d.port('pop3'),
                 'tls': 'starttls'},
                {'address': '127.0.0.1:%d' % d.port('pop3s'),
                 'tls': 'implicit'},
            ],
        }
        p['80-web.yaml'] = dict({
            'module': 'web',
            'listen': [{'address': '127.0.0.1:%d' % d.port('web')}],
            'allow': ['127.0.0.1/32', '::1/128'],
        }, **(web or {}))
        return p
    return f


def request(d, method, path, body=None, source=None, headers=None,
         timeout=10):
    """(status, headers dict lower-cased, body bytes) of one request."""
    c = http.client.HTTPConnection(
        '127.0.0.1', d.port('web'), timeout=timeout,
        source_address=(source, 0) if source else None)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return (r.status, {k.lower(): v for k, v in r.getheaders()},
                r.read())
    finally:
        c.close()


def get(d, path, source=None):
    return request(d, 'GET', path, source=source)


def parse_metrics(text):
    """{'name{label="v"}' or 'name': float} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        m = re.match(r'^(\S+)\s+(\S+)$', line)
        assert m, 'bad sample line %r' % line
        out[m.group(1)] = float(m.group(2))
    return out


def metrics(d):
    status, hdr, body = get(d, '/metrics')
    assert status == 200, (status, body)
    return parse_metrics(body.decode())
