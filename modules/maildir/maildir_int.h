/* SPDX-License-Identifier: MIT */
/*
 * modules/maildir/maildir_int.h - what maildir.c and maildir_dirsync.c
 * share: the group commit of new/ directories. Module-private.
 */
#ifndef MD_MAILDIR_INT_H
#define MD_MAILDIR_INT_H

#include <stdbool.h>

struct md_dirsync;

/* One per instance; NULL when out of memory (md_dirsync then syncs on
 * its own). Freed with the instance, after its last job. */
struct md_dirsync *md_dirsync_new(void);
void md_dirsync_free(struct md_dirsync *s);
/* Makes dir durable for a rename into it that already returned, sharing
 * the fsync with other threads' renames into the same dir (pool threads;
 * blocks). 0, or -1 with errno. When syncs fail back to back, a caller may
 * see success for a failed one: it only decides a log line. */
int md_dirsync(struct md_dirsync *s, const char *dir);

#endif
