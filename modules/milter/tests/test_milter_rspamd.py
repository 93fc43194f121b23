#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""rspamd (Debian's rspamd) as a milter through the milter module: its
proxy worker in milter mode, scanning itself (self_scan), configured in a
temp dir on top of Debian's stock configuration (LOCAL_CONFDIR and the
data directories pointed there). GTUBE is refused on the MX port; a clean
message is delivered with rspamd's headers."""

import os
import shutil
import smtplib
import subprocess
import tempfile
import unittest

from satchel_harness import skip, smtp
from dnsserver import DnsServer
from miltercommon import (ALICE, PASSWORD, Daemon, free_port,
                          milter_plugin, read_mail, stop_process,
                          wait_port)

RSPAMD = shutil.which('rspamd') or '/usr/bin/rspamd'
GTUBE = b'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'


class Rspamd:
    def __init__(self, tmp, dns_server):
        self.tmp = tmp
        self.port = free_port()
        self.address = 'inet:127.0.0.1:%d' % self.port
        for d in ('local.d', 'override.d', 'db', 'run', 'log'):
            os.makedirs(os.path.join(tmp, d), exist_ok=True)

        def write(name, text):
            with open(os.path.join(tmp, name), 'w') as f:
                f.write(text)

        normal = free_port()
        write('override.d/worker-proxy.inc',
              'bind_socket = "127.0.0.1:%d";\n'
              'milter = yes;\n'
              'timeout = 120s;\n'
              'count = 1;\n'
              'upstream "local" {\n  default = yes;\n'
              '  hosts = "127.0.0.1:%d";\n}\n' % (self.port, normal))
        # the other workers on ports of their own, nothing on the default
        write('override.d/worker-normal.inc',
              'bind_socket = "127.0.0.1:%d";\ncount = 1;\n' % normal)
        write('override.d/worker-controller.inc',
              'bind_socket = "127.0.0.1:%d";\ncount = 1;\n' % free_port())
        write('override.d/logging.inc',
              'type = "file";\nfilename = "%s/log/rspamd.log";\n'
              'level = "info";\n' % tmp)
        write('local.d/options.inc',
              'dns {\n  nameserver = ["%s"];\n  timeout = 1s;\n'
              '  retransmits = 1;\n}\n'
              # compiling the hyperscan cache takes a minute on a loaded
              # machine; the plain regexp engine is enough here
              'disable_hyperscan = true;\n' % dns_server)
        write('local.d/milter_headers.conf',
              'use = ["x-spamd-result", "x-rspamd-queue-id", '
              '"x-spam-status"];\n'
              'skip_local = false;\nskip_authenticated = false;\n')
        # no Redis here: keep the modules that need it quiet
        write('local.d/redis.conf', '')
        self.log = open(os.path.join(tmp, 'rspamd.out'), 'wb')
        self.proc = subprocess.Popen(
            [RSPAMD, '-f', '-i', '-c', '/etc/rspamd/rspamd.conf',
             '--var=LOCAL_CONFDIR=%s' % tmp,
             '--var=DBDIR=%s/db' % tmp,
             '--var=RUNDIR=%s/run' % tmp,
             '--var=LOGDIR=%s/log' % tmp],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        # rspamd compiles its rules at start: seconds on a quiet machine,
        # over a minute on 2 cores busy with other builds
        wait_port(self.port, self.proc, timeout=180)

    def stop(self):
        stop_process(self.proc, 15)
        self.log.close()

    def log_text(self):
        out = ''
        for name in ('rspamd.out', 'log/rspamd.log'):
            try:
                with open(os.path.join(self.tmp, name),
                          errors='replace') as f:
                    out += f.read()[-4000:]
            except OSError:
                pass
        return out


class RspamdTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(RSPAMD):
            skip('rspamd is not installed')
        cls.tmp = tempfile.mkdtemp(prefix='satchel-rspamd-')
        os.chmod(cls.tmp, 0o755)
        cls.dns = DnsServer({}).start()
        try:
            cls.rspamd = Rspamd(cls.tmp, cls.dns.server)
        except Exception:
            cls.dns.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.rspamd.stop()
        cls.dns.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def daemon(self):
        return Daemon(users={ALICE: PASSWORD},
                      main={'dns': {'servers': [self.dns.server]}},
                      extra_plugins=milter_plugin(self.rspamd.address,
                                                  modes=['mx']))

    def message(self, body):
        return (b'From: Bob <bob@remote.test>\r\n'
                b'To: Alice <alice@example.test>\r\n'
                b'Subject: rspamd test\r\n'
                b'Date: Mon, 07 Dec 2026 15:00:00 +0000\r\n'
                b'Message-ID: <rspamd-test@remote.test>\r\n'
                b'\r\n' + body + b'\r\n')

    def test_gtube_refused_clean_tagged(self):
        with self.daemon() as d:
            d.start()
            with smtp(d, timeout=60) as c:
                c.ehlo('client.example')
                with self.assertRaises(smtplib.SMTPDataError) as cm:
                    c.sendmail('bob@remote.test', [ALICE],
                               self.message(b'Spam here:\r\n' + GTUBE))
                self.assertEqual(cm.exception.smtp_code, 554,
                                 self.rspamd.log_text())
                self.assertTrue(cm.exception.smtp_error.startswith(
                    b'5.7.1 '), cm.exception.smtp_error)
                # the same session goes on with a clean message
                c.rset()
                self.assertEqual(c.sendmail(
                    'bob@remote.test', [ALICE],
                    self.message(b'Just a friendly note.')), {})
            got = read_mail(d, ALICE, 1, timeout=30)
            self.assertEqual(len(got), 1)
            self.assertIn(b'X-Spamd-Result: default: False', got[0],
                          got[0].decode(errors='replace'))
            self.assertIn(b'Just a friendly note.', got[0])
            self.assertNotIn(GTUBE, got[0])


if __name__ == '__main__':
    unittest.main()
