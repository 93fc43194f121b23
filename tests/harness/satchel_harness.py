# SPDX-License-Identifier: MIT
"""satchel_harness - start the real satcheld on loopback for integration tests.

Runs in the test process (Debian's /usr/bin/python3, inside run-test.sh's
loopback-only network namespace). Nothing here mocks the daemon: tests talk
to the built satcheld with real clients.

Environment
    SATCHEL_BUILDDIR   build tree (core/satcheld, core/satchelctl,
                       modules/*/.libs/*.so); default: the cwd
    SATCHEL_SRCDIR     source tree (default: two levels above this file)
    SATCHEL_KEEP_TMP=1 keep each daemon's temp dir (its path is printed)
    SATCHEL_VALGRIND=1 run satcheld under valgrind memcheck (leak check,
                       tests/valgrind.supp); any error fails the test at
                       stop() like a sanitizer report, and the start and
                       stop waits are SLOW (10) times longer

Daemon(plugins=None, main=None, users=None, extra_plugins=None)
    One daemon with its own temp dir (d.tmp). Use as a context manager;
    leaving the block stops the daemon (SIGTERM) and fails loudly when it
    died of a signal or printed a sanitizer report. The daemon is NOT started
    by `with`: call d.start() (so plugins can use d.port() first).

      plugins   {'50-smtp.yaml': {...}, ...} -> <tmp>/plugins.d/*.yaml;
                may also be a callable f(d) returning that dict (evaluated at
                every config write, so it can call d.port()).
                None = default_plugins(d): 30-auth_file (only with users),
                40-router, 50-smtp (listeners mx on port('smtp') starttls,
                submission on port('submission') starttls, implicit on
                port('smtps')), 60-maildir (path <state>/mail/%d/%u).
      extra_plugins  dict merged over the plugins (a value None removes a
                file): Daemon(extra_plugins={'70-ratelimit.yaml': {...}}).
      main      dict merged (shallowly) over the default satchel.yaml:
                hostname mail.example.test, domains {example.test: {routing:
                local}}, state_dir <tmp>/state, module_dir <tmp>/modules
                (symlinks to the built modules), log {level: debug},
                shutdown_grace 5s, include plugins.d/*.yaml, and, when run
                as root, user: nobody. A value None removes a key.
      users     {'alice@example.test': 'secret-password'}: added with
                `satchelctl user add ADDR --password-stdin` after the config
                is written, before the first start.
    d.plugins / d.main / d.users can be changed before start() or reload().

    d.port(name)          free 127.0.0.1 port reserved under name (stable)
    d.start(timeout=15)   write config, run `satcheld -f -c <tmp>/satchel.yaml`
                          (stderr -> d.log_path), wait for "satcheld ready";
                          raises DaemonError with the log if it exits first
    d.stop(timeout=20)    SIGTERM and wait; checks for crashes/sanitizers
    d.close()             stop() and remove the temp dir (for setUpClass/
                          tearDownClass users who do not use `with`)
    d.kill9()             SIGKILL (a crash test), no checks
    d.restart()           stop (or reap after kill9) + start, same tmp/ports
    d.reload(wait=True)   rewrite config files, SIGHUP; with wait, waits for a
                          new "reload" log line (any outcome) for 10 s
    d.running()           True while the process lives
    d.log_text()          the whole log
    d.log_mark()          current log size, for wait_log(since=...)
    d.wait_log(regex, timeout=10, since=0) -> re.Match (raises on timeout)
    d.ctl(*args, input=None, timeout=30) -> CompletedProcess (text, not
                          checked): `satchelctl -c <config> args...`
    d.maildir(addr)       <state>/mail/<domain>/<local> (may not exist yet)
    d.wait_maildir(addr, count=1, timeout=10) -> sorted file paths in new/
                          and cur/ once there are at least count of them
    d.tmp, d.state_dir, d.config_path, d.log_path, d.proc

Helpers
    tls_context()         ssl.SSLContext accepting the self-signed cert
    make_pair(dir, cn) -> (cert, key): a self-signed certificate (0644) and
                          its key (0600) made with certtool, renamed into
                          dir as certbot renews them
    file_der(cert)        the DER of a PEM certificate file
    served_der(d, name='smtps') the DER of the certificate the implicit-TLS
                          listener port(name) presents
    smtp(d, name='smtp', timeout=10) -> connected smtplib.SMTP
                          (SMTP_SSL when name is 'smtps')
    free_port(host='127.0.0.1') -> an unused port
    raw(d, name='smtp', host='127.0.0.1', source=None, tls=False,
        timeout=10) -> RawClient: a line-level client for conversations
        smtplib cannot have (pipelining, junk, half-sent data):
          c.send(bytes|str)           sends as is (str is UTF-8 encoded)
          c.cmd(line) -> (code, text) sends line + CRLF, reads one reply
          c.reply() -> (code, text)   reads one (multi-line) reply; text
                                      joins the lines with '\n'
          c.expect(code, line=None)   cmd (when line given) or reply; asserts
                                      the code, returns the text
          c.starttls()                wraps the socket (after a 220)
          c.closed(timeout=5) -> bool the server closed the connection
          c.close()
        source='127.0.0.5' binds the client to that loopback address first.
    in_parallel(fn, n, timeout=60) -> [repr of each exception]
                          fn(0) .. fn(n - 1) on n threads at once
    skip(reason)          prints the reason and exits 77 (automake SKIP)
    under_strace(d, dir, options) -> trace path: d runs satcheld under
                          `strace OPTIONS -o <dir>/trace` (a wrapper in dir;
                          ASan's leak check off: it cannot run under ptrace)
    stop_traced(d)        SIGTERM to the traced satcheld itself (strace would
                          not pass it on), wait for both, then d.stop()
    which(prog)           shutil.which
"""

import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import yaml

VALGRIND = os.environ.get('SATCHEL_VALGRIND') == '1'
# how much longer start/stop may take: valgrind runs the daemon ~20x slower
SLOW = 10 if VALGRIND else 1
VALGRIND_RE = re.compile(
    r'(ERROR SUMMARY: [1-9]|Invalid (read|write|free)|uninitialised'
    r'|definitely lost|Mismatched free|Source and destination overlap'
    r'|Syscall param)')

SANITIZER_RE = re.compile(
    r'(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:'
    r'|ERROR: UndefinedBehaviorSanitizer|SUMMARY: \w+Sanitizer'
    r'|==\d+==ERROR)')

HERE = os.path.dirname(os.path.abspath(__file__))


class DaemonError(AssertionError):
    """The daemon failed to start, crashed or reported a sanitizer error."""


def skip(reason):
    print('SKIP: ' + reason, flush=True)
    sys.exit(77)


which = shutil.which


def under_strace(d, out_dir, options):
    """d runs satcheld under strace (call before d.start()); returns the
    path strace writes (-o; with -ff one file per thread, PATH.TID)."""
    trace = os.path.join(out_dir, 'trace')
    wrapper = os.path.join(out_dir, 'satcheld-strace')
    with open(wrapper, 'w') as f:
        # LeakSanitizer cannot run under ptrace (the ASan build): every
        # other test checks for leaks
        f.write('#!/bin/sh\nASAN_OPTIONS="${ASAN_OPTIONS:+'
                '$ASAN_OPTIONS:}detect_leaks=0"\n'
                'export ASAN_OPTIONS\n'
                'exec strace %s -o "%s" "%s" "$@"\n'
                % (options, trace, d.satcheld))
    os.chmod(wrapper, 0o755)
    d.satcheld = wrapper
    return trace


# 1234  fsync(12</x/queue/active>) = 0
# 1234  fsync(12</x/queue/active> <unfinished ...>
# 1234  <... fsync resumed>) = 0
STRACE_LINE = re.compile(r'^(\d+)\s+(?:<\.\.\. (\w+) resumed>(.*)|'
                         r'(\w+)\((.*))$')


def strace_events(path):
    """The calls of an `strace -f` trace (under_strace), in the trace's
    order: ('begin', n, call, args) when call number n began, and
    ('done', n, call, args, rest) when it returned - args as it began
    (with -y, fds show their paths), rest what follows them, with the
    result (") = 0"). A call strace saw whole gives both at once."""
    pending, n = {}, 0
    with open(path, errors='replace') as f:
        for raw in f:
            m = STRACE_LINE.match(raw.rstrip('\n'))
            if not m:
                continue
            pid = m.group(1)
            if m.group(2):                      # "<... call resumed>"
                if pid in pending:
                    k, call, args = pending.pop(pid)
                    yield ('done', k, call, args, m.group(3))
                continue
            call, rest = m.group(4), m.group(5)
            n += 1
            yield ('begin', n, call, rest)
            if rest.endswith('<unfinished ...>'):
                pending[pid] = (n, call, rest)
            else:
                yield ('done', n, call, rest, rest)


def stop_traced(d, timeout=60):
    """Stops a daemon started under_strace: SIGTERM to satcheld itself
    (strace, d.proc, would not pass it on); strace exits with it."""
    sp = d.proc.pid
    with open('/proc/%d/task/%d/children' % (sp, sp)) as f:
        os.kill(int(f.read().split()[0]), signal.SIGTERM)
    d.proc.wait(timeout)
    d.stop()


def builddir():
    return os.path.abspath(os.environ.get('SATCHEL_BUILDDIR') or os.getcwd())


def srcdir():
    return os.path.abspath(os.environ.get('SATCHEL_SRCDIR')
                           or os.path.join(HERE, '..', '..'))


def free_port(host='127.0.0.1'):
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_pair(directory, cn):
    """A certificate (0644) and its key (0600, the caller's: root's when
    the test runs as root), made with certtool in directory, replacing
    what is there as certbot does."""
    os.makedirs(directory, mode=0o755, exist_ok=True)
    key = os.path.join(directory, 'privkey.pem')
    cert = os.path.join(directory, 'fullchain.pem')
    tmpl = os.path.join(directory, 'cert.tmpl')
    with open(tmpl, 'w') as f:
        f.write('cn = "%s"\nexpiration_days = 90\ntls_www_server\n'
                'signing_key\ndns_name = "mail.example.test"\n' % cn)
    subprocess.run(['certtool', '--generate-privkey', '--key-type=ecdsa',
                    '--outfile', key + '.new'], check=True,
                   capture_output=True, timeout=60)
    os.chmod(key + '.new', 0o600)
    subprocess.run(['certtool', '--generate-self-signed', '--load-privkey',
                    key + '.new', '--template', tmpl, '--outfile',
                    cert + '.new'], check=True, capture_output=True,
                   timeout=60)
    os.chmod(cert + '.new', 0o644)
    os.rename(key + '.new', key)
    os.rename(cert + '.new', cert)
    return cert, key


def file_der(cert):
    with open(cert) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def served_der(d, name='smtps'):
    """The certificate the implicit-TLS listener presents (python ssl)."""
    with socket.create_connection(('127.0.0.1', d.port(name)), 10) as s:
        with tls_context().wrap_socket(s) as t:
            return t.getpeercert(binary_form=True)


def smtp(d, name='smtp', timeout=10, host='127.0.0.1'):
    """A connected smtplib client for listener port `name` of daemon d."""
    if name == 'smtps':
        return smtplib.SMTP_SSL(host, d.port(name), timeout=timeout,
                                context=tls_context())
    return smtplib.SMTP(host, d.port(name), timeout=timeout)


class RawClient:
    def __init__(self, host, port, source=None, tls=False, timeout=10):
        fam = socket.AF_INET6 if ':' in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        if tls:
            self.sock = tls_context().wrap_socket(self.sock)
        self.buf = b''

    def send(self, data):
        if isinstance(data, str):
            data = data.encode('utf-8')
        self.sock.sendall(data)

    def _line(self):
        while b'\n' not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError('server closed the connection; '
                                      'unread: %r' % self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b'\n')
        return line.rstrip(b'\r').decode('utf-8', 'replace')

    def reply(self):
        lines = []
        while True:
            line = self._line()
            if len(line) < 3 or not line[:3].isdigit():
                raise AssertionError('bad reply line %r' % line)
            lines.append(line[4:])
            if len(line) == 3 or line[3] == ' ':
                return int(line[:3]), '\n'.join(lines)

    def cmd(self, line):
        self.send(line + '\r\n')
        return self.reply()

    def expect(self, code, line=None):
        got, text = self.cmd(line) if line is not None else self.reply()
        if got != code:
            raise AssertionError('%s: expected %d, got %d %s'
                                 % (line if line is not None else 'reply',
                                    code, got, text))
        return text

    def starttls(self):
        self.sock = tls_context().wrap_socket(self.sock)
        self.buf = b''

    def closed(self, timeout=5):
        """True when the server closes within timeout (unread replies are
        kept in self.buf)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
        return False


def raw(d, name='smtp', host='127.0.0.1', source=None, tls=False,
        timeout=10):
    return RawClient(host, d.port(name), source=source, tls=tls,
                     timeout=timeout)


def in_parallel(fn, n, timeout=60):
    """Runs fn(0) .. fn(n - 1) on n threads at once; returns the repr of
    every exception they raised (joined within timeout each)."""
    import threading
    errors = []

    def run(i):
        try:
            fn(i)
        except Exception as e:      # handed back to the caller
            errors.append(repr(e))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return errors


def default_plugins(d, with_auth=None):
    if with_auth is None:
        with_auth = bool(d.users)
    p = {
        '40-router.yaml': {'module': 'router'},
        '50-smtp.yaml': {
            'module': 'smtp',
            'listen': [
                {'address': '127.0.0.1:%d' % d.port('smtp'),
                 'mode': 'mx', 'tls': 'starttls'},
                {'address': '127.0.0.1:%d' % d.port('submission'),
                 'mode': 'submission', 'tls': 'starttls'},
                {'address': '127.0.0.1:%d' % d.port('smtps'),
                 'mode': 'submission', 'tls': 'implicit'},
            ],
        },
        '60-maildir.yaml': {'module': 'maildir',
                            'path': os.path.join(d.state_dir,
                                                 'mail/%d/%u')},
    }
    if with_auth:
        p['30-auth_file.yaml'] = {'module': 'auth_file',
                                  'path': os.path.join(d.tmp, 'passwd')}
    return p


def _is_root():
    return os.geteuid() == 0


class Daemon:
    def __init__(self, plugins=None, main=None, users=None,
                 extra_plugins=None):
        self.plugins = plugins
        self.extra_plugins = dict(extra_plugins or {})
        self.main = dict(main or {})
        self.users = dict(users or {})
        self._users_added = set()
        self.tmp = tempfile.mkdtemp(prefix='satchel-test-')
        os.chmod(self.tmp, 0o755)
        self.state_dir = os.path.join(self.tmp, 'state')
        self.module_dir = os.path.join(self.tmp, 'modules')
        self.plugins_dir = os.path.join(self.tmp, 'plugins.d')
        self.config_path = os.path.join(self.tmp, 'satchel.yaml')
        self.log_path = os.path.join(self.tmp, 'satcheld.log')
        self.proc = None
        self._ports = {}
        self._logf = None
        self._expect_death = False
        self.satcheld = os.path.join(builddir(), 'core', 'satcheld')
        self.satchelctl = os.path.join(builddir(), 'core', 'satchelctl')
        for d in (self.state_dir, self.module_dir, self.plugins_dir):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        self._link_modules()

    # ---- context manager ----
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                self._dump_log('test failed; satcheld log')
                self._terminate_quietly()
            else:
                self.stop()
        finally:
            self._cleanup()
        return False

    # ---- setup ----
    def _link_modules(self):
        mods = os.path.join(builddir(), 'modules')
        if not os.path.isdir(mods):
            return
        for name in sorted(os.listdir(mods)):
            so = os.path.join(mods, name, '.libs', name + '.so')
            if os.path.exists(so):
                dst = os.path.join(self.module_dir, name + '.so')
                if not os.path.lexists(dst):
                    os.symlink(so, dst)

    def port(self, name):
        if name not in self._ports:
            taken = set(self._ports.values())
            for _ in range(50):
                p = free_port()
                if p not in taken:
                    break
            self._ports[name] = p
        return self._ports[name]

    def main_config(self):
        cfg = {
            'hostname': 'mail.example.test',
            'state_dir': self.state_dir,
            'module_dir': self.module_dir,
            'log': {'level': 'debug'},
            'shutdown_grace': '5s',
            'domains': {'example.test': {'routing': 'local'}},
            'include': 'plugins.d/*.yaml',
        }
        if _is_root():
            cfg['user'] = 'nobody'
        for k, v in self.main.items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = v
        return cfg

    def plugin_files(self):
        if self.plugins is None:
            p = default_plugins(self)
        elif callable(self.plugins):
            p = dict(self.plugins(self))
        else:
            p = dict(self.plugins)
        for k, v in self.extra_plugins.items():
            if v is None:
                p.pop(k, None)
            else:
                p[k] = v
        return p

    def write_config(self):
        def dump(path, data):
            tmp = path + '.tmp'
            with open(tmp, 'w') as f:
                if isinstance(data, str):
                    f.write(data)
                else:
                    yaml.safe_dump(data, f, default_flow_style=False,
                                   sort_keys=False)
            os.chmod(tmp, 0o644)
            os.rename(tmp, path)

        dump(self.config_path, self.main_config())
        files = self.plugin_files()
        for old in os.listdir(self.plugins_dir):
            if old not in files:
                os.unlink(os.path.join(self.plugins_dir, old))
        for name, data in files.items():
            dump(os.path.join(self.plugins_dir, name), data)
        if _is_root():
            import pwd
            pw = pwd.getpwnam('nobody')
            for root, dirs, fnames in os.walk(self.state_dir):
                os.chown(root, pw.pw_uid, pw.pw_gid)
                for f in fnames:
                    os.chown(os.path.join(root, f), pw.pw_uid, pw.pw_gid)

    def add_users(self):
        for addr, pw in self.users.items():
            if addr in self._users_added:
                continue
            r = self.ctl('user', 'add', addr, '--password-stdin',
                         input=pw + '\n')
            if r.returncode != 0:
                raise DaemonError('satchelctl user add %s failed (%d):\n%s%s'
                                  % (addr, r.returncode, r.stdout, r.stderr))
            self._users_added.add(addr)
        passwd = os.path.join(self.tmp, 'passwd')
        if _is_root() and os.path.exists(passwd):
            # the dropped daemon (nobody) must read it; satchelctl makes it
            # 0640 for the configured user's group already, be sure of it
            import pwd
            st = os.stat(passwd)
            gid = pwd.getpwnam('nobody').pw_gid
            if st.st_gid != gid and not st.st_mode & 0o004:
                os.chown(passwd, -1, gid)
                os.chmod(passwd, (st.st_mode & 0o777) | 0o040)

    # ---- process control ----
    def start(self, timeout=15):
        if self.running():
            return
        if not os.path.exists(self.satcheld):
            raise DaemonError('%s not built (SATCHEL_BUILDDIR=%s)'
                              % (self.satcheld, builddir()))
        self.write_config()
        self.add_users()
        mark = self.log_mark()
        self._logf = open(self.log_path, 'ab')
        self._expect_death = False
        cmd = [self.satcheld, '-f', '-c', self.config_path]
        if VALGRIND:
            cmd = self._valgrind_cmd() + cmd
            timeout *= SLOW
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL, stdout=self._logf,
            stderr=self._logf, cwd=self.tmp)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(r'satcheld ready', self.log_text()[mark:]):
                return
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise DaemonError('satcheld exited (%d) during start-up:\n%s'
                                  % (rc, self.log_text()))
            time.sleep(0.05)
        self._terminate_quietly()
        raise DaemonError('satcheld not ready after %ss:\n%s'
                          % (timeout, self.log_text()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stop(self, timeout=20):
        """SIGTERM, wait, then fail loudly on a crash or sanitizer report."""
        timeout *= SLOW
        if self.proc is None:
            self._check_log()
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._close_log()
                self.proc = None
                raise DaemonError('satcheld ignored SIGTERM for %ss:\n%s'
                                  % (timeout, self.log_text()))
        rc = self.proc.returncode
        self.proc = None
        self._close_log()
        if VALGRIND:
            self._check_valgrind()   # exit 99: say what valgrind found
        if not self._expect_death and rc != 0:
            raise DaemonError('satcheld exited with %d (%s):\n%s%s'
                              % (rc, _rc_text(rc), self.log_text(),
                                 self._valgrind_text()))
        self._check_log()

    def close(self):
        try:
            self.stop()
        finally:
            self._cleanup()

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self._expect_death = True
            self.proc.kill()
            self.proc.wait()

    def restart(self, timeout=15):
        if self.proc is not None and self._expect_death:
            self.proc.wait()
            self.proc = None
            self._close_log()
        else:
            self.stop()
        self.start(timeout=timeout)

    def reload(self, wait=True, timeout=10):
        """Rewrites the config and sends SIGHUP. Returns the log mark taken
        before the signal (for wait_log(since=...))."""
        self.write_config()
        self.add_users()
        mark = self.log_mark()
        if not self.running():
            raise DaemonError('reload: satcheld is not running:\n%s'
                              % self.log_text())
        self.proc.send_signal(signal.SIGHUP)
        if wait:
            self.wait_log(r'(?i)reload', timeout=timeout, since=mark)
        return mark

    # ---- logs and files ----
    def log_text(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def log_mark(self):
        try:
            return len(self.log_text())
        except OSError:
            return 0

    def wait_log(self, regex, timeout=10, since=0):
        rx = re.compile(regex)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log_text()[since:])
            if m:
                return m
            if time.monotonic() >= deadline:
                raise AssertionError('log line /%s/ not seen within %ss; '
                                     'log:\n%s' % (regex, timeout,
                                                   self.log_text()[-6000:]))
            time.sleep(0.05)

    def ctl(self, *args, input=None, timeout=30):
        return subprocess.run([self.satchelctl, '-c', self.config_path]
                              + [str(a) for a in args],
                              input=input, capture_output=True, text=True,
                              timeout=timeout)

    def maildir(self, addr):
        local, _, domain = addr.rpartition('@')
        return os.path.join(self.state_dir, 'mail', domain.lower(), local)

    def maildir_files(self, addr):
        base = self.maildir(addr)
        out = []
        for sub in ('new', 'cur'):
            p = os.path.join(base, sub)
            if os.path.isdir(p):
                out.extend(os.path.join(p, f) for f in os.listdir(p)
                           if not f.startswith('.'))
        return sorted(out)

    def wait_maildir(self, addr, count=1, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            files = self.maildir_files(addr)
            if len(files) >= count:
                return files
            if time.monotonic() >= deadline:
                raise AssertionError('%s: %d message(s) in %s after %ss, '
                                     'wanted %d; log:\n%s'
                                     % (addr, len(files), self.maildir(addr),
                                        timeout, count,
                                        self.log_text()[-6000:]))
            time.sleep(0.05)

    # ---- internals ----
    def _check_log(self):
        text = self.log_text()
        m = SANITIZER_RE.search(text)
        if m:
            raise DaemonError('sanitizer report in the satcheld log:\n%s'
                              % text)
        if VALGRIND:
            self._check_valgrind()

    def _valgrind_dir(self):
        return os.path.join(self.tmp, 'valgrind')

    def _valgrind_cmd(self):
        """valgrind memcheck; one log per process (the PAM helper is a
        fork) in a directory the dropped daemon can write to."""
        vdir = self._valgrind_dir()
        os.makedirs(vdir, exist_ok=True)
        os.chmod(vdir, 0o1777)
        return ['valgrind', '--quiet', '--tool=memcheck',
                '--error-exitcode=99', '--vgdb=no', '--leak-check=full',
                '--show-leak-kinds=definite',
                '--errors-for-leak-kinds=definite', '--num-callers=40',
                '--suppressions=' + os.path.join(srcdir(), 'tests',
                                                 'valgrind.supp'),
                '--log-file=' + os.path.join(vdir, 'valgrind.%p.log')]

    def _check_valgrind(self):
        vdir = self._valgrind_dir()
        if not os.path.isdir(vdir):
            return
        for name in sorted(os.listdir(vdir)):
            with open(os.path.join(vdir, name), 'rb') as f:
                text = f.read().decode('utf-8', 'replace')
            if VALGRIND_RE.search(text):
                raise DaemonError('valgrind found errors (%s):\n%s\n'
                                  '---- satcheld log ----\n%s'
                                  % (name, text[-20000:],
                                     self.log_text()[-6000:]))

    def _valgrind_text(self):
        """Every valgrind log, for a daemon that died: valgrind prints the
        stack of the fatal signal (an abort's assertion) there."""
        vdir = self._valgrind_dir()
        if not VALGRIND or not os.path.isdir(vdir):
            return ''
        out = []
        for name in sorted(os.listdir(vdir)):
            with open(os.path.join(vdir, name), 'rb') as f:
                text = f.read().decode('utf-8', 'replace')
            out.append('\n---- %s ----\n%s' % (name, text[-20000:]))
        return ''.join(out)

    def _close_log(self):
        if self._logf is not None:
            self._logf.close()
            self._logf = None

    def _terminate_quietly(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        self._close_log()

    def _dump_log(self, title):
        sys.stderr.write('---- %s (%s) ----\n%s\n---- end ----\n'
                         % (title, self.log_path, self.log_text()[-20000:]))

    def _cleanup(self):
        self._terminate_quietly()
        if os.environ.get('SATCHEL_KEEP_TMP') == '1':
            sys.stderr.write('satchel harness: kept %s\n' % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _rc_text(rc):
    if rc < 0:
        try:
            return 'killed by ' + signal.Signals(-rc).name
        except ValueError:
            return 'signal %d' % -rc
    return 'exit status'
