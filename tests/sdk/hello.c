/* SPDX-License-Identifier: MIT */
/*
 * tests/sdk/hello.c - the smallest useful third-party module, built out of
 * tree by tests/test_sdk.sh with nothing but
 *   cc -shared -fPIC $(pkg-config --cflags satchel) hello.c -o hello.so
 * It logs "<greeting>: connect from <ip>" on every connection (loop thread).
 */
#include <satchel/satchel.h>

struct hello_conf {
	char *greeting;
};

static const struct sc_config_key hello_keys[] = {
	{ "greeting", SC_KEY_STR, offsetof(struct hello_conf, greeting),
	  "hello", 0, "word logged for each connection", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

static enum sc_result
hello_connect(struct sc_hook_call *call, void *data)
{
	const struct hello_conf *conf = data;
	struct sc_session *s = sc_hook_session(call);

	sc_log_session(SC_LOG_NOTICE, s, "%s: connect from %s",
		       conf->greeting, s ? sc_session_client_ip(s) : "?");
	return SC_CONT;
}

static int
hello_new(struct sc_instance *inst, const void *config, void **data_r,
	  const char **error_r)
{
	(void)inst;
	(void)error_r;
	*data_r = (void *)config;
	return 0;
}

static int
hello_start(struct sc_instance *inst, void *data, const char **error_r)
{
	if (sc_hook_register(inst, SC_HOOK_CONNECT, hello_connect, data) < 0) {
		*error_r = "cannot register the connect hook";
		return -1;
	}
	return 0;
}

SC_MODULE(hello,
	.version = "0.0.1",
	.description = "SDK test module: logs each connection",
	.keys = hello_keys,
	.config_size = sizeof(struct hello_conf),
	.instance_new = hello_new,
	.instance_start = hello_start,
);
