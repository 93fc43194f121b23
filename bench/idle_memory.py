#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""idle_memory - satcheld's memory per idle SMTP connection.

Starts the built satcheld (no ratelimit), opens N plaintext connections
that each read the banner and then stay idle, and prints the growth of the
daemon's resident memory divided by N (target: <= 16 KiB). Loopback only:

    tests/run-test.sh /usr/bin/python3 bench/idle_memory.py [--connections 2000]
"""
import argparse
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'harness'))
from satchel_harness import Daemon  # noqa: E402


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--connections', type=int, default=2000)
    a = ap.parse_args()
    n = min(a.connections, 10000)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))
    plugins = lambda d: {  # noqa: E731
        '40-router.yaml': {'module': 'router'},
        '50-smtp.yaml': {'module': 'smtp', 'listen': [
            {'address': '127.0.0.1:%d' % d.port('smtp'), 'mode': 'mx',
             'tls': 'starttls'}]},
        '60-maildir.yaml': {'module': 'maildir', 'mailboxes':
                            ['bench@example.test'],
                            'path': os.path.join(d.state_dir, 'mail/%d/%u')},
    }
    main_cfg = {'log': {'level': 'notice'}}
    with Daemon(plugins=plugins, main=main_cfg) as d:
        d.start()
        conns = []
        # warm up: the first connections allocate pools once
        for _ in range(50):
            s = socket.create_connection(('127.0.0.1', d.port('smtp')), 5)
            s.recv(512)
            conns.append(s)
        time.sleep(0.5)
        before = rss_kib(d.proc.pid)
        deadline = time.time() + 120
        t0 = time.monotonic()
        for _ in range(n):
            if time.time() > deadline:
                break
            s = socket.create_connection(('127.0.0.1', d.port('smtp')), 5)
            s.recv(512)
            conns.append(s)
        greeted = time.monotonic() - t0
        time.sleep(1)
        after = rss_kib(d.proc.pid)
        opened = len(conns) - 50
        print('%d idle connections, each greeted (220) in turn: all in %.1f s;'
              ' RSS %d -> %d KiB, %.1f KiB per connection'
              % (opened, greeted, before, after,
                 (after - before) / max(opened, 1)))
        for s in conns:
            s.close()
        d.stop()


if __name__ == '__main__':
    main()
