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
	core/ctl/asuser.c \
	core/ctl/request.c \
	core/ctl/modules.c \
	core/ctl/user.c \
	core/ctl/queue.c \
	core/ctl/confview.h \
	core/ctl/confview.c \
	core/ctl/connect.c \
	core/ctl/doctor.h \
	core/ctl/doctor.c \
	core/ctl/doctor_dns.c \
	core/ctl/doctor_mx.c \
	core/ctl/doctor_hostname.c \
	core/ctl/doctor_tls.c \
	core/ctl/doctor_served.c \
	core/ctl/doctor_listen.c \
	core/ctl/doctor_relay.c \
	core/ctl/doctor_limits.c \
	core/ctl/doctor_auth.c \
	core/ctl/doctor_srv.c
core_satchelctl_LDADD = core/libsatchel-core.la $(LIBCRYPT_LIBS)
core_satchelctl_LDFLAGS = -export-dynamic $(SANITIZE_LDFLAGS) \
	$(CORE_WHOLE_ARCHIVE)
