#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""satchelctl connect and doctor against real configs, a real DNS server
(dnsmasq on 127.0.0.1) and the real satcheld.

Runs inside run-test.sh's loopback-only namespace: this machine's
addresses are 127.0.0.1 and ::1 only, so 127.0.0.2 is "another server".
"""

import json
import os
import re
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'harness'))
from satchel_harness import (Daemon, builddir, default_plugins,  # noqa
                             skip, which)
from dnsserver import DnsServer  # noqa: E402

ALICE = 'alice@example.test'
PASSWORD = 'secret-password'
HOST = 'mail.example.test'

# example.test's MX is this server; elsewhere.test's MX is 127.0.0.2
RECORDS = {
    'example.test': {'MX': [(10, HOST)]},
    HOST: {'A': ['127.0.0.1']},
    'elsewhere.test': {'MX': [(10, 'mx.elsewhere.test')]},
    'mx.elsewhere.test': {'A': ['127.0.0.2']},
    'nullmx.test': {'MX': [(0, '.')]},
    'backup.test': {'MX': [(10, 'mx.elsewhere.test'), (20, HOST)]},
    'noemx.test': {'A': ['127.0.0.2']},
    'bk-here.test': {'MX': [(10, HOST), (20, 'mx.elsewhere.test')]},
}


def lines(text):
    return [l.rstrip() for l in text.splitlines()]


def check_line(testcase, out, level, regex):
    """Asserts a doctor line of that level matching regex; returns it."""
    rx = re.compile(r'^%s\s+.*%s' % (re.escape(level), regex))
    for l in lines(out):
        if rx.search(l):
            return l
    testcase.fail('no %r line matching /%s/ in:\n%s' % (level, regex, out))


def make_cert(directory, cn, days, names):
    """A self-signed certificate and key made with certtool."""
    key = os.path.join(directory, 'key.pem')
    cert = os.path.join(directory, 'cert.pem')
    tmpl = os.path.join(directory, 'cert.tmpl')
    with open(tmpl, 'w') as f:
        f.write('cn = "%s"\nexpiration_days = %d\ntls_www_server\n'
                'signing_key\nencryption_key\n' % (cn, days))
        for n in names:
            f.write('dns_name = "%s"\n' % n)
    subprocess.run(['certtool', '--generate-privkey', '--key-type=ecdsa',
                    '--outfile', key], check=True, capture_output=True,
                   timeout=60)
    subprocess.run(['certtool', '--generate-self-signed', '--load-privkey',
                    key, '--template', tmpl, '--outfile', cert],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o644)
    return cert, key


class ConnectTest(unittest.TestCase):
    """satchelctl connect: the Connect Devices page."""

    def plugins(self, d):
        p = default_plugins(d, with_auth=True)
        p['50-smtp.yaml']['listen'] = [
            {'address': '127.0.0.1:%d' % d.port('smtp'), 'mode': 'mx',
             'tls': 'starttls'},
            {'address': '0.0.0.0:%d' % d.port('submission'),
             'mode': 'submission', 'tls': 'starttls'},
            {'address': '0.0.0.0:%d' % d.port('smtps'),
             'mode': 'submission', 'tls': 'implicit'},
            {'address': '127.0.0.1:%d' % d.port('subplain'),
             'mode': 'submission', 'tls': 'none'},
        ]
        p['55-pop3.yaml'] = {'module': 'pop3', 'listen': [
            {'address': '0.0.0.0:%d' % d.port('pop3'), 'tls': 'starttls'},
            {'address': '[::1]:%d' % d.port('pop3s'), 'tls': 'implicit'},
        ]}
        return p

    def test_connect_text_and_json(self):
        with Daemon(plugins=self.plugins, users={ALICE: PASSWORD}) as d:
            d.write_config()
            d.add_users()
            r = d.ctl('connect', 'Alice@Example.TEST')
            self.assertEqual(r.returncode, 0, r.stderr)
            P = d.port
            want = [
                'Account:        alice@example.test',
                'User name:      alice@example.test',
                'Incoming (POP3): mail.example.test port %d, SSL/TLS '
                '(implicit) (only reachable from this machine)   '
                '[recommended]' % P('pop3s'),
                '                 mail.example.test port %d, STARTTLS'
                % P('pop3'),
                'Outgoing (SMTP): mail.example.test port %d, SSL/TLS '
                '(implicit), authentication required   [recommended]'
                % P('smtps'),
                '                 mail.example.test port %d, STARTTLS, '
                'authentication required' % P('submission'),
                '                 mail.example.test port %d, no '
                'encryption: not recommended, authentication required '
                '(only reachable from this machine)' % P('subplain'),
                'Not for clients: mail.example.test port %d: for other '
                'mail servers, not for mail clients' % P('smtp'),
            ]
            self.assertEqual(lines(r.stdout), want)

            r = d.ctl('connect', ALICE, '--json')
            self.assertEqual(r.returncode, 0, r.stderr)
            j = json.loads(r.stdout)
            self.assertEqual(j['username'], ALICE)
            self.assertTrue(j['account_exists'])
            self.assertEqual([(x['port'], x['security'], x['recommended'])
                              for x in j['outgoing']],
                             [(P('smtps'), 'implicit', True),
                              (P('submission'), 'starttls', False),
                              (P('subplain'), 'none', False)])
            self.assertEqual([x['port'] for x in j['incoming']],
                             [P('pop3s'), P('pop3')])
            self.assertTrue(j['incoming'][0]['loopback_only'])
            self.assertEqual([x['port'] for x in j['not_for_clients']],
                             [P('smtp')])

            # an account that does not exist is named as such
            r = d.ctl('connect', 'bob@example.test')
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('Account:        bob@example.test  (no such '
                          'account in %s: create it with `satchelctl '
                          'user add bob@example.test`)'
                          % os.path.join(d.tmp, 'passwd'),
                          lines(r.stdout))

    def test_connect_pop_before_smtp(self):
        """connect mentions POP-before-SMTP only when the module is on,
        with the listeners it applies to (issue 13 item 4)."""
        def plugins(listeners):
            def f(d):
                p = self.plugins(d)
                p['20-pop_before_smtp.yaml'] = {
                    'module': 'pop_before_smtp', 'window': '20m'}
                if listeners is not None:
                    p['20-pop_before_smtp.yaml']['listeners'] = listeners
                return p
            return f
        cases = [
            (None, ['mx'], 'mx listeners; the submission '
             'listeners still require authentication'),
            (['mx', 'submission'], ['mx', 'submission'],
             'mx and submission listeners'),
        ]
        for listeners, want_json, words in cases:
            with self.subTest(listeners=listeners):
                with Daemon(plugins=plugins(listeners),
                            users={ALICE: PASSWORD}) as d:
                    d.write_config()
                    d.add_users()
                    r = d.ctl('connect', ALICE)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertIn(
                        'POP-before-SMTP: on (%s): for 20m after a POP3 '
                        'or IMAP login, mail clients at the same address '
                        'may send without authentication on the %s'
                        % (os.path.join(d.plugins_dir,
                                        '20-pop_before_smtp.yaml'), words),
                        lines(r.stdout))
                    r = d.ctl('connect', ALICE, '--json')
                    j = json.loads(r.stdout)
                    self.assertEqual(j['pop_before_smtp'],
                                     {'window': '20m',
                                      'listeners': want_json})
        # off (the shipped default: not loaded): not mentioned
        with Daemon(plugins=self.plugins, users={ALICE: PASSWORD}) as d:
            d.write_config()
            r = d.ctl('connect', ALICE)
            self.assertNotIn('POP-before-SMTP', r.stdout)
            r = d.ctl('connect', ALICE, '--json')
            self.assertIsNone(json.loads(r.stdout)['pop_before_smtp'])

    def test_unknown_domain_and_bad_address(self):
        with Daemon(users={ALICE: PASSWORD}) as d:
            d.write_config()
            r = d.ctl('connect', 'alice@other.test')
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stdout, '')
            self.assertIn("domain 'other.test' is not configured in %s; "
                          "configured domains: example.test"
                          % d.config_path, r.stderr)
            r = d.ctl('connect', 'not-an-address')
            self.assertEqual(r.returncode, 1)
            self.assertIn('is not an address', r.stderr)
            r = d.ctl('connect')
            self.assertEqual(r.returncode, 2)
            self.assertIn('usage: satchelctl connect', r.stderr)

    def test_no_pop3_and_pam(self):
        def plugins(d):
            p = default_plugins(d, with_auth=False)
            p['30-auth_pam.yaml'] = {'module': 'auth_pam'}
            return p
        with Daemon(plugins=plugins) as d:
            d.write_config()
            r = d.ctl('connect', 'bob@example.test')
            self.assertEqual(r.returncode, 0, r.stderr)
            out = lines(r.stdout)
            self.assertEqual(out[0], 'Account:        bob@example.test  '
                             '(PAM: the system account bob)')
            self.assertTrue(out[2].startswith(
                'Incoming (POP3): none: no pop3 listener is configured'),
                out)


class DoctorTest(unittest.TestCase):
    """satchelctl doctor with dnsmasq records, then the running daemon."""

    @classmethod
    def setUpClass(cls):
        if not which('dnsmasq') and not os.path.exists('/usr/sbin/dnsmasq'):
            skip('dnsmasq is not installed')
        cls.dns = DnsServer(RECORDS).start()

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def daemon(self, routing='local', domains=None, **kw):
        main = {'dns': {'servers': [self.dns.server]},
                'domains': domains or {'example.test': {'routing': routing}}}
        main.update(kw.pop('main', {}))
        kw.setdefault('users', {ALICE: PASSWORD})
        return Daemon(main=main, **kw)

    def doctor(self, d, *args):
        d.write_config()
        d.add_users()
        r = d.ctl('doctor', *args, timeout=120)
        self.assertNotIn('Sanitizer', r.stderr)
        return r

    def test_mx_here_routing_local(self):
        with self.daemon('local') as d:
            r = self.doctor(d)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            check_line(self, r.stdout, 'ok', r'config: .* valid')
            check_line(self, r.stdout, 'ok',
                       r'mx example\.test: mail\.example\.test 10 '
                       r'\(127\.0\.0\.1\)')
            check_line(self, r.stdout, 'ok',
                       r'routing example\.test: local, and the MX points '
                       r'here')
            check_line(self, r.stdout, 'ok', r'hostname mail\.example\.test'
                       r': resolves to 127\.0\.0\.1 \(this machine\)')
            # dig asks the configured dns.servers, as the daemon does
            at = '@127.0.0.1 -p %d' % self.dns.port
            self.assertIn('     check: dig %s MX example.test' % at,
                          lines(r.stdout))
            self.assertIn('     check: dig %s A mail.example.test' % at,
                          lines(r.stdout))
            # without a daemon: said, and no limits configured
            check_line(self, r.stdout, 'warn', r'daemon: not reachable')
            check_line(self, r.stdout, 'warn', r'limits: no connection '
                       r'limit: a flood can exhaust memory')
            check_line(self, r.stdout, 'ok', r'auth: auth_file .*, 1 '
                       r'account$')

    def test_mx_elsewhere_routing_local(self):
        with self.daemon(domains={'elsewhere.test': {'routing': 'local'}},
                         users={}) as d:
            r = self.doctor(d)
            self.assertEqual(r.returncode, 0, r.stdout)
            check_line(self, r.stdout, 'ok', r'mx elsewhere\.test: '
                       r'mx\.elsewhere\.test 10 \(127\.0\.0\.2\)')
            self.assertIn(
                'warn routing elsewhere.test: mail for elsewhere.test goes '
                'to mx.elsewhere.test, not here: set routing: remote, or '
                'point the MX at mail.example.test', lines(r.stdout))
            self.assertIn('     check: dig @127.0.0.1 -p %d A '
                          'mx.elsewhere.test' % self.dns.port,
                          lines(r.stdout))

    def test_routing_remote_mx_here_fails(self):
        with self.daemon('remote') as d:
            r = self.doctor(d)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn('FAIL routing example.test: mail for example.test '
                          'would loop back to myself (5.4.6): set routing: '
                          'local or auto', lines(r.stdout))
            self.assertRegex(r.stdout, r'\n1 problem \(FAIL\), \d+ '
                             r'warnings?\n$')

    def test_check_and_reload_warn_routing_traps(self):
        """check and reload warn, in doctor's words, when a remote or
        backup domain's best MX is this machine (issue 13); other domains
        are not named; the exit status stays 0."""
        loop = ('warn routing example.test: mail for example.test would '
                'loop back to myself (5.4.6): set routing: local or auto')
        backup = ('warn routing bk-here.test: backup, but this server is '
                  'the best MX: there is no primary to relay to; set '
                  'routing: local, or give the primary a lower preference '
                  'number')
        with self.daemon(domains={
                'example.test': {'routing': 'remote'},
                'bk-here.test': {'routing': 'backup'},
                'backup.test': {'routing': 'backup'},
                'elsewhere.test': {'routing': 'remote'}}, users={}) as d:
            d.write_config()
            r = d.ctl('check', timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn(loop, lines(r.stdout))
            self.assertIn(backup, lines(r.stdout))
            self.assertNotIn('backup.test:', r.stdout)
            self.assertNotIn('elsewhere.test', r.stdout)
            # doctor says the same words
            r = self.doctor(d)
            self.assertIn(loop.replace('warn', 'FAIL', 1), lines(r.stdout))
            self.assertIn(backup, lines(r.stdout))
            # the daemon looks too, at start and at each reload (SIGHUP
            # as well), and logs the same words
            d.start()
            for text in (loop, backup):
                d.wait_log(r'warning: ' + re.escape(text[5:]), timeout=30)
            mark = d.log_mark()
            r = d.ctl('reload', timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn('configuration reloaded', r.stdout)
            self.assertIn(loop, lines(r.stdout))
            self.assertIn(backup, lines(r.stdout))
            for text in (loop, backup):
                d.wait_log(r'warning: ' + re.escape(text[5:]), timeout=30,
                           since=mark)
            log = d.log_text()
            self.assertNotIn('routing backup.test', log)
            self.assertNotIn('routing elsewhere.test', log)

    def test_check_warns_without_domains(self):
        with self.daemon(main={'domains': {}}, users={}) as d:
            d.write_config()
            r = d.ctl('check', timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            check_line(self, r.stdout, 'warn', r'domains: none configured '
                       r'in .*satchel\.yaml: this server accepts mail for '
                       r'no domain$')

    def test_null_mx_backup_auto_and_domain_args(self):
        with self.daemon(domains={
                'nullmx.test': {'routing': 'local'},
                'backup.test': {'routing': 'backup'},
                'example.test': {'routing': 'auto'},
                'elsewhere.test': {'routing': 'backup'},
                'noemx.test': {'routing': 'remote'}}, users={}) as d:
            r = self.doctor(d)
            out = r.stdout
            check_line(self, out, 'warn', r'mx nullmx\.test: null MX '
                       r'\(RFC 7505\): the domain accepts no mail')
            check_line(self, out, 'warn', r'routing nullmx\.test: local, '
                       r'but the null MX')
            check_line(self, out, 'ok', r'routing backup\.test: backup, '
                       r'this server is a lower-preference MX')
            check_line(self, out, 'warn', r'routing elsewhere\.test: '
                       r'backup, but this server \(mail\.example\.test\) '
                       r'is not among the MX hosts')
            check_line(self, out, 'ok', r'routing example\.test: auto '
                       r'resolves to local now')
            check_line(self, out, 'warn', r'mx noemx\.test: no MX record; '
                       r'senders fall back')
            check_line(self, out, 'ok', r'routing noemx\.test: remote')
            # only the domains asked for
            r = self.doctor(d, 'nullmx.test')
            self.assertIn('mx nullmx.test', r.stdout)
            self.assertNotIn('backup.test', r.stdout)
            r = self.doctor(d, 'nx.test')
            check_line(self, r.stdout, 'warn', r'domain nx\.test: not '
                       r'configured')
            check_line(self, r.stdout, 'warn', r'mx nx\.test: the domain '
                       r'does not exist in DNS')

    def test_certificate_checks(self):
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = make_cert(tmp, 'other.example.test', 5,
                                  ['other.example.test'])
            with self.daemon(main={'tls': {'certificate': cert,
                                           'key': key}}) as d:
                r = self.doctor(d)
                check_line(self, r.stdout, 'warn', r'tls: the certificate '
                           r'.* expires in [45] days: renew it soon')
                self.assertIn('warn tls: the certificate does not name '
                              'mail.example.test: clients will warn; get '
                              'one whose subjectAltName includes it',
                              lines(r.stdout))
                check_line(self, r.stdout, 'warn', r'tls: the certificate '
                           r'is self-signed: clients will warn')
            os.unlink(key)
            with self.daemon(main={'tls': {'certificate': cert,
                                           'key': key}}) as d:
                r = self.doctor(d)
                self.assertEqual(r.returncode, 1, r.stdout)
                check_line(self, r.stdout, 'FAIL', r'tls: cannot read the '
                           r'key')

    def test_running_daemon_relay_and_limits(self):
        rl = {'70-ratelimit.yaml': {'module': 'ratelimit',
                                    'max_connections': 10,
                                    'max_connections_per_ip': 20}}
        with self.daemon(extra_plugins=rl) as d:
            d.start()
            r = self.doctor(d)
            self.assertEqual(r.returncode, 0, r.stdout)
            check_line(self, r.stdout, 'ok', r'daemon: satcheld is running')
            self.assertIn('ok   relay (live): 127.0.0.1:%d refuses to '
                          'relay without authentication (550 5.7.1 Please '
                          'turn on SMTP Authentication in your mail client. '
                          '127.0.0.1 is not permitted to relay through '
                          'this server without authentication.)'
                          % d.port('smtp'), lines(r.stdout))
            check_line(self, r.stdout, 'ok', r'limits 70-ratelimit: '
                       r'connections [01]/10 \(max_connections\)')
            # the daemon-generated certificate is self-signed
            check_line(self, r.stdout, 'warn', r'tls: the certificate is '
                       r'self-signed: clients will warn')
            check_line(self, r.stdout, 'ok', r'tls: certificate .*/state/'
                       r'tls/cert\.pem valid for')

            # fill it up: 10 held, the 11th refused (a limit hit), one
            # closed again: 9 or 10 of 10 in use
            socks = []
            try:
                for _ in range(11):
                    s = socket.create_connection(('127.0.0.1',
                                                  d.port('smtp')), 10)
                    s.settimeout(10)
                    socks.append((s, s.recv(512)))
                self.assertTrue(socks[-1][1].startswith(b'421 4.7.0'),
                                socks[-1][1])
                socks.pop()[0].close()
                socks.pop()[0].close()
                r = self.doctor(d)
            finally:
                for s, _ in socks:
                    s.close()
            line = check_line(self, r.stdout, 'warn',
                              r'limits 70-ratelimit: connections '
                              r'(9|10)/10 \(max_connections\): over 80% in '
                              r'use; raise max_connections in .*'
                              r'70-ratelimit\.yaml, watching')
            self.assertTrue(line)
            check_line(self, r.stdout, 'warn', r'limits 70-ratelimit: the '
                       r'server-wide limit was hit 1 times: clients got '
                       r'"421 Too many concurrent SMTP connections"')
            self.assertIn('limit hits since start: max_connections=1',
                          r.stdout)

    def test_relay_networks_open(self):
        def plugins(d):
            p = default_plugins(d, with_auth=True)
            p['50-smtp.yaml']['relay_networks'] = ['10.0.0.0/8',
                                                   '0.0.0.0/0']
            return p
        with self.daemon(plugins=plugins) as d:
            r = self.doctor(d)
            self.assertEqual(r.returncode, 1, r.stdout)
            check_line(self, r.stdout, 'FAIL', r'relay_networks: 0\.0\.0\.0'
                       r'/0 in .*50-smtp\.yaml lets the whole internet '
                       r'relay: OPEN RELAY')
            self.assertNotIn('10.0.0.0/8', r.stdout)

        def plugins2(d):
            p = default_plugins(d, with_auth=True)
            p['50-smtp.yaml']['relay_networks'] = ['8.0.0.0/8']
            return p
        with self.daemon(plugins=plugins2) as d:
            r = self.doctor(d)
            self.assertEqual(r.returncode, 1, r.stdout)
            check_line(self, r.stdout, 'FAIL', r'relay_networks: 8\.0\.0\.0'
                       r'/8 in .* is a wide public range')

    def test_live_open_relay_detected(self):
        """An IP let in by pop_before_smtp's feed: the probe relays."""
        def plugins(d):
            p = default_plugins(d, with_auth=True)
            p['55-pop3.yaml'] = {'module': 'pop3', 'listen': [
                {'address': '127.0.0.1:%d' % d.port('pop3'),
                 'tls': 'starttls'}]}
            p['45-pop_before_smtp.yaml'] = {
                'module': 'pop_before_smtp', 'window': '1h',
                'feed': os.path.join(d.tmp, 'feed.log')}
            return p
        with self.daemon(plugins=plugins) as d:
            feed = os.path.join(d.tmp, 'feed.log')
            with open(feed, 'w') as f:
                f.write('')
            os.chmod(feed, 0o644)
            d.start()
            with open(feed, 'a') as f:
                f.write('127.0.0.1\n')
            deadline = time.monotonic() + 10
            while True:
                with smtplib.SMTP('127.0.0.1', d.port('smtp'),
                                  timeout=10) as s:
                    s.ehlo('client.example.test')
                    s.mail('x@example.test')
                    code, _ = s.rcpt('y@example.invalid')
                if code == 250:
                    break
                self.assertLess(time.monotonic(), deadline,
                                'feed line not picked up')
                time.sleep(0.2)
            # this machine's own POP-before-SMTP entry: named, and not
            # called an open relay (issue 13 item 4)
            r = self.doctor(d)
            check_line(self, r.stdout, 'ok', r'relay \(live\): '
                       r'127\.0\.0\.1:%d: relay allowed by pop_before_smtp '
                       r'for 127\.0\.0\.1 \(POP login at '
                       r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\): this machine\'s '
                       r'address logged in to POP3 or IMAP recently'
                       % d.port('smtp'))
            self.assertNotIn('OPEN RELAY', r.stdout)

    def test_live_open_relay_names_the_module(self):
        """A module that lets anyone relay: OPEN RELAY, naming it."""
        def plugins(d):
            p = default_plugins(d, with_auth=True)
            p['45-fx_hook.yaml'] = {'module': 'fx_hook',
                                    'hooks': ['relay'], 'result': 'ok'}
            return p
        with self.daemon(plugins=plugins) as d:
            src = os.path.join(builddir(), 'tests', 'modules', '.libs',
                               'fx_hook.so')
            os.symlink(src, os.path.join(d.module_dir, 'fx_hook.so'))
            d.start()
            with smtplib.SMTP('127.0.0.1', d.port('smtp'), timeout=10) as s:
                s.ehlo('client.example.test')
                s.mail('x@example.test')
                code, msg = s.rcpt('y@example.invalid')
            self.assertEqual((code, msg),
                             (250, b'2.1.5 Ok, relay allowed by 45-fx_hook'))
            r = self.doctor(d)
            self.assertEqual(r.returncode, 1, r.stdout)
            check_line(self, r.stdout, 'FAIL', r'relay \(live\): '
                       r'127\.0\.0\.1:%d accepted RCPT to a foreign domain '
                       r'without authentication: OPEN RELAY \(relay allowed '
                       r'by 45-fx_hook\)' % d.port('smtp'))

    def test_listeners_auth_and_invalid_config(self):
        def plugins(d):
            return {
                '50-smtp.yaml': {'module': 'smtp', 'listen': [
                    {'address': '0.0.0.0:%d' % d.port('smtp'),
                     'mode': 'mx', 'tls': 'starttls'}]},
                '55-pop3.yaml': {'module': 'pop3', 'listen': [
                    {'address': '0.0.0.0:%d' % d.port('pop3'),
                     'tls': 'none'}]},
            }
        with self.daemon(plugins=plugins, users={}) as d:
            r = self.doctor(d)
            self.assertEqual(r.returncode, 1, r.stdout)
            check_line(self, r.stdout, 'FAIL', r'listen pop3 0\.0\.0\.0:%d '
                       r'\(pop3\): tls: none on a network address: '
                       r'passwords would travel in clear' % d.port('pop3'))
            check_line(self, r.stdout, 'warn', r'listen: no submission '
                       r'listener: mail clients need port 587')
            check_line(self, r.stdout, 'warn', r'auth: no auth backend '
                       r'enabled: nobody can log in to send')
        with self.daemon() as d:
            d.write_config()
            with open(os.path.join(d.plugins_dir, '50-smtp.yaml'),
                      'a') as f:
                f.write('no_such_key: 1\n')
            r = d.ctl('doctor')
            self.assertEqual(r.returncode, 1, r.stdout)
            out = lines(r.stdout)
            self.assertTrue(out[0].startswith('FAIL config: '), out)
            self.assertIn('50-smtp.yaml', out[0])
            self.assertEqual(len(out), 1, out)

    def test_srv_records(self):
        """RFC 6186 SRV records of local domains against the listeners:
        right, a wrong port, another host, "." while offered, none."""
        with Daemon(users={ALICE: PASSWORD}) as d:
            recs = dict(RECORDS)
            sub = d.port('submission')
            recs['_submissions._tcp.example.test'] = {
                'SRV': [(0, 1, d.port('smtps'), HOST)]}
            recs['_submission._tcp.example.test'] = {
                'SRV': [(5, 1, sub + 1 if sub < 65535 else sub - 1, HOST)]}
            recs['_submissions._tcp.other.test'] = {
                'SRV': [(0, 1, d.port('smtps'), 'mx.elsewhere.test')]}
            recs['_submission._tcp.other.test'] = {
                'SRV': [(0, 0, 0, '.')]}
            dns = DnsServer(recs).start()
            try:
                d.main = {'dns': {'servers': [dns.server]},
                          'domains': {'example.test': {'routing': 'local'},
                                      'other.test': {'routing': 'local'},
                                      'none.test': {'routing': 'local'},
                                      'far.test': {'routing': 'remote'}}}
                r = self.doctor(d)
            finally:
                dns.stop()
            out = r.stdout
            check_line(self, out, 'ok', r'srv _submissions\._tcp\.example'
                       r'\.test: mail\.example\.test port %d$'
                       % d.port('smtps'))
            check_line(self, out, 'warn', r'srv _submission\._tcp\.example'
                       r'\.test: port \d+, but the configured listeners '
                       r'use other ports')
            check_line(self, out, 'warn', r'srv _submissions\._tcp\.other'
                       r'\.test: sends clients to mx\.elsewhere\.test, not '
                       r'to this server \(mail\.example\.test\)')
            check_line(self, out, 'warn', r'srv _submission\._tcp\.other'
                       r'\.test: says submission is not offered here '
                       r'\(target "\."\), but it listens on port %d' % sub)
            check_line(self, out, 'ok', r'srv _submission\._tcp\.none\.test'
                       r': none published \(optional')
            self.assertIn('     publish: _submission._tcp.none.test. 3600 IN '
                          'SRV 0 1 %d mail.example.test.' % sub, lines(out))
            # no pop3 listener: its records are not asked for; a remote
            # domain is not checked
            self.assertNotIn('_pop3', out)
            self.assertNotIn('far.test: none', out)


if __name__ == '__main__':
    unittest.main(verbosity=2)
