#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A milter on Debian's libmilter (python3-milter) that does what a plan
says, for the milter module's tests.

    scripted_milter.py SOCKET PLAN.json EVENTS.jsonl

SOCKET is libmilter's spec (inet:PORT@127.0.0.1, unix:/path). The plan is
a JSON object:
    "<callback>": "continue" | "accept" | "reject" | "tempfail" |
                  "discard" | "skip"        (connect, hello, envfrom,
                  envrcpt, data, header, eoh, body, eom); default continue
    "reply": [code, xcode, text]   setreply() before reject/tempfail
    "rcpt": {"<addr>": result}     envrcpt result per recipient
    "delay": {"<callback>": seconds}
    "eom_actions": [[action, args...], ...] in order, at end of message:
        addheader NAME VALUE | insheader IDX NAME VALUE |
        chgheader NAME IDX VALUE | replacebody TEXT... (one call each) |
        addrcpt ADDR | addrcpt_par ADDR PARAMS | delrcpt ADDR |
        chgfrom ADDR [PARAMS] | quarantine REASON | progress | sleep SECS
    "quiet": true                  record no events (bench/smtp_load.py)
Every callback appends one JSON line to EVENTS: its name, arguments and
the macros libmilter has at that point.
"""

import json
import os
import sys
import time

import Milter

SOCKET, PLAN_PATH, EVENTS = sys.argv[1:4]
with open(PLAN_PATH) as f:
    PLAN = json.load(f)

MACROS = ['j', '{daemon_name}', '{daemon_addr}', 'v', '_', '{client_addr}',
          '{client_name}', '{client_port}', 'i', '{auth_type}',
          '{auth_authen}', '{mail_addr}', '{rcpt_addr}', '{tls_version}']

RESULTS = {
    'continue': Milter.CONTINUE, 'accept': Milter.ACCEPT,
    'reject': Milter.REJECT, 'tempfail': Milter.TEMPFAIL,
    'discard': Milter.DISCARD, 'skip': Milter.SKIP,
}


def text(b):
    if isinstance(b, bytes):
        return b.decode('utf-8', 'surrogateescape')
    return b


class Scripted(Milter.Base):
    def __init__(self):
        self.id = Milter.uniqueID()

    def ev(self, event, **kw):
        if PLAN.get('quiet'):
            return
        macros = {}
        for m in MACROS:
            v = self.getsymval(m)
            if v is not None:
                macros[m] = v
        kw.update(ev=event, conn=self.id, macros=macros)
        with open(EVENTS, 'a') as f:
            f.write(json.dumps(kw) + '\n')

    def result(self, name, override=None):
        d = PLAN.get('delay', {}).get(name)
        if d:
            time.sleep(d)
        r = override or PLAN.get(name, 'continue')
        if r in ('reject', 'tempfail') and PLAN.get('reply'):
            code, xcode, msg = PLAN['reply']
            self.setreply(code, xcode, msg)
        return RESULTS[r]

    def connect(self, hostname, family, hostaddr):
        self.ev('connect', hostname=hostname, hostaddr=list(hostaddr)
                if isinstance(hostaddr, tuple) else hostaddr)
        return self.result('connect')

    def hello(self, hostname):
        self.ev('hello', hostname=hostname)
        return self.result('hello')

    def envfrom(self, f, *params):
        self.ev('envfrom', sender=f, params=list(params))
        return self.result('envfrom')

    def envrcpt(self, to, *params):
        self.ev('envrcpt', rcpt=to, params=list(params))
        return self.result('envrcpt', PLAN.get('rcpt', {}).get(to))

    def data(self):
        self.ev('data')
        return self.result('data')

    def header(self, name, value):
        self.ev('header', name=name, value=value)
        return self.result('header')

    def eoh(self):
        self.ev('eoh')
        return self.result('eoh')

    def body(self, chunk):
        self.ev('body', len=len(chunk), data=text(chunk))
        return self.result('body')

    def eom(self):
        self.ev('eom')
        for a in PLAN.get('eom_actions', []):
            op, args = a[0], a[1:]
            if op == 'addheader':
                self.addheader(args[0], args[1])
            elif op == 'insheader':
                self.addheader(args[1], args[2], args[0])
            elif op == 'chgheader':
                self.chgheader(args[0], args[1], args[2])
            elif op == 'replacebody':
                for piece in args:
                    self.replacebody(piece.encode())
            elif op == 'addrcpt':
                self.addrcpt(args[0])
            elif op == 'addrcpt_par':
                self.addrcpt(args[0], args[1])
            elif op == 'delrcpt':
                self.delrcpt(args[0])
            elif op == 'chgfrom':
                self.chgfrom(args[0], args[1] if len(args) > 1 else None)
            elif op == 'quarantine':
                self.quarantine(args[0])
            elif op == 'progress':
                self.progress()
            elif op == 'sleep':
                time.sleep(args[0])
        return self.result('eom')

    def abort(self):
        self.ev('abort')
        return Milter.CONTINUE

    def close(self):
        self.ev('close')
        return Milter.CONTINUE


def main():
    Milter.factory = Scripted
    # every action: the module must cope with all of them
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGBODY | Milter.ADDRCPT |
                     Milter.ADDRCPT_PAR | Milter.DELRCPT | Milter.CHGHDRS |
                     Milter.QUARANTINE | Milter.CHGFROM)
    if SOCKET.startswith('unix:'):
        os.umask(0)	# the dropped daemon (nobody) must connect
    sys.stdout.flush()
    Milter.runmilter('scripted', SOCKET, 240)


if __name__ == '__main__':
    main()
