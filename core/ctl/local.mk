# satchelctl, the admin tool: its own program, built from core/ctl/ and
# linked with the core library for the config loader (sc_main_config_load,
# sc_gen_build) and the modules it lists. It stays core/satchelctl in the
# build tree, beside satcheld. CORE_WHOLE_ARCHIVE: see core/local.mk.
sbin_PROGRAMS += core/satchelctl
core_satchelctl_CPPFLAGS = $(CORE_CPPFLAGS)
core_satchelctl_CFLAGS = $(CORE_CFLAGS) $(LIBCRYPT_CFLAGS)
core_satchelctl_SOURCES = \
	core/ctl/satchelctl.h \
	core/ctl/satchelctl.c \
	core/ctl/user.c \
	core/ctl/queue.c \
	core/ctl/diag.c
core_satchelctl_LDADD = core/libsatchel-core.la $(LIBCRYPT_LIBS)
core_satchelctl_LDFLAGS = -export-dynamic $(SANITIZE_LDFLAGS) \
	$(CORE_WHOLE_ARCHIVE)
