#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Pool-job lifetime across a reload, end to end (sc_work_submit_inst).

auth_file re-reads its users file on the pool when the file changes. Here
the file is swapped for a FIFO, so that read blocks on the pool thread
until the test writes to it: a job that is certainly still running when a
reload retires its generation. The old generation must then wait for the
job (its instance and module stay), run the job's done against the live
instance, and only then be torn down. Under the sanitizer build a use of
the freed instance would be reported (the harness fails on any report)."""

import errno
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'harness'))
from satchel_harness import Daemon, default_plugins, raw  # noqa: E402

ALICE = 'alice@example.test'
# A well-formed entry; these tests never authenticate with it.
LINE = ('%s:{SHA512-CRYPT}$6$abcdefgh$scspNmpvA5JDHZBzhIVH/jXUdfeAK/1zvNmG'
        'U/bQudb37k979IEoBcxJcDLRysxcy9VZnE5McBXQ0WmfjZouc/\n' % ALICE)


def open_fifo_writer(path, timeout=10):
    """Opens the FIFO for writing once a reader has it open (the pool job
    in fopen); the job then blocks in its read until we write."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


class WorkReloadTest(unittest.TestCase):
    def test_retired_gen_waits_for_job(self):
        users = {'file': 'passwd'}

        def plugins(d):
            p = default_plugins(d, with_auth=True)
            p['30-auth_file.yaml']['path'] = os.path.join(d.tmp,
                                                          users['file'])
            return p

        with Daemon(plugins=plugins) as d:
            for name in ('passwd', 'passwd2'):
                with open(os.path.join(d.tmp, name), 'w') as f:
                    f.write(LINE)
            d.start()
            d.wait_log(r'auth_file 30-auth_file: loaded 1 users')

            # The file becomes a FIFO: the next check (once a second)
            # opens it on the pool and blocks there.
            fifo = os.path.join(d.tmp, 'passwd.fifo')
            os.mkfifo(fifo, 0o644)
            os.rename(fifo, os.path.join(d.tmp, 'passwd'))
            wfd = open_fifo_writer(os.path.join(d.tmp, 'passwd'))
            try:
                # Generation 2 reads another file; generation 1 loses its
                # last reference at the swap, with the job still blocked.
                users['file'] = 'passwd2'
                mark = d.reload()
                d.wait_log(r'configuration reloaded \(generation 2\)',
                           since=mark)
                d.wait_log(r'config generation 1: teardown waits for '
                           r'1 job\b', since=mark)
                self.assertNotIn('last job done',
                                 d.log_text()[mark:])
                # The loop is not blocked: generation 2 serves.
                c = raw(d, 'smtp')
                c.expect(220)
                c.expect(250, 'EHLO client.example.test')
                c.expect(221, 'QUIT')
                c.close()
                mark = d.log_mark()
                # Let the job finish: done runs against the old instance
                # (it swaps the table in), then the teardown follows.
                os.write(wfd, LINE.encode())
            finally:
                os.close(wfd)
            m1 = d.wait_log(r'auth_file 30-auth_file: loaded 1 users from '
                            r'\S*/passwd\n', since=mark)
            m2 = d.wait_log(r'config generation 1: last job done',
                            since=mark)
            self.assertLess(m1.start(), m2.start())
            self.assertTrue(d.running())
            c = raw(d, 'smtp')
            c.expect(220)
            c.expect(221, 'QUIT')
            c.close()


if __name__ == '__main__':
    unittest.main(verbosity=2)
