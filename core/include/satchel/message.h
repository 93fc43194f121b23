/* SPDX-License-Identifier: MIT */
/*
 * satchel/message.h - the message being received: read its header fields,
 * its body and its envelope, and edit them. Since ABI 1.2.
 *
 * Where: in the DATA_POST hook (after the final dot or BDAT LAST, before
 * the queue commit and the client's reply), sc_hook_message(call) gives
 * the message. It is complete then: the header fields are parsed and held
 * in memory (bounded by SC_MESSAGE_HEADER_MAX); the body stays in the
 * queue file and is read through a file descriptor, so a large message is
 * never copied into memory. A filter that wants the body in chunks (a
 * milter's BODY packets, a virus scanner) reads that fd in chunks; there
 * is no separate per-chunk hook.
 *
 * Edits: every change below is recorded against the message at once and
 * is visible to everything that reads the message afterwards - the same
 * callback, and the callbacks after it in the chain (POLICY first, then
 * NORMAL in plugins.d file order). So a callback sees the message as the
 * callbacks before it left it, and one placed last (a DKIM signer) sees
 * exactly what will be stored and delivered. The queue file is rewritten
 * once, at commit, when anything was edited (header block rebuilt, body
 * copied in the kernel or taken from the replacement), and made durable
 * before the client gets its 250 - each edit reaches the stored message
 * exactly once. A chain that ends in a refusal discards the message and
 * its edits. Note that SC_OK ends the DATA_POST chain: the callbacks after
 * it never see the message. A module that edits and has no verdict to give
 * returns SC_CONT.
 *
 * The Received: field the smtp module adds goes through this API too (it
 * is inserted at the top before the first byte of data), so it is field
 * 0 of the header block as callbacks see it, as it will be stored.
 *
 * Asynchronous use: a callback may return SC_PENDING and read or edit the
 * message later, from the loop thread, as long as sc_hook_cancelled(call)
 * is false. Do not keep the struct sc_message pointer across a return to
 * the event loop: get it again with sc_hook_message(call), which is NULL
 * once the call is cancelled (the session closed, or hook_timeout
 * passed) - the message and its storage may be gone by then. A file
 * descriptor from sc_message_body_open() is the module's own and stays
 * readable even then (close it). Every sc_message_* function runs on the
 * loop thread only; only reading a body fd may happen on a worker
 * (sc_work_submit_inst), which is where a large body should be read.
 *
 * Text conventions: the stored message has CRLF line ends only. Header
 * names and values given to the edit functions are checked: a name is 1
 * to 997 printable US-ASCII characters other than ':'; a value is the text
 * after "Name:" - it may contain line breaks (LF or CRLF) only where a
 * space or tab follows (folding), they are stored as CRLF; a bare CR, a
 * NUL or a line break that would start a new field is refused (-1 with
 * errno EINVAL), so an edit can never smuggle in a field or end the
 * header block. A value that does not start with a space or tab gets one
 * space after the colon ("Name: value"). Addresses are "local@domain"
 * (one pair of angle brackets around them is accepted and removed); ""
 * is the null sender.
 *
 * Results: functions returning int give 0 on success and -1 on failure
 * with errno set (EINVAL bad argument, ENOMEM, E2BIG over
 * SC_MESSAGE_HEADER_MAX, EIO a storage error, ESTALE the message is no
 * longer open for edits), unless stated otherwise; a failed edit changes
 * nothing.
 */
#ifndef SATCHEL_MESSAGE_H
#define SATCHEL_MESSAGE_H

#include <sys/types.h>
#include <satchel/module.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sc_hook_call;
struct sc_queue_tx;

/* The message being received. Opaque; owned by the core (by the queue
 * transaction it belongs to). */
struct sc_message;

/* The most bytes a message's header block (all fields with their CRLFs,
 * without the empty line that ends it) may have. smtp refuses a message
 * whose header block is larger (552 5.3.4), and an edit that would make
 * it larger fails with E2BIG. */
#define SC_MESSAGE_HEADER_MAX (256u * 1024u)

/* Index values for sc_message_header_insert(). */
#define SC_HEADER_TOP		((size_t)0)
#define SC_HEADER_BOTTOM	((size_t)-1)

/* The message of a DATA_POST call; NULL for other hooks and once the call
 * is cancelled (see above: fetch it again after every return to the
 * loop). */
SC_API struct sc_message *sc_hook_message(struct sc_hook_call *call);

/* The queue id the message will have (as in smtp's "queued as"). */
SC_API const char *sc_message_queue_id(const struct sc_message *m);

/* ---- the header block ---- */

/*
 * Fields are numbered 0 .. count-1 in message order. An insert or delete
 * renumbers the fields after it. The strings returned below are
 * NUL-terminated and stay valid until the next edit of the header block or
 * until the callback returns to the loop, whichever comes first: copy what
 * you keep. A field holding a NUL byte shows only up to it in the C
 * strings; sc_message_header_raw() gives all of its bytes.
 */
SC_API size_t sc_message_header_count(const struct sc_message *m);

/* The field name as written ("Subject", "DKIM-Signature"), without the
 * colon (and without white space before it, obsolete syntax). NULL when i
 * is out of range (as for the getters below). */
SC_API const char *sc_message_header_name(const struct sc_message *m,
					  size_t i);

/* The raw value: every byte after the colon up to the field's final CRLF,
 * leading white space and folding (CRLF followed by space or tab) kept. */
SC_API const char *sc_message_header_value(const struct sc_message *m,
					   size_t i);

/* The unfolded value (RFC 5322 2.2.3): the raw value with every CRLF
 * removed (the white space after it kept), then white space trimmed at
 * both ends. "Subject:  Hello\r\n\tWorld " gives "Hello\tWorld". */
SC_API const char *sc_message_header_unfolded(const struct sc_message *m,
					      size_t i);

/* The whole field exactly as it will be stored: "Name:" value CRLF, with
 * its length in *len_r (may be NULL). */
SC_API const char *sc_message_header_raw(const struct sc_message *m,
					 size_t i, size_t *len_r);

/* The index of the nth (counting from 1) field called name (compared
 * without regard to ASCII case), or -1 when there are fewer. */
SC_API ssize_t sc_message_header_find(const struct sc_message *m,
				      const char *name, size_t nth);

/* Inserts the field "name: value" so that it gets index index: 0
 * (SC_HEADER_TOP) puts it first, an index >= the count
 * (SC_HEADER_BOTTOM) last, after the other fields (milter ADDHEADER is
 * SC_HEADER_BOTTOM, INSHEADER an index). */
SC_API int sc_message_header_insert(struct sc_message *m, size_t index,
				    const char *name, const char *value);

/* Gives field i a new value (its name kept). */
SC_API int sc_message_header_replace(struct sc_message *m, size_t i,
				     const char *value);

/* Removes field i. */
SC_API int sc_message_header_delete(struct sc_message *m, size_t i);

/* The nth (from 1) field called name gets value, or is removed when value
 * is NULL (milter CHGHEADER; its "empty value" is a NULL here). Returns 0
 * when it was changed, 1 when there is no such field (nothing changed:
 * milter semantics then add the field, which is the caller's choice), -1
 * on error. */
SC_API int sc_message_header_change(struct sc_message *m, const char *name,
				    size_t nth, const char *value);

/* ---- the body ---- */

/* The body: everything after the empty line that ends the header block
 * (after the header block when there is no empty line), in bytes. */
SC_API uint64_t sc_message_body_size(const struct sc_message *m);

/* A new read-only file descriptor (O_CLOEXEC) positioned at the first byte
 * of the current body - the replacement if one was made. Read exactly
 * sc_message_body_size() bytes from it: what follows them is not the
 * body. The caller closes it. -1 with errno on failure. */
SC_API int sc_message_body_open(const struct sc_message *m);

/*
 * Replacing the body (milter REPLBODY): begin, write the new body in as
 * many pieces as needed, end. Bare LF and bare CR are stored as CRLF, as
 * smtp stores received data. Until end the message keeps its old body
 * (readers see the old one); end makes the new one the body, for the
 * callbacks after and the stored message. A new begin before end drops the
 * replacement in progress, as does the end of the transaction. The new
 * body is written to a file beside the queue file, not kept in memory.
 */
SC_API int sc_message_body_replace_begin(struct sc_message *m);
SC_API int sc_message_body_replace_write(struct sc_message *m,
					 const void *data, size_t len);
SC_API int sc_message_body_replace_end(struct sc_message *m);

/* All of the above with the bytes read from fd, from its current
 * position to its end (blocking reads: fd should be a regular file). */
SC_API int sc_message_body_replace_fd(struct sc_message *m, int fd);

/* ---- the envelope ---- */

/* MAIL FROM: the address ("" for the null sender) and its ESMTP
 * parameters ("" for none). */
SC_API const char *sc_message_sender(const struct sc_message *m);
SC_API const char *sc_message_sender_params(const struct sc_message *m);

/* Changes the sender (milter CHGFROM). params: the new ESMTP parameters,
 * or NULL to keep the current ones. */
SC_API int sc_message_set_sender(struct sc_message *m, const char *address,
				 const char *params);

/* The recipients, in order: address and ESMTP parameters ("" for none).
 * NULL when i is out of range. Valid until the next recipient edit or the
 * return to the loop. */
SC_API size_t sc_message_rcpt_count(const struct sc_message *m);
SC_API const char *sc_message_rcpt(const struct sc_message *m, size_t i);
SC_API const char *sc_message_rcpt_params(const struct sc_message *m,
					  size_t i);

/* Adds a recipient (milter ADDRCPT / ADDRCPT_PAR); params may be NULL.
 * It is routed like any other at delivery (no RCPT hook runs for it).
 * Adding an address that is already a recipient (compared without regard
 * to case) changes nothing and returns 0. */
SC_API int sc_message_rcpt_add(struct sc_message *m, const char *address,
			       const char *params);

/* Removes the recipient address (compared without regard to case; milter
 * DELRCPT). 0 when removed, 1 when it was not a recipient, -1 on error. A
 * message left with no recipient is accepted and discarded, as with
 * sc_message_discard(). */
SC_API int sc_message_rcpt_delete(struct sc_message *m, const char *address);

/* ---- what becomes of the message ---- */

/* Accept the message but drop it (milter DISCARD): the client gets the
 * usual 250, nothing is stored or delivered, the log says who discarded
 * it. Later callbacks still run (and may still refuse the message). */
SC_API void sc_message_discard(struct sc_message *m);
SC_API bool sc_message_discarded(const struct sc_message *m);

/* Store the message but hold it (milter QUARANTINE): it stays in the
 * queue, is never delivered nor bounced nor expired, and `satchelctl
 * queue` lists it as quarantined with reason (one line; line breaks
 * become spaces) until an admin deletes it. A later call replaces the
 * reason. */
SC_API int sc_message_quarantine(struct sc_message *m, const char *reason);
/* The quarantine reason, or NULL. */
SC_API const char *sc_message_quarantined(const struct sc_message *m);

/* ---- for protocol modules (smtp) ---- */

/* The message of a queue transaction (see satchel/queue.h): every byte
 * given to sc_queue_tx_write() is message data, and the core follows the
 * header block as it streams by. Before the first byte is written,
 * sc_message_header_insert() adds fields in front of the data (smtp's
 * Received:); nothing else may be read or edited before
 * sc_message_finish(). */
SC_API struct sc_message *sc_queue_tx_message(struct sc_queue_tx *tx);

/* After the last byte of data: parses the header block and opens the
 * message for reading and editing (then run DATA_POST). 0, or -1 with
 * errno E2BIG when the header block is over SC_MESSAGE_HEADER_MAX
 * (refuse the message with 552 5.3.4), or EIO when the data could not be
 * written. */
SC_API int sc_message_finish(struct sc_message *m);

#ifdef __cplusplus
}
#endif

#endif
