/* SPDX-License-Identifier: MIT */
/*
 * core/queue_journal.h - the queue journal's interface to queue.c (and to
 * the fuzz target: the segment parser). Internal to the core; which
 * thread may call what is said at each function. The scheme is explained
 * at the top of core/queue_journal.c.
 */
#ifndef SC_QUEUE_JOURNAL_H
#define SC_QUEUE_JOURNAL_H

#include "core.h"

#include <stdint.h>

/* a segment's size on disk, fixed (a file of another size is remade) */
#define SC_JOURNAL_SEG_SIZE	(8u << 20)
/* where the records start (the header owns the first block) */
#define SC_JOURNAL_HDR_SIZE	4096u
/* the bytes of a record before its payload */
#define SC_JOURNAL_REC_HDR	40u
/* the biggest queue file that goes through the journal: above it the
 * copy and checksum of the whole file cost more than the syncs they save,
 * and big messages would churn the segments (a checkpoint every few
 * dozen); measured with bench/compare.sh's 100 KiB scenario */
#define SC_JOURNAL_MAX_FILE	(64u << 10)

enum sc_journal_type { SC_JOURNAL_ACCEPT = 1, SC_JOURNAL_DONE = 2 };

/* One valid record: rec points at its header (SC_JOURNAL_REC_HDR bytes),
 * id at its 16 id characters (not NUL-terminated), payload at its len
 * payload bytes. Non-zero stops the parse. */
typedef int (*sc_journal_rec_fn)(void *arg, int type, const char *id,
				 const unsigned char *rec,
				 const unsigned char *payload, uint32_t len);

/* Parses a segment image: -1 when its header is not valid (not a
 * segment, or from another version), else the offset where the valid
 * records end (the first invalid one ends them); fn gets each valid
 * record; the segment's generation goes to *gen_r. Pure: any thread. */
SC_INTERNAL long sc_journal_parse(const unsigned char *buf, size_t len,
				  sc_journal_rec_fn fn, void *arg,
				  uint64_t *gen_r);

/* CRC-32C continued from crc (0 to start), as the records use it; and a
 * segment header (SC_JOURNAL_REC_HDR bytes) with gen and nonce - for the
 * fuzz target, which builds segments the parser must take apart. */
SC_INTERNAL uint32_t sc_journal_crc32c(uint32_t crc, const void *data,
				       size_t len);
SC_INTERNAL void sc_journal_header(unsigned char *h, uint64_t gen,
				   uint64_t nonce);

/* Start-up (sc_queue_init, before the scan of active/): opens or makes
 * both segments, brings back every journaled message whose file is not
 * complete in active/, resets the journal. 0, or -1 with a malloc'd
 * error (only when the queue directory itself is unusable). */
SC_INTERNAL int sc_journal_open(const char *qdir, const char *tmpdir,
				int active_fd, char **error_r);
SC_INTERNAL void sc_journal_close(void);

/* Loop thread, before a batch starts (no journal commit running):
 * switches segments and starts a checkpoint when one is due. */
SC_INTERNAL void sc_journal_tick(uv_loop_t *loop);
/* Loop thread, between batches: a timer (unref'd; closed by
 * sc_journal_close) set for the next checkpoint due, so that an idle
 * daemon keeps no record past its age; it calls sc_journal_tick only
 * when can_tick() says no batch runs (a batch arms it again at its end). */
SC_INTERNAL void sc_journal_arm(uv_loop_t *loop, bool (*can_tick)(void));
/* Loop thread: how many bytes of queue files the next commit may still
 * journal (0: take the per-file path). */
SC_INTERNAL size_t sc_journal_room(void);

struct sc_journal_ent {
	const char *id;		/* 16 hex digits                        */
	int fd;			/* the tmp file, readable               */
	size_t len;		/* its length                           */
};

/* On the pool: one ACCEPT record per entry (the file's bytes), written
 * with one pwrite and made durable with one fdatasync. 0 when durable,
 * 1 when there is no room now (nothing written: take the file path),
 * -1 with errno. */
SC_INTERNAL int sc_journal_commit(const struct sc_journal_ent *e, size_t n);
/* Any thread: records that the message id left active/ (a DONE record,
 * written now, made durable by the next commit or checkpoint). */
SC_INTERNAL void sc_journal_done(const char *id);

#endif
