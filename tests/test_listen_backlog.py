#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The listen backlog never drops a connection (issue 15): with satcheld's
event loop stopped (SIGSTOP), a burst of 1,500 connections waits in the
kernel's accept queue; after SIGCONT every one gets its 220 greeting.

A backlog smaller than the burst does not reset anyone (Linux's
tcp_abort_on_overflow is 0): the kernel drops the SYN, or the handshake's
last ACK, and the client retries 1 s, 3 s, 7 s ... later, so the greetings
all still come, late. The precise check is therefore the kernel's own
counters of listen-queue overflows (TcpExt ListenOverflows/ListenDrops in
/proc/net/netstat, what `nstat` shows; per network namespace, and
run-test.sh gives this test its own): they must not move during the burst.
The greetings are checked too: all 1,500, each within a bounded time.

No ratelimit instance is loaded, so no max_connections cap (the 421 of the
contract) refuses any of them; every reply must be a 220.

Also: every listener, the core's and the web module's own, listens with
the system's maximum, net.core.somaxconn (ss shows a listening socket's
backlog as its Send-Q)."""

import errno
import os
import resource
import selectors
import signal
import socket
import subprocess
import time
import unittest

from satchel_harness import Daemon, skip, smtp

BURST = 1500
CONNECT_WINDOW = 10     # s for the kernel to take the burst (loop stopped)
GREETING_WINDOW = 30    # s after SIGCONT for every 220


def netstat_counters():
    """TcpExt's ListenOverflows and ListenDrops for this namespace."""
    with open('/proc/net/netstat') as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith('TcpExt:'):
            d = dict(zip(names.split()[1:], map(int, values.split()[1:])))
            return {k: d[k] for k in ('ListenOverflows', 'ListenDrops')}
    raise AssertionError('no TcpExt line in /proc/net/netstat')


def proc_state(pid):
    with open('/proc/%d/stat' % pid) as f:
        return f.read().rsplit(')', 1)[1].split()[0]


def listen_backlog(port):
    """The backlog of the socket listening on 127.0.0.1:port, as the kernel
    holds it (ss's Send-Q of a listening socket)."""
    out = subprocess.run(['ss', '-Hltn', 'sport = :%d' % port],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    assert len(rows) == 1, out
    return int(rows[0][2])


def plugins(d):
    return {
        '40-router.yaml': {'module': 'router'},
        '50-smtp.yaml': {'module': 'smtp', 'listen': [
            {'address': '127.0.0.1:%d' % d.port('mx'), 'mode': 'mx',
             'tls': 'none'}]},
    }


class ListenBacklogTest(unittest.TestCase):

    def test_every_listener_has_the_system_maximum(self):
        """smtp's listener (the core's) and the web module's own listen
        with net.core.somaxconn, whatever a build chose."""
        def p(d):
            x = plugins(d)
            x['80-web.yaml'] = {
                'module': 'web',
                'listen': [{'address': '127.0.0.1:%d' % d.port('web')}],
                'allow': ['127.0.0.1/32']}
            return x
        with Daemon(plugins=p, main={'log': {'level': 'notice'}}) as d:
            d.start()
            self.assertEqual({n: listen_backlog(d.port(n))
                              for n in ('mx', 'web')},
                             {'mx': self.somaxconn, 'web': self.somaxconn})

    def setUp(self):
        with open('/proc/sys/net/core/somaxconn') as f:
            somaxconn = self.somaxconn = int(f.read())
        if somaxconn <= BURST:
            skip('net.core.somaxconn is %d here: the system itself caps '
                 'the backlog below the burst of %d' % (somaxconn, BURST))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 2 * BURST + 256      # ours and (inherited) the daemon's
        if hard != resource.RLIM_INFINITY and hard < want:
            skip('RLIMIT_NOFILE hard limit %d < %d' % (hard, want))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    def test_burst_while_stopped_is_all_greeted(self):
        with Daemon(plugins=plugins, main={'log': {'level': 'notice'}}) as d:
            d.start()
            port = d.port('mx')
            # one session first: the one-time costs of the first client
            # (resolver, pools) are not what this test measures
            with smtp(d, 'mx', timeout=30) as c:
                self.assertEqual(c.noop()[0], 250)
            pid = d.proc.pid    # the process whose loop accepts (-f)
            socks = []
            sel = selectors.DefaultSelector()
            self.addCleanup(sel.close)
            self.addCleanup(lambda: [s.close() for s in socks])
            os.kill(pid, signal.SIGSTOP)
            try:
                deadline = time.monotonic() + 5
                while proc_state(pid) != 'T':
                    self.assertLess(time.monotonic(), deadline,
                                    'satcheld did not stop')
                    time.sleep(0.01)
                before = netstat_counters()
                for _ in range(BURST):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setblocking(False)
                    e = s.connect_ex(('127.0.0.1', port))
                    self.assertIn(e, (0, errno.EINPROGRESS),
                                  os.strerror(e))
                    socks.append(s)
                    sel.register(s, selectors.EVENT_WRITE)
                # the kernel alone completes the handshakes it queues
                pending = set(socks)
                deadline = time.monotonic() + CONNECT_WINDOW
                while pending and time.monotonic() < deadline:
                    for key, _ in sel.select(0.2):
                        s = key.fileobj
                        e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        self.assertEqual(e, 0, os.strerror(e))
                        sel.unregister(s)
                        pending.discard(s)
                # a little time for any drop of a handshake's last ACK
                time.sleep(0.5)
                after = netstat_counters()
                not_connected = len(pending)
                for s in pending:
                    sel.unregister(s)
            finally:
                os.kill(pid, signal.SIGCONT)
            t0 = time.monotonic()
            self.assertEqual(
                after, before,
                'the listen queue overflowed during a burst of %d '
                'connections (%d not connected after %d s): %r -> %r'
                % (BURST, not_connected, CONNECT_WINDOW, before, after))
            self.assertEqual(not_connected, 0)

            # every connection greeted, none reset, within the window
            bufs = {}
            for s in socks:
                bufs[s] = b''
                sel.register(s, selectors.EVENT_READ)
            greeted = {}
            failures = []
            deadline = t0 + GREETING_WINDOW
            while len(greeted) + len(failures) < BURST and \
                    time.monotonic() < deadline:
                for key, _ in sel.select(0.2):
                    s = key.fileobj
                    try:
                        data = s.recv(512)
                    except OSError as e:
                        failures.append(repr(e))
                        sel.unregister(s)
                        continue
                    if not data:
                        failures.append('closed before a greeting: %r'
                                        % bufs[s])
                        sel.unregister(s)
                        continue
                    bufs[s] += data
                    if b'\r\n' in bufs[s]:
                        sel.unregister(s)
                        if bufs[s].startswith(b'220 '):
                            greeted[s] = time.monotonic() - t0
                        else:
                            failures.append(bufs[s])
            slowest = max(greeted.values()) if greeted else None
            self.assertEqual(failures, [])
            self.assertEqual(len(greeted), BURST,
                             '%d of %d greeted within %d s'
                             % (len(greeted), BURST, GREETING_WINDOW))
            print('%d connections greeted, the last %.2f s after SIGCONT'
                  % (BURST, slowest))
            self.assertEqual(netstat_counters(), before)

            # close them cleanly; the daemon keeps serving
            for s in socks:
                try:
                    s.sendall(b'QUIT\r\n')
                except OSError:
                    pass
                s.close()
            with smtp(d, 'mx', timeout=30) as c:
                self.assertEqual(c.noop()[0], 250)


if __name__ == '__main__':
    unittest.main(verbosity=2)
