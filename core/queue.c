/* SPDX-License-Identifier: MIT */
/*
 * core/queue.c - the durable queue: transactions and the group commit.
 * Transactions run on the loop thread (writes go to the page cache);
 * every fsync happens on the libuv thread pool. The file format's
 * reading and appending is in queue_file.c, the files made ahead for
 * transactions in queue_spare.c, the journal in queue_journal.c, the
 * start-up scan in queue_scan.c.
 *
 * File format (state_dir/queue/active/ID), text lines "key value":
 *   satchel-queue 1 / id / arrival (unix s) / sender / params / auth /
 *   client / helo / rcpt ADDR PARAMS... / size N (20 digits) / data
 *   <size bytes of message> END received=N
 *   then appended records: D idx ms reply | T idx ms next_ms attempts reply
 *   | F idx ms reply | X parent address | N idx | B
 *   | S idx delivered|relayed (a success DSN is owed: NOTIFY=SUCCESS)
 *   | Q reason (written at commit: quarantined, see satchel/message.h)
 *
 * A message edited through the message API is written anew at commit
 * (rewrite_file, on the pool): the same id, a new envelope and header
 * block, the body copied from the received file or the replacement.
 *
 * Durability: a message up to SC_JOURNAL_MAX_FILE is made durable by the
 * queue journal (queue_journal.c: its file's bytes appended to a
 * preallocated segment, one fdatasync per batch; the file itself is
 * synced at the journal's checkpoint, or never when it is removed
 * first) - an edited one too, its new file written unsynced in the
 * journal's job; a bigger one by its own fdatasync, rename and the
 * directory fsync. Every removal of a file from active/ goes through
 * sc_queue_remove, which tells the journal.
 */
#include "core.h"
#include "queue_journal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define TX_WBUF 8192

struct sc_queue_tx {
	struct sc_queue_tx *next;
	struct sc_session *session;
	sc_queue_commit_fn done;
	void *arg;
	char id[17];
	int fd;
	uint64_t size;
	off_t size_field;
	bool failed;
	int err;			/* errno of the failure         */
	bool committed;
	/* Received: counting over the header section */
	bool in_headers, line_start, pfx_dead;
	size_t pfx_len;
	size_t received;
	char *sender;			/* for the QUEUED event         */
	struct sc_message *msg;		/* its message (message.c)      */
	uint64_t data_off;		/* where the data starts        */
	time_t arrival;
	struct sc_message_plan plan;	/* an edited message's rewrite  */
	struct batch *batch;		/* the group commit it is in    */
	bool stored;			/* durable data, in active/     */
	bool journaled;			/* made durable by the journal  */
	bool rebuilt;			/* an edit written to rfd       */
	int rfd;			/* tmp/ID.new (queue_rewrite.c) */
	size_t flen;			/* its file's length at commit  */
	uv_work_t sync;			/* its own sync, on the pool    */
	size_t wlen;
	char wbuf[TX_WBUF];
};

struct batch {
	struct sc_queue_tx *txs;
	int dir_err;
	unsigned pending;		/* file syncs still running     */
	uv_work_t work;			/* the directory sync           */
	uv_work_t jwork;		/* the journal commit           */
};

/* Process-wide queue state (loop thread; the counter is atomic). */
static struct {
	char *dir, *tmp, *active;
	int active_fd;
	struct sc_queue_tx *waiting, **waiting_tail;
	bool syncing;
	unsigned batches;
	uint64_t counter;
} q = { .active_fd = -1 };

static uint64_t
wall_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* make_id - 16 hex digits: microseconds since the epoch (sortable) and a
 * 12-bit counter; thread-safe (bounces are written on the pool). */
static void
make_id(char *id)
{
	uint64_t n = __atomic_fetch_add(&q.counter, 1, __ATOMIC_RELAXED);

	snprintf(id, 17, "%016" PRIx64,
		 (uint64_t)((wall_us() << 12 | (n & 0xfff)) &
			    UINT64_C(0x7fffffffffffffff)));
}

static char *
path2(const char *a, const char *b)
{
	char *p;

	if (asprintf(&p, "%s/%s", a, b) < 0)
		return NULL;
	return p;
}

const char *
sc_queue_active_dir(void)
{
	return q.active;
}

const char *
sc_queue_tmp_dir(void)
{
	return q.tmp;
}

unsigned
sc_queue_batch_count(void)
{
	return q.batches;
}

/* sc_queue_set_dirs - the paths only (satchelctl reads the queue without
 * initialising it). */
void
sc_queue_set_dirs(const char *queue_dir)
{
	free(q.dir);
	free(q.tmp);
	free(q.active);
	q.dir = strdup(queue_dir);
	q.tmp = path2(queue_dir, "tmp");
	q.active = path2(queue_dir, "active");
}

/* sc_queue_open_tmp - a new file in tmp/ with a fresh id; any thread */
int
sc_queue_open_tmp(char *id)
{
	for (int tries = 0; tries < 100; tries++) {
		char *p;
		int fd;

		make_id(id);
		p = path2(q.tmp, id);
		if (p == NULL)
			return -1;
		/* readable: the journal copies it (queue_journal.c) */
		fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
			  O_NOFOLLOW, 0600);
		free(p);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	errno = EEXIST;
	return -1;
}

struct sc_queue_tx *
sc_queue_tx_begin(struct sc_session *s, const struct sc_envelope *env,
		  const char **error_r)
{
	struct sc_queue_tx *tx;
	char *hdr, *path;

	if (q.tmp == NULL) {
		*error_r = "queue not initialised";
		return NULL;
	}
	if (sc_queue_env_check(env, error_r) < 0)
		return NULL;
	tx = calloc(1, sizeof(*tx));
	if (tx == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	tx->session = s;
	tx->in_headers = tx->line_start = true;
	tx->plan.body_fd = -1;
	tx->rfd = -1;
	tx->sender = strdup(env->sender != NULL ? env->sender : "");
	/* made ahead on the pool (queue_spare.c), else here */
	tx->fd = sc_queue_spare_take(tx->id);
	if (tx->fd < 0)
		tx->fd = sc_queue_open_tmp(tx->id);
	if (tx->fd < 0) {
		*error_r = errno == ENOSPC ? "queue disk full" :
			"cannot create the queue file";
		sc_log_error("queue: creating a file in %s: %s", q.tmp,
			     strerror(errno));
		free(tx->sender);
		free(tx);
		return NULL;
	}
	tx->arrival = time(NULL);
	hdr = sc_queue_header_text(tx->id, env, tx->arrival, &tx->size_field);
	path = path2(q.tmp, tx->id);
	if (path != NULL)
		tx->msg = sc_message_new(tx, tx->id, path, env, s);
	free(path);
	if (hdr == NULL || tx->msg == NULL ||
	    sc_queue_write_all(tx->fd, hdr, strlen(hdr)) < 0) {
		*error_r = "cannot write the queue file";
		free(hdr);
		sc_queue_tx_abort(tx);
		return NULL;
	}
	tx->data_off = strlen(hdr);
	free(hdr);
	return tx;
}

/* count_received - follows the header section across write chunks and
 * counts Received: fields (loop detection needs the number). */
static void
count_received(struct sc_queue_tx *tx, const char *p, size_t len)
{
	static const char want[] = "received:";

	for (size_t i = 0; i < len && tx->in_headers; i++) {
		char ch = p[i];

		if (tx->line_start) {
			tx->line_start = false;
			tx->pfx_len = 0;
			tx->pfx_dead = false;
			if (ch == '\r' || ch == '\n') {
				tx->in_headers = false;	/* empty line */
				break;
			}
		}
		if (ch == '\n') {
			tx->line_start = true;
			continue;
		}
		if (tx->pfx_dead)
			continue;
		if (tolower((unsigned char)ch) != want[tx->pfx_len]) {
			tx->pfx_dead = true;
			continue;
		}
		if (++tx->pfx_len == sizeof(want) - 1) {
			tx->received++;
			tx->pfx_dead = true;
		}
	}
}

static int
tx_flush(struct sc_queue_tx *tx)
{
	if (tx->wlen > 0 && !tx->failed &&
	    sc_queue_write_all(tx->fd, tx->wbuf, tx->wlen) < 0) {
		tx->failed = true;
		tx->err = errno;
	}
	tx->wlen = 0;
	return tx->failed ? -1 : 0;
}

static int tx_write_data(struct sc_queue_tx *tx, const void *data,
			 size_t len);

int
sc_queue_tx_write(struct sc_queue_tx *tx, const void *data, size_t len)
{
	if (tx->failed || tx->committed)
		return -1;
	sc_queue_tx_data_flush_prefix(tx);
	return tx_write_data(tx, data, len);
}

/* sc_queue_tx_data_flush_prefix - the fields inserted before the data
 * (smtp's Received:) go first, once */
void
sc_queue_tx_data_flush_prefix(struct sc_queue_tx *tx)
{
	size_t plen = 0;
	char *pre = tx->msg != NULL ? sc_message_prefix(tx->msg, &plen) :
		NULL;

	if (pre != NULL && !tx->failed && !tx->committed)
		tx_write_data(tx, pre, plen);
	free(pre);
}

struct sc_message *
sc_queue_tx_msg(struct sc_queue_tx *tx)
{
	return tx->msg;
}

int
sc_queue_tx_data_sync(struct sc_queue_tx *tx, uint64_t *data_off_r,
		      uint64_t *size_r)
{
	*data_off_r = tx->data_off;
	*size_r = tx->size;
	return tx_flush(tx);
}

static int
tx_write_data(struct sc_queue_tx *tx, const void *data, size_t len)
{
	if (tx->failed || tx->committed)
		return -1;
	count_received(tx, data, len);
	if (tx->msg != NULL)
		sc_message_capture(tx->msg, data, len);
	tx->size += len;
	if (tx->wlen + len > sizeof(tx->wbuf)) {
		if (tx_flush(tx) < 0)
			return -1;
		if (len > sizeof(tx->wbuf)) {
			if (sc_queue_write_all(tx->fd, data, len) < 0) {
				tx->failed = true;
				tx->err = errno;
				return -1;
			}
			return 0;
		}
	}
	memcpy(tx->wbuf + tx->wlen, data, len);
	tx->wlen += len;
	return 0;
}

uint64_t
sc_queue_tx_size(const struct sc_queue_tx *tx)
{
	return tx->size;
}

const char *
sc_queue_tx_id(const struct sc_queue_tx *tx)
{
	return tx->id;
}

static void
tx_free(struct sc_queue_tx *tx)
{
	if (tx->fd >= 0)
		close(tx->fd);
	if (tx->plan.body_fd >= 0)
		close(tx->plan.body_fd);
	if (tx->rfd >= 0)
		close(tx->rfd);
	free(tx->plan.block);
	sc_message_free(tx->msg);
	free(tx->sender);
	free(tx);
}

static void
tx_unlink(struct sc_queue_tx *tx, const char *dir)
{
	char *p = path2(dir, tx->id);

	if (p != NULL)
		unlink(p);
	free(p);
}

/* rewrite_file - on the pool: an edited message written anew
 * (queue_rewrite.c); a failure fails the tx */
static void
rewrite_file(struct sc_queue_tx *tx)
{
	uint64_t size = 0;

	if (sc_queue_rewrite(q.tmp, q.active, tx->id, tx->arrival, &tx->plan,
			     &size) < 0) {
		tx->failed = true;
		tx->err = errno;
	} else {
		tx->size = size;
	}
}

/* rewrite_build - on the pool: an edited message written anew, unsynced,
 * for the journal (queue_rewrite.c); a failure fails the tx */
static void
rewrite_build(struct sc_queue_tx *tx)
{
	uint64_t size = 0;

	tx->rfd = sc_queue_rewrite_write(q.tmp, tx->id, tx->arrival,
					 &tx->plan, &size, &tx->flen);
	if (tx->rfd < 0) {
		tx->failed = true;
		tx->err = errno;
		return;
	}
	tx->size = size;
	tx->rebuilt = true;
}

void
sc_queue_tx_abort(struct sc_queue_tx *tx)
{
	if (tx == NULL || tx->committed)
		return;
	tx_unlink(tx, q.tmp);
	tx_free(tx);
}

void
sc_queue_tx_session_gone(struct sc_queue_tx *tx)
{
	/* the message is still kept once durable; only the reply is gone */
	tx->session = NULL;
	tx->done = NULL;
}

/*
 * The group commit. The messages committed while a batch is being synced
 * wait for the next batch. Its journaled messages (pick_journaled) are
 * made durable together by one job (journal_work: one journal write and
 * fdatasync, then the renames, unsynced). The others in two steps on the
 * pool: first each file on its own pool thread, all at once (tx_sync_work:
 * fdatasync, then the rename into active/, so a file appears there only
 * with its data durable) - concurrent syncs share the file system's
 * journal commits and the disk's cache flushes, where one after the other
 * each paid its own; then ONE fsync of active/ covers every rename of the
 * batch (dir_work). Only when both are done do the messages get their
 * 250.
 */
static void batch_start(void);
static uv_loop_t *queue_loop(void);
static bool between_batches(void);

/* tx_move_active - on the pool: tmp/ID (or an edit's tmp/ID.new)
 * renamed to active/ID (stored), or the transaction failed */
static void
tx_move_active(struct sc_queue_tx *tx)
{
	char *from, *to;

	if (tx->rebuilt) {
		tx->stored = sc_queue_rewrite_move(q.tmp, q.active,
						   tx->id) == 0;
		tx->failed = !tx->stored;
		tx->err = tx->failed ? errno : 0;
		return;
	}
	from = path2(q.tmp, tx->id);
	to = path2(q.active, tx->id);
	if (from == NULL || to == NULL || rename(from, to) < 0) {
		tx->failed = true;
		tx->err = from == NULL || to == NULL ? ENOMEM : errno;
	} else {
		tx->stored = true;
	}
	free(from);
	free(to);
}

/* tx_sync_work - on the pool: one file of the batch made durable and
 * moved into active/ */
static void
tx_sync_work(uv_work_t *w)
{
	struct sc_queue_tx *tx = w->data;

	if (tx->plan.rewrite && !tx->rebuilt) {
		rewrite_file(tx);
		tx->stored = !tx->failed;
		return;
	}
	if (fdatasync(tx->rebuilt ? tx->rfd : tx->fd) < 0) {
		tx->failed = true;
		tx->err = errno;
		return;
	}
	tx_move_active(tx);
}

/* journal_work_run - on the pool: the batch's journaled messages made
 * durable by one journal write and sync, then moved into active/ with no
 * sync (queue_journal.c); with no room in the journal they take the file
 * path (journaled is cleared: the directory sync then covers them) */
static void
journal_work_run(struct batch *b)
{
	struct sc_journal_ent *e;
	size_t n = 0, i = 0;
	int r, err;

	for (struct sc_queue_tx *tx = b->txs; tx != NULL; tx = tx->next) {
		if (!tx->journaled || !tx->plan.rewrite)
			continue;
		/* an edit: its new file first, then as any other */
		rewrite_build(tx);
		if (tx->failed || tx->flen > SC_JOURNAL_MAX_FILE) {
			tx->journaled = false;
			if (!tx->failed)
				tx_sync_work(&tx->sync);
		}
	}
	for (struct sc_queue_tx *tx = b->txs; tx != NULL; tx = tx->next)
		n += tx->journaled;
	e = calloc(n ? n : 1, sizeof(*e));
	for (struct sc_queue_tx *tx = b->txs; e != NULL && tx != NULL;
	     tx = tx->next)
		if (tx->journaled)
			e[i++] = (struct sc_journal_ent){
				tx->id, tx->rebuilt ? tx->rfd : tx->fd,
				tx->flen };
	r = e != NULL ? sc_journal_commit(e, n) : -1;
	err = e != NULL ? errno : ENOMEM;
	free(e);
	for (struct sc_queue_tx *tx = b->txs; tx != NULL; tx = tx->next) {
		if (!tx->journaled)
			continue;
		if (r == 1) {
			tx->journaled = false;
			tx_sync_work(&tx->sync);
			continue;
		}
		if (r < 0) {
			tx->failed = true;
			tx->err = err;
			sc_journal_done(tx->id);	/* it may be on disk */
			continue;
		}
		tx_move_active(tx);
		if (tx->failed)
			sc_journal_done(tx->id);
	}
}

static void
journal_work(uv_work_t *w)
{
	journal_work_run(w->data);
}

/* dir_work - on the pool: the renames of the whole batch made durable */
static void
dir_work(uv_work_t *w)
{
	struct batch *b = w->data;

	if (fsync(q.active_fd) < 0)
		b->dir_err = errno;
}

static void
batch_done(uv_work_t *w, int status)
{
	struct batch *b = w->data;
	struct sc_queue_tx *tx;

	(void)status;
	q.syncing = false;
	q.batches++;
	while ((tx = b->txs) != NULL) {
		sc_queue_commit_fn done = tx->done;
		void *arg = tx->arg;
		struct sc_session *s = tx->session;

		b->txs = tx->next;
		if (!tx->failed && !tx->journaled && b->dir_err != 0) {
			tx->failed = true;
			tx->err = b->dir_err;
			tx_unlink(tx, q.active);
		}
		if (tx->failed) {
			sc_log_error("queue: storing %s failed: %s", tx->id,
				     strerror(tx->err));
			tx_unlink(tx, q.tmp);
			if (tx->rebuilt)
				sc_queue_rewrite_drop(q.tmp, tx->id);
		}
		if (s != NULL)
			sc_session_set_tx(s, NULL);
		if (!tx->failed) {
			struct sc_event ev = {
				.type = SC_EVENT_QUEUED, .session = s,
				.sender = tx->sender, .queue_id = tx->id,
			};

			sc_queue_runner_add(tx->id);
			if (sc_core != NULL && sc_core->gen != NULL)
				sc_event_emit(&ev);
		}
		if (done != NULL)
			done(arg, tx->failed ? NULL : tx->id, tx->failed ?
			     (tx->err == ENOSPC ? "queue disk full" :
			      "the queue could not store the message") : NULL);
		tx_free(tx);
	}
	free(b);
	batch_start();
	if (!q.syncing)		/* else at the end of that batch */
		sc_journal_arm(queue_loop(), between_batches);
}

static uv_loop_t *
queue_loop(void)
{
	return sc_core != NULL && sc_core->loop ? sc_core->loop :
		uv_default_loop();
}

/* between_batches - whether sc_journal_tick may run now (its timer) */
static bool
between_batches(void)
{
	return !q.syncing;
}

/* batch_files_done - every file of the batch is synced (or failed): the
 * directory next, when anything was renamed into it */
static void
batch_files_done(struct batch *b)
{
	bool any = false;

	/* (a journaled message's rename needs no sync) */
	for (struct sc_queue_tx *tx = b->txs; tx != NULL; tx = tx->next)
		any = any || (tx->stored && !tx->journaled);
	b->work.data = b;
	if (!any) {
		batch_done(&b->work, 0);
		return;
	}
	if (uv_queue_work(queue_loop(), &b->work, dir_work, batch_done) != 0) {
		/* no pool: sync here rather than lose the message */
		dir_work(&b->work);
		batch_done(&b->work, 0);
	}
}

static void
tx_sync_done(uv_work_t *w, int status)
{
	struct sc_queue_tx *tx = w->data;
	struct batch *b = tx->batch;

	(void)status;
	if (--b->pending == 0)
		batch_files_done(b);
}

static void
journal_done_cb(uv_work_t *w, int status)
{
	struct batch *b = w->data;

	(void)status;
	if (--b->pending == 0)
		batch_files_done(b);
}

/* one_work - on the pool: a batch of one message, file and directory in
 * one job (no second trip through the loop for one file) */
static void
one_work(uv_work_t *w)
{
	struct batch *b = w->data;

	if (b->txs->journaled)
		journal_work_run(b);
	else
		tx_sync_work(&b->txs->sync);
	if (b->txs->stored && !b->txs->journaled)
		dir_work(w);
}

/* pick_journaled - which messages of batch b go through the journal:
 * small enough (an edit: its new file, written in the journal's job),
 * while the journal's segment has room; the others take the file path */
static void
pick_journaled(struct batch *b)
{
	size_t room;

	sc_journal_tick(queue_loop());
	room = sc_journal_room();
	for (struct sc_queue_tx *tx = b->txs; tx != NULL; tx = tx->next) {
		struct stat st;
		size_t len, need;

		tx->journaled = false;
		if (tx->failed)
			continue;
		if (tx->plan.rewrite)
			len = sc_queue_rewrite_len(tx->id, tx->arrival,
						   &tx->plan);
		else if (fstat(tx->fd, &st) == 0)
			len = (size_t)st.st_size;
		else
			continue;
		if (len == 0 || len > SC_JOURNAL_MAX_FILE)
			continue;
		need = len + SC_JOURNAL_REC_HDR;
		if (need > room)
			continue;
		room -= need;
		tx->flen = len;
		tx->journaled = true;
	}
}

static void
batch_start(void)
{
	struct batch *b;

	if (q.syncing || q.waiting == NULL)
		return;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return;	/* retried at the next commit */
	b->txs = q.waiting;
	q.waiting = NULL;
	q.waiting_tail = &q.waiting;
	q.syncing = true;
	pick_journaled(b);
	if (b->txs->next == NULL && !b->txs->failed) {
		b->txs->batch = b;
		b->txs->sync.data = b->txs;
		b->work.data = b;
		if (uv_queue_work(queue_loop(), &b->work, one_work,
				  batch_done) != 0) {
			one_work(&b->work);	/* no pool: here */
			batch_done(&b->work, 0);
		}
		return;
	}
	/* counted before the first job can finish: one more, dropped below */
	b->pending = 1;
	for (struct sc_queue_tx *tx = b->txs; tx != NULL; tx = tx->next) {
		if (!tx->journaled)
			continue;
		tx->batch = b;
		tx->sync.data = tx;
	}
	for (struct sc_queue_tx *tx = b->txs; tx != NULL; tx = tx->next) {
		if (tx->failed || tx->journaled)
			continue;
		tx->batch = b;
		tx->sync.data = tx;
		b->pending++;
		if (uv_queue_work(queue_loop(), &tx->sync, tx_sync_work,
				  tx_sync_done) != 0) {
			tx_sync_work(&tx->sync);	/* no pool: here */
			b->pending--;
		}
	}
	for (struct sc_queue_tx *tx = b->txs; tx != NULL; tx = tx->next) {
		if (!tx->journaled)
			continue;
		/* all of them in one job, queued last: it may turn one
		 * to the file path, which the loop above must not see */
		b->pending++;
		b->jwork.data = b;
		if (uv_queue_work(queue_loop(), &b->jwork, journal_work,
				  journal_done_cb) != 0) {
			journal_work_run(b);	/* no pool: here */
			b->pending--;
		}
		break;
	}
	if (--b->pending == 0)
		batch_files_done(b);
}

void
sc_queue_tx_commit(struct sc_queue_tx *tx, sc_queue_commit_fn done,
		   void *arg)
{
	char end[64];
	char size[SC_QUEUE_SIZE_DIGITS + 1];

	tx->done = done;
	tx->arg = arg;
	sc_queue_tx_data_flush_prefix(tx);
	tx_flush(tx);
	if (tx->msg != NULL && tx->failed)
		sc_message_close(tx->msg);	/* it outlives the session */
	else if (tx->msg != NULL && sc_message_plan(tx->msg, &tx->plan) < 0) {
		tx->failed = true;
		tx->err = errno;
	}
	if (tx->plan.rewrite) {
		free(tx->sender);
		tx->sender = strdup(tx->plan.env.sender);
	}
	snprintf(end, sizeof(end), "END received=%zu\n%s", tx->received,
		 tx->plan.quarantine != NULL ? "Q " : "");
	snprintf(size, sizeof(size), "%0*" PRIu64, SC_QUEUE_SIZE_DIGITS, tx->size);
	if (!tx->failed && !tx->plan.rewrite &&
	    (sc_queue_write_all(tx->fd, end, strlen(end)) < 0 ||
	     (tx->plan.quarantine != NULL &&
	      (sc_queue_write_all(tx->fd, tx->plan.quarantine,
			 strlen(tx->plan.quarantine)) < 0 ||
	       sc_queue_write_all(tx->fd, "\n", 1) < 0)) ||
	     pwrite(tx->fd, size, SC_QUEUE_SIZE_DIGITS, tx->size_field) !=
	     SC_QUEUE_SIZE_DIGITS)) {
		tx->failed = true;
		tx->err = errno;
	}
	tx->committed = true;
	if (tx->session != NULL)
		sc_session_set_tx(tx->session, tx);
	tx->next = NULL;
	if (q.waiting_tail == NULL)
		q.waiting_tail = &q.waiting;
	*q.waiting_tail = tx;
	q.waiting_tail = &tx->next;
	batch_start();
}

/* sc_queue_store - writes a whole message and makes it durable; safe on
 * a pool thread (bounces) and at start-up. The id goes to id_r[17]. */
int
sc_queue_store(const struct sc_envelope *env, const void *data, size_t len,
	       char *id_r, char **error_r)
{
	const char *err = NULL;
	char *hdr = NULL, *from = NULL, *to = NULL, end[64], size[32];
	size_t received = 0;
	off_t size_field;
	int fd, dfd, ret = -1;
	struct sc_queue_tx scan = { .in_headers = true, .line_start = true };

	*error_r = NULL;
	if (q.tmp == NULL) {
		*error_r = strdup("queue not initialised");
		return -1;
	}
	if (sc_queue_env_check(env, &err) < 0) {
		*error_r = strdup(err);
		return -1;
	}
	fd = sc_queue_open_tmp(id_r);
	if (fd < 0) {
		if (asprintf(error_r, "queue: %s", strerror(errno)) < 0)
			*error_r = NULL;
		return -1;
	}
	count_received(&scan, data, len);
	received = scan.received;
	hdr = sc_queue_header_text(id_r, env, time(NULL), &size_field);
	snprintf(end, sizeof(end), "END received=%zu\n", received);
	snprintf(size, sizeof(size), "%0*zu", SC_QUEUE_SIZE_DIGITS, len);
	from = path2(q.tmp, id_r);
	to = path2(q.active, id_r);
	if (hdr == NULL || from == NULL || to == NULL)
		goto fail;
	memcpy(hdr + size_field, size, SC_QUEUE_SIZE_DIGITS);
	if (sc_queue_write_all(fd, hdr, strlen(hdr)) < 0 ||
	    sc_queue_write_all(fd, data, len) < 0 ||
	    sc_queue_write_all(fd, end, strlen(end)) < 0 || fdatasync(fd) < 0 ||
	    rename(from, to) < 0)
		goto fail;
	dfd = open(q.active, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		if (dfd >= 0)
			close(dfd);
		unlink(to);
		goto fail;
	}
	close(dfd);
	ret = 0;
	goto out;
fail:
	if (asprintf(error_r, "queue: storing %s: %s", id_r,
		     strerror(errno)) < 0)
		*error_r = NULL;
	if (from != NULL)
		unlink(from);
out:
	close(fd);
	free(hdr);
	free(from);
	free(to);
	return ret;
}

int
sc_queue_inject(const struct sc_envelope *env, const void *data, size_t len,
		char *queue_id_r, size_t id_len, const char **error_r)
{
	char id[17], *err = NULL;
	static char errbuf[256];

	if (sc_queue_store(env, data, len, id, &err) < 0) {
		snprintf(errbuf, sizeof(errbuf), "%s",
			 err != NULL ? err : "queue error");
		free(err);
		*error_r = errbuf;
		return -1;
	}
	if (queue_id_r != NULL && id_len > 0)
		snprintf(queue_id_r, id_len, "%s", id);
	sc_queue_runner_add(id);
	return 0;
}

/* sc_queue_init - the queue's directories made and scanned
 * (queue_scan.c: tmp/ emptied, the journal replayed, incomplete files
 * dropped from active/). Runs as the daemon's user (after the privilege
 * drop), which owns the queue. */
int
sc_queue_init(const char *state_dir, char **error_r)
{
	char *qdir = path2(state_dir, "queue");
	int fd;

	*error_r = NULL;
	if (qdir == NULL) {
		*error_r = strdup("out of memory");
		return -1;
	}
	sc_queue_set_dirs(qdir);
	free(qdir);
	q.waiting = NULL;
	q.waiting_tail = &q.waiting;
	fd = sc_queue_scan(state_dir, q.dir, q.tmp, q.active, error_r);
	if (fd < 0)
		return -1;
	if (q.active_fd >= 0)
		close(q.active_fd);
	q.active_fd = fd;
	return 0;
}

void
sc_queue_deinit(void)
{
	sc_queue_spare_close();
	sc_journal_close();
	if (q.active_fd >= 0)
		close(q.active_fd);
	q.active_fd = -1;
	free(q.dir);
	free(q.tmp);
	free(q.active);
	q.dir = q.tmp = q.active = NULL;
}
