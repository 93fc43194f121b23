/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/request.c - satchelctl's side of the control socket
 * (state_dir/ctl.sock; core/ctl.c is the daemon's): one request line, the
 * reply read within a deadline and split from its OK/ERR status line.
 * satchelctl process, blocking I/O.
 */
#include "satchelctl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#define CTL_TIMEOUT_MS 30000

/* read_reply - read until EOF or the deadline into a malloc'd string */
static char *
read_reply(int fd, char **error_r)
{
	size_t len = 0, alloc = 4096;
	char *buf = malloc(alloc);
	struct timespec start, now;

	if (buf == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long waited;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		waited = (now.tv_sec - start.tv_sec) * 1000 +
			(now.tv_nsec - start.tv_nsec) / 1000000;
		if (waited >= CTL_TIMEOUT_MS ||
		    poll(&pfd, 1, (int)(CTL_TIMEOUT_MS - waited)) == 0) {
			*error_r = strdup("timed out waiting for the daemon");
			free(buf);
			return NULL;
		}
		if (len + 1 >= alloc) {
			char *p = realloc(buf, alloc * 2);
			if (p == NULL) {
				*error_r = strdup("out of memory");
				free(buf);
				return NULL;
			}
			buf = p;
			alloc *= 2;
		}
		n = read(fd, buf + len, alloc - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (asprintf(error_r, "read: %s", strerror(errno)) < 0)
				*error_r = NULL;
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

/* sc_ctl_request - one request line to the daemon; see satchelctl.h */
int
sc_ctl_request(const struct sc_main_config *cfg, const char *line,
	       char **reply_r)
{
	struct sockaddr_un sun;
	char *reply, *err = NULL, *last;
	size_t len;
	int fd;

	*reply_r = NULL;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/ctl.sock",
		     cfg->state_dir) >= (int)sizeof(sun.sun_path)) {
		*reply_r = strdup("the control socket path is too long");
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		if (asprintf(reply_r, "socket: %s", strerror(errno)) < 0)
			*reply_r = NULL;
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (asprintf(reply_r, "cannot reach satcheld at %s: %s "
			     "(is it running with this config?)",
			     sun.sun_path, strerror(errno)) < 0)
			*reply_r = NULL;
		close(fd);
		return -1;
	}
	len = strlen(line);
	if (write(fd, line, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		if (asprintf(reply_r, "write to %s: %s", sun.sun_path,
			     strerror(errno)) < 0)
			*reply_r = NULL;
		close(fd);
		return -1;
	}
	shutdown(fd, SHUT_WR);
	reply = read_reply(fd, &err);
	close(fd);
	if (reply == NULL) {
		*reply_r = err;
		return -1;
	}
	/* Split off the status line: the last non-empty line. */
	len = strlen(reply);
	while (len > 0 && reply[len - 1] == '\n')
		reply[--len] = '\0';
	last = strrchr(reply, '\n');
	last = last != NULL ? last + 1 : reply;
	if (strcmp(last, "OK") == 0) {
		*last = '\0';
		*reply_r = reply;
		return 0;
	}
	if (strncmp(last, "ERR", 3) == 0) {
		const char *msg = last[3] == ' ' ? last + 4 : last + 3;
		memmove(last, msg, strlen(msg) + 1);
		*reply_r = reply;
		return 1;
	}
	free(reply);
	*reply_r = strdup("malformed reply from satcheld");
	return -1;
}
