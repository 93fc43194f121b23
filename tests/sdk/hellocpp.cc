// SPDX-License-Identifier: MIT
/*
 * tests/sdk/hellocpp.cc - hello.c's twin in C++ (17/20), built out of tree
 * by tests/test_sdk.sh with
 *   c++ -std=c++20 -shared -fPIC $(pkg-config --cflags satchel) ...
 * It shows the public headers work from C++: C linkage for the API and the
 * descriptor, the build signature without C compound literals, designated
 * initializers naming only what the module sets. It logs
 * "<greeting> (c++): connect from <ip>" on every connection (loop thread).
 */
#include <satchel/satchel.h>

#include <string>

namespace {

struct hello_conf {
	char *greeting;
};

const struct sc_config_key hello_keys[] = {
	{ "greeting", SC_KEY_STR, offsetof(hello_conf, greeting), "hello", 0,
	  "word logged for each connection", nullptr, nullptr, 0 },
	{},
};

enum sc_result
hello_connect(struct sc_hook_call *call, void *data)
{
	const auto *conf = static_cast<const hello_conf *>(data);
	struct sc_session *s = sc_hook_session(call);
	std::string line = std::string(conf->greeting) + " (c++)";

	sc_log_session(SC_LOG_NOTICE, s, "%s: connect from %s", line.c_str(),
		       s ? sc_session_client_ip(s) : "?");
	return SC_CONT;
}

int
hello_new(struct sc_instance *, const void *config, void **data_r,
	  const char **)
{
	*data_r = const_cast<void *>(config);
	return 0;
}

int
hello_start(struct sc_instance *inst, void *data, const char **error_r)
{
	if (sc_hook_register(inst, SC_HOOK_CONNECT, hello_connect, data) < 0) {
		*error_r = "cannot register the connect hook";
		return -1;
	}
	return 0;
}

} // namespace

SC_MODULE(hellocpp,
	.version = "0.0.1",
	.description = "SDK test module in C++: logs each connection",
	.keys = hello_keys,
	.config_size = sizeof(hello_conf),
	.instance_new = hello_new,
	.instance_start = hello_start,
);
