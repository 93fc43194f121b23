# Fuzz targets (tests/fuzz/fuzz.h says how they work). Each TARGET is
# built as tests/fuzz/replay_TARGET, a `make check` test that runs it over
# tests/fuzz/corpus/TARGET/ with this build's compiler and sanitizers, and
# (configure --enable-fuzzing, clang) as tests/fuzz/fuzz_TARGET linked with
# libFuzzer for `make fuzz`, which runs each for FUZZ_SECONDS.
#
# Core targets link the core library. Module targets compile the module's
# own sources (the SOURCES variable in its local.mk) with tests/fuzz/shim.c,
# a small fake of the core's module API, and the pure core files they use.

FUZZ_TARGETS =
FUZZ_BINS =
FUZZ_CPP_FLAGS = $(CORE_CPPFLAGS) -I$(top_srcdir)/tests/fuzz
FUZZ_C_FLAGS = $(CORE_CFLAGS)
FUZZ_REPLAY_LD_FLAGS = $(SANITIZE_LDFLAGS)
FUZZ_LIBFUZZER_LD_FLAGS = $(SANITIZE_LDFLAGS) $(FUZZ_LDFLAGS)
FUZZ_COMMON = tests/fuzz/fuzz.h
FUZZ_REPLAY = tests/fuzz/replay.c

# address: address parse/format round trip
FUZZ_TARGETS += address
check_PROGRAMS += tests/fuzz/replay_address
TESTS += tests/fuzz/replay_address
FUZZ_BINS += tests/fuzz/fuzz_address
tests_fuzz_replay_address_SOURCES = tests/fuzz/fuzz_address.c $(FUZZ_COMMON) $(FUZZ_REPLAY)
tests_fuzz_replay_address_CPPFLAGS = $(FUZZ_CPP_FLAGS) -DFUZZ_TARGET='"address"'
tests_fuzz_replay_address_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_replay_address_LDADD = core/libsatchel-core.la
tests_fuzz_replay_address_LDFLAGS = $(FUZZ_REPLAY_LD_FLAGS)
tests_fuzz_fuzz_address_SOURCES = tests/fuzz/fuzz_address.c $(FUZZ_COMMON)
tests_fuzz_fuzz_address_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_address_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_address_LDADD = core/libsatchel-core.la
tests_fuzz_fuzz_address_LDFLAGS = $(FUZZ_LIBFUZZER_LD_FLAGS)

# sasl: base64 and SASL PLAIN
FUZZ_TARGETS += sasl
check_PROGRAMS += tests/fuzz/replay_sasl
TESTS += tests/fuzz/replay_sasl
FUZZ_BINS += tests/fuzz/fuzz_sasl
tests_fuzz_replay_sasl_SOURCES = tests/fuzz/fuzz_sasl.c $(FUZZ_COMMON) $(FUZZ_REPLAY)
tests_fuzz_replay_sasl_CPPFLAGS = $(FUZZ_CPP_FLAGS) -DFUZZ_TARGET='"sasl"'
tests_fuzz_replay_sasl_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_replay_sasl_LDADD = core/libsatchel-core.la
tests_fuzz_replay_sasl_LDFLAGS = $(FUZZ_REPLAY_LD_FLAGS)
tests_fuzz_fuzz_sasl_SOURCES = tests/fuzz/fuzz_sasl.c $(FUZZ_COMMON)
tests_fuzz_fuzz_sasl_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_sasl_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_sasl_LDADD = core/libsatchel-core.la
tests_fuzz_fuzz_sasl_LDFLAGS = $(FUZZ_LIBFUZZER_LD_FLAGS)

# message: the message API's header scan, edits and commit plan
FUZZ_TARGETS += message
check_PROGRAMS += tests/fuzz/replay_message
TESTS += tests/fuzz/replay_message
FUZZ_BINS += tests/fuzz/fuzz_message
tests_fuzz_replay_message_SOURCES = tests/fuzz/fuzz_message.c $(FUZZ_COMMON) $(FUZZ_REPLAY)
tests_fuzz_replay_message_CPPFLAGS = $(FUZZ_CPP_FLAGS) -DFUZZ_TARGET='"message"'
tests_fuzz_replay_message_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_replay_message_LDADD = core/libsatchel-core.la
tests_fuzz_replay_message_LDFLAGS = $(FUZZ_REPLAY_LD_FLAGS)
tests_fuzz_fuzz_message_SOURCES = tests/fuzz/fuzz_message.c $(FUZZ_COMMON)
tests_fuzz_fuzz_message_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_message_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_message_LDADD = core/libsatchel-core.la
tests_fuzz_fuzz_message_LDFLAGS = $(FUZZ_LIBFUZZER_LD_FLAGS)

# config: YAML config loader, every key type
FUZZ_TARGETS += config
check_PROGRAMS += tests/fuzz/replay_config
TESTS += tests/fuzz/replay_config
FUZZ_BINS += tests/fuzz/fuzz_config
tests_fuzz_replay_config_SOURCES = tests/fuzz/fuzz_config.c $(FUZZ_COMMON) $(FUZZ_REPLAY)
tests_fuzz_replay_config_CPPFLAGS = $(FUZZ_CPP_FLAGS) -DFUZZ_TARGET='"config"'
tests_fuzz_replay_config_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_replay_config_LDADD = core/libsatchel-core.la
tests_fuzz_replay_config_LDFLAGS = $(FUZZ_REPLAY_LD_FLAGS)
tests_fuzz_fuzz_config_SOURCES = tests/fuzz/fuzz_config.c $(FUZZ_COMMON)
tests_fuzz_fuzz_config_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_config_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_config_LDADD = core/libsatchel-core.la
tests_fuzz_fuzz_config_LDFLAGS = $(FUZZ_LIBFUZZER_LD_FLAGS)

# queue: queue file parser and the DSN builder
FUZZ_TARGETS += queue
check_PROGRAMS += tests/fuzz/replay_queue
TESTS += tests/fuzz/replay_queue
FUZZ_BINS += tests/fuzz/fuzz_queue
tests_fuzz_replay_queue_SOURCES = tests/fuzz/fuzz_queue.c $(FUZZ_COMMON) $(FUZZ_REPLAY)
tests_fuzz_replay_queue_CPPFLAGS = $(FUZZ_CPP_FLAGS) -DFUZZ_TARGET='"queue"'
tests_fuzz_replay_queue_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_replay_queue_LDADD = core/libsatchel-core.la
tests_fuzz_replay_queue_LDFLAGS = $(FUZZ_REPLAY_LD_FLAGS)
tests_fuzz_fuzz_queue_SOURCES = tests/fuzz/fuzz_queue.c $(FUZZ_COMMON)
tests_fuzz_fuzz_queue_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_queue_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_queue_LDADD = core/libsatchel-core.la
tests_fuzz_fuzz_queue_LDFLAGS = $(FUZZ_LIBFUZZER_LD_FLAGS)

# journal: the queue journal's segment parser (core/queue_journal.c)
FUZZ_TARGETS += journal
check_PROGRAMS += tests/fuzz/replay_journal
TESTS += tests/fuzz/replay_journal
FUZZ_BINS += tests/fuzz/fuzz_journal
tests_fuzz_replay_journal_SOURCES = tests/fuzz/fuzz_journal.c $(FUZZ_COMMON) $(FUZZ_REPLAY)
tests_fuzz_replay_journal_CPPFLAGS = $(FUZZ_CPP_FLAGS) -DFUZZ_TARGET='"journal"'
tests_fuzz_replay_journal_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_replay_journal_LDADD = core/libsatchel-core.la
tests_fuzz_replay_journal_LDFLAGS = $(FUZZ_REPLAY_LD_FLAGS)
tests_fuzz_fuzz_journal_SOURCES = tests/fuzz/fuzz_journal.c $(FUZZ_COMMON)
tests_fuzz_fuzz_journal_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_journal_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_journal_LDADD = core/libsatchel-core.la
tests_fuzz_fuzz_journal_LDFLAGS = $(FUZZ_LIBFUZZER_LD_FLAGS)

# dns: DNS answer parsing
FUZZ_TARGETS += dns
check_PROGRAMS += tests/fuzz/replay_dns
TESTS += tests/fuzz/replay_dns
FUZZ_BINS += tests/fuzz/fuzz_dns
tests_fuzz_replay_dns_SOURCES = tests/fuzz/fuzz_dns.c $(FUZZ_COMMON) $(FUZZ_REPLAY)
tests_fuzz_replay_dns_CPPFLAGS = $(FUZZ_CPP_FLAGS) -DFUZZ_TARGET='"dns"'
tests_fuzz_replay_dns_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_replay_dns_LDADD = core/libsatchel-core.la
tests_fuzz_replay_dns_LDFLAGS = $(FUZZ_REPLAY_LD_FLAGS)
tests_fuzz_fuzz_dns_SOURCES = tests/fuzz/fuzz_dns.c $(FUZZ_COMMON)
tests_fuzz_fuzz_dns_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_dns_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_dns_LDADD = core/libsatchel-core.la
tests_fuzz_fuzz_dns_LDFLAGS = $(FUZZ_LIBFUZZER_LD_FLAGS)

# alias: the router's aliases file parser
FUZZ_TARGETS += alias
check_PROGRAMS += tests/fuzz/replay_alias
TESTS += tests/fuzz/replay_alias
FUZZ_BINS += tests/fuzz/fuzz_alias
tests_fuzz_replay_alias_SOURCES = tests/fuzz/fuzz_alias.c modules/router/alias.c modules/router/alias.h $(FUZZ_COMMON) $(FUZZ_REPLAY)
tests_fuzz_replay_alias_CPPFLAGS = $(FUZZ_CPP_FLAGS) -I$(top_srcdir)/modules/router -DFUZZ_TARGET='"alias"'
tests_fuzz_replay_alias_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_replay_alias_LDADD = 
tests_fuzz_replay_alias_LDFLAGS = $(FUZZ_REPLAY_LD_FLAGS)
tests_fuzz_fuzz_alias_SOURCES = tests/fuzz/fuzz_alias.c modules/router/alias.c modules/router/alias.h $(FUZZ_COMMON)
tests_fuzz_fuzz_alias_CPPFLAGS = $(FUZZ_CPP_FLAGS) -I$(top_srcdir)/modules/router
tests_fuzz_fuzz_alias_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_alias_LDADD = 
tests_fuzz_fuzz_alias_LDFLAGS = $(FUZZ_LIBFUZZER_LD_FLAGS)

# The module targets' fake core (tests/fuzz/shim.h) and the pure core
# files it leaves real.
FUZZ_SHIM = tests/fuzz/shim.h tests/fuzz/shim_int.h tests/fuzz/shim.c \
	tests/fuzz/shim_net.c tests/fuzz/shim_hook.c tests/fuzz/shim_queue.c \
	tests/fuzz/shim_message.c \
	core/address.c core/sasl.c core/config.c core/config_keys.c \
	core/config_values.c \
	core/config_yaml.c core/config_check.c
FUZZ_SHIM_LIBS = $(YAML_LIBS)

# smtp: the SMTP session: commands, parameters, DATA/BDAT, AUTH, STARTTLS
FUZZ_TARGETS += smtp
check_PROGRAMS += tests/fuzz/replay_smtp
TESTS += tests/fuzz/replay_smtp
FUZZ_BINS += tests/fuzz/fuzz_smtp
tests_fuzz_replay_smtp_SOURCES = tests/fuzz/fuzz_smtp.c $(SMTP_MODULE_FILES) $(FUZZ_SHIM) $(FUZZ_COMMON) $(FUZZ_REPLAY)
tests_fuzz_replay_smtp_CPPFLAGS = $(FUZZ_CPP_FLAGS) -DFUZZ_TARGET='"smtp"'
tests_fuzz_replay_smtp_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_replay_smtp_LDADD = $(FUZZ_SHIM_LIBS)
tests_fuzz_replay_smtp_LDFLAGS = $(FUZZ_REPLAY_LD_FLAGS)
tests_fuzz_fuzz_smtp_SOURCES = tests/fuzz/fuzz_smtp.c $(SMTP_MODULE_FILES) $(FUZZ_SHIM) $(FUZZ_COMMON)
tests_fuzz_fuzz_smtp_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_smtp_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_smtp_LDADD = $(FUZZ_SHIM_LIBS)
tests_fuzz_fuzz_smtp_LDFLAGS = $(FUZZ_LIBFUZZER_LD_FLAGS)

# pop3: POP3 commands on a real Maildir
FUZZ_TARGETS += pop3
check_PROGRAMS += tests/fuzz/replay_pop3
TESTS += tests/fuzz/replay_pop3
FUZZ_BINS += tests/fuzz/fuzz_pop3
tests_fuzz_replay_pop3_SOURCES = tests/fuzz/fuzz_pop3.c $(POP3_MODULE_FILES) $(FUZZ_SHIM) $(FUZZ_COMMON) $(FUZZ_REPLAY)
tests_fuzz_replay_pop3_CPPFLAGS = $(FUZZ_CPP_FLAGS) -DFUZZ_TARGET='"pop3"'
tests_fuzz_replay_pop3_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_replay_pop3_LDADD = $(FUZZ_SHIM_LIBS)
tests_fuzz_replay_pop3_LDFLAGS = $(FUZZ_REPLAY_LD_FLAGS)
tests_fuzz_fuzz_pop3_SOURCES = tests/fuzz/fuzz_pop3.c $(POP3_MODULE_FILES) $(FUZZ_SHIM) $(FUZZ_COMMON)
tests_fuzz_fuzz_pop3_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_pop3_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_pop3_LDADD = $(FUZZ_SHIM_LIBS)
tests_fuzz_fuzz_pop3_LDFLAGS = $(FUZZ_LIBFUZZER_LD_FLAGS)

# relay: the relay's SMTP client: replies, EHLO keywords, the whole conversation
FUZZ_TARGETS += relay
check_PROGRAMS += tests/fuzz/replay_relay
TESTS += tests/fuzz/replay_relay
FUZZ_BINS += tests/fuzz/fuzz_relay
tests_fuzz_replay_relay_SOURCES = tests/fuzz/fuzz_relay.c $(RELAY_MODULE_FILES) $(FUZZ_SHIM) $(FUZZ_COMMON) $(FUZZ_REPLAY)
tests_fuzz_replay_relay_CPPFLAGS = $(FUZZ_CPP_FLAGS) -DFUZZ_TARGET='"relay"'
tests_fuzz_replay_relay_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_replay_relay_LDADD = $(FUZZ_SHIM_LIBS)
tests_fuzz_replay_relay_LDFLAGS = $(FUZZ_REPLAY_LD_FLAGS)
tests_fuzz_fuzz_relay_SOURCES = tests/fuzz/fuzz_relay.c $(RELAY_MODULE_FILES) $(FUZZ_SHIM) $(FUZZ_COMMON)
tests_fuzz_fuzz_relay_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_relay_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_relay_LDADD = $(FUZZ_SHIM_LIBS)
tests_fuzz_fuzz_relay_LDFLAGS = $(FUZZ_LIBFUZZER_LD_FLAGS)

# auth_file: the auth_file password file parser
FUZZ_TARGETS += auth_file
check_PROGRAMS += tests/fuzz/replay_auth_file
TESTS += tests/fuzz/replay_auth_file
FUZZ_BINS += tests/fuzz/fuzz_auth_file
tests_fuzz_replay_auth_file_SOURCES = tests/fuzz/fuzz_auth_file.c $(AUTH_FILE_MODULE_FILES) $(FUZZ_SHIM) $(FUZZ_COMMON) $(FUZZ_REPLAY)
tests_fuzz_replay_auth_file_CPPFLAGS = $(FUZZ_CPP_FLAGS) -DFUZZ_TARGET='"auth_file"'
tests_fuzz_replay_auth_file_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_replay_auth_file_LDADD = $(FUZZ_SHIM_LIBS) $(LIBCRYPT_LIBS)
tests_fuzz_replay_auth_file_LDFLAGS = $(FUZZ_REPLAY_LD_FLAGS)
tests_fuzz_fuzz_auth_file_SOURCES = tests/fuzz/fuzz_auth_file.c $(AUTH_FILE_MODULE_FILES) $(FUZZ_SHIM) $(FUZZ_COMMON)
tests_fuzz_fuzz_auth_file_CPPFLAGS = $(FUZZ_CPP_FLAGS)
tests_fuzz_fuzz_auth_file_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_auth_file_LDADD = $(FUZZ_SHIM_LIBS) $(LIBCRYPT_LIBS)
tests_fuzz_fuzz_auth_file_LDFLAGS = $(FUZZ_LIBFUZZER_LD_FLAGS)

# milter: the milter module's wire format: packet framing, reply parser
FUZZ_TARGETS += milter
check_PROGRAMS += tests/fuzz/replay_milter
TESTS += tests/fuzz/replay_milter
FUZZ_BINS += tests/fuzz/fuzz_milter
FUZZ_MILTER_FILES = modules/milter/milter_proto.c modules/milter/milter_proto.h
tests_fuzz_replay_milter_SOURCES = tests/fuzz/fuzz_milter.c $(FUZZ_MILTER_FILES) $(FUZZ_COMMON) $(FUZZ_REPLAY)
tests_fuzz_replay_milter_CPPFLAGS = $(FUZZ_CPP_FLAGS) -I$(top_srcdir)/modules/milter -DFUZZ_TARGET='"milter"'
tests_fuzz_replay_milter_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_replay_milter_LDFLAGS = $(FUZZ_REPLAY_LD_FLAGS)
tests_fuzz_fuzz_milter_SOURCES = tests/fuzz/fuzz_milter.c $(FUZZ_MILTER_FILES) $(FUZZ_COMMON)
tests_fuzz_fuzz_milter_CPPFLAGS = $(FUZZ_CPP_FLAGS) -I$(top_srcdir)/modules/milter
tests_fuzz_fuzz_milter_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_milter_LDFLAGS = $(FUZZ_LIBFUZZER_LD_FLAGS)

# web: the web module's own parsing: the emailaddress query and the
# autodiscover body; the XML and JSON escaping of its answers
FUZZ_TARGETS += web
check_PROGRAMS += tests/fuzz/replay_web
TESTS += tests/fuzz/replay_web
FUZZ_BINS += tests/fuzz/fuzz_web
FUZZ_WEB_FILES = modules/web/web_parse.c modules/web/web_int.h
tests_fuzz_replay_web_SOURCES = tests/fuzz/fuzz_web.c $(FUZZ_WEB_FILES) $(FUZZ_COMMON) $(FUZZ_REPLAY)
tests_fuzz_replay_web_CPPFLAGS = $(FUZZ_CPP_FLAGS) -I$(top_srcdir)/modules/web -DFUZZ_TARGET='"web"'
tests_fuzz_replay_web_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_replay_web_LDFLAGS = $(FUZZ_REPLAY_LD_FLAGS)
tests_fuzz_fuzz_web_SOURCES = tests/fuzz/fuzz_web.c $(FUZZ_WEB_FILES) $(FUZZ_COMMON)
tests_fuzz_fuzz_web_CPPFLAGS = $(FUZZ_CPP_FLAGS) -I$(top_srcdir)/modules/web
tests_fuzz_fuzz_web_CFLAGS = $(FUZZ_C_FLAGS)
tests_fuzz_fuzz_web_LDFLAGS = $(FUZZ_LIBFUZZER_LD_FLAGS)

EXTRA_PROGRAMS += $(FUZZ_BINS)
CLEANFILES += $(FUZZ_BINS)
EXTRA_DIST += tests/fuzz/corpus tests/fuzz/dict tests/fuzz/run-fuzz.sh

# make fuzz: every target for FUZZ_SECONDS (two at a time with make -j2);
# fails on any crash, leak, timeout or sanitizer report. Work corpora and
# crash files go to fuzz-out/TARGET/ in the build directory.
FUZZ_SECONDS = 60
if FUZZING
fuzz: $(addprefix fuzz-run-,$(FUZZ_TARGETS))
	@echo "make fuzz: $(words $(FUZZ_TARGETS)) targets ran $(FUZZ_SECONDS) s each without a finding"
fuzz-run-%: tests/fuzz/fuzz_%
	@$(SHELL) $(top_srcdir)/tests/fuzz/run-fuzz.sh $* $(FUZZ_SECONDS) \
		'$(abs_top_srcdir)'
else
fuzz:
	@echo "make fuzz needs a libFuzzer build: ../configure CC=clang --enable-fuzzing" >&2; exit 1
endif
.PHONY: fuzz
clean-local: clean-fuzz-out
clean-fuzz-out:
	rm -rf fuzz-out
.PHONY: clean-fuzz-out
