#!/bin/sh
# Installs what satchel needs, builds it, and starts it on localhost with a
# self-contained config under ./dev-server/ (unprivileged ports, a generated
# certificate, one sample account). `conf/dev-server.sh stop` stops it.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dev=$top/dev-server
build=$top/_build
MX=2525 SUBMISSION=5870 SMTPS=4650 POP3=1100 POP3S=9950

stop() {
	if [ -f "$dev/satcheld.pid" ] && kill "$(cat "$dev/satcheld.pid")" 2>/dev/null; then
		echo "satcheld stopped"
	fi
	rm -f "$dev/satcheld.pid"
}
if [ "${1:-}" = stop ]; then stop; exit 0; fi

sh "$top/.ci/deps"
cd "$top"
[ -x configure ] || ./autogen.sh
mkdir -p "$build"
cd "$build"
[ -f Makefile ] || ../configure --enable-werror
make -j2 >/dev/null
stop

mkdir -p "$dev/modules" "$dev/plugins.d" "$dev/state"
for so in "$build"/modules/*/.libs/*.so; do
	ln -sf "$so" "$dev/modules/$(basename "$so")"
done
user_line='user: ""            # not started as root: nothing to drop'
if [ "$(id -u)" -eq 0 ]; then
	user_line='user: nobody        # started as root: bind, then drop to nobody'
	chmod 755 "$dev"
fi
cat > "$dev/satchel.yaml" <<YAML
# A self-contained development config written by conf/dev-server.sh.
hostname: mail.example.test
state_dir: $dev/state
module_dir: $dev/modules
$user_line
log: {level: info}
domains:
  example.test: {routing: local}
include: plugins.d/*.yaml
YAML
cat > "$dev/plugins.d/10-ratelimit.yaml" <<YAML
module: ratelimit
max_connections: 100
YAML
cat > "$dev/plugins.d/30-auth_file.yaml" <<YAML
module: auth_file
path: $dev/passwd
YAML
cat > "$dev/plugins.d/40-router.yaml" <<YAML
module: router
YAML
cat > "$dev/plugins.d/50-smtp.yaml" <<YAML
module: smtp
listen:
  - {address: "127.0.0.1:$MX", mode: mx, tls: starttls}
  - {address: "127.0.0.1:$SUBMISSION", mode: submission, tls: starttls}
  - {address: "127.0.0.1:$SMTPS", mode: submission, tls: implicit}
YAML
cat > "$dev/plugins.d/55-pop3.yaml" <<YAML
module: pop3
listen:
  - {address: "127.0.0.1:$POP3", tls: starttls}
  - {address: "127.0.0.1:$POP3S", tls: implicit}
YAML
cat > "$dev/plugins.d/60-maildir.yaml" <<YAML
module: maildir
path: $dev/state/mail/%d/%u
YAML
cat > "$dev/plugins.d/70-relay.yaml" <<YAML
module: relay
YAML
chmod 644 "$dev"/satchel.yaml "$dev"/plugins.d/*.yaml
ctl="$build/core/satchelctl -c $dev/satchel.yaml"
password=""
if ! $ctl user list 2>/dev/null | grep -q '^alice@example.test'; then
	password=$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')
	printf '%s\n' "$password" | $ctl user add alice@example.test --password-stdin
	printf '%s\n' "$password" > "$dev/alice.password"
fi
password=$(cat "$dev/alice.password")
[ "$(id -u)" -ne 0 ] || chown -R nobody "$dev/state"

"$build/core/satcheld" -t -c "$dev/satchel.yaml"
"$build/core/satcheld" -f -c "$dev/satchel.yaml" 2>"$dev/satcheld.log" &
echo $! > "$dev/satcheld.pid"
i=0
until grep -q 'satcheld ready' "$dev/satcheld.log" 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$(cat "$dev/satcheld.pid")" 2>/dev/null; then
		echo "satcheld did not start; its log:" >&2
		cat "$dev/satcheld.log" >&2
		exit 1
	fi
	sleep 0.1
done
cat <<MSG

satchel is running (pid $(cat "$dev/satcheld.pid"), log: $dev/satcheld.log)

  SMTP (MX, STARTTLS offered)  127.0.0.1:$MX
  submission (STARTTLS + AUTH) 127.0.0.1:$SUBMISSION
  submission (implicit TLS)    127.0.0.1:$SMTPS
  POP3 (STLS) / POP3S          127.0.0.1:$POP3 / 127.0.0.1:$POP3S
  certificate (self-signed)    $dev/state/tls/cert.pem

  sample account  alice@example.test   password: $password
  her Maildir     $dev/state/mail/example.test/alice

Deliver a message to her:
  swaks --server 127.0.0.1:$MX --to alice@example.test --from bob@example.net

Send as her (AUTH over STARTTLS):
  swaks --server 127.0.0.1:$SUBMISSION --tls --auth PLAIN --auth-user alice@example.test --auth-password $password --to alice@example.test

Admin:  $ctl status
Stop:   conf/dev-server.sh stop
MSG
