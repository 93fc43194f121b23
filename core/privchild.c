/* SPDX-License-Identifier: MIT */
/*
 * core/privchild.c - what satcheld's two privileged helpers share (the
 * PAM helper, privsep.c; the reload helper, privops.c): the child's set-up
 * right after the fork, exact reads on its socket, and the bounded wait
 * for it at the daemon's stop. The child parts run in the helper process,
 * the reap on the daemon's loop thread.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

int
sc_helper_child_init(int sock, pid_t parent, const char *name)
{
	/* Default handling for the signals the daemon catches, nothing
	 * blocked: the daemon's libuv handlers are meaningless here (fault
	 * signals are left alone for the sanitizers). SIGPIPE ignored: a
	 * write to a vanished daemon is an error return, then we exit. */
	static const int reset[] = { SIGTERM, SIGQUIT, SIGCHLD, SIGUSR1,
				     SIGUSR2, SIGALRM };
	struct sigaction sa;
	sigset_t none;
	int devnull;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (size_t i = 0; i < sizeof(reset) / sizeof(*reset); i++)
		(void)sigaction(reset[i], &sa, NULL);
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, NULL);
	/* SIGINT from a terminal hits the whole process group; the
	 * helper leaves when the daemon closes the socket instead. */
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(0);	/* the daemon died before the prctl */
	if (name != NULL)
		(void)prctl(PR_SET_NAME, name);

	/* Keep only the socket and stderr (for PAM modules that complain
	 * there in the foreground); stdin/stdout go to /dev/null. */
	if (sock != 3) {
		if (dup2(sock, 3) < 0)
			_exit(1);
		sock = 3;
	}
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		(void)dup2(devnull, 0);
		(void)dup2(devnull, 1);
	}
	/* the listeners, the queue, the other helper's socket: not ours */
	(void)close_range(4, ~0U, 0);
	(void)fcntl(sock, F_SETFD, FD_CLOEXEC);
	return sock;
}

int
sc_helper_read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

void
sc_helper_reap(pid_t *pid)
{
	/* Bounded wait: the helper may be inside one PAM call. */
	for (int i = 0; i < 50 && *pid > 0; i++) {
		int status;
		pid_t r = waitpid(*pid, &status, WNOHANG);

		if (r == *pid || (r < 0 && errno == ECHILD))
			*pid = 0;
		else
			usleep(10000);
	}
	*pid = 0;
}
