/* SPDX-License-Identifier: MIT */
/*
 * modules/auth_pam/auth_pam.c - PAM authentication backend.
 *
 * Hooks run on the event loop thread. Passwords are checked by the core's
 * privileged PAM helper (satchel/privsep.h), because the daemon itself runs
 * unprivileged; account lookups (getpwnam_r, which may ask NSS over the
 * network) run on the libuv thread pool. A login is first checked against
 * deny_users and min_uid (so root@domain never reaches PAM); a refused one
 * is answered like a wrong password, after a delay like PAM's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include <satchel/satchel.h>

#define AP_USER_MAX	256
#define AP_PASSWORD_MAX	1024
/* A refusal without PAM waits about as long as pam_unix's fail delay (2 s,
 * which PAM spreads by up to half either way, mostly much less; we draw
 * from 1.5-2.5 s), so the time does not tell it from a wrong password. */
#define AP_REFUSE_DELAY_MS	2000u

struct ap_conf {
	char *service;
	bool strip_domain;
	uint64_t min_uid;
	struct sc_str_list deny_users;
};

static const struct sc_config_key ap_keys[] = {
	{ "service", SC_KEY_STR, offsetof(struct ap_conf, service), "satchel",
	  0, "the PAM service name (/etc/pam.d/NAME)", NULL, NULL, 0 },
	{ "strip_domain", SC_KEY_BOOL, offsetof(struct ap_conf, strip_domain),
	  "true", 0, "log in user@domain as the PAM user `user`", NULL, NULL,
	  0 },
	{ "min_uid", SC_KEY_UINT, offsetof(struct ap_conf, min_uid), "1000",
	  0, "refuse PAM users whose uid is below this (system accounts)",
	  NULL, NULL, 0 },
	{ "deny_users", SC_KEY_STR_LIST, offsetof(struct ap_conf, deny_users),
	  "[root]", 0, "PAM users never logged in, whatever their uid", NULL,
	  NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 },
};

struct ap_data {
	struct sc_instance *inst;
	char *service;
	bool strip_domain;
	uint64_t min_uid;
	char **deny;		/* deny_users, NULL-terminated */
};

/* One authentication in flight: the account check on the pool, then the
 * PAM helper, or the refusal timer. */
struct ap_auth {
	struct ap_data *d;
	struct sc_hook_call *call;
	char *user;		/* as the client gave it */
	char pam_user[AP_USER_MAX + 1];
	struct sc_timer *timer;	/* a refusal's delay */
	/* set by the pool job */
	bool found;		/* NSS knows the PAM user */
	uid_t uid;
	char canon[AP_USER_MAX + 1];	/* its pw_name */
};

/* One account lookup in flight. */
struct ap_account {
	struct sc_hook_call *call;
	char *name;
	bool found;
};

/* ap_name_ok - a name we are willing to hand to PAM or NSS */
static bool
ap_name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > AP_USER_MAX || name[0] == '-')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= ' ' || c == 0x7f || c == ':' || c == '/')
			return false;
	}
	return true;
}

/* ap_pam_user - the PAM user for a login name, in buf; false when the
 * name is not ours (a domain we do not serve, or an unusable name) */
static bool
ap_pam_user(const struct ap_data *d, const char *login, char *buf,
	    size_t size)
{
	const char *at = strrchr(login, '@');

	if (d->strip_domain && at != NULL) {
		size_t ll = (size_t)(at - login);

		/* Only our own domains: alice@elsewhere is not the local
		 * unix user alice. */
		if (sc_config_domain_routing(at + 1) == SC_ROUTING_NONE ||
		    ll == 0 || ll >= size)
			return false;
		memcpy(buf, login, ll);
		buf[ll] = '\0';
	} else {
		if (strlen(login) >= size)
			return false;
		strcpy(buf, login);
	}
	return ap_name_ok(buf);
}

static void
ap_auth_free(struct ap_auth *a)
{
	sc_timer_free(&a->timer);
	free(a->user);
	free(a);
}

/* ap_denied_name - is name in deny_users? */
static bool
ap_denied_name(const struct ap_data *d, const char *name)
{
	for (char **p = d->deny; p != NULL && *p != NULL; p++) {
		if (strcmp(*p, name) == 0)
			return true;
	}
	return false;
}

/* ap_getpw - getpwnam_r with a buffer that grows (pool thread); true when
 * found, with the uid and pw_name */
static bool
ap_getpw(const char *name, uid_t *uid_r, char *canon, size_t canon_size)
{
	struct passwd pw, *res = NULL;
	long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t bsize = sz > 0 ? (size_t)sz : 16384;
	bool found = false;
	char *buf;
	int r;

	for (;;) {
		buf = malloc(bsize);
		if (buf == NULL)
			return false;
		r = getpwnam_r(name, &pw, buf, bsize, &res);
		if (r == 0 && res != NULL) {
			found = true;
			*uid_r = pw.pw_uid;
			if (canon != NULL)
				snprintf(canon, canon_size, "%s", pw.pw_name);
		}
		free(buf);
		if (r != ERANGE || bsize >= 1024 * 1024)
			break;
		bsize *= 2;
	}
	return found;
}

/* ap_auth_done - the helper's answer, on the loop */
static void
ap_auth_done(void *arg, enum sc_pam_status status, const char *reason)
{
	struct ap_auth *a = arg;
	struct sc_session *s = sc_hook_session(a->call);

	switch (status) {
	case SC_PAM_OK:
		sc_auth_set_user(a->call, a->user);
		sc_hook_done(a->call, SC_OK);
		break;
	case SC_PAM_DENIED:
		/* PAM's reason goes to the log only; the client sees the
		 * protocol's plain "credentials invalid". */
		sc_log_session(SC_LOG_NOTICE, s, "auth_pam: PAM denied %s: %s",
			       a->user, reason != NULL ? reason : "?");
		sc_hook_done(a->call, SC_DENY);
		break;
	default:
		sc_log_session(SC_LOG_ERROR, s, "auth_pam: PAM error for %s: "
			       "%s", a->user, reason != NULL ? reason : "?");
		sc_reply_set(a->call, 454, "4.7.0",
			     "Temporary authentication failure");
		sc_hook_done(a->call, SC_DENYSOFT);
		break;
	}
	ap_auth_free(a);
}

/* ap_refuse_fire - a refused login's delay is over: a plain failure */
static void
ap_refuse_fire(struct sc_timer *t, void *arg)
{
	struct ap_auth *a = arg;

	(void)t;
	sc_hook_done(a->call, SC_DENY);
	ap_auth_free(a);
}

/* ap_refuse - answers like a wrong password, after a delay like PAM's */
static void
ap_refuse(struct ap_auth *a, const char *why)
{
	uint32_t r = 0;
	uint64_t ms;

	sc_log_session(SC_LOG_NOTICE, sc_hook_session(a->call),
		       "auth_pam: refused %s (PAM user %s): %s; PAM not asked",
		       a->user, a->pam_user, why);
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = 0;
	ms = AP_REFUSE_DELAY_MS * 3 / 4 + r % (AP_REFUSE_DELAY_MS / 2 + 1);
	a->timer = sc_timer_new(ap_refuse_fire, a);
	if (a->timer == NULL) {
		sc_hook_done(a->call, SC_DENY);
		ap_auth_free(a);
		return;
	}
	sc_timer_start(a->timer, ms, 0);
}

/* ap_check_work - pool thread: the PAM user's uid (getpwnam_r may ask a
 * directory server) */
static void
ap_check_work(void *arg)
{
	struct ap_auth *a = arg;

	a->found = ap_getpw(a->pam_user, &a->uid, a->canon,
			    sizeof(a->canon));
}

/* ap_check_done - loop: refuse a system or denied account, else ask PAM.
 * A user NSS does not know goes to PAM too (it has no uid to check, and
 * PAM answers it like a wrong password, after the same delay). */
static void
ap_check_done(void *arg)
{
	struct ap_auth *a = arg;
	struct ap_data *d = a->d;
	const struct sc_auth_request *req = sc_hook_arg(a->call);
	char why[AP_USER_MAX + 64];

	if (req == NULL || req->password == NULL) {
		/* the session went away meanwhile */
		sc_hook_done(a->call, SC_DENY);
		ap_auth_free(a);
		return;
	}
	if (a->found && ap_denied_name(d, a->canon)) {
		snprintf(why, sizeof(why), "%s is in deny_users", a->canon);
		ap_refuse(a, why);
		return;
	}
	if (a->found && (uint64_t)a->uid < d->min_uid) {
		snprintf(why, sizeof(why), "uid %lu is below min_uid %llu",
			 (unsigned long)a->uid,
			 (unsigned long long)d->min_uid);
		ap_refuse(a, why);
		return;
	}
	if (sc_pam_authenticate(d->service, a->pam_user, req->password,
				ap_auth_done, a) < 0) {
		sc_log_session(SC_LOG_ERROR, sc_hook_session(a->call),
			       "auth_pam: the PAM helper is not running");
		sc_reply_set(a->call, 454, "4.7.0",
			     "Temporary authentication failure");
		sc_hook_done(a->call, SC_DENYSOFT);
		ap_auth_free(a);
	}
}

/* ap_auth - SC_HOOK_AUTH: check the account, then ask the PAM helper */
static enum sc_result
ap_auth(struct sc_hook_call *call, void *data)
{
	struct ap_data *d = data;
	const struct sc_auth_request *req = sc_hook_arg(call);
	struct ap_auth *a;

	if (req == NULL || req->user == NULL || req->password == NULL)
		return SC_CONT;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		goto soft;
	if (!ap_pam_user(d, req->user, a->pam_user, sizeof(a->pam_user))) {
		free(a);
		return SC_CONT;
	}
	if (strlen(req->password) > AP_PASSWORD_MAX) {
		free(a);
		return SC_DENY;
	}
	if ((a->user = strdup(req->user)) == NULL) {
		free(a);
		goto soft;
	}
	a->d = d;
	a->call = call;
	if (ap_denied_name(d, a->pam_user)) {
		/* no need to look it up: refused by name */
		ap_refuse(a, "in deny_users");
		return SC_PENDING;
	}
	if (sc_work_submit_inst(d->inst, ap_check_work, ap_check_done,
				a) < 0) {
		ap_auth_free(a);
		goto soft;
	}
	return SC_PENDING;
soft:
	sc_reply_set(call, 454, "4.7.0", "Temporary authentication failure");
	return SC_DENYSOFT;
}

/* ap_account_work - pool thread: does the unix account exist? */
static void
ap_account_work(void *arg)
{
	struct ap_account *a = arg;
	uid_t uid;

	a->found = ap_getpw(a->name, &uid, NULL, 0);
}

static void
ap_account_done(void *arg)
{
	struct ap_account *a = arg;

	sc_hook_done(a->call, a->found ? SC_OK : SC_CONT);
	free(a->name);
	free(a);
}

/* ap_account - SC_HOOK_ACCOUNT: a local domain's mailbox exists when a
 * unix account of that name does */
static enum sc_result
ap_account(struct sc_hook_call *call, void *data)
{
	struct ap_data *d = data;
	const struct sc_account_request *req = sc_hook_arg(call);
	struct ap_account *a;
	const char *name;

	if (req == NULL || req->address == NULL || req->domain == NULL ||
	    sc_config_domain_routing(req->domain) != SC_ROUTING_LOCAL)
		return SC_CONT;
	name = d->strip_domain ? req->local_part : req->address;
	if (name == NULL || !ap_name_ok(name))
		return SC_CONT;
	a = calloc(1, sizeof(*a));
	if (a == NULL || (a->name = strdup(name)) == NULL) {
		free(a);
		return SC_CONT;
	}
	a->call = call;
	if (sc_work_submit_inst(d->inst, ap_account_work,
				ap_account_done, a) < 0) {
		free(a->name);
		free(a);
		return SC_CONT;
	}
	return SC_PENDING;
}

static void
ap_data_free(struct ap_data *d)
{
	if (d == NULL)
		return;
	for (char **p = d->deny; p != NULL && *p != NULL; p++)
		free(*p);
	free(d->deny);
	free(d->service);
	free(d);
}

static int
ap_instance_new(struct sc_instance *inst, const void *config, void **data_r,
		const char **error_r)
{
	const struct ap_conf *conf = config;
	const char *svc = conf->service != NULL ? conf->service : "satchel";
	struct ap_data *d;

	if (*svc == '\0' || strlen(svc) > 64 || strchr(svc, '/') != NULL ||
	    svc[0] == '.') {
		*error_r = "auth_pam: service must be a file name under "
			   "/etc/pam.d (at most 64 characters)";
		return -1;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->service = strdup(svc)) == NULL) {
		free(d);
		*error_r = "auth_pam: out of memory";
		return -1;
	}
	d->inst = inst;
	d->strip_domain = conf->strip_domain;
	d->min_uid = conf->min_uid;
	d->deny = calloc(conf->deny_users.n + 1, sizeof(*d->deny));
	if (d->deny == NULL)
		goto nomem;
	for (size_t i = 0; i < conf->deny_users.n; i++) {
		if ((d->deny[i] = strdup(conf->deny_users.v[i])) == NULL)
			goto nomem;
	}
	*data_r = d;
	return 0;
nomem:
	ap_data_free(d);
	*error_r = "auth_pam: out of memory";
	return -1;
}

static int
ap_instance_start(struct sc_instance *inst, void *data, const char **error_r)
{
	struct ap_data *d = data;

	if (sc_hook_register(inst, SC_HOOK_AUTH, ap_auth, d) < 0 ||
	    sc_hook_register(inst, SC_HOOK_ACCOUNT, ap_account, d) < 0) {
		*error_r = "auth_pam: cannot register hooks";
		return -1;
	}
	if (access("/etc/pam.d", F_OK) == 0) {
		char path[128];

		snprintf(path, sizeof(path), "/etc/pam.d/%s", d->service);
		if (access(path, F_OK) != 0)
			sc_log_warning("auth_pam %s: %s does not exist; PAM "
				       "will use its \"other\" service",
				       sc_instance_name(inst), path);
	}
	return 0;
}

static void
ap_instance_free(struct sc_instance *inst, void *data)
{
	struct ap_data *d = data;

	(void)inst;
	ap_data_free(d);
}

SC_MODULE(auth_pam,
	.version = "1.0",
	.description = "PAM authentication backend (via the privileged "
		       "helper)",
	.keys = ap_keys,
	.config_size = sizeof(struct ap_conf),
	.instance_new = ap_instance_new,
	.instance_start = ap_instance_start,
	.instance_free = ap_instance_free);
