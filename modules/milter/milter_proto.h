/* SPDX-License-Identifier: MIT */
/*
 * milter_proto.h - the Sendmail milter wire protocol (version 6): command
 * and reply codes, flags, packet building and the reply parser. Pure code
 * with no core calls, shared by the module and tests/fuzz/fuzz_milter.
 * Internal to the module, never installed.
 */
#ifndef MILTER_PROTO_H
#define MILTER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MILTER_VERSION 6

/* Commands, MTA to milter (SMFIC_*) */
#define SMFIC_ABORT	'A'
#define SMFIC_BODY	'B'
#define SMFIC_CONNECT	'C'
#define SMFIC_MACRO	'D'
#define SMFIC_BODYEOB	'E'
#define SMFIC_HELO	'H'
#define SMFIC_QUIT_NC	'K'
#define SMFIC_HEADER	'L'
#define SMFIC_MAIL	'M'
#define SMFIC_EOH	'N'
#define SMFIC_OPTNEG	'O'
#define SMFIC_QUIT	'Q'
#define SMFIC_RCPT	'R'
#define SMFIC_DATA	'T'
#define SMFIC_UNKNOWN	'U'

/* Replies and actions, milter to MTA (SMFIR_*) */
#define SMFIR_ADDRCPT	'+'
#define SMFIR_DELRCPT	'-'
#define SMFIR_ADDRCPT_PAR '2'
#define SMFIR_SHUTDOWN	'4'
#define SMFIR_ACCEPT	'a'
#define SMFIR_REPLBODY	'b'
#define SMFIR_CONTINUE	'c'
#define SMFIR_DISCARD	'd'
#define SMFIR_CHGFROM	'e'
#define SMFIR_CONN_FAIL	'f'
#define SMFIR_ADDHEADER	'h'
#define SMFIR_INSHEADER	'i'
#define SMFIR_SETSYMLIST 'l'
#define SMFIR_CHGHEADER	'm'
#define SMFIR_PROGRESS	'p'
#define SMFIR_QUARANTINE 'q'
#define SMFIR_REJECT	'r'
#define SMFIR_SKIP	's'
#define SMFIR_TEMPFAIL	't'
#define SMFIR_REPLYCODE	'y'
#define SMFIR_OPTNEG	'O'

/* Actions the milter may take (SMFIF_*) */
#define SMFIF_ADDHDRS	 0x001u
#define SMFIF_CHGBODY	 0x002u
#define SMFIF_ADDRCPT	 0x004u
#define SMFIF_DELRCPT	 0x008u
#define SMFIF_CHGHDRS	 0x010u
#define SMFIF_QUARANTINE 0x020u
#define SMFIF_CHGFROM	 0x040u
#define SMFIF_ADDRCPT_PAR 0x080u
#define SMFIF_SETSYMLIST 0x100u
#define MILTER_ACTIONS	 0x1ffu	/* all of them: we apply every action */

/* Protocol steps (SMFIP_*): events not wanted, replies not sent */
#define SMFIP_NOCONNECT	 0x00000001u
#define SMFIP_NOHELO	 0x00000002u
#define SMFIP_NOMAIL	 0x00000004u
#define SMFIP_NORCPT	 0x00000008u
#define SMFIP_NOBODY	 0x00000010u
#define SMFIP_NOHDRS	 0x00000020u
#define SMFIP_NOEOH	 0x00000040u
#define SMFIP_NR_HDR	 0x00000080u
#define SMFIP_NOUNKNOWN	 0x00000100u
#define SMFIP_NODATA	 0x00000200u
#define SMFIP_SKIP	 0x00000400u
#define SMFIP_RCPT_REJ	 0x00000800u
#define SMFIP_NR_CONN	 0x00001000u
#define SMFIP_NR_HELO	 0x00002000u
#define SMFIP_NR_MAIL	 0x00004000u
#define SMFIP_NR_RCPT	 0x00008000u
#define SMFIP_NR_DATA	 0x00010000u
#define SMFIP_NR_UNKN	 0x00020000u
#define SMFIP_NR_EOH	 0x00040000u
#define SMFIP_NR_BODY	 0x00080000u
#define SMFIP_HDR_LEADSPC 0x00100000u
/* What we offer: every step may be left out or unanswered, SKIP works,
 * the header value may keep its leading space. Not RCPT_REJ (we never
 * pass refused recipients on) nor the larger body chunks. */
#define MILTER_PROTO_OFFER 0x001ff7ffu

/* Macro stages of SMFIR_SETSYMLIST and the OPTNEG macro lists */
enum milter_stage {
	MS_CONNECT = 0, MS_HELO, MS_MAIL, MS_RCPT, MS_DATA, MS_EOM, MS_EOH,
	MS_COUNT
};

/* Largest packet accepted from a milter: a body replacement chunk of
 * 64 KiB plus room, or a long header. Bigger lengths are a protocol
 * error (no milter sends more; the limit bounds our buffer). */
#define MILTER_PACKET_MAX (1024u * 1024u)
/* Body chunk size sent to milters (libmilter's MILTER_CHUNK_SIZE). */
#define MILTER_CHUNK 65535u

/* A growing output buffer of packets. oom latches. */
struct milter_buf {
	unsigned char *p;
	size_t len, cap;
	size_t start;		/* offset of the packet being built */
	bool oom;
};

void milter_buf_free(struct milter_buf *b);
/* Drops the first n bytes (sent). */
void milter_buf_consume(struct milter_buf *b, size_t n);
/* Starts a packet of command cmd; end it with milter_pkt_end. */
void milter_pkt_begin(struct milter_buf *b, char cmd);
void milter_pkt_bytes(struct milter_buf *b, const void *p, size_t n);
/* A NUL-terminated string, its NUL included. */
void milter_pkt_str(struct milter_buf *b, const char *s);
void milter_pkt_u32(struct milter_buf *b, uint32_t v);
void milter_pkt_u16(struct milter_buf *b, uint16_t v);
void milter_pkt_end(struct milter_buf *b);

/* milter_frame - is a whole packet at the start of buf? 1 with *total_r
 * (4 length bytes + payload), 0 when more bytes are needed, -1 when the
 * length is 0 or above MILTER_PACKET_MAX. */
int milter_frame(const unsigned char *buf, size_t len, size_t *total_r);

/* One reply or action, parsed. Pointers point into the packet. */
struct milter_reply {
	char cmd;
	uint32_t index;			/* INSHEADER, CHGHEADER            */
	const char *name, *value;	/* ADD/INS/CHGHEADER               */
	const char *addr, *args;	/* ADDRCPT(_PAR), DELRCPT, CHGFROM;
					 * addr without angle brackets     */
	int code;			/* REPLYCODE: 4xx or 5xx           */
	char esc[16];			/* REPLYCODE: "5.7.1" or ""        */
	const char *text;		/* REPLYCODE text, QUARANTINE reason */
	const unsigned char *data;	/* REPLBODY                        */
	size_t len;
	uint32_t version, actions, protocol;	/* OPTNEG                  */
	uint32_t stage;			/* SETSYMLIST                      */
	const char *macros[MS_COUNT];	/* OPTNEG lists, SETSYMLIST (stage) */
};

/* milter_reply_parse - parses the payload of one packet (pkt[0] is the
 * code, len >= 1). Strings are checked to end inside the packet; header
 * names and reply codes are validated; addresses lose their angle
 * brackets (written in place, which is why pkt is not const). 0, or -1
 * with *error_r saying what is wrong. */
int milter_reply_parse(unsigned char *pkt, size_t len,
		       struct milter_reply *r, const char **error_r);

/* milter_macro_wanted - is the macro name (as "j", "{daemon_name}") in the
 * space separated list (which may spell it with or without braces)? */
bool milter_macro_wanted(const char *list, const char *name);

/* Reply codes for logs ("accept", "addheader", ...). */
const char *milter_reply_name(char cmd);

#endif
