# SPDX-License-Identifier: MIT
"""A real redis-server (Debian's redis-server package) on loopback for the
tests of the shared store (issue 16): started in the test's network
namespace on a free port, without persistence, and stopped, restarted on
the same port, or frozen (SIGSTOP: a store that accepts but never answers)
by the test."""

import os
import shutil
import sys
import signal
import socket
import subprocess
import tempfile
import time

from satchel_harness import free_port

REDIS_SERVER = '/usr/bin/redis-server'


class RedisServer:
    def __init__(self, host='127.0.0.1'):
        if not os.path.exists(REDIS_SERVER):
            # in .ci/packages: a missing server is a broken setup, not
            # a reason to pass
            raise AssertionError('%s missing: install the Debian package '
                                 'redis-server' % REDIS_SERVER)
        self.host = host
        self.port = free_port(host)
        self.dir = tempfile.mkdtemp(prefix='satchel-redis-')
        self.log_path = os.path.join(self.dir, 'redis.log')
        self.proc = None
        self.frozen = False

    @property
    def url(self):
        return 'redis://%s:%d/3' % (self.host, self.port)

    def start(self, timeout=10):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, '--bind', self.host, '--port', str(self.port),
             '--save', '', '--appendonly', 'no', '--dir', self.dir,
             '--logfile', self.log_path, '--daemonize', 'no',
             '--protected-mode', 'no'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError('redis-server exited (%d):\n%s'
                                     % (self.proc.returncode, self.log()))
            try:
                if self.command('PING') == b'+PONG':
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError('redis-server not answering:\n' + self.log())

    def stop(self):
        if self.proc is None:
            return
        if self.frozen:
            self.thaw()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def freeze(self):
        """SIGSTOP: connections stay open, nothing is answered."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        os.kill(self.proc.pid, signal.SIGCONT)
        self.frozen = False

    def command(self, *args, timeout=5):
        """One command (inline RESP) on database 3; the first reply line."""
        with socket.create_connection((self.host, self.port),
                                      timeout=timeout) as s:
            req = b''
            for cmd in (('SELECT', '3'), args):
                req += b'*%d\r\n' % len(cmd)
                for a in cmd:
                    a = a.encode() if isinstance(a, str) else a
                    req += b'$%d\r\n%s\r\n' % (len(a), a)
            s.sendall(req)
            f = s.makefile('rb')
            f.readline()                    # +OK of SELECT
            line = f.readline().rstrip(b'\r\n')
            if line.startswith(b'$') and line != b'$-1':
                line = f.readline().rstrip(b'\r\n')
            return line

    def log(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *a):
        self.close()
        return False


class DaemonPair:
    """Daemons (satchel_harness.Daemon, not started) that share a store:
    started in turn, each once its store connection is up; stopped (or,
    after a failure, their logs dumped) together."""

    def __init__(self, daemons):
        self.d = list(daemons)

    def __enter__(self):
        try:
            for d in self.d:
                d.__enter__()
                d.start()
                d.wait_log(r'store redis://[0-9.:]+/3: connected')
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self.d

    def __exit__(self, *exc):
        for d in self.d:
            d.__exit__(*exc)
        return False
