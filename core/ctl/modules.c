/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/modules.c - `satchelctl modules [--keys]`: every module in the
 * module directory, loaded and checked as satcheld would, with its
 * version, ABI, dependencies, config keys and, when the daemon answers,
 * the hooks its instances registered. satchelctl process.
 */
#include "satchelctl.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
key_type_name(const struct sc_config_key *k)
{
	switch (k->type) {
	case SC_KEY_STR: return "string";
	case SC_KEY_PATH: return "path";
	case SC_KEY_BOOL: return "bool";
	case SC_KEY_UINT: return "uint";
	case SC_KEY_SIZE: return "size";
	case SC_KEY_DURATION: return "duration";
	case SC_KEY_RATE: return "rate";
	case SC_KEY_ENUM: return "enum";
	case SC_KEY_ADDRESS: return "address";
	case SC_KEY_CIDR_LIST: return "cidr list";
	case SC_KEY_STR_LIST: return "string list";
	case SC_KEY_DURATION_LIST: return "duration list";
	case SC_KEY_STR_MAP: return "string map";
	case SC_KEY_OBJECT: return "map";
	case SC_KEY_LIST: return "list of maps";
	}
	return "?";
}

/* print_keys - the schema, as `modules --keys` shows it */
static void
print_keys(const struct sc_config_key *keys, int depth)
{
	for (const struct sc_config_key *k = keys; k != NULL && k->name;
	     k++) {
		printf("%*s%s: %s", 4 + depth * 2, "", k->name,
		       key_type_name(k));
		if (k->type == SC_KEY_ENUM && k->enum_values != NULL)
			printf(" (%s)", k->enum_values);
		if (k->flags & SC_KEY_REQUIRED)
			printf(", required");
		else if (k->def != NULL)
			printf(", default %s", k->def);
		if (k->doc != NULL)
			printf(" - %s", k->doc);
		putchar('\n');
		if (k->sub != NULL && depth < 4)
			print_keys(k->sub, depth + 1);
	}
}

/* daemon_hooks - the lines of the running daemon's `modules` reply that
 * belong to module name, printed indented; false when none */
static bool
daemon_hooks(const char *reply, const char *name)
{
	bool any = false;
	const char *p = reply;

	while (p != NULL && *p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		const char *open = memchr(p, '(', l);
		size_t nlen = strlen(name);

		/* "INSTANCE (MODULE VERSION): hooks ..." */
		if (open != NULL && (size_t)(p + l - open) > nlen + 1 &&
		    strncmp(open + 1, name, nlen) == 0 &&
		    open[1 + nlen] == ' ') {
			const char *colon = memchr(open, ':',
						   (size_t)(p + l - open));
			printf("  instance %.*s:%.*s\n", (int)(open - p - 1), p,
			       colon ? (int)(p + l - colon - 1) : 0,
			       colon ? colon + 1 : "");
			any = true;
		}
		p = nl ? nl + 1 : NULL;
	}
	return any;
}

static int
so_filter(const struct dirent *de)
{
	size_t l = strlen(de->d_name);

	return l > 3 && strcmp(de->d_name + l - 3, ".so") == 0 &&
		de->d_name[0] != '.';
}

/* sc_ctl_modules - every *.so in module_dir: name, version, ABI, depends and,
 * when the daemon answers, the hooks each instance registered */
int
sc_ctl_modules(const struct sc_main_config *cfg, const char *module_dir,
	       bool keys)
{
	struct dirent **names;
	char *reply = NULL;
	int n, ret = 0;

	n = scandir(module_dir, &names, so_filter, alphasort);
	if (n < 0) {
		fprintf(stderr, "satchelctl: %s: %s\n", module_dir,
			strerror(errno));
		return 1;
	}
	if (cfg == NULL || sc_ctl_request(cfg, "modules", &reply) != 0) {
		free(reply);
		reply = NULL;
	}
	printf("module directory %s (satcheld ABI %u.%u)%s\n", module_dir,
	       (unsigned)SC_ABI_MAJOR, (unsigned)SC_ABI_MINOR,
	       reply ? "" : "; the daemon is not running, hooks not shown");
	for (int i = 0; i < n; i++) {
		char path[4096], stem[256], sym[300], *err = NULL;
		const struct sc_module *mod;
		void *dl;

		snprintf(stem, sizeof(stem), "%.*s",
			 (int)(strlen(names[i]->d_name) - 3),
			 names[i]->d_name);
		snprintf(path, sizeof(path), "%s/%s", module_dir,
			 names[i]->d_name);
		snprintf(sym, sizeof(sym), "sc_module_%s", stem);
		free(names[i]);
		dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (dl == NULL) {
			printf("%s: cannot load: %s\n", stem, dlerror());
			ret = 1;
			continue;
		}
		mod = dlsym(dl, sym);
		if (mod == NULL) {
			printf("%s: no symbol %s; not a satchel module\n",
			       stem, sym);
			ret = 1;
			dlclose(dl);
			continue;
		}
		if (sc_module_check(mod, stem, path, &err) < 0) {
			printf("%s: %s\n", stem, err ? err : "invalid");
			free(err);
			ret = 1;
			dlclose(dl);
			continue;
		}
		printf("%s %s (ABI %u.%u): %s\n", mod->name,
		       mod->version ? mod->version : "-", mod->abi_major,
		       mod->abi_minor,
		       mod->description ? mod->description : "");
		if (mod->depends != NULL && mod->depends[0] != NULL) {
			printf("  depends:");
			for (size_t d = 0; mod->depends[d] != NULL; d++)
				printf(" %s", mod->depends[d]);
			putchar('\n');
		}
		if (reply != NULL && !daemon_hooks(reply, mod->name))
			printf("  (not enabled in the running daemon)\n");
		if (keys) {
			printf("  keys:%s\n", mod->keys && mod->keys[0].name ?
			       "" : " none");
			print_keys(mod->keys, 0);
		}
		dlclose(dl);
	}
	free(names);
	free(reply);
	return ret;
}
