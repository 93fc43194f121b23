/* SPDX-License-Identifier: MIT */
/*
 * core/ctl.c - the control socket satchelctl talks to (state_dir/ctl.sock).
 *
 * Protocol: the client sends one request line; the daemon answers with
 * text lines, the last one "OK" or "ERR message", and closes. Runs on the
 * loop thread; every command is quick (no blocking work).
 */
#include "core.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#define CTL_REQUEST_MAX 1024

struct ctl_client {
	uv_pipe_t pipe;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	struct ctl_client *prev, *next;
	char req[CTL_REQUEST_MAX];
	size_t len;
	char *reply;
	bool answered;
};

/* A growing text buffer for replies. */
struct text {
	char *s;
	size_t len, alloc;
	bool failed;
};

static void
text_add(struct text *t, const char *fmt, ...) SC_PRINTF(2, 3);

static void
text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->failed)
		return;
	for (;;) {
		size_t room = t->alloc - t->len;
		va_start(ap, fmt);
		n = vsnprintf(t->s ? t->s + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		size_t want = t->alloc * 2 + (size_t)n + 64;
		char *p = realloc(t->s, want);
		if (p == NULL) {
			t->failed = true;
			return;
		}
		t->s = p;
		t->alloc = want;
	}
}

/* text_add_lines - add text, each line indented, ending in a newline */
static void
text_add_lines(struct text *t, const char *indent, const char *s, size_t len)
{
	const char *end = s + len;

	while (s < end && *s != '\0') {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t l = nl ? (size_t)(nl - s) :
			strnlen(s, (size_t)(end - s));
		if (l > 0)
			text_add(t, "%s%.*s\n", indent, (int)l, s);
		s += l + (nl ? 1 : 0);
		if (nl == NULL)
			break;
	}
}

static void
ctl_status(struct text *t)
{
	struct sc_ctl_server *ctl = &sc_core->ctl;
	struct sc_gen *gen = sc_core->gen;
	size_t messages = 0, deferred = 0;
	long up = (long)(time(NULL) - ctl->started);

	sc_queue_counts(&messages, &deferred);
	text_add(t, "pid: %ld\n", (long)getpid());
	text_add(t, "version: %s\n", SC_VERSION);
	text_add(t, "uptime: %ldd %02ld:%02ld:%02ld (%lds)\n", up / 86400,
		 up / 3600 % 24, up / 60 % 60, up % 60, up);
	text_add(t, "config generation: %u\n", gen ? gen->serial : 0);
	text_add(t, "sessions: %zu\n", sc_session_count());
	text_add(t, "queue: %zu messages, %zu deferred recipients\n",
		 messages, deferred);
	for (size_t i = 0; gen != NULL && i < gen->status_count; i++) {
		const struct sc_status_entry *e = &gen->status[i];
		char buf[8192];
		size_t n = e->fn(buf, sizeof(buf), e->data);

		if (n >= sizeof(buf))
			n = sizeof(buf) - 1;
		buf[n] = '\0';
		text_add(t, "%s:\n", sc_instance_name(e->inst));
		text_add_lines(t, "  ", buf, n);
	}
}

/* ctl_modules - each instance with the hooks, events and drivers it
 * registered, one line each: "NAME (MODULE VERSION): hooks a b; ..." */
static void
ctl_modules(struct text *t)
{
	struct sc_gen *gen = sc_core->gen;

	for (size_t i = 0; gen != NULL && i < gen->inst_count; i++) {
		const struct sc_instance *inst = &gen->insts[i];
		const struct sc_module *mod = inst->mh->mod;
		bool any = false;

		text_add(t, "%s (%s %s): hooks", sc_instance_name(inst),
			 mod->name, mod->version ? mod->version : "-");
		for (size_t h = 0; h < SC_HOOK_COUNT; h++) {
			for (size_t j = 0; j < gen->hook_count[h]; j++) {
				if (gen->hooks[h][j].inst != inst)
					continue;
				text_add(t, " %s",
					 sc_hook_name((enum sc_hook)h));
				any = true;
				break;
			}
		}
		text_add(t, "%s; events", any ? "" : " -");
		any = false;
		for (size_t e = 0; e < SC_EVENT_COUNT; e++) {
			for (size_t j = 0; j < gen->event_count[e]; j++) {
				if (gen->events[e][j].inst != inst)
					continue;
				text_add(t, " %s",
					 sc_event_name((enum sc_event_type)e));
				any = true;
				break;
			}
		}
		text_add(t, "%s; drivers", any ? "" : " -");
		any = false;
		for (size_t j = 0; j < gen->driver_count; j++) {
			if (gen->drivers[j].inst != inst)
				continue;
			text_add(t, " %s", gen->drivers[j].drv->kind);
			any = true;
		}
		text_add(t, "%s\n", any ? "" : " -");
	}
}

/* ctl_execute - run one request line; the reply ends with OK or ERR */
static void
ctl_execute(char *line, struct text *t)
{
	char *arg, *err = NULL;
	int r;

	arg = strchr(line, ' ');
	if (arg != NULL) {
		*arg++ = '\0';
		while (*arg == ' ')
			arg++;
	}
	sc_log_debug("ctl: %s%s%s", line, arg ? " " : "", arg ? arg : "");
	if (strcmp(line, "reload") == 0) {
		if (sc_core->stopping) {
			text_add(t, "ERR the daemon is stopping\n");
		} else if ((r = sc_core_reload(&err)) < 0) {
			text_add(t, "ERR reload failed: %s\n",
				 err ? err : "unknown error");
			free(err);
		} else if (r > 0) {
			/* the status line says it failed: scripts (and
			 * satchelctl's exit status) must not miss it */
			text_add(t, "configuration reloaded (generation %u), "
				 "but not all of it took\n"
				 "ERR reload incomplete: %s\n",
				 sc_core->gen->serial,
				 err ? err : "unknown error");
			free(err);
		} else {
			text_add(t, "configuration reloaded (generation %u)\n"
				 "OK\n", sc_core->gen->serial);
		}
	} else if (strcmp(line, "status") == 0) {
		ctl_status(t);
		text_add(t, "OK\n");
	} else if (strcmp(line, "modules") == 0) {
		ctl_modules(t);
		text_add(t, "OK\n");
	} else if (strcmp(line, "queue-list") == 0) {
		char *q = sc_queue_list_text();
		if (q != NULL)
			text_add_lines(t, "", q, strlen(q));
		free(q);
		text_add(t, "OK\n");
	} else if (strcmp(line, "queue-flush") == 0) {
		sc_queue_runner_flush();
		text_add(t, "retrying every deferred recipient now\nOK\n");
	} else if (strcmp(line, "queue-delete") == 0) {
		if (arg == NULL || *arg == '\0')
			text_add(t, "ERR usage: queue-delete ID\n");
		else if (sc_queue_delete(arg, &err) < 0) {
			text_add(t, "ERR %s\n", err ? err : "cannot delete");
			free(err);
		} else
			text_add(t, "deleted %s\nOK\n", arg);
	} else if (strcmp(line, "ping") == 0) {
		text_add(t, "pong\nOK\n");
	} else {
		text_add(t, "ERR unknown command \"%s\"; try reload, status, "
			 "modules, queue-list, queue-flush, queue-delete ID\n",
			 line);
	}
}

static void
client_closed(uv_handle_t *h)
{
	struct sc_ctl_server *ctl = &sc_core->ctl;
	struct ctl_client *c = h->data;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		ctl->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c->reply);
	free(c);
}

static void
client_close(struct ctl_client *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->pipe))
		uv_close((uv_handle_t *)&c->pipe, client_closed);
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void
client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct ctl_client *c = h->data;

	(void)suggested;
	if (c->answered) {
		/* draining: whatever comes now is discarded */
		c->len = 0;
	}
	buf->base = c->req + c->len;
	buf->len = sizeof(c->req) - c->len - 1;
}

/* client_shut - our FIN is out; read (and drop) until the client closes,
 * so unread request bytes never turn our close into a reset */
static void
client_shut(uv_shutdown_t *req, int status)
{
	struct ctl_client *c = req->data;

	if (status < 0 || uv_read_start((uv_stream_t *)&c->pipe,
					client_alloc, client_read) != 0)
		client_close(c);
}

static void
client_written(uv_write_t *req, int status)
{
	struct ctl_client *c = req->data;

	c->sreq.data = c;
	if (status < 0 || uv_shutdown(&c->sreq, (uv_stream_t *)&c->pipe,
				      client_shut) != 0)
		client_close(c);
}

/* client_answer - run the request and send the reply */
static void
client_answer(struct ctl_client *c, bool too_long)
{
	struct text t = { 0 };
	uv_buf_t buf;

	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	if (too_long)
		text_add(&t, "ERR request too long\n");
	else
		ctl_execute(c->req, &t);
	if (t.failed || t.s == NULL) {
		free(t.s);
		client_close(c);
		return;
	}
	c->reply = t.s;
	buf = uv_buf_init(c->reply, (unsigned)t.len);
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &buf, 1,
		     client_written) != 0)
		client_close(c);
}

static void
client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ctl_client *c = s->data;
	char *nl;

	(void)buf;
	if (n < 0) {
		client_close(c);
		return;
	}
	if (c->answered)
		return;
	c->len += (size_t)n;
	c->req[c->len] = '\0';
	nl = memchr(c->req, '\n', c->len);
	if (nl != NULL) {
		*nl = '\0';
		if (nl > c->req && nl[-1] == '\r')
			nl[-1] = '\0';
		client_answer(c, false);
	} else if (c->len >= sizeof(c->req) - 1) {
		client_answer(c, true);
	}
}

static void
ctl_connection(uv_stream_t *server, int status)
{
	struct sc_ctl_server *ctl = &sc_core->ctl;
	struct ctl_client *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	uv_pipe_init(sc_core->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = ctl->clients;
	if (ctl->clients != NULL)
		ctl->clients->prev = c;
	ctl->clients = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 ||
	    uv_read_start((uv_stream_t *)&c->pipe, client_alloc,
			  client_read) != 0)
		client_close(c);
}

int
sc_ctl_start(const char *state_dir, char **error_r)
{
	struct sc_ctl_server *ctl = &sc_core->ctl;
	int ret;

	*error_r = NULL;
	if (ctl->open)
		return 0;
	if (asprintf(&ctl->path, "%s/ctl.sock", state_dir) < 0) {
		ctl->path = NULL;
		*error_r = strdup("out of memory");
		return -1;
	}
	/* A socket left by a crashed daemon would make bind fail. */
	if (unlink(ctl->path) < 0 && errno != ENOENT)
		sc_log_warning("unlink %s: %s", ctl->path, strerror(errno));
	uv_pipe_init(sc_core->loop, &ctl->server, 0);
	ret = uv_pipe_bind(&ctl->server, ctl->path);
	if (ret == 0) {
		if (chmod(ctl->path, 0600) < 0)
			sc_log_warning("chmod %s: %s", ctl->path,
				       strerror(errno));
		ret = uv_listen((uv_stream_t *)&ctl->server, 16,
				ctl_connection);
	}
	if (ret != 0) {
		if (asprintf(error_r, "control socket %s: %s", ctl->path,
			     uv_strerror(ret)) < 0)
			*error_r = NULL;
		uv_close((uv_handle_t *)&ctl->server, NULL);
		free(ctl->path);
		ctl->path = NULL;
		return -1;
	}
	ctl->open = true;
	ctl->started = time(NULL);
	return 0;
}

void
sc_ctl_stop(void)
{
	struct sc_ctl_server *ctl = &sc_core->ctl;

	if (!ctl->open)
		return;
	ctl->open = false;
	/* The close callbacks unlink and free them on a later loop turn. */
	for (struct ctl_client *c = ctl->clients; c != NULL; c = c->next)
		client_close(c);
	uv_close((uv_handle_t *)&ctl->server, NULL);
	unlink(ctl->path);
	free(ctl->path);
	ctl->path = NULL;
}
