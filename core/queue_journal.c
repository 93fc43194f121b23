/* SPDX-License-Identifier: MIT */
/*
 * core/queue_journal.c - the queue journal: a message is durable with
 * ONE write + fdatasync per group commit instead of a file fdatasync, a
 * rename and a directory fsync per message.
 *
 * Two segments, queue/journal.0 and journal.1, of SC_JOURNAL_SEG_SIZE
 * bytes each, preallocated by writing zeros (fallocate's unwritten
 * extents would make every first overwrite a metadata change), so that
 * an append is a data write only: fdatasync flushes no inode or
 * directory. Each segment opens with a header (magic, version,
 * generation, a random nonce); records follow it:
 *   u32 magic, u32 type (ACCEPT | DONE), u64 nonce, char id[16],
 *   u32 payload length, u32 CRC-32C over the 36 bytes before it and the
 *   payload; then the payload (host byte order: the file never moves).
 * A record is valid only when its checksum matches and it carries the
 * segment's current nonce; the first invalid record ends the segment (a
 * torn tail, or an older generation's leftovers after a reset: the
 * nonce is random, so a record planted inside a message body cannot be
 * made to look current).
 *
 * Commit (queue.c's group commit, on the pool): the ACCEPT payload is
 * the exact bytes of the queue file at commit time; all ACCEPTs of a
 * batch go out in one pwrite at the segment's head and one fdatasync;
 * then each file is renamed tmp/ -> active/ with no sync at all. Its
 * data and its directory entry become durable later, at the checkpoint,
 * or never, when it is delivered and removed before that.
 *
 * Removal: every unlink of an active/ file (sc_queue_remove) first
 * writes a DONE record (pwrite under the mutex, no fdatasync: a process
 * crash keeps the page cache; the next commit's or checkpoint's sync
 * carries it to the disk).
 *
 * Checkpoint: once the current segment is half full or its first record
 * is older than AGE_MS (checked before each batch, and by a timer that
 * queue.c arms between batches: an idle daemon keeps no record longer),
 * new records go to the other segment (only when that one is clean;
 * until then messages take the per-file path) and the old one is
 * checkpointed on the pool: every active/ID it holds an ACCEPT for is
 * fsync'd (ENOENT: removed since, fine), then active/, then the
 * segment gets a new generation and nonce (header rewritten and
 * fdatasync'd) and may take records again.
 *
 * Replay (start-up, before queue.c scans active/): every valid ACCEPT
 * with no DONE for its id: if active/ID exists and its first len bytes
 * carry the record's checksum, it is kept (the runner's records after
 * them too) and fsync'd; otherwise the payload is written to tmp/ID,
 * fdatasync'd and renamed to active/ID. Then active/ is fsync'd and both
 * segments are reset.
 *
 * Crash cases: a crash before the fdatasync returned: no 250 was given;
 * the record may be torn (ignored) or whole (the message comes back:
 * the client will send it again - a duplicate, never a loss). After it:
 * the record is durable until the checkpoint has made the file durable.
 * A lost DONE record (a machine crash between the unlink and the next
 * sync) brings a delivered message back: at worst one duplicate delivery
 * (the Maildir delivery dedupes by queue id), never a loss. A journal
 * file that is short, corrupt or of the wrong size is taken as empty,
 * with a warning, and made anew: the daemon still starts.
 */
#include "queue_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SEG_MAGIC	"SCJOURN1"
#define SEG_VERSION	1u
#define REC_MAGIC	0x4c4e524au	/* "JRNL" */
/* ACCEPTs stop here; the rest is kept for DONE records */
#define ACCEPT_LIMIT	(SC_JOURNAL_SEG_SIZE / 8 * 5)
#define SWITCH_AT	(SC_JOURNAL_SEG_SIZE / 2)
/* the oldest record's greatest age before its checkpoint (ms); tests may
 * shorten it (SATCHEL_JOURNAL_AGE_MS, at least 100: the records' age is
 * only a bound on the journal's size, never on durability) */
#define AGE_MS		30000u
#define AGE_MS_MIN	100u
/* how soon a checkpoint still running is looked at again (ms) */
#define BUSY_RETRY_MS	1000u

struct seg {
	int fd;
	uint64_t gen, nonce;
	size_t head;			/* where the next record goes   */
	uint64_t first;			/* when its first record came
					 * (monotonic ms; 0: none)       */
	char (*ids)[17];		/* ids it holds an ACCEPT for   */
	size_t nids, cap;
};

/* Process-wide journal state; the mutex guards the segments (commits and
 * checkpoints run on the pool, DONE records come from any thread). */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* a checkpoint job ended       */
	bool open, ckpt_running;
	bool ckpt_busy;			/* its pool part still runs     */
	int cur;
	int qdir_fd, active_fd;
	struct seg s[2];
	uv_work_t ckpt;
	int ckpt_seg, ckpt_err;
	uint64_t age_ms;		/* AGE_MS, or the tests' value  */
	uv_timer_t *timer;		/* the idle checkpoint (heap)   */
	bool (*can_tick)(void);		/* queue.c: between batches     */
	uint32_t crc[8][256];	/* slicing by 8: 8 bytes a step        */
	bool crc_ready;
} jr = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
	 .qdir_fd = -1, .active_fd = -1, .age_ms = AGE_MS,
	 .s = { { .fd = -1 }, { .fd = -1 } } };

/* mono_ms - a monotonic clock in ms (any thread; never 0 once booted) */
static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u +
		1;
}

static void
crc_init(void)
{
	if (jr.crc_ready)
		return;
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		jr.crc[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			jr.crc[t][i] = jr.crc[0][jr.crc[t - 1][i] & 0xff] ^
				(jr.crc[t - 1][i] >> 8);
	jr.crc_ready = true;
}

/* crc32c - CRC-32C (Castagnoli), continued from crc (0 to start). Eight
 * bytes a step (slicing by 8): a whole message goes through it at each
 * commit, and byte by byte it cost ~8 instructions a byte. */
static uint32_t
crc32c(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	crc = ~crc;
	while (len >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
				     (uint32_t)p[2] << 16 |
				     (uint32_t)p[3] << 24);

		crc = jr.crc[7][lo & 0xff] ^ jr.crc[6][(lo >> 8) & 0xff] ^
			jr.crc[5][(lo >> 16) & 0xff] ^ jr.crc[4][lo >> 24] ^
			jr.crc[3][p[4]] ^ jr.crc[2][p[5]] ^
			jr.crc[1][p[6]] ^ jr.crc[0][p[7]];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = jr.crc[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint32_t
sc_journal_crc32c(uint32_t crc, const void *data, size_t len)
{
	crc_init();
	return crc32c(crc, data, len);
}

static uint32_t
get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t
get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static bool
id_ok(const char *id)
{
	for (int i = 0; i < 16; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

long
sc_journal_parse(const unsigned char *buf, size_t len, sc_journal_rec_fn fn,
		 void *arg, uint64_t *gen_r)
{
	uint64_t nonce;
	size_t off = SC_JOURNAL_HDR_SIZE;

	crc_init();
	if (len < SC_JOURNAL_HDR_SIZE || memcmp(buf, SEG_MAGIC, 8) != 0 ||
	    get32(buf + 8) != SEG_VERSION ||
	    get32(buf + 32) != crc32c(0, buf, 32))
		return -1;
	*gen_r = get64(buf + 16);
	nonce = get64(buf + 24);
	while (len - off >= SC_JOURNAL_REC_HDR) {
		const unsigned char *r = buf + off;
		uint32_t type = get32(r + 4), plen = get32(r + 32);

		if (get32(r) != REC_MAGIC || get64(r + 8) != nonce ||
		    (type != SC_JOURNAL_ACCEPT && type != SC_JOURNAL_DONE) ||
		    !id_ok((const char *)r + 16) ||
		    plen > len - off - SC_JOURNAL_REC_HDR ||
		    (type == SC_JOURNAL_DONE && plen != 0) ||
		    crc32c(crc32c(0, r, 36), r + SC_JOURNAL_REC_HDR, plen) !=
		    get32(r + 36))
			break;
		if (fn != NULL && fn(arg, (int)type, (const char *)r + 16, r,
				     r + SC_JOURNAL_REC_HDR, plen) != 0)
			break;
		off += SC_JOURNAL_REC_HDR + plen;
	}
	return (long)off;
}

/* rec_header - the 40 bytes before a payload */
static void
rec_header(unsigned char *r, const struct seg *s, uint32_t type,
	   const char *id, const void *payload, uint32_t len)
{
	uint32_t magic = REC_MAGIC, crc;

	memcpy(r, &magic, 4);
	memcpy(r + 4, &type, 4);
	memcpy(r + 8, &s->nonce, 8);
	memcpy(r + 16, id, 16);
	memcpy(r + 32, &len, 4);
	crc = crc32c(crc32c(0, r, 36), payload, len);
	memcpy(r + 36, &crc, 4);
}

static int
pwrite_all(int fd, const void *data, size_t len, off_t off)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
pread_all(int fd, void *data, size_t len, off_t off)
{
	char *p = data;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;	/* shorter than it said */
			return -1;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

/* seg_reset - a new generation and nonce in s's header, durable; its old
 * records are void from now on. Callers keep others off s. */
void
sc_journal_header(unsigned char *h, uint64_t gen, uint64_t nonce)
{
	uint32_t v = SEG_VERSION, crc;

	crc_init();
	memset(h, 0, SC_JOURNAL_REC_HDR);
	memcpy(h, SEG_MAGIC, 8);
	memcpy(h + 8, &v, 4);
	memcpy(h + 16, &gen, 8);
	memcpy(h + 24, &nonce, 8);
	crc = crc32c(0, h, 32);
	memcpy(h + 32, &crc, 4);
}

static int
seg_reset(struct seg *s, uint64_t gen)
{
	unsigned char h[SC_JOURNAL_REC_HDR];
	uint64_t nonce;

	if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
		return -1;
	sc_journal_header(h, gen, nonce);
	if (pwrite_all(s->fd, h, sizeof(h), 0) < 0 || fdatasync(s->fd) < 0)
		return -1;
	s->gen = gen;
	s->nonce = nonce;
	s->head = SC_JOURNAL_HDR_SIZE;
	s->first = 0;
	s->nids = 0;
	return 0;
}

/* seg_make - s's file written full of zeros (every block allocated and
 * initialised), synced, and its name in the queue directory synced */
static int
seg_make(int fd)
{
	static const char zero[65536];

	if (ftruncate(fd, 0) < 0)
		return -1;
	for (off_t off = 0; off < SC_JOURNAL_SEG_SIZE; off += sizeof(zero))
		if (pwrite_all(fd, zero, sizeof(zero), off) < 0)
			return -1;
	if (fdatasync(fd) < 0 || fsync(jr.qdir_fd) < 0)
		return -1;
	return 0;
}

/* ---- replay ---- */

struct acc {
	const char *id;
	const unsigned char *rec, *payload;
	uint32_t len;
};

struct replay {
	struct acc *acc;
	size_t nacc, accap;
	char (*done)[16];
	size_t ndone, dcap;
};

static int
replay_rec(void *arg, int type, const char *id, const unsigned char *rec,
	   const unsigned char *payload, uint32_t len)
{
	struct replay *rp = arg;

	if (type == SC_JOURNAL_DONE) {
		if (rp->ndone == rp->dcap) {
			size_t c = rp->dcap ? rp->dcap * 2 : 256;
			void *n = realloc(rp->done, c * 16);

			if (n == NULL)
				return -1;
			rp->done = n;
			rp->dcap = c;
		}
		memcpy(rp->done[rp->ndone++], id, 16);
		return 0;
	}
	if (rp->nacc == rp->accap) {
		size_t c = rp->accap ? rp->accap * 2 : 256;
		void *n = realloc(rp->acc, c * sizeof(*rp->acc));

		if (n == NULL)
			return -1;
		rp->acc = n;
		rp->accap = c;
	}
	rp->acc[rp->nacc++] = (struct acc){ id, rec, payload, len };
	return 0;
}

static int
cmp16(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* file_matches - active/ID holds the record's bytes at its start; fd is
 * the open file */
static bool
file_matches(int fd, const struct acc *a)
{
	unsigned char *buf = malloc(a->len ? a->len : 1);
	bool ok;

	if (buf == NULL)
		return false;
	ok = pread_all(fd, buf, a->len, 0) == 0 &&
		crc32c(crc32c(0, a->rec, 36), buf, a->len) == get32(a->rec + 36);
	free(buf);
	return ok;
}

/* restore - one journaled message made durable in active/: 1 when
 * written anew, 0 when the file there was whole, -1 on failure (logged;
 * the journal is then not reset, so that nothing is lost) */
static int
restore(const char *tmpdir, const struct acc *a)
{
	char id[17], want[64], *tp = NULL;
	int fd, tfd = -1, ret = -1;

	memcpy(id, a->id, 16);
	id[16] = '\0';
	snprintf(want, sizeof(want), "satchel-queue 1\nid %s\n", id);
	if (a->len < strlen(want) || memcmp(a->payload, want,
					    strlen(want)) != 0) {
		sc_log_warning("queue: journal record for %s holds no queue "
			       "file of that id; ignored", id);
		return 0;
	}
	fd = openat(jr.active_fd, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		bool whole = file_matches(fd, a);

		ret = whole && fsync(fd) == 0 ? 0 : -1;
		close(fd);
		if (whole) {
			if (ret < 0)
				sc_log_error("queue: syncing %s: %s", id,
					     strerror(errno));
			return ret;
		}
	}
	ret = -1;
	if (asprintf(&tp, "%s/%s", tmpdir, id) < 0) {
		tp = NULL;
		goto out;
	}
	tfd = open(tp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		   0600);
	if (tfd < 0 || pwrite_all(tfd, a->payload, a->len, 0) < 0 ||
	    fdatasync(tfd) < 0 || renameat(AT_FDCWD, tp, jr.active_fd, id) < 0)
		goto out;
	ret = 1;
out:
	if (ret < 0) {
		sc_log_error("queue: restoring %s from the journal: %s", id,
			     strerror(errno));
		if (tp != NULL)
			unlink(tp);
	}
	if (tfd >= 0)
		close(tfd);
	free(tp);
	return ret;
}

/* seg_open - journal.N opened (made when missing); its image read into
 * *img when it is a whole segment, else *img stays NULL */
static int
seg_open(int n, unsigned char **img, char **error_r)
{
	char name[16];
	struct stat st;
	int fd;

	*img = NULL;
	snprintf(name, sizeof(name), "journal.%d", n);
	fd = openat(jr.qdir_fd, name, O_RDWR | O_CREAT | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (asprintf(error_r, "queue journal %s: %s", name,
			     fd < 0 ? strerror(errno) : "not a file") < 0)
			*error_r = NULL;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	jr.s[n].fd = fd;
	if (st.st_size == SC_JOURNAL_SEG_SIZE) {
		*img = malloc(SC_JOURNAL_SEG_SIZE);
		if (*img != NULL &&
		    pread_all(fd, *img, SC_JOURNAL_SEG_SIZE, 0) < 0) {
			sc_log_warning("queue: reading %s: %s; taken as empty",
				       name, strerror(errno));
			free(*img);
			*img = NULL;
		}
		return 0;
	}
	if (st.st_size != 0)
		sc_log_warning("queue: %s has the wrong size (%lld); taken as "
			       "empty and made anew", name,
			       (long long)st.st_size);
	if (seg_make(fd) < 0) {
		if (asprintf(error_r, "queue journal %s: %s", name,
			     strerror(errno)) < 0)
			*error_r = NULL;
		return -1;
	}
	return 0;
}

/* age_setting - AGE_MS, or the shorter SATCHEL_JOURNAL_AGE_MS of a test
 * (never longer: the journal's size is planned for AGE_MS) */
static uint64_t
age_setting(void)
{
	const char *v = getenv("SATCHEL_JOURNAL_AGE_MS");
	char *end;
	unsigned long ms;

	if (v == NULL || *v == '\0')
		return AGE_MS;
	errno = 0;
	ms = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0' || ms < AGE_MS_MIN || ms > AGE_MS) {
		sc_log_warning("queue: SATCHEL_JOURNAL_AGE_MS=%s is not a "
			       "number of ms from %u to %u; %u used", v,
			       AGE_MS_MIN, AGE_MS, AGE_MS);
		return AGE_MS;
	}
	return ms;
}

int
sc_journal_open(const char *qdir, const char *tmpdir, int active_fd,
		char **error_r)
{
	unsigned char *img[2] = { NULL, NULL };
	uint64_t gen[2] = { 0, 0 }, top = 0;
	long end[2] = { -1, -1 };
	struct replay rp = { 0 };
	size_t restored = 0;
	int ret = -1, first;
	bool failed = false;

	*error_r = NULL;
	crc_init();
	sc_journal_close();
	jr.age_ms = age_setting();
	jr.qdir_fd = open(qdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			  O_CLOEXEC);
	jr.active_fd = dup(active_fd);
	if (jr.qdir_fd < 0 || jr.active_fd < 0) {
		if (asprintf(error_r, "%s: %s", qdir, strerror(errno)) < 0)
			*error_r = NULL;
		goto out;
	}
	for (int n = 0; n < 2; n++)
		if (seg_open(n, &img[n], error_r) < 0)
			goto out;
	for (int n = 0; n < 2; n++) {
		if (img[n] == NULL)
			continue;
		end[n] = sc_journal_parse(img[n], SC_JOURNAL_SEG_SIZE, NULL,
					  NULL, &gen[n]);
		if (end[n] < 0 && get64(img[n]) != 0)
			sc_log_warning("queue: journal.%d has no valid header; "
				       "taken as empty", n);
		if (end[n] >= 0 && gen[n] > top)
			top = gen[n];
	}
	/* the older generation first: its records came before */
	first = end[1] >= 0 && (end[0] < 0 || gen[1] < gen[0]) ? 1 : 0;
	for (int k = 0; k < 2; k++) {
		int n = k == 0 ? first : 1 - first;

		if (end[n] >= 0 && sc_journal_parse(img[n], SC_JOURNAL_SEG_SIZE,
				replay_rec, &rp, &gen[n]) != end[n]) {
			*error_r = strdup("queue journal: out of memory");
			goto out;
		}
	}
	if (rp.ndone > 0)
		qsort(rp.done, rp.ndone, 16, cmp16);
	for (size_t i = 0; i < rp.nacc; i++) {
		int r;

		if (rp.ndone > 0 && bsearch(rp.acc[i].id, rp.done, rp.ndone,
					    16, cmp16) != NULL)
			continue;
		r = restore(tmpdir, &rp.acc[i]);
		if (r < 0)
			failed = true;
		else
			restored += (size_t)r;
	}
	if (rp.nacc > 0 && fsync(jr.active_fd) < 0)
		failed = true;
	if (failed) {
		/* keep the records for the next start; no journaling now */
		sc_log_error("queue: the journal could not be replayed in "
			     "full; it is kept and not used until a restart");
		ret = 0;
		goto out;
	}
	if (restored > 0)
		sc_log_notice("queue: recovered %zu messages from the journal",
			      restored);
	if (seg_reset(&jr.s[0], top + 1) < 0 ||
	    seg_reset(&jr.s[1], top + 2) < 0) {
		sc_log_error("queue: resetting the journal: %s; not used",
			     strerror(errno));
		ret = 0;
		goto out;
	}
	jr.cur = 0;
	jr.open = true;
	ret = 0;
out:
	free(img[0]);
	free(img[1]);
	free(rp.acc);
	free(rp.done);
	return ret;
}

/* timer_free - the timer's memory, once libuv let it go */
static void
timer_free(uv_handle_t *h)
{
	free(h);
}

void
sc_journal_close(void)
{
	if (jr.timer != NULL)
		uv_close((uv_handle_t *)jr.timer, timer_free);
	jr.timer = NULL;
	/* a checkpoint still on the pool uses the segments: wait for it */
	pthread_mutex_lock(&jr.mu);
	while (jr.ckpt_busy)
		pthread_cond_wait(&jr.cv, &jr.mu);
	pthread_mutex_unlock(&jr.mu);
	for (int n = 0; n < 2; n++) {
		if (jr.s[n].fd >= 0)
			close(jr.s[n].fd);
		jr.s[n].fd = -1;
		free(jr.s[n].ids);
		jr.s[n].ids = NULL;
		jr.s[n].nids = jr.s[n].cap = 0;
	}
	if (jr.qdir_fd >= 0)
		close(jr.qdir_fd);
	if (jr.active_fd >= 0)
		close(jr.active_fd);
	jr.qdir_fd = jr.active_fd = -1;
	jr.open = false;
}

/* ---- checkpoint ---- */

/* ckpt_work - on the pool: every file segment n journaled made durable
 * in active/, then n reset. Nobody else writes to n meanwhile. */
static void ckpt_run(void);

static void
ckpt_work(uv_work_t *w)
{
	(void)w;
	ckpt_run();
	pthread_mutex_lock(&jr.mu);
	jr.ckpt_busy = false;
	pthread_cond_broadcast(&jr.cv);
	pthread_mutex_unlock(&jr.mu);
}

static void
ckpt_run(void)
{
	struct seg *s = &jr.s[jr.ckpt_seg];
	uint64_t gen;

	jr.ckpt_err = 0;
	for (size_t i = 0; i < s->nids; i++) {
		int fd = openat(jr.active_fd, s->ids[i], O_RDONLY |
				O_NOFOLLOW | O_CLOEXEC);

		if (fd < 0 && errno == ENOENT)
			continue;		/* removed since: fine */
		if (fd < 0 || fsync(fd) < 0) {
			jr.ckpt_err = errno;
			if (fd >= 0)
				close(fd);
			return;
		}
		close(fd);
	}
	if (fsync(jr.active_fd) < 0) {
		jr.ckpt_err = errno;
		return;
	}
	pthread_mutex_lock(&jr.mu);
	gen = (jr.s[0].gen > jr.s[1].gen ? jr.s[0].gen : jr.s[1].gen) + 1;
	pthread_mutex_unlock(&jr.mu);
	if (seg_reset(s, gen) < 0)
		jr.ckpt_err = errno;
}

static void
ckpt_done(uv_work_t *w, int status)
{
	(void)w;
	(void)status;
	jr.ckpt_running = false;
	if (jr.ckpt_err != 0)
		sc_log_error("queue: journal checkpoint failed: %s; retried "
			     "later", strerror(jr.ckpt_err));
}

static bool
seg_dirty(const struct seg *s)
{
	return s->head > SC_JOURNAL_HDR_SIZE;
}

static void
ckpt_start(uv_loop_t *loop, int n)
{
	jr.ckpt_running = true;
	jr.ckpt_seg = n;
	pthread_mutex_lock(&jr.mu);
	jr.ckpt_busy = true;
	pthread_mutex_unlock(&jr.mu);
	if (uv_queue_work(loop, &jr.ckpt, ckpt_work, ckpt_done) != 0) {
		ckpt_work(&jr.ckpt);	/* no pool: here */
		ckpt_done(&jr.ckpt, 0);
	}
}

void
sc_journal_tick(uv_loop_t *loop)
{
	int other = 1 - jr.cur;
	struct seg *c = &jr.s[jr.cur];

	if (!jr.open || jr.ckpt_running)
		return;
	if (seg_dirty(&jr.s[other])) {
		ckpt_start(loop, other);	/* one that failed before */
		return;
	}
	if (c->head > SWITCH_AT || (c->first != 0 &&
	    mono_ms() - c->first >= jr.age_ms)) {
		pthread_mutex_lock(&jr.mu);
		jr.cur = other;
		pthread_mutex_unlock(&jr.mu);
		ckpt_start(loop, 1 - other);
	}
}

/* due_ms - in how many ms sc_journal_tick has a checkpoint to start (0:
 * now), or -1 when the journal holds nothing waiting for one */
static long
due_ms(void)
{
	const struct seg *c = &jr.s[jr.cur];
	uint64_t age;

	if (!jr.open)
		return -1;
	if (jr.ckpt_running)
		return BUSY_RETRY_MS;
	if (seg_dirty(&jr.s[1 - jr.cur]))
		return (long)jr.age_ms;		/* one that failed: retried */
	if (c->first == 0)
		return -1;
	age = mono_ms() - c->first;
	return age >= jr.age_ms ? 0 : (long)(jr.age_ms - age);
}

/* timer_cb - the oldest record is due and no batch came to start its
 * checkpoint: started here, unless a batch runs now (it arms the timer
 * again at its end) */
static void
timer_cb(uv_timer_t *t)
{
	if (jr.can_tick == NULL || !jr.can_tick())
		return;
	sc_journal_tick(t->loop);
	sc_journal_arm(t->loop, jr.can_tick);
}

void
sc_journal_arm(uv_loop_t *loop, bool (*can_tick)(void))
{
	long ms = due_ms();

	jr.can_tick = can_tick;
	if (ms < 0) {
		if (jr.timer != NULL)
			uv_timer_stop(jr.timer);
		return;
	}
	if (jr.timer == NULL) {
		jr.timer = malloc(sizeof(*jr.timer));
		if (jr.timer == NULL)
			return;		/* the next batch ticks */
		if (uv_timer_init(loop, jr.timer) != 0) {
			free(jr.timer);
			jr.timer = NULL;
			return;
		}
		uv_unref((uv_handle_t *)jr.timer);
	}
	uv_timer_start(jr.timer, timer_cb, (uint64_t)ms, 0);
}

size_t
sc_journal_room(void)
{
	size_t head;

	if (!jr.open)
		return 0;
	pthread_mutex_lock(&jr.mu);
	head = jr.s[jr.cur].head;
	pthread_mutex_unlock(&jr.mu);
	return head < ACCEPT_LIMIT ? ACCEPT_LIMIT - head : 0;
}

static int
seg_add_id(struct seg *s, const char *id)
{
	if (s->nids == s->cap) {
		size_t c = s->cap ? s->cap * 2 : 256;
		void *n = realloc(s->ids, c * sizeof(*s->ids));

		if (n == NULL)
			return -1;
		s->ids = n;
		s->cap = c;
	}
	memcpy(s->ids[s->nids], id, 16);
	s->ids[s->nids++][16] = '\0';
	return 0;
}

int
sc_journal_commit(const struct sc_journal_ent *e, size_t n)
{
	size_t total = 0, off = 0;
	unsigned char *buf;
	struct seg *s;
	int ret = 1;

	for (size_t i = 0; i < n; i++)
		total += SC_JOURNAL_REC_HDR + e[i].len;
	buf = malloc(total ? total : 1);
	if (buf == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (pread_all(e[i].fd, buf + off + SC_JOURNAL_REC_HDR,
			      e[i].len, 0) < 0) {
			free(buf);
			return -1;
		}
		off += SC_JOURNAL_REC_HDR + e[i].len;
	}
	pthread_mutex_lock(&jr.mu);
	s = &jr.s[jr.cur];
	if (!jr.open || s->head + total > ACCEPT_LIMIT ||
	    s->cap - s->nids < n) {
		/* the id list grows here, not after the write */
		if (jr.open && s->head + total <= ACCEPT_LIMIT) {
			size_t c = s->nids + n + 256;
			void *p = realloc(s->ids, c * sizeof(*s->ids));

			if (p != NULL) {
				s->ids = p;
				s->cap = c;
			}
		}
		if (!jr.open || s->head + total > ACCEPT_LIMIT ||
		    s->cap - s->nids < n)
			goto out;
	}
	off = 0;
	for (size_t i = 0; i < n; i++) {
		rec_header(buf + off, s, SC_JOURNAL_ACCEPT, e[i].id,
			   buf + off + SC_JOURNAL_REC_HDR, (uint32_t)e[i].len);
		off += SC_JOURNAL_REC_HDR + e[i].len;
	}
	ret = -1;
	if (pwrite_all(s->fd, buf, total, (off_t)s->head) < 0)
		goto out;
	s->head += total;
	if (s->first == 0)
		s->first = mono_ms();
	for (size_t i = 0; i < n; i++)
		seg_add_id(s, e[i].id);		/* room made above */
	ret = 0;
out:
	pthread_mutex_unlock(&jr.mu);
	free(buf);
	/* the segment does not change while its records are unsynced: the
	 * switch waits for the batch, a checkpoint takes the other one */
	if (ret == 0 && fdatasync(s->fd) < 0)
		ret = -1;
	return ret;
}

void
sc_journal_done(const char *id)
{
	unsigned char r[SC_JOURNAL_REC_HDR];
	struct seg *s;

	if (!jr.open || !id_ok(id))
		return;
	pthread_mutex_lock(&jr.mu);
	s = &jr.s[jr.cur];
	if (seg_dirty(&jr.s[0]) || seg_dirty(&jr.s[1])) {
		/* (a clean journal holds no ACCEPT to cancel) */
		rec_header(r, s, SC_JOURNAL_DONE, id, "", 0);
		if (s->head + sizeof(r) > SC_JOURNAL_SEG_SIZE ||
		    pwrite_all(s->fd, r, sizeof(r), (off_t)s->head) < 0)
			sc_log_warning("queue: no DONE record for %s in the "
				       "journal (%s); a crash may deliver it "
				       "twice", id, s->head + sizeof(r) >
				       SC_JOURNAL_SEG_SIZE ? "full" :
				       strerror(errno));
		else
			s->head += sizeof(r);
	}
	pthread_mutex_unlock(&jr.mu);
}
