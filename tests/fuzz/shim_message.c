/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/shim_message.c - the fake core's message API
 * (satchel/message.h) as far as a protocol module uses it: fields put in
 * front of the data before its first byte (checked like the core's edit
 * functions check them), the end of data, and the envelope and outcome a
 * DATA_POST hook would have left (no module edits: the envelope as
 * begun, never discarded). The message of a tx is the tx itself.
 */

#include "shim_int.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

struct sc_message *
sc_queue_tx_message(struct sc_queue_tx *tx)
{
	FUZZ_CHECK(tx != NULL, "no queue transaction");
	return (struct sc_message *)tx;
}

int
sc_message_header_insert(struct sc_message *m, size_t index,
			 const char *name, const char *value)
{
	struct sc_queue_tx *tx = (struct sc_queue_tx *)m;
	size_t nl = strlen(name), vl = strlen(value);
	char *nd;

	(void)index;
	FUZZ_CHECK(tx->done == NULL, "header insert after the commit");
	FUZZ_CHECK(nl > 0 && strpbrk(name, ": \t\r\n") == NULL,
		   "bad field name %s", name);
	for (size_t i = 0; i < vl; i++)
		if (value[i] == '\n')
			FUZZ_CHECK(i > 0 && value[i - 1] == '\r' &&
				   (value[i + 1] == ' ' || value[i + 1] == '\t'),
				   "line break in %s that is no folding", name);
	if (tx->finished)
		return 0;	/* an edit (smtp's submission fields): checked,
				 * not rendered - the fake stores the data */
	FUZZ_CHECK(tx->len == 0, "header insert after data was written");
	/* the core puts it in front; "Name: value\r\n" */
	nd = malloc(nl + vl + 4 + 1);
	if (nd == NULL)
		abort();
	memcpy(nd, name, nl);
	memcpy(nd + nl, ": ", 2);
	memcpy(nd + nl + 2, value, vl);
	memcpy(nd + nl + 2 + vl, "\r\n", 2);
	nd[nl + vl + 4] = '\0';
	if (sc_queue_tx_write(tx, nd, nl + vl + 4) != 0) {
		free(nd);
		errno = ENOSPC;
		return -1;
	}
	free(nd);
	return 0;
}

ssize_t
sc_message_header_find(const struct sc_message *m, const char *name,
		       size_t nth)
{
	const struct sc_queue_tx *tx = (const struct sc_queue_tx *)m;
	size_t nl = strlen(name), idx = 0, i = 0;

	FUZZ_CHECK(tx->finished, "header read before the end of data");
	FUZZ_CHECK(nth >= 1, "field number %zu", nth);
	/* field starts in the header block: lines not starting with white
	 * space, up to the empty line */
	while (i < tx->len && tx->data[i] != '\r' && tx->data[i] != '\n') {
		if (tx->data[i] != ' ' && tx->data[i] != '\t') {
			if (i + nl < tx->len && tx->data[i + nl] == ':' &&
			    strncasecmp(tx->data + i, name, nl) == 0 &&
			    --nth == 0)
				return (ssize_t)idx;
			idx++;
		}
		while (i < tx->len && tx->data[i] != '\n')
			i++;
		i++;
	}
	return -1;
}

int
sc_message_finish(struct sc_message *m)
{
	struct sc_queue_tx *tx = (struct sc_queue_tx *)m;

	FUZZ_CHECK(tx->done == NULL, "finish after commit");
	FUZZ_CHECK(!tx->finished, "finish twice");
	tx->finished = true;
	if (tx->failed) {
		errno = EIO;
		return -1;
	}
	return 0;
}

bool
sc_message_discarded(const struct sc_message *m)
{
	const struct sc_queue_tx *tx = (const struct sc_queue_tx *)m;

	FUZZ_CHECK(tx->finished, "outcome read before the end of data");
	return false;
}

size_t
sc_message_rcpt_count(const struct sc_message *m)
{
	return ((const struct sc_queue_tx *)m)->nrcpt;
}

const char *
sc_message_sender(const struct sc_message *m)
{
	return ((const struct sc_queue_tx *)m)->sender;
}
