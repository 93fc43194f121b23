/* SPDX-License-Identifier: MIT */
/*
 * core/privsep.c - the privileged PAM helper and its client.
 *
 * sc_privsep_start() forks, before the privilege drop, a helper process that
 * keeps root and does nothing but PAM authentication. The daemon side runs on
 * the event loop thread (a uv_pipe_t on the socketpair); the helper is a
 * plain blocking loop in its own process, one request at a time.
 *
 * PAM's failure delay (pam_fail_delay(3), 2 s from pam_unix) is real but
 * does not sleep in the helper, which serves every session: the helper
 * reports the delay PAM asked for with the verdict, and the daemon holds
 * a denial back on a timer for that long before the caller hears of it.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <security/pam_appl.h>

/*
 * Wire format, host byte order (both ends are the same binary):
 *   frame   = u32 body_len, body
 *   request = u32 id, u16 service_len, u16 user_len, u16 password_len,
 *             service, user, password          (no NUL terminators)
 *   reply   = u32 id, u32 status, u32 delay_ms, u16 reason_len, reason
 * Sizes are bounded on both sides; a frame whose length is out of bounds
 * means the stream is out of step, and the reader gives up on it.
 */
#define PS_SERVICE_MAX	64
#define PS_USER_MAX	256
#define PS_PASSWORD_MAX	1024
#define PS_REASON_MAX	256
#define PS_REQ_HDR	10u
#define PS_REQ_MAX	(PS_REQ_HDR + PS_SERVICE_MAX + PS_USER_MAX + \
			 PS_PASSWORD_MAX)
#define PS_REP_HDR	14u
#define PS_REP_MAX	(PS_REP_HDR + PS_REASON_MAX)
/* A denial waits for PAM's fail delay; this long when PAM asked for none
 * (pam_unix's own default), at most PS_DELAY_MAX_MS (below the hooks'
 * default 30 s timeout). */
#define PS_DELAY_DEFAULT_MS	2000u
#define PS_DELAY_MAX_MS		10000u

struct ps_pending {
	struct ps_pending *next;
	uint32_t id;
	sc_pam_fn done;
	void *arg;
	/* A denial held back for the fail delay (on ps.delayed): */
	struct sc_timer *timer;
	enum sc_pam_status status;
	char reason[PS_REASON_MAX + 1];
};

struct ps_write {
	uv_write_t req;
	size_t len;
	unsigned char buf[];	/* the frame; holds a password: zeroed */
};

/* Process-wide: there is one helper per daemon process. */
static struct {
	pid_t pid;		/* helper pid, 0 when none               */
	int fd;			/* daemon end; -1: none, or pipe owns it */
	uv_pipe_t *pipe;	/* attached lazily to sc_core->loop      */
	bool dead;		/* the helper went away: no more requests */
	uint32_t next_id;
	struct ps_pending *pending;	/* sent, not answered yet        */
	struct ps_pending *delayed;	/* answered, waiting out a delay */
	unsigned char rbuf[4 + PS_REP_MAX];
	size_t rlen;
} ps = { .fd = -1 };

/* ------------------------------------------------------------------ */
/* helper process                                                      */
/* ------------------------------------------------------------------ */

struct ps_conv {
	const char *user;
	const char *password;
	char info[PS_REASON_MAX];	/* last PAM_ERROR_MSG, for the log */
	bool delay_seen;		/* PAM reported its fail delay     */
	unsigned delay_usec;
};

/* ps_write_full - write exactly len bytes; 0 or -1 */
static int
ps_write_full(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ps_conv_fn - PAM conversation: the password for hidden prompts */
static int
ps_conv_fn(int n, const struct pam_message **msg, struct pam_response **resp,
	   void *appdata)
{
	struct ps_conv *cv = appdata;
	struct pam_response *r;

	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		const char *answer = NULL;

		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			answer = cv->password;
			break;
		case PAM_PROMPT_ECHO_ON:
			/* Some modules ask for the login name again. */
			answer = cv->user;
			break;
		case PAM_ERROR_MSG:
			if (msg[i]->msg != NULL)
				snprintf(cv->info, sizeof(cv->info), "%s",
					 msg[i]->msg);
			break;
		default:
			break;
		}
		if (answer != NULL &&
		    (r[i].resp = strdup(answer)) == NULL) {
			for (int j = 0; j < i; j++) {
				if (r[j].resp != NULL) {
					explicit_bzero(r[j].resp,
						       strlen(r[j].resp));
					free(r[j].resp);
				}
			}
			free(r);
			return PAM_BUF_ERR;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

/* ps_fail_delay - PAM_FAIL_DELAY hook: records the delay PAM computed
 * (with its jitter) instead of sleeping, since the helper serves every
 * session; the daemon waits it out on a timer. Linux-PAM calls it at the
 * end of pam_authenticate with the conversation's appdata_ptr. */
static void
ps_fail_delay(int status, unsigned usec, void *appdata)
{
	struct ps_conv *cv = appdata;

	(void)status;
	if (cv == NULL)
		return;
	cv->delay_seen = true;
	cv->delay_usec = usec;
}

/* ps_delay_ms - how long the daemon holds back a denial: PAM's delay, or
 * the default when PAM (or the helper, refusing on its own) named none */
static uint32_t
ps_delay_ms(const struct ps_conv *cv)
{
	unsigned ms;

	if (cv == NULL || !cv->delay_seen || cv->delay_usec == 0)
		return PS_DELAY_DEFAULT_MS;
	ms = cv->delay_usec / 1000;
	return ms < PS_DELAY_MAX_MS ? ms : PS_DELAY_MAX_MS;
}

/* ps_denied - PAM codes that mean "these credentials are not good" rather
 * than "PAM could not decide" */
static bool
ps_denied(int rc)
{
	switch (rc) {
	case PAM_AUTH_ERR:
	case PAM_USER_UNKNOWN:
	case PAM_CRED_INSUFFICIENT:
	case PAM_MAXTRIES:
	case PAM_ACCT_EXPIRED:
	case PAM_NEW_AUTHTOK_REQD:
	case PAM_PERM_DENIED:
	case PAM_CRED_EXPIRED:
	case PAM_AUTHTOK_EXPIRED:
		return true;
	default:
		return false;
	}
}

/* ps_service_ok - a PAM service name is a file name under /etc/pam.d */
static bool
ps_service_ok(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
	}
	return true;
}

/* ps_pam_check - runs one PAM transaction; fills reason, and *delay_ms_r
 * for a denial */
static enum sc_pam_status
ps_pam_check(const char *service, const char *user, const char *password,
	     char *reason, size_t reason_size, uint32_t *delay_ms_r)
{
	struct ps_conv cv = { .user = user, .password = password };
	struct pam_conv conv = { ps_conv_fn, &cv };
	pam_handle_t *pamh = NULL;
	enum sc_pam_status st;
	const char *stage = "pam_start";
	int rc;

	rc = pam_start(service, user, &conv, &pamh);
	if (rc != PAM_SUCCESS) {
		snprintf(reason, reason_size, "pam_start(%s): %s", service,
			 pam_strerror(pamh, rc));
		if (pamh != NULL)
			pam_end(pamh, rc);
		return SC_PAM_ERROR;
	}
	/* XXX a function pointer passed as void *: this is PAM's API. */
	(void)pam_set_item(pamh, PAM_FAIL_DELAY,
			   (const void *)(uintptr_t)ps_fail_delay);
	stage = "authenticate";
	rc = pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	if (rc == PAM_SUCCESS) {
		stage = "account";
		rc = pam_acct_mgmt(pamh, PAM_SILENT |
				   PAM_DISALLOW_NULL_AUTHTOK);
	}
	if (rc == PAM_SUCCESS) {
		st = SC_PAM_OK;
		snprintf(reason, reason_size, "ok");
	} else {
		st = ps_denied(rc) ? SC_PAM_DENIED : SC_PAM_ERROR;
		/* Also when the password was right but the account is not
		 * (pam_acct_mgmt): the time must not tell which. */
		if (st == SC_PAM_DENIED)
			*delay_ms_r = ps_delay_ms(&cv);
		/* Truncation is fine: it is a log line. */
		if (snprintf(reason, reason_size, "%s: %s%s%s", stage,
			     pam_strerror(pamh, rc), cv.info[0] ? " - " : "",
			     cv.info) < 0)
			reason[0] = '\0';
	}
	pam_end(pamh, rc);
	return st;
}

/* ps_handle - parses one request body and answers it on fd. A request
 * whose fields do not add up gets an error reply, not a crash. */
static int
ps_handle(int fd, unsigned char *body, uint32_t len)
{
	char service[PS_SERVICE_MAX + 1], user[PS_USER_MAX + 1];
	char password[PS_PASSWORD_MAX + 1], reason[PS_REASON_MAX];
	unsigned char rep[4 + PS_REP_MAX];
	uint32_t id, st32, blen, delay_ms = 0;
	uint16_t sl, ul, pl, rl;
	enum sc_pam_status st;
	int ret;

	memcpy(&id, body, 4);
	memcpy(&sl, body + 4, 2);
	memcpy(&ul, body + 6, 2);
	memcpy(&pl, body + 8, 2);
	if (sl > PS_SERVICE_MAX || ul > PS_USER_MAX || pl > PS_PASSWORD_MAX ||
	    PS_REQ_HDR + (uint32_t)sl + ul + pl != len) {
		st = SC_PAM_ERROR;
		snprintf(reason, sizeof(reason), "malformed request");
	} else {
		memcpy(service, body + PS_REQ_HDR, sl);
		service[sl] = '\0';
		memcpy(user, body + PS_REQ_HDR + sl, ul);
		user[ul] = '\0';
		memcpy(password, body + PS_REQ_HDR + sl + ul, pl);
		password[pl] = '\0';
		if (!ps_service_ok(service, sl)) {
			st = SC_PAM_ERROR;
			snprintf(reason, sizeof(reason),
				 "invalid PAM service name");
		} else if (ul == 0 || strlen(user) != ul ||
			   strlen(password) != pl) {
			st = SC_PAM_DENIED;
			snprintf(reason, sizeof(reason),
				 "empty user or NUL in credentials");
			delay_ms = ps_delay_ms(NULL);
		} else {
			st = ps_pam_check(service, user, password, reason,
					  sizeof(reason), &delay_ms);
		}
		explicit_bzero(password, sizeof(password));
	}
	explicit_bzero(body, len);

	rl = (uint16_t)strnlen(reason, sizeof(reason) - 1);
	blen = PS_REP_HDR + rl;
	st32 = (uint32_t)st;
	memcpy(rep, &blen, 4);
	memcpy(rep + 4, &id, 4);
	memcpy(rep + 8, &st32, 4);
	memcpy(rep + 12, &delay_ms, 4);
	memcpy(rep + 16, &rl, 2);
	memcpy(rep + 18, reason, rl);
	ret = ps_write_full(fd, rep, 4 + blen);
	return ret;
}

/* ps_helper_main - the helper's life: serve requests until the daemon
 * closes its end. Never returns. */
static void __attribute__((noreturn))
ps_helper_main(int fd, pid_t parent)
{
	unsigned char body[PS_REQ_MAX];

	fd = sc_helper_child_init(fd, parent, NULL);
	for (;;) {
		uint32_t len;
		int r = sc_helper_read_full(fd, &len, 4);

		if (r <= 0)
			_exit(0);
		if (len < PS_REQ_HDR || len > PS_REQ_MAX)
			_exit(2);	/* out of step: nothing to trust */
		if (sc_helper_read_full(fd, body, len) <= 0)
			_exit(0);
		if (ps_handle(fd, body, len) < 0)
			_exit(0);
	}
}

/* ------------------------------------------------------------------ */
/* daemon side                                                         */
/* ------------------------------------------------------------------ */

/* ps_fail_all - completes every pending request with an error */
static void
ps_fail_all(const char *why)
{
	while (ps.pending != NULL) {
		struct ps_pending *p = ps.pending;

		ps.pending = p->next;
		p->done(p->arg, SC_PAM_ERROR, why);
		free(p);
	}
}

/* ps_reap - collects the helper's exit status without blocking */
static void
ps_reap(void)
{
	int status;

	if (ps.pid <= 0)
		return;
	if (waitpid(ps.pid, &status, WNOHANG) == ps.pid) {
		if (WIFSIGNALED(status))
			sc_log_error("PAM helper (pid %ld) killed by signal "
				     "%d", (long)ps.pid, WTERMSIG(status));
		else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			sc_log_error("PAM helper (pid %ld) exited with "
				     "status %d", (long)ps.pid,
				     WEXITSTATUS(status));
		ps.pid = 0;
	}
}

static void
ps_pipe_closed(uv_handle_t *h)
{
	free(h);
}

/* ps_helper_gone - the socket failed or hit EOF: the helper is dead */
static void
ps_helper_gone(const char *why)
{
	if (ps.dead)
		return;
	ps.dead = true;
	sc_log_error("PAM helper gone (%s); PAM authentication is "
		     "unavailable until satcheld restarts", why);
	if (ps.pipe != NULL) {
		uv_close((uv_handle_t *)ps.pipe, ps_pipe_closed);
		ps.pipe = NULL;
	}
	ps_reap();
	ps_fail_all("PAM helper is not running");
}

/* ps_delay_unlink - takes p off ps.delayed */
static void
ps_delay_unlink(struct ps_pending *p)
{
	for (struct ps_pending **pp = &ps.delayed; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

/* ps_delay_fire - a held-back denial's delay is over: deliver it */
static void
ps_delay_fire(struct sc_timer *t, void *arg)
{
	struct ps_pending *p = arg;

	(void)t;
	ps_delay_unlink(p);
	sc_timer_free(&p->timer);
	p->done(p->arg, p->status, p->reason);
	free(p);
}

/* ps_flush_delayed - delivers every held-back denial now (stopping) */
static void
ps_flush_delayed(void)
{
	while (ps.delayed != NULL) {
		struct ps_pending *p = ps.delayed;

		ps.delayed = p->next;
		sc_timer_free(&p->timer);
		p->done(p->arg, p->status, p->reason);
		free(p);
	}
}

/* ps_dispatch - handles one reply frame body */
static void
ps_dispatch(const unsigned char *body, uint32_t len)
{
	struct ps_pending **pp, *p;
	uint32_t id, st, delay_ms;
	uint16_t rl;

	memcpy(&id, body, 4);
	memcpy(&st, body + 4, 4);
	memcpy(&delay_ms, body + 8, 4);
	memcpy(&rl, body + 12, 2);
	if (rl > PS_REASON_MAX || PS_REP_HDR + (uint32_t)rl != len ||
	    st > SC_PAM_ERROR || delay_ms > PS_DELAY_MAX_MS) {
		ps_helper_gone("malformed reply");
		return;
	}
	for (pp = &ps.pending; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->id == id)
			break;
	}
	if (*pp == NULL) {
		sc_log_warning("PAM helper answered unknown request %u",
			       (unsigned)id);
		return;
	}
	p = *pp;
	*pp = p->next;
	p->status = (enum sc_pam_status)st;
	memcpy(p->reason, body + PS_REP_HDR, rl);
	p->reason[rl] = '\0';
	/* A denial waits out PAM's fail delay on a timer: the loop and the
	 * helper go on serving others meanwhile. Success is not delayed. */
	if (p->status == SC_PAM_DENIED && delay_ms > 0 &&
	    (p->timer = sc_timer_new(ps_delay_fire, p)) != NULL) {
		p->next = ps.delayed;
		ps.delayed = p;
		sc_timer_start(p->timer, delay_ms, 0);
		sc_log_debug("PAM helper: request %u denied; answered after "
			     "PAM's fail delay of %u ms", (unsigned)id,
			     (unsigned)delay_ms);
		return;
	}
	p->done(p->arg, p->status, p->reason);
	free(p);
}

static void
ps_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = (char *)ps.rbuf + ps.rlen;
	buf->len = sizeof(ps.rbuf) - ps.rlen;
}

/* ps_on_read - reassembles reply frames from the stream */
static void
ps_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	(void)st;
	(void)buf;
	if (n < 0) {
		ps_helper_gone(n == UV_EOF ? "socket closed" :
			       uv_strerror((int)n));
		return;
	}
	ps.rlen += (size_t)n;
	while (!ps.dead && ps.pipe != NULL && ps.rlen >= 4) {
		unsigned char body[PS_REP_MAX];
		uint32_t len;

		memcpy(&len, ps.rbuf, 4);
		if (len < PS_REP_HDR || len > PS_REP_MAX) {
			ps_helper_gone("reply frame out of bounds");
			return;
		}
		if (ps.rlen < 4 + (size_t)len)
			break;
		/* Take the frame out of the buffer before dispatching: the
		 * done callback may start new requests, or stop us. */
		memcpy(body, ps.rbuf + 4, len);
		/* @UNSAFE: shift the rest of the buffer down */
		memmove(ps.rbuf, ps.rbuf + 4 + len, ps.rlen - 4 - len);
		ps.rlen -= 4 + (size_t)len;
		ps_dispatch(body, len);
	}
}

/* ps_attach - puts the socket on the loop (first request after start) */
static int
ps_attach(void)
{
	uv_loop_t *loop;
	int r;

	if (ps.pipe != NULL)
		return 0;
	if (ps.fd < 0 || ps.dead)
		return -1;
	loop = sc_core != NULL && sc_core->loop != NULL ? sc_core->loop :
		uv_default_loop();
	ps.pipe = calloc(1, sizeof(*ps.pipe));
	if (ps.pipe == NULL)
		return -1;
	if ((r = uv_pipe_init(loop, ps.pipe, 0)) != 0) {
		free(ps.pipe);
		ps.pipe = NULL;
		sc_log_error("PAM helper: uv_pipe_init: %s", uv_strerror(r));
		return -1;
	}
	if ((r = uv_pipe_open(ps.pipe, ps.fd)) == 0)
		ps.fd = -1;	/* the pipe owns it now */
	if (r != 0 || (r = uv_read_start((uv_stream_t *)ps.pipe, ps_alloc,
					 ps_on_read)) != 0) {
		sc_log_error("PAM helper: attaching the socket: %s",
			     uv_strerror(r));
		uv_close((uv_handle_t *)ps.pipe, ps_pipe_closed);
		ps.pipe = NULL;
		if (ps.fd >= 0)
			close(ps.fd);
		ps.fd = -1;
		ps.dead = true;
		return -1;
	}
	return 0;
}

static void
ps_write_done(uv_write_t *req, int status)
{
	struct ps_write *w = (struct ps_write *)req;

	explicit_bzero(w->buf, w->len);
	free(w);
	if (status < 0 && status != UV_ECANCELED)
		ps_helper_gone(uv_strerror(status));
}

int
sc_pam_authenticate(const char *service, const char *user,
		    const char *password, sc_pam_fn done, void *arg)
{
	size_t sl, ul, pl, blen;
	struct ps_pending *p;
	struct ps_write *w;
	uint16_t s16, u16, p16;
	uint32_t b32;
	uv_buf_t ub;
	int r;

	if (service == NULL || user == NULL || password == NULL ||
	    done == NULL)
		return -1;
	sl = strlen(service);
	ul = strlen(user);
	pl = strlen(password);
	/* Over-long credentials are the caller's to refuse; the helper
	 * would drop them anyway. */
	if (sl == 0 || sl > PS_SERVICE_MAX || ul > PS_USER_MAX ||
	    pl > PS_PASSWORD_MAX)
		return -1;
	if (ps_attach() < 0)
		return -1;

	p = calloc(1, sizeof(*p));
	blen = PS_REQ_HDR + sl + ul + pl;
	w = malloc(sizeof(*w) + 4 + blen);
	if (p == NULL || w == NULL) {
		free(p);
		free(w);
		return -1;
	}
	p->id = ++ps.next_id;
	p->done = done;
	p->arg = arg;

	w->len = 4 + blen;
	b32 = (uint32_t)blen;
	s16 = (uint16_t)sl;
	u16 = (uint16_t)ul;
	p16 = (uint16_t)pl;
	memcpy(w->buf, &b32, 4);
	memcpy(w->buf + 4, &p->id, 4);
	memcpy(w->buf + 8, &s16, 2);
	memcpy(w->buf + 10, &u16, 2);
	memcpy(w->buf + 12, &p16, 2);
	memcpy(w->buf + 14, service, sl);
	memcpy(w->buf + 14 + sl, user, ul);
	memcpy(w->buf + 14 + sl + ul, password, pl);
	ub = uv_buf_init((char *)w->buf, (unsigned)w->len);
	r = uv_write(&w->req, (uv_stream_t *)ps.pipe, &ub, 1, ps_write_done);
	if (r != 0) {
		explicit_bzero(w->buf, w->len);
		free(w);
		free(p);
		sc_log_error("PAM helper: write: %s", uv_strerror(r));
		return -1;
	}
	p->next = ps.pending;
	ps.pending = p;
	return 0;
}

int
sc_privsep_start(char **error_r)
{
	int sv[2];
	pid_t pid, parent;

	if (ps.pid > 0 || ps.pipe != NULL || ps.fd >= 0)
		return 0;	/* already running */
	if (geteuid() != 0) {
		/* Unprivileged: PAM can still check the user's own
		 * password, or work with non-unix modules; run the helper
		 * anyway so auth_pam has one code path. */
		sc_log_debug("PAM helper runs without root privileges");
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		if (error_r != NULL &&
		    asprintf(error_r, "PAM helper: socketpair: %s",
			     strerror(errno)) < 0)
			*error_r = NULL;
		return -1;
	}
	fflush(NULL);
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(sv[0]);
		close(sv[1]);
		if (error_r != NULL &&
		    asprintf(error_r, "PAM helper: fork: %s",
			     strerror(e)) < 0)
			*error_r = NULL;
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		ps_helper_main(sv[1], parent);
	}
	close(sv[1]);
	ps.pid = pid;
	ps.fd = sv[0];
	ps.dead = false;
	ps.rlen = 0;
	sc_log_debug("PAM helper started (pid %ld)", (long)pid);
	/* Attach now when the loop exists, so a helper crash is noticed
	 * even before the first login; otherwise at the first request. */
	if (sc_core != NULL && sc_core->loop != NULL)
		(void)ps_attach();
	return 0;
}

void
sc_privsep_stop(void)
{
	/* Closing our end makes the helper read EOF and exit. */
	if (ps.pipe != NULL) {
		uv_close((uv_handle_t *)ps.pipe, ps_pipe_closed);
		ps.pipe = NULL;
	}
	if (ps.fd >= 0) {
		close(ps.fd);
		ps.fd = -1;
	}
	ps_fail_all("satcheld is stopping");
	ps_flush_delayed();
	sc_helper_reap(&ps.pid);
	ps.dead = false;
	ps.rlen = 0;
}
