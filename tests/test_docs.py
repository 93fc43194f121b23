#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The man pages against the shipped tree (issue 13): every plugins.d file a
module page names is the file that ships (router 40-, maildir 60-,
pop_before_smtp 20-), and satchel.yaml(5) renders without stray quotes
(groff, as man(1) shows it)."""

import glob
import os
import re
import shutil
import subprocess
import unittest

SRC = os.environ.get('SATCHEL_SRCDIR') or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))


class DocsTest(unittest.TestCase):
    def test_module_pages_name_the_shipped_files(self):
        shipped = set(os.listdir(os.path.join(SRC, 'plugins.d')))
        stems = {re.sub(r'^\d+-', '', f): f for f in shipped}
        seen = set()
        for page in sorted(glob.glob(os.path.join(SRC, 'modules', '*',
                                                  'satchel-*.5'))):
            with open(page) as f:
                text = f.read()
            for m in re.finditer(r'plugins\.d/(\d+-([a-z_]+)\.yaml)', text):
                name, stem = m.group(1), m.group(2) + '.yaml'
                if stem not in stems:
                    continue        # an example of a file that is not shipped
                seen.add(name)
                self.assertIn(name, shipped, '%s names plugins.d/%s, but '
                              'the shipped file is plugins.d/%s'
                              % (os.path.basename(page), name, stems[stem]))
        for name in ('40-router.yaml', '60-maildir.yaml',
                     '20-pop_before_smtp.yaml'):
            self.assertIn(name, seen)

    def test_satchel_yaml_renders_without_stray_quotes(self):
        if not shutil.which('groff'):
            self.skipTest('groff (groff-base) is not installed')
        out = subprocess.run(
            ['groff', '-Tutf8', '-man', '-rLL=250n', '-P-cbu',
             os.path.join(SRC, 'man', 'satchel.yaml.5')],
            capture_output=True, text=True, check=True, timeout=60).stdout
        self.assertIn('dns.servers (list of ip or ip:port; default: the '
                      'system resolver configuration)\n', out)
        # a quote left over from a request line shows as )" or ;"
        for line in out.splitlines():
            self.assertNotRegex(line, r'[);]"', line)


if __name__ == '__main__':
    unittest.main(verbosity=2)
