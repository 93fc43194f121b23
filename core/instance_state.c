/* SPDX-License-Identifier: MIT */
/*
 * core/instance_state.c - instance state that survives a reload
 * (sc_instance_state_get/put, satchel/module.h).
 *
 * The core keeps each state with the instances that hold it; the newest
 * one of a module and instance name goes to a successor that asks for it,
 * and the last holder's teardown frees it. Loop thread only.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

struct sc_inst_state {
	struct sc_inst_state *next;	/* sc_core->inst_states, newest first */
	const struct sc_module *mod;	/* the loaded module code that put it */
	char *name;			/* instance name                      */
	void *ptr;
	sc_instance_state_free_fn free_fn;
	unsigned holders;
};

/* state_hold - inst holds st from now on (it held none) */
static void
state_hold(struct sc_instance *inst, struct sc_inst_state *st)
{
	st->holders++;
	inst->state = st;
}

/* state_find - the newest state of inst's module and name, or NULL */
static struct sc_inst_state *
state_find(const struct sc_instance *inst)
{
	const char *name = sc_instance_name(inst);

	for (struct sc_inst_state *st = sc_core->inst_states; st != NULL;
	     st = st->next)
		if (st->mod == inst->mh->mod && strcmp(st->name, name) == 0)
			return st;
	return NULL;
}

void *
sc_instance_state_get(struct sc_instance *inst)
{
	struct sc_inst_state *st;

	if (inst == NULL || inst->mh == NULL || sc_core == NULL)
		return NULL;
	if (inst->state != NULL)
		return inst->state->ptr;
	st = state_find(inst);
	if (st == NULL)
		return NULL;
	state_hold(inst, st);
	sc_log_debug("%s: took over the state of the previous generation",
		     sc_instance_name(inst));
	return st->ptr;
}

int
sc_instance_state_put(struct sc_instance *inst, void *state,
		      sc_instance_state_free_fn free_fn)
{
	struct sc_inst_state *st;

	if (inst == NULL || inst->mh == NULL || sc_core == NULL ||
	    state == NULL || free_fn == NULL)
		return -1;
	for (st = sc_core->inst_states; st != NULL; st = st->next)
		if (st->ptr == state)
			return -1;	/* a second owner would free it twice */
	st = calloc(1, sizeof(*st));
	if (st == NULL || (st->name = strdup(sc_instance_name(inst))) == NULL) {
		free(st);
		return -1;
	}
	st->mod = inst->mh->mod;
	st->ptr = state;
	st->free_fn = free_fn;
	sc_instance_state_release(inst);
	state_hold(inst, st);
	st->next = sc_core->inst_states;
	sc_core->inst_states = st;
	return 0;
}

/* sc_instance_state_release - the holder goes; the last one frees */
void
sc_instance_state_release(struct sc_instance *inst)
{
	struct sc_inst_state *st = inst->state, **pp;

	if (st == NULL)
		return;
	inst->state = NULL;
	if (--st->holders > 0)
		return;
	for (pp = &sc_core->inst_states; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == st) {
			*pp = st->next;
			break;
		}
	}
	st->free_fn(st->ptr);
	free(st->name);
	free(st);
}
