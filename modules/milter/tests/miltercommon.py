# SPDX-License-Identifier: MIT
"""Shared pieces of the milter module's tests: starting real milters
(scripted_milter.py on python3-milter's libmilter, OpenDKIM, rspamd) on
loopback inside the test's network namespace, and a plugins.d file for
the module."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from satchel_harness import Daemon, free_port, skip  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
ALICE = 'alice@example.test'
BOB = 'bob@example.test'
CAROL = 'carol@example.test'
PASSWORD = 'secret-password'


def wait_port(port, proc=None, timeout=15, host='127.0.0.1'):
    """Waits until something accepts on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError('the milter exited (%d)' % proc.returncode)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError('nothing listens on %s:%d' % (host, port))


def stop_process(proc, timeout=10):
    """SIGTERM, then SIGKILL after timeout seconds."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


class ScriptedMilter:
    """scripted_milter.py with a plan (see its doc), on a TCP port or a
    unix socket; events() reads what it saw."""

    def __init__(self, plan, unix=False):
        self.tmp = tempfile.mkdtemp(prefix='satchel-milter-')
        os.chmod(self.tmp, 0o755)
        self.plan_path = os.path.join(self.tmp, 'plan.json')
        self.events_path = os.path.join(self.tmp, 'events.jsonl')
        with open(self.plan_path, 'w') as f:
            json.dump(plan, f)
        open(self.events_path, 'w').close()
        if unix:
            self.path = os.path.join(self.tmp, 'milter.sock')
            self.spec = 'unix:' + self.path
            self.address = 'unix:' + self.path
            self.port = None
        else:
            self.port = free_port()
            self.spec = 'inet:%d@127.0.0.1' % self.port
            self.address = 'inet:127.0.0.1:%d' % self.port
        self.log = open(os.path.join(self.tmp, 'milter.log'), 'wb')
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'scripted_milter.py'),
             self.spec, self.plan_path, self.events_path],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        if self.port is not None:
            wait_port(self.port, self.proc)
        else:
            deadline = time.monotonic() + 15
            while not os.path.exists(self.path):
                if time.monotonic() > deadline or \
                        self.proc.poll() is not None:
                    raise RuntimeError('the milter did not start')
                time.sleep(0.05)
        return self

    def events(self, name=None):
        with open(self.events_path) as f:
            evs = [json.loads(line) for line in f if line.strip()]
        return [e for e in evs if name is None or e['ev'] == name]

    def wait_event(self, name, count=1, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            evs = self.events(name)
            if len(evs) >= count:
                return evs
            time.sleep(0.05)
        raise AssertionError('milter saw %d %s events, wanted %d: %s'
                             % (len(self.events(name)), name, count,
                                self.events()))

    def stop(self):
        stop_process(self.proc, 5)
        self.proc = None
        self.log.close()

    def cleanup(self):
        self.stop()
        with open(os.path.join(self.tmp, 'milter.log'), 'rb') as f:
            out = f.read()
        if out.strip():
            sys.stderr.write('---- scripted milter output ----\n%s\n'
                             % out.decode(errors='replace'))
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False


def milter_plugin(address, name='45-milter.yaml', **keys):
    conf = {'module': 'milter', 'address': address,
            'hook_timeout': '6m'}
    conf.update(keys)
    return {name: conf}


def read_mail(d, addr, count=1, timeout=10):
    """The bytes of the messages delivered to addr's Maildir (sorted)."""
    out = []
    for path in d.wait_maildir(addr, count, timeout=timeout):
        with open(path, 'rb') as f:
            out.append(f.read())
    return out


def split_message(raw):
    """(header block lines, body) of a stored message; the first header
    line (satchel's Received:) kept."""
    head, _, body = raw.partition(b'\r\n\r\n')
    return head, body
