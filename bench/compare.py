#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""compare - satchel side by side with Debian's Postfix and smtp-sink.

Run by bench/compare.sh (root, inside a loopback-only network namespace;
it installs postfix and builds satchel first). Starts, each in a temp dir:
  - smtp-sink (Postfix's test server: accepts and discards; the ceiling),
  - a private Postfix (own config, queue and data directories, `postfix -c
    DIR start`, virtual(8) delivery to a Maildir, default fsyncs),
  - the built satcheld (router, smtp, maildir; notice logging),
and drives all three with Postfix's smtp-source:
  a: 1 KiB, 50 sessions, a new connection per message
  b: 100 KiB, 20 sessions, messages over the same connection
  c: 1 KiB, one session
in interleaved rounds (the order rotates each round), and prints the
median accepted msg/s and delivered msg/s (the run's start until the
Maildir holds every message) with the ratios. Then STARTTLS handshakes
per second against Postfix, 10,000 idle connections (bench/idle_memory.py)
and instructions per message under callgrind (immune to machine noise).

Every loop is bounded in count and time. Options: --rounds N (3),
--quick (fewer messages), --skip tls,idle,callgrind, --keep (temp dir).
"""
import argparse
import multiprocessing
import os
import pwd
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'harness'))
from satchel_harness import Daemon, RawClient, free_port  # noqa: E402

SMTP_SOURCE = '/usr/sbin/smtp-source'
SMTP_SINK = '/usr/sbin/smtp-sink'
RCPT = 'bench@example.test'
SENDER = 'load@load.test'
RUN_TIMEOUT = 180        # one smtp-source run
DELIVER_TIMEOUT = 180    # until the Maildir holds all of one run

# name, payload bytes, sessions, same connection, messages (full, quick)
SCENARIOS = [
    ('a', 1024, 50, False, 3000, 600),
    ('b', 102400, 20, True, 1500, 300),
    ('c', 1024, 1, True, 1500, 300),
]
LABELS = {
    'a': 'a: 1 KiB, 50 sessions, a new connection per message',
    'b': 'b: 100 KiB, 20 sessions',
    'c': 'c: 1 KiB, one session',
}


def loadavg():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def log(msg):
    print(msg, flush=True)


def wait_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(('127.0.0.1', port), 1) as s:
                s.settimeout(5)
                if s.recv(512).startswith(b'220'):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError('nothing answers on port %d' % port)


def count_maildir(path):
    n = 0
    for sub in ('new', 'cur'):
        try:
            with os.scandir(os.path.join(path, sub)) as it:
                n += sum(1 for _ in it)
        except FileNotFoundError:
            pass
    return n


def empty_maildir(path):
    for sub in ('new', 'cur'):
        d = os.path.join(path, sub)
        if os.path.isdir(d):
            for name in os.listdir(d):
                os.unlink(os.path.join(d, name))


class Sink:
    name = 'smtp-sink'
    maildir = None

    def __init__(self, tmp):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [SMTP_SINK, '-u', 'nobody', '-m', '1000',
             '127.0.0.1:%d' % self.port, '1024'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
        wait_port(self.port)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Postfix:
    """A private Postfix instance: nothing under /etc/postfix or
    /var/spool/postfix is touched; master runs with -c DIR."""
    name = 'Postfix'

    def __init__(self, tmp, cert, key):
        self.dir = os.path.join(tmp, 'postfix')
        self.conf = os.path.join(self.dir, 'etc')
        self.spool = os.path.join(self.dir, 'spool')
        self.data = os.path.join(self.dir, 'data')
        base = os.path.join(self.dir, 'mail')
        self.maildir = os.path.join(base, 'bench')
        self.port = free_port()
        nobody = pwd.getpwnam('nobody')
        pf = pwd.getpwnam('postfix')
        for d in (self.conf, self.spool, self.data):
            os.makedirs(d)
        os.chown(self.data, pf.pw_uid, pf.pw_gid)   # master's lock file
        os.chmod(self.dir, 0o755)
        for sub in ('', 'tmp', 'new', 'cur'):
            p = os.path.join(self.maildir, sub)
            os.makedirs(p, exist_ok=True)
        for root, dirs, _ in os.walk(base):
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
        os.chmod(os.path.dirname(self.dir), 0o755)
        main = {
            'compatibility_level': '3.6',
            'queue_directory': self.spool,
            'data_directory': self.data,
            'meta_directory': '/etc/postfix',
            'mail_owner': 'postfix',
            'setgid_group': 'postdrop',
            'myhostname': 'pf.example.test',
            'mydestination': 'localhost',
            'mynetworks': '127.0.0.0/8',
            'inet_interfaces': '127.0.0.1',
            'inet_protocols': 'ipv4',
            'alias_maps': '',
            'alias_database': '',
            'biff': 'no',
            'smtputf8_enable': 'no',
            'virtual_mailbox_domains': 'example.test',
            'virtual_mailbox_base': base,
            'virtual_mailbox_maps': 'static:bench/',
            'virtual_uid_maps': 'static:%d' % nobody.pw_uid,
            'virtual_gid_maps': 'static:%d' % nobody.pw_gid,
            'smtpd_tls_cert_file': cert,
            'smtpd_tls_key_file': key,
            'smtpd_tls_security_level': 'may',
            # no syslog daemon here: its log in the temp dir (postlogd)
            'maillog_file_prefixes': self.dir,
            'maillog_file': os.path.join(self.dir, 'maillog'),
        }
        with open(os.path.join(self.conf, 'main.cf'), 'w') as f:
            for k, v in main.items():
                f.write('%s = %s\n' % (k, v))
        with open('/etc/postfix/master.cf') as f:
            master = f.read()
        # smtpd on its own loopback port; no chroot (Debian's default
        # chroots into the queue directory, which needs /etc copies)
        master = re.sub(r'(?m)^smtp(\s+)inet\s+n\s+-\s+\S+',
                        '127.0.0.1:%d inet n - n' % self.port, master,
                        count=1)
        with open(os.path.join(self.conf, 'master.cf'), 'w') as f:
            f.write(master)
        self.postconf('-F', '*/*/chroot = n')
        self.postfix('check')
        self.postfix('start')
        wait_port(self.port)

    def postconf(self, *args):
        subprocess.run(['/usr/sbin/postconf', '-c', self.conf] + list(args),
                       check=True, timeout=60)

    def postfix(self, *args, check=True):
        r = subprocess.run(['/usr/sbin/postfix', '-c', self.conf]
                           + list(args), timeout=120,
                           capture_output=True, text=True)
        if check and r.returncode != 0:
            try:
                with open(os.path.join(self.dir, 'maillog')) as f:
                    tail = f.read()[-3000:]
            except OSError:
                tail = ''
            raise RuntimeError('postfix %s: exit %d\n%s%s%s'
                               % (' '.join(args), r.returncode, r.stdout,
                                  r.stderr, tail))
        return r

    def master_pid(self):
        try:
            with open(os.path.join(self.spool, 'pid', 'master.pid')) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        pid = self.master_pid()
        self.postfix('stop', check=False)
        deadline = time.monotonic() + 30
        while pid is not None and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        if pid is not None:
            try:
                os.kill(pid, 9)   # the master we started, by its pid
            except ProcessLookupError:
                pass


class Satchel:
    name = 'satchel'

    def __init__(self, cert, key, build=None, name=None):
        if name is not None:
            self.name = name
        saved = os.environ.get('SATCHEL_BUILDDIR')
        if build is not None:    # the harness reads it at Daemon()
            os.environ['SATCHEL_BUILDDIR'] = build
        def plugins(d):
            return {
                '40-router.yaml': {'module': 'router'},
                '50-smtp.yaml': {'module': 'smtp', 'listen': [
                    {'address': '127.0.0.1:%d' % d.port('smtp'),
                     'mode': 'mx', 'tls': 'starttls'}]},
                '60-maildir.yaml': {'module': 'maildir', 'mailboxes': [RCPT],
                                    'path': os.path.join(d.state_dir,
                                                         'mail/%d/%u')},
            }
        try:
            self.d = Daemon(plugins=plugins, main={
                'log': {'level': 'notice'},
                'tls': {'certificate': cert, 'key': key}})
        finally:
            if saved is not None:
                os.environ['SATCHEL_BUILDDIR'] = saved
        self.d.start()
        self.port = self.d.port('smtp')
        self.maildir = self.d.maildir(RCPT)
        wait_port(self.port)

    def stop(self):
        self.d.close()


def smtp_source(port, size, sessions, same_conn, count):
    cmd = [SMTP_SOURCE, '-4', '-s', str(sessions), '-m', str(count),
           '-l', str(size), '-f', SENDER, '-t', RCPT, '-M', 'load.test']
    if same_conn:
        cmd.append('-d')
    cmd.append('127.0.0.1:%d' % port)
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=RUN_TIMEOUT)
    secs = time.monotonic() - t0
    if r.returncode != 0 or r.stderr.strip():
        raise RuntimeError('smtp-source %s: exit %d: %s'
                           % (' '.join(cmd), r.returncode, r.stderr[-2000:]))
    return t0, secs


def run_one(target, scen):
    name, size, sessions, same_conn, count = scen
    if target.maildir is not None:
        empty_maildir(target.maildir)
    t0, secs = smtp_source(target.port, size, sessions, same_conn, count)
    accepted = count / secs
    delivered = None
    if target.maildir is not None:
        deadline = time.monotonic() + DELIVER_TIMEOUT
        while count_maildir(target.maildir) < count:
            if time.monotonic() > deadline:
                raise RuntimeError('%s: only %d of %d delivered in %d s'
                                   % (target.name,
                                      count_maildir(target.maildir),
                                      count, DELIVER_TIMEOUT))
            time.sleep(0.01)
        delivered = count / (time.monotonic() - t0)
    return accepted, delivered


def fmt_table(results, rounds):
    out = ['| scenario | smtp-sink | Postfix | satchel | satchel/Postfix '
           '| satchel/sink | delivered: Postfix | satchel | satchel/Postfix |',
           '|---|---|---|---|---|---|---|---|---|']
    base = []
    for name, *_ in SCENARIOS:
        if name not in results:
            continue
        r = results[name]

        def med(t, i):
            vals = [v[i] for v in r.get(t, []) if v[i] is not None]
            return statistics.median(vals) if vals else float('nan')
        sink, pf, sa = med('smtp-sink', 0), med('Postfix', 0), \
            med('satchel', 0)
        dpf, dsa = med('Postfix', 1), med('satchel', 1)
        out.append('| %s | %.0f | %.0f | %.0f | %.2f× | %.2f | %.0f | %.0f '
                   '| %.2f× |' % (LABELS[name], sink, pf, sa, sa / pf,
                                  sa / sink, dpf, dsa, dsa / dpf))
        if 'baseline' in r:
            base.append('| %s | %.0f | %.0f | %.2f× | %.0f | %.0f | %.2f× |'
                        % (LABELS[name], med('baseline', 0), sa,
                           sa / med('baseline', 0), med('baseline', 1), dsa,
                           dsa / med('baseline', 1)))
    out.append('')
    out.append('msg/s, medians of %d interleaved rounds; "delivered": from '
               'the first connection until the Maildir holds every message.'
               % rounds)
    if base:
        out += ['', '| against the baseline build | baseline | satchel | '
                'ratio | delivered: baseline | satchel | ratio |',
                '|---|---|---|---|---|---|---|'] + base
    return '\n'.join(out)


# ---- STARTTLS handshakes per second ----

def tls_worker(port, deadline, maxn, q):
    n = errors = 0
    while time.monotonic() < deadline and n < maxn:
        try:
            # RawClient: no TCP_NODELAY, like most SMTP clients
            with RawClient('127.0.0.1', port, timeout=10) as c:
                c.expect(220)
                c.expect(250, 'EHLO tls.test')
                c.expect(220, 'STARTTLS')
                c.starttls()
                # the 221 over TLS: the server finished the handshake
                c.expect(221, 'QUIT')
            n += 1
        except (OSError, AssertionError):
            errors += 1
            if errors > 100:
                break
    q.put((n, errors))


def tls_rate(port, seconds=5.0, workers=4, maxn=20000):
    q = multiprocessing.Queue()
    deadline = time.monotonic() + seconds
    t0 = time.monotonic()
    ps = [multiprocessing.Process(target=tls_worker,
                                  args=(port, deadline, maxn, q))
          for _ in range(workers)]
    for p in ps:
        p.start()
    res = [q.get(timeout=seconds + 60) for _ in ps]
    for p in ps:
        p.join(30)
    secs = time.monotonic() - t0
    n = sum(r[0] for r in res)
    return n / secs, sum(r[1] for r in res)


# ---- instructions per message (callgrind) ----

def callgrind_wrapper(out):
    """A script that runs the built satcheld under callgrind, its output
    in OUT (out.PID). Callgrind makes its file at start (as root) and
    writes it at exit, after the privilege drop: the daemon's own file is
    made for nobody first, in a directory without the sticky bit
    (protected_regular)."""
    os.chmod(out, 0o777)
    wrapper = os.path.join(out, 'satcheld-callgrind')
    with open(wrapper, 'w') as f:
        f.write('#!/bin/sh\n: >"%s/out.$$" && chown nobody "%s/out.$$" &&\n'
                'exec valgrind --tool=callgrind -q --vgdb=no '
                '--callgrind-out-file=%s/out.%%p "%s" "$@"\n'
                % (out, out, out,
                   os.path.abspath(os.path.join(
                       os.environ.get('SATCHEL_BUILDDIR', '.'), 'core',
                       'satcheld'))))
    os.chmod(wrapper, 0o755)
    return wrapper


def callgrind_ir(tmp, cert, key, count):
    """Total Ir of satcheld (all its threads) for `count` messages over one
    session, accepted and delivered, from start to stop."""
    out = tempfile.mkdtemp(prefix='callgrind-', dir=tmp)
    wrapper = callgrind_wrapper(out)
    d = Daemon(plugins=lambda d: {
        '40-router.yaml': {'module': 'router'},
        '50-smtp.yaml': {'module': 'smtp', 'listen': [
            {'address': '127.0.0.1:%d' % d.port('smtp'), 'mode': 'mx',
             'tls': 'starttls'}]},
        '60-maildir.yaml': {'module': 'maildir', 'mailboxes': [RCPT],
                            'path': os.path.join(d.state_dir, 'mail/%d/%u')},
    }, main={'log': {'level': 'notice'},
             'tls': {'certificate': cert, 'key': key}})
    d.satcheld = wrapper
    try:
        d.start(timeout=180)
        if count:
            smtp_source(d.port('smtp'), 1024, 1, True, count)
            deadline = time.monotonic() + 300
            while count_maildir(d.maildir(RCPT)) < count and \
                    time.monotonic() < deadline:
                time.sleep(0.1)
        pid = d.proc.pid
        d.stop(timeout=300)
    finally:
        d.close()
    path = os.path.join(out, 'out.%d' % pid)
    with open(path) as f:
        for line in f:
            if line.startswith(('summary:', 'totals:')):
                return int(line.split()[1]), path
    raise RuntimeError('no totals in ' + path)


def callgrind_top(path, n=12):
    """The functions with the most instructions of their own."""
    r = subprocess.run(['callgrind_annotate', '--inclusive=no', path],
                       capture_output=True, text=True, timeout=120)
    rows = [ln for ln in r.stdout.splitlines()
            if re.match(r'^\s*[\d,]+ \(', ln)]
    return '\n'.join(rows[1:n + 1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--skip', default='', help='tls,idle,callgrind,smtp')
    ap.add_argument('--keep', action='store_true')
    ap.add_argument('--callgrind-messages', type=int, default=200)
    ap.add_argument('--baseline', metavar='BUILDDIR',
                    help='also another satchel build (e.g. of main), '
                    'reported as "baseline" in the per-run lines and table')
    a = ap.parse_args()
    skip = set(a.skip.split(',')) - {''}
    rounds = max(1, min(a.rounds, 9))
    tmp = tempfile.mkdtemp(prefix='satchel-compare-')
    os.chmod(tmp, 0o755)
    log('compare: %s; load average %s; temp %s'
        % (time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), loadavg(),
           tmp))
    cert, key = os.path.join(tmp, 'cert.pem'), os.path.join(tmp, 'key.pem')
    # the same ECDSA P-256 key for both servers (satchel's generated kind)
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:P-256', '-nodes', '-days', '30',
                    '-subj', '/CN=mail.example.test', '-keyout', key,
                    '-out', cert], check=True, capture_output=True,
                   timeout=60)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o600)
    targets = []
    report = []
    try:
        # one at a time: the finally below stops what started
        targets.append(Sink(tmp))
        targets.append(Postfix(tmp, cert, key))
        targets.append(Satchel(cert, key))
        if a.baseline:
            targets.append(Satchel(cert, key, os.path.abspath(a.baseline),
                                   'baseline'))
        by = {t.name: t for t in targets}
        results = {}
        if 'smtp' not in skip:
            for r in range(rounds):
                for scen in SCENARIOS:
                    name, size, sessions, same, full, quick = scen
                    s = (name, size, sessions, same, quick if a.quick
                         else full)
                    k = r % len(targets)
                    order = targets[k:] + targets[:k]
                    for t in order:
                        acc, dlv = run_one(t, s)
                        results.setdefault(name, {}).setdefault(
                            t.name, []).append((acc, dlv))
                        log('round %d %s %-9s accepted %6.0f/s%s  (load %s)'
                            % (r + 1, name, t.name, acc,
                               '' if dlv is None else
                               '  delivered %6.0f/s' % dlv, loadavg()))
            report.append(fmt_table(results, rounds))
            log('\n' + report[-1])
        if 'tls' not in skip:
            rates = {}
            for r in range(rounds):
                for t in (by['Postfix'], by['satchel']):
                    rate, errs = tls_rate(t.port)
                    rates.setdefault(t.name, []).append(rate)
                    log('round %d STARTTLS %-8s %6.0f handshakes/s '
                        '(%d errors)' % (r + 1, t.name, rate, errs))
            pf = statistics.median(rates['Postfix'])
            sa = statistics.median(rates['satchel'])
            report.append('STARTTLS handshakes/s (ECDSA P-256, full '
                          'handshakes, 4 client processes, median of %d): '
                          'Postfix %.0f, satchel %.0f, satchel/Postfix '
                          '%.2f×' % (rounds, pf, sa, sa / pf))
            log(report[-1])
    finally:
        for t in reversed(targets):
            try:
                t.stop()
            except Exception as e:  # keep stopping the others
                log('stopping %s: %s' % (t.name, e))
    if 'idle' not in skip:
        r = subprocess.run([sys.executable, os.path.join(HERE,
                                                         'idle_memory.py'),
                            '--connections', '10000'],
                           capture_output=True, text=True, timeout=600)
        report.append('idle: ' + (r.stdout.strip() or r.stderr[-2000:]))
        log(report[-1])
    if 'callgrind' not in skip:
        small, big = 20, 20 + max(1, a.callgrind_messages)
        ir0, _ = callgrind_ir(tmp, cert, key, small)
        ir1, path = callgrind_ir(tmp, cert, key, big)
        report.append('callgrind: %.0f instructions (Ir) per message in '
                      'satcheld, all threads (1 KiB, one session, accepted '
                      'and delivered to the Maildir; (Ir(%d) - Ir(%d)) / %d)'
                      % ((ir1 - ir0) / (big - small), big, small,
                         big - small))
        report.append('callgrind, the %d-message run, self cost:\n%s'
                      % (big, callgrind_top(path)))
        log(report[-1])
    log('\n==== summary (load average now %s) ====\n' % loadavg())
    log('\n\n'.join(report))
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
