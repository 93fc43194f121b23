/* SPDX-License-Identifier: MIT */
/*
 * core/config_listeners.c - sc_config_listeners(): the `listen` entries of
 * every instance of a generation, read from each instance's parsed config
 * through its module's key table, so any module with the smtp/pop3 shape
 * of `listen` is described without the core knowing its struct; and
 * sc_config_instances(), the instances of a generation. Loop thread.
 */
#include "core.h"

#include <arpa/inet.h>
#include <string.h>

/* key_find - the key called name in table keys, or NULL */
static const struct sc_config_key *
key_find(const struct sc_config_key *keys, const char *name,
	 enum sc_key_type type)
{
	for (; keys != NULL && keys->name != NULL; keys++)
		if (strcmp(keys->name, name) == 0 && keys->type == type)
			return keys;
	return NULL;
}

/* enum_name - the idx-th word of "a|b|c" into buf; NULL when out of range */
static const char *
enum_name(const char *values, int idx, char *buf, size_t len)
{
	const char *p = values;

	for (int i = 0; p != NULL && i < idx; i++) {
		p = strchr(p, '|');
		if (p != NULL)
			p++;
	}
	if (p == NULL || idx < 0)
		return NULL;
	size_t n = strcspn(p, "|");
	if (n == 0 || n >= len)
		return NULL;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

static unsigned
addr_port(const struct sc_sockaddr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)
			      &a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)
			      &a->ss)->sin6_port);
	return 0;
}

/* instance_listeners - fn for each entry of one instance's `listen` */
static void
instance_listeners(const struct sc_instance *inst, sc_listener_fn fn,
		   void *data)
{
	const struct sc_module *mod = inst->mh != NULL ? inst->mh->mod : NULL;
	const struct sc_config_key *lk, *ak, *mk, *tk;
	const struct sc_list *list;

	if (mod == NULL || inst->config == NULL || !inst->conf->enabled ||
	    (lk = key_find(mod->keys, "listen", SC_KEY_LIST)) == NULL ||
	    lk->sub == NULL ||
	    (ak = key_find(lk->sub, "address", SC_KEY_ADDRESS)) == NULL)
		return;
	mk = key_find(lk->sub, "mode", SC_KEY_ENUM);
	tk = key_find(lk->sub, "tls", SC_KEY_ENUM);
	list = (const struct sc_list *)(const void *)
		((const unsigned char *)inst->config + lk->offset);
	for (size_t i = 0; i < list->n; i++) {
		const unsigned char *e = (const unsigned char *)list->v +
			i * lk->sub_size;
		char mbuf[32], tbuf[32];
		struct sc_listener_info info = {
			.instance = sc_instance_name(inst),
			.module = mod->name,
			.address = (const struct sc_sockaddr *)(const void *)
				(e + ak->offset),
		};

		info.port = addr_port(info.address);
		if (mk != NULL)
			info.mode = enum_name(mk->enum_values,
					      *(const int *)(const void *)
					      (e + mk->offset), mbuf,
					      sizeof(mbuf));
		if (tk != NULL)
			info.tls = enum_name(tk->enum_values,
					     *(const int *)(const void *)
					     (e + tk->offset), tbuf,
					     sizeof(tbuf));
		fn(&info, data);
	}
}

void
sc_config_listeners(const struct sc_instance *inst, sc_listener_fn fn,
		    void *data)
{
	const struct sc_gen *gen = inst != NULL ? inst->gen : NULL;

	if (gen == NULL || fn == NULL)
		return;
	for (size_t i = 0; i < gen->inst_count; i++)
		instance_listeners(&gen->insts[i], fn, data);
}

void
sc_config_instances(const struct sc_instance *inst, sc_instance_info_fn fn,
		    void *data)
{
	const struct sc_gen *gen = inst != NULL ? inst->gen : NULL;

	if (gen == NULL || fn == NULL)
		return;
	for (size_t i = 0; i < gen->inst_count; i++) {
		const struct sc_instance *in = &gen->insts[i];
		const struct sc_module *mod = in->mh != NULL ? in->mh->mod :
			NULL;

		if (mod == NULL || !in->conf->enabled)
			continue;
		struct sc_instance_info info = {
			.instance = sc_instance_name(in),
			.module = mod->name,
			.version = mod->version != NULL ? mod->version : "",
			.file = sc_instance_file(in),
		};
		fn(&info, data);
	}
}
