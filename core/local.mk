# The core: one convenience library linked into satcheld, satchelctl and
# the unit tests, so the same code is exported to modules in each.
noinst_LTLIBRARIES += core/libsatchel-core.la
core_libsatchel_core_la_CPPFLAGS = $(CORE_CPPFLAGS)
core_libsatchel_core_la_CFLAGS = $(CORE_CFLAGS)
core_libsatchel_core_la_SOURCES = \
	core/core.h \
	core/address.c \
	core/config.c \
	core/config_check.c \
	core/config_int.h \
	core/config_keys.c \
	core/config_listeners.c \
	core/config_values.c \
	core/config_yaml.c \
	core/dns.c \
	core/dns_answer.c \
	core/dns_answer.h \
	core/event.c \
	core/hook.c \
	core/instance_state.c \
	core/log.c \
	core/message.c \
	core/message_edit.c \
	core/message_int.h \
	core/metrics.c \
	core/module.c \
	core/net_conn.c \
	core/net_int.h \
	core/net_listen.c \
	core/net_tls.c \
	core/net_tls_cert.c \
	core/net_tls_pem.c \
	core/privchild.c \
	core/privdir.c \
	core/privops.c \
	core/privsep.c \
	core/queue.c \
	core/queue_dispatch.c \
	core/queue_index.c \
	core/queue_dsn.c \
	core/queue_file.c \
	core/queue_int.h \
	core/queue_journal.c \
	core/queue_journal.h \
	core/queue_rewrite.c \
	core/queue_runner.c \
	core/queue_scan.c \
	core/queue_spare.c \
	core/route_warn.c \
	core/sasl.c \
	core/session.c \
	core/store.c \
	core/store_int.h \
	core/store_redis.c \
	core/work.c
# Relinked when the Makefile changes, so a file moved out of the list (as
# ctl.c was) leaves the archive at once instead of clashing at link time.
EXTRA_core_libsatchel_core_la_DEPENDENCIES = Makefile
core_libsatchel_core_la_LIBADD = $(LIBUV_LIBS) $(GNUTLS_LIBS) \
	$(GNUTLS_DANE_LIBS) $(YAML_LIBS) $(UNBOUND_LIBS) $(PAM_LIBS) \
	$(HIREDIS_LIBS) \
	$(LIBCRYPT_LIBS) $(LIBS)

# Modules are dlopen()ed with RTLD_NOW and may call any SC_API function, so
# the programs that load them link every object of the core archive, not
# just the ones they reference themselves (--whole-archive), and export
# them (-export-dynamic). The .la in LDADD as well gives make the
# dependency and libtool the library's own dependencies; its objects are
# then linked once. A new SC_API function needs no table anywhere.
CORE_WHOLE_ARCHIVE = \
	-Wl,--whole-archive,core/.libs/libsatchel-core.a,--no-whole-archive

sbin_PROGRAMS += core/satcheld
core_satcheld_CPPFLAGS = $(CORE_CPPFLAGS)
core_satcheld_CFLAGS = $(CORE_CFLAGS)
# ctl.c serves the control socket and reloads through main.c: daemon only.
core_satcheld_SOURCES = core/main.c core/ctl.c
core_satcheld_LDADD = core/libsatchel-core.la
core_satcheld_LDFLAGS = -export-dynamic $(SANITIZE_LDFLAGS) \
	$(CORE_WHOLE_ARCHIVE)

satchelinc_HEADERS += \
	core/include/satchel/address.h \
	core/include/satchel/config.h \
	core/include/satchel/dns.h \
	core/include/satchel/event.h \
	core/include/satchel/hook.h \
	core/include/satchel/log.h \
	core/include/satchel/message.h \
	core/include/satchel/metrics.h \
	core/include/satchel/module.h \
	core/include/satchel/net.h \
	core/include/satchel/privsep.h \
	core/include/satchel/queue.h \
	core/include/satchel/sasl.h \
	core/include/satchel/satchel.h \
	core/include/satchel/session.h \
	core/include/satchel/store.h \
	core/include/satchel/work.h
nodist_satchelinc_HEADERS += core/include/satchel/version.h
EXTRA_DIST += satchel.pc.in core/include/satchel/version.h.in
dist_man_MANS += man/satcheld.8 man/satchelctl.8 man/satchel.yaml.5 \
	man/satchel-sdk.7 man/satchel-modules.3
