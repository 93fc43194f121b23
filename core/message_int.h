/* SPDX-License-Identifier: MIT */
/*
 * core/message_int.h - what core/message.c (life cycle, header scan,
 * commit plan) and core/message_edit.c (reads and edits) share: the
 * message in memory and the field helpers. Internal to the core.
 */
#ifndef SC_MESSAGE_INT_H
#define SC_MESSAGE_INT_H

#include "core.h"

#define NAME_MAX_LEN	997	/* a field name: one line, 998 with ':' */

enum cap_state {
	CAP_BOL = 0,	/* at the start of a line                      */
	CAP_NAME,	/* in a field name                             */
	CAP_NAME_WSP,	/* white space between the name and the colon  */
	CAP_FIELD,	/* after the colon, up to the LF               */
	CAP_CR,		/* a CR at the start of a line                 */
	CAP_DONE,	/* the header block ended                      */
};

enum msg_state { M_RECEIVING = 0, M_OPEN, M_CLOSED };

struct msg_field {
	char *raw;		/* the whole field with its CRLF, NUL-ended */
	size_t len;
	char *name;
	char *value;		/* cached, or NULL */
	char *unfolded;		/* cached, or NULL */
};

struct msg_rcpt {
	char *addr, *params;
};

struct sc_message {
	struct sc_queue_tx *tx;
	struct sc_session *session;	/* while it is the session's */
	char id[17];
	char *path;			/* the queue file (in tmp/)    */
	enum msg_state state;
	/* before the first byte of data: fields to put in front of it */
	struct msg_field *pre;
	size_t npre;
	bool pre_written;
	/* the header block as it streams by */
	enum cap_state cap;
	char *cbuf;
	size_t clen, ccap;
	size_t line_start, name_len, cap_fields;
	size_t header_len, sep_len;	/* bytes of data                */
	bool cap_overflow;
	/* the parsed header block */
	struct msg_field *f;
	size_t n, fcap;
	size_t header_bytes;
	/* the body */
	uint64_t data_off, body_off, body_size;
	int repl_fd;			/* the replacement in force     */
	char *repl_path;
	int new_fd;			/* the replacement being written */
	char *new_path;
	uint64_t new_size;
	bool new_cr;
	unsigned serial;
	/* the envelope */
	char *sender, *sender_params, *auth, *client, *helo;
	struct msg_rcpt *r;
	size_t nr, rcap;
	struct sc_env_rcpt *env_rcpts;	/* for the plan */
	/* outcome */
	bool dirty, discard;
	char *quarantine;
};

/* ---- message.c ---- */

SC_INTERNAL bool sc_msg_ftext(unsigned char ch);
/* A field name: 1..NAME_MAX_LEN characters of ftext. */
SC_INTERNAL bool sc_msg_name_ok(const char *name);
/* f from raw (malloc'd, len bytes, NUL-ended; taken on success). 0/-1. */
SC_INTERNAL int sc_msg_field_from_raw(struct msg_field *f, char *raw,
				      size_t len);
/* "name:" value CRLF, checked and with CRLF line breaks; NULL + errno. */
SC_INTERNAL char *sc_msg_field_build(const char *name, const char *value,
				     size_t *len_r);
SC_INTERNAL void sc_msg_field_clear(struct msg_field *f);
SC_INTERNAL void sc_msg_field_uncache(struct msg_field *f);
/* Room for want fields in m->f. 0/-1. */
SC_INTERNAL int sc_msg_fields_grow(struct sc_message *m, size_t want);
/* Drop the replacement body being written / the one in force. */
SC_INTERNAL void sc_msg_drop_new_body(struct sc_message *m);
SC_INTERNAL void sc_msg_drop_repl_body(struct sc_message *m);

#endif
