#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""HTTP of the web module against the real satcheld: `allow` gives 403 to
other source addresses on /metrics and the status page (autoconfig stays
public); malformed requests get 400 (libmicrohttpd's parser) and the
daemon goes on serving; idle connections do not block others; a reload
keeps the port and applies a new `allow`, and a listener removed by a
reload stops answering."""

import http.client
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from satchel_harness import Daemon  # noqa: E402
from webcommon import ALICE, PASSWORD, get, web_plugins  # noqa: E402

PROTECTED = ('/metrics', '/', '/status.json', '/status.js')
PUBLIC = '/mail/config-v1.1.xml?emailaddress=' + ALICE


def raw_http(d, data, timeout=10):
    """What the server answers to bytes `data` (then EOF), whole."""
    s = socket.create_connection(('127.0.0.1', d.port('web')), timeout)
    try:
        s.sendall(data)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b''
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


def status_of(answer):
    line = answer.split(b'\r\n', 1)[0]
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith(
        b'HTTP/') else None


# libmicrohttpd (0.9.75) closes the connection at once, without a
# status line, when it cannot even split the request line
UNPARSEABLE = [
    b'GARBAGE\r\n\r\n',
    b'GET\r\n\r\n',
    b'\x01\xff\xfe\r\n\r\n',
]

MALFORMED = [
    b'GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n',
    b'GET / HTTP/1.1\r\n\r\n',                      # no Host (RFC 9112)
    b'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    b'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n',
    b'POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\n'
    b'Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n',
    b'GET / HTTP/1.1\r\nHost: x\r\n' + b'X-Long: ' + b'a' * 100000 +
    b'\r\n\r\n',
]


class WebHttpTest(unittest.TestCase):
    def test_allow(self):
        with Daemon(plugins=web_plugins(), users={ALICE: PASSWORD}) as d:
            d.start()
            for path in PROTECTED:
                self.assertEqual(get(d, path)[0], 200, path)
                status, _, body = get(d, path, source='127.0.0.2')
                self.assertEqual(status, 403, path)
                self.assertNotIn(b'satchel_', body)
            self.assertEqual(get(d, PUBLIC, source='127.0.0.2')[0], 200)
            self.assertEqual(get(d, '/nothing-here')[0], 404)
            self.assertEqual(get(d, '/metrics', source='127.0.0.2')[0], 403)

            # a reload: the same port goes on serving; the new allow
            # holds at once
            d.plugins = web_plugins(web={'allow': ['127.0.0.2/32']})
            mark = d.reload(wait=False)
            d.wait_log(r'configuration reloaded \(generation 2\)',
                       since=mark)
            self.assertEqual(get(d, '/metrics', source='127.0.0.2')[0], 200)
            self.assertEqual(get(d, '/metrics')[0], 403)
            # and once more, back (a third generation, the socket passed
            # on again)
            d.plugins = web_plugins()
            mark = d.reload(wait=False)
            d.wait_log(r'configuration reloaded \(generation 3\)',
                       since=mark)
            self.assertEqual(get(d, '/metrics')[0], 200)
            self.assertEqual(get(d, '/metrics', source='127.0.0.2')[0], 403)

    def test_default_allow(self):
        # no allow key: the default, loopback only (127.0.0.0/8, ::1)
        def p(d):
            x = web_plugins()(d)
            del x['80-web.yaml']['allow']
            x['80-web.yaml']['listen'].append(
                {'address': '[::1]:%d' % d.port('web6')})
            return x
        with Daemon(plugins=p, users={ALICE: PASSWORD}) as d:
            d.start()
            self.assertEqual(get(d, '/metrics', source='127.0.0.2')[0], 200)
            c = http.client.HTTPConnection('::1', d.port('web6'),
                                           timeout=10)
            try:
                c.request('GET', '/metrics')
                self.assertEqual(c.getresponse().status, 200)
            finally:
                c.close()
        def q(d):
            x = web_plugins()(d)
            x['80-web.yaml']['allow'] = ['10.0.0.0/8']
            return x
        with Daemon(plugins=q, users={ALICE: PASSWORD}) as d:
            d.start()
            self.assertEqual(get(d, '/metrics')[0], 403)

    def test_listener_removed_by_reload(self):
        def two(d):
            p = web_plugins()(d)
            p['80-web.yaml']['listen'].append(
                {'address': '127.0.0.1:%d' % d.port('web2')})
            return p
        with Daemon(plugins=two, users={ALICE: PASSWORD}) as d:
            d.start()
            port2 = d.port('web2')
            s = socket.create_connection(('127.0.0.1', port2), 5)
            s.close()
            d.plugins = web_plugins()
            mark = d.reload(wait=False)
            d.wait_log(r'configuration reloaded \(generation 2\)',
                       since=mark)
            self.assertEqual(get(d, '/metrics')[0], 200)
            deadline = time.monotonic() + 10
            while True:
                try:
                    s = socket.create_connection(('127.0.0.1', port2), 5)
                    s.close()
                except ConnectionRefusedError:
                    break
                self.assertLess(time.monotonic(), deadline,
                                'the removed listener still accepts')
                time.sleep(0.1)

    def test_malformed(self):
        with Daemon(plugins=web_plugins(), users={ALICE: PASSWORD}) as d:
            d.start()
            pid = d.pid
            # idle connections (a slow client) hold nothing up
            idle = [socket.create_connection(('127.0.0.1', d.port('web')),
                                             5) for _ in range(5)]
            idle[0].sendall(b'GET /metrics HTTP/1.1\r\nHost: x\r\n')
            for data in UNPARSEABLE:
                t0 = time.monotonic()
                self.assertEqual(raw_http(d, data), b'')
                self.assertLess(time.monotonic() - t0, 5)
                self.assertEqual(get(d, '/metrics')[0], 200)
            for data in MALFORMED:
                answer = raw_http(d, data)
                st = status_of(answer)
                if b'X-Long' in data:
                    # too big for the request buffer: 431 (RFC 6585)
                    self.assertIn(st, (400, 431), answer[:200])
                else:
                    self.assertEqual(st, 400, (data[:60], answer[:200]))
                self.assertEqual(get(d, '/metrics')[0], 200)
            # HTTP/1.0 and a version from the future
            self.assertEqual(status_of(raw_http(
                d, b'GET /metrics HTTP/1.0\r\n\r\n')), 200)
            self.assertIn(status_of(raw_http(
                d, b'GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n')),
                (400, 505))
            self.assertEqual(status_of(raw_http(
                d, b'DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n')), 405)
            # a HEAD has the headers and no body
            answer = raw_http(d, b'HEAD /metrics HTTP/1.1\r\nHost: x\r\n'
                                 b'Connection: close\r\n\r\n')
            self.assertEqual(status_of(answer), 200)
            self.assertTrue(answer.endswith(b'\r\n\r\n'), answer[-100:])
            for s in idle:
                s.close()
            self.assertEqual(d.pid, pid)
            self.assertTrue(d.running())
            self.assertEqual(get(d, '/metrics')[0], 200)


if __name__ == '__main__':
    unittest.main()
