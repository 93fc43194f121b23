/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/queue.c - `satchelctl queue list|show|flush|delete`. list and
 * show read the queue files directly (they work with the daemon stopped,
 * and a file vanishing meanwhile is skipped); flush and delete ask the
 * daemon over the control socket. Run as root, it does all of it as the
 * daemon's user, who owns state_dir (asuser.c). Single-threaded
 * satchelctl code.
 */
#include "satchelctl.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct rc {
	char *addr;
	char state[16];
	unsigned attempts;
	uint64_t next_ms;
	char *reply;
};

struct view {
	char id[17];
	long long arrival;
	char *sender;
	uint64_t size;
	uint64_t data_off;
	size_t n;
	struct rc r[256];
	size_t extra;		/* recipients beyond the array */
	char *quarantine;	/* a Q record: the reason      */
	char *lines;		/* envelope lines for `show` */
	size_t lines_len;
	FILE *lf;
};

static void
age_text(long long secs, char *buf, size_t len)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(buf, len, "%llds", secs);
	else if (secs < 7200)
		snprintf(buf, len, "%lldm", secs / 60);
	else if (secs < 172800)
		snprintf(buf, len, "%lldh", secs / 3600);
	else
		snprintf(buf, len, "%lldd", secs / 86400);
}

/* date_text - unix seconds as a local date with its offset */
static void
date_text(long long secs, char *buf, size_t len)
{
	time_t t = (time_t)secs;
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
		snprintf(buf, len, "%lld", secs);
}

static int
view_field(void *arg, const char *key, const char *value)
{
	struct view *v = arg;
	unsigned long long a, b, c;
	size_t i;
	int off = 0;

	if (v->lf != NULL && strcmp(key, "arrival") == 0) {
		char when[64], age[32];

		/* the file keeps unix seconds; people read dates */
		date_text(strtoll(value, NULL, 10), when, sizeof(when));
		age_text((long long)time(NULL) - strtoll(value, NULL, 10),
			 age, sizeof(age));
		fprintf(v->lf, "  %-8s %s (%s ago)\n", key, when, age);
	} else if (v->lf != NULL && strcmp(key, "data") != 0 &&
		   strcmp(key, "size") != 0 && strlen(key) > 1) {
		fprintf(v->lf, "  %-8s %s\n", key, value);
	}
	if (strcmp(key, "id") == 0) {
		snprintf(v->id, sizeof(v->id), "%s", value);
	} else if (strcmp(key, "arrival") == 0) {
		v->arrival = strtoll(value, NULL, 10);
	} else if (strcmp(key, "sender") == 0) {
		free(v->sender);
		v->sender = strdup(value);
	} else if (strcmp(key, "size") == 0) {
		v->size = strtoull(value, NULL, 10);
	} else if (strcmp(key, "data") == 0) {
		v->data_off = strtoull(value, NULL, 10);
	} else if (strcmp(key, "rcpt") == 0 || strcmp(key, "X") == 0) {
		const char *addr = value;

		if (key[0] == 'X') {
			if (sscanf(value, "%zu %n", &i, &off) < 1 || off == 0)
				return 0;
			addr = value + off;
			if (i < v->n)
				snprintf(v->r[i].state, sizeof(v->r[i].state),
					 "expanded");
		}
		if (v->n >= sizeof(v->r) / sizeof(v->r[0])) {
			v->extra++;
			return 0;
		}
		v->r[v->n].addr = strndup(addr, strcspn(addr, " "));
		snprintf(v->r[v->n].state, sizeof(v->r[v->n].state),
			 "pending");
		v->n++;
	} else if (strcmp(key, "D") == 0 || strcmp(key, "F") == 0) {
		if (sscanf(value, "%zu %llu %n", &i, &a, &off) < 2 ||
		    i >= v->n)
			return 0;
		snprintf(v->r[i].state, sizeof(v->r[i].state), "%s",
			 key[0] == 'D' ? "delivered" : "failed");
		free(v->r[i].reply);
		v->r[i].reply = off > 0 ? strdup(value + off) : NULL;
	} else if (strcmp(key, "Q") == 0) {
		free(v->quarantine);
		v->quarantine = strdup(value);
	} else if (strcmp(key, "T") == 0) {
		if (sscanf(value, "%zu %llu %llu %llu %n", &i, &a, &b, &c,
			   &off) < 4 || i >= v->n)
			return 0;
		snprintf(v->r[i].state, sizeof(v->r[i].state), "deferred");
		v->r[i].next_ms = b;
		v->r[i].attempts = (unsigned)c;
		free(v->r[i].reply);
		v->r[i].reply = off > 0 ? strdup(value + off) : NULL;
	}
	return 0;
}

static void
view_free(struct view *v)
{
	for (size_t i = 0; i < v->n; i++) {
		free(v->r[i].addr);
		free(v->r[i].reply);
	}
	free(v->sender);
	free(v->lines);
	free(v->quarantine);
}

static uint64_t
now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static void
print_rcpts(const struct view *v)
{
	uint64_t now = now_ms();
	char when[32], at[64];

	for (size_t i = 0; i < v->n; i++) {
		const struct rc *r = &v->r[i];

		printf("    %-9s <%s>", r->state, r->addr ? r->addr : "");
		if (strcmp(r->state, "deferred") == 0) {
			age_text(r->next_ms > now ?
				 (long long)((r->next_ms - now) / 1000) : 0,
				 when, sizeof(when));
			date_text((long long)(r->next_ms / 1000), at,
				  sizeof(at));
			printf(" attempts %u, next try in %s (%s)",
			       r->attempts, when, at);
		}
		if (r->reply != NULL && *r->reply)
			printf("\n              last reply: %s", r->reply);
		printf("\n");
	}
	if (v->extra > 0)
		printf("    ... and %zu more\n", v->extra);
}

static char *
queue_active_dir(const struct sc_main_config *cfg)
{
	char *p;

	if (asprintf(&p, "%s/queue/active", cfg->state_dir) < 0)
		return NULL;
	return p;
}

static bool
valid_id(const char *id)
{
	return strlen(id) == 16 && strspn(id, "0123456789abcdef") == 16;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* queue_list - one block per message, oldest first */
static int
queue_list(const struct sc_main_config *cfg)
{
	char *dir = queue_active_dir(cfg), **names = NULL;
	size_t n = 0, cap = 0, shown = 0;
	struct dirent *de;
	DIR *d;

	if (dir == NULL)
		return 1;
	d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT) {
			printf("the queue is empty\n");
			free(dir);
			return 0;
		}
		fprintf(stderr, "satchelctl: %s: %s\n", dir, strerror(errno));
		free(dir);
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		if (!valid_id(de->d_name))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 16) *
					    sizeof(char *));

			if (nn == NULL)
				break;
			names = nn;
		}
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < n; i++) {
		struct view v;
		char *path, age[32];

		memset(&v, 0, sizeof(v));
		if (names[i] == NULL ||
		    asprintf(&path, "%s/%s", dir, names[i]) < 0)
			continue;
		/* a message may be delivered and removed meanwhile */
		if (sc_queue_file_parse(path, view_field, &v) == 1) {
			if (shown++ == 0)
				printf("%-16s %6s %10s  %s\n", "ID", "AGE",
				       "SIZE", "SENDER");
			age_text((long long)time(NULL) - v.arrival, age,
				 sizeof(age));
			printf("%-16s %6s %10" PRIu64 "  <%s>\n", names[i],
			       age, v.size, v.sender ? v.sender : "");
			if (v.quarantine != NULL)
				printf("    quarantined: %s\n", v.quarantine);
			print_rcpts(&v);
		}
		view_free(&v);
		free(path);
	}
	if (shown == 0)
		printf("the queue is empty\n");
	else
		printf("%zu message(s)\n", shown);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(dir);
	return 0;
}

/* queue_show - envelope, recipient states and the message headers */
static int
queue_show(const struct sc_main_config *cfg, const char *id)
{
	char *dir = queue_active_dir(cfg), *path = NULL, *line = NULL;
	struct view v;
	size_t cap = 0, lines = 0;
	ssize_t len;
	int ret = 1;
	FILE *f;

	memset(&v, 0, sizeof(v));
	if (!valid_id(id)) {
		fprintf(stderr, "satchelctl: %s is not a queue id\n", id);
		free(dir);
		return 1;
	}
	if (dir == NULL || asprintf(&path, "%s/%s", dir, id) < 0) {
		free(dir);
		return 1;
	}
	v.lf = open_memstream(&v.lines, &v.lines_len);
	if (v.lf == NULL ||
	    sc_queue_file_parse(path, view_field, &v) != 1) {
		if (v.lf != NULL)
			fclose(v.lf);
		v.lf = NULL;
		fprintf(stderr, "satchelctl: no message %s in the queue\n",
			id);
		goto out;
	}
	fclose(v.lf);
	v.lf = NULL;
	printf("message %s, %" PRIu64 " bytes\nenvelope:\n%s", id, v.size,
	       v.lines);
	if (v.quarantine != NULL)
		printf("quarantined: %s\n", v.quarantine);
	printf("recipients:\n");
	print_rcpts(&v);
	printf("headers:\n");
	f = fopen(path, "re");
	if (f != NULL && fseeko(f, (off_t)v.data_off, SEEK_SET) == 0) {
		uint64_t seen = 0;

		while (seen < v.size && lines < 500 &&
		       (len = getline(&line, &cap, f)) > 0) {
			seen += (uint64_t)len;
			if (line[0] == '\r' || line[0] == '\n')
				break;
			printf("  %s", line);
			if (line[len - 1] != '\n')
				printf("\n");
			lines++;
		}
	}
	if (f != NULL)
		fclose(f);
	ret = 0;
out:
	free(line);
	view_free(&v);
	free(path);
	free(dir);
	return ret;
}

static int
queue_request(const struct sc_main_config *cfg, const char *req)
{
	char *reply = NULL;
	int r = sc_ctl_request(cfg, req, &reply);

	if (r >= 0 && reply != NULL && *reply)
		fprintf(r == 0 ? stdout : stderr, "%s%s", reply,
			reply[strlen(reply) - 1] == '\n' ? "" : "\n");
	free(reply);
	return r;
}

static int
queue_command(const struct sc_main_config *cfg, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "list";

	if (strcmp(sub, "list") == 0 && argc <= 2)
		return queue_list(cfg);
	if (strcmp(sub, "show") == 0 && argc == 3)
		return queue_show(cfg, argv[2]);
	if (strcmp(sub, "flush") == 0 && argc == 2) {
		int r = queue_request(cfg, "queue-flush");

		if (r < 0)
			fprintf(stderr, "satchelctl: the daemon is not "
				"running; deferred mail is retried when it "
				"starts\n");
		return r == 0 ? 0 : 1;
	}
	if (strcmp(sub, "delete") == 0 && argc == 3) {
		char *req, *dir, *path;
		int r;

		if (!valid_id(argv[2])) {
			fprintf(stderr, "satchelctl: %s is not a queue id\n",
				argv[2]);
			return 1;
		}
		if (asprintf(&req, "queue-delete %s", argv[2]) < 0)
			return 1;
		r = queue_request(cfg, req);
		free(req);
		if (r >= 0)
			return r == 0 ? 0 : 1;
		/* no daemon: remove the file ourselves */
		dir = queue_active_dir(cfg);
		if (dir == NULL || asprintf(&path, "%s/%s", dir,
					    argv[2]) < 0) {
			free(dir);
			return 1;
		}
		free(dir);
		if (unlink(path) < 0) {
			fprintf(stderr, "satchelctl: no message %s in the "
				"queue\n", argv[2]);
			free(path);
			return 1;
		}
		free(path);
		printf("deleted %s\n", argv[2]);
		return 0;
	}
	fprintf(stderr, "usage: satchelctl queue list | queue show ID | "
		"queue flush | queue delete ID\n");
	return 2;
}

/* sc_ctl_queue_main - see satchelctl.h. The queue lies in state_dir: every
 * subcommand runs as the daemon's user. */
int
sc_ctl_queue_main(const struct sc_main_config *cfg, int argc, char **argv)
{
	struct sc_ctl_as as;
	char *err = NULL;
	int ret;

	if (sc_ctl_as_user(cfg, &as, &err) < 0) {
		fprintf(stderr, "satchelctl: %s\n", err ? err : "out of memory");
		free(err);
		return 1;
	}
	ret = queue_command(cfg, argc, argv);
	sc_ctl_as_root(&as);
	return ret;
}
