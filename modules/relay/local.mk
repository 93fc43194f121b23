# relay: see satchel-relay(5).
mod_LTLIBRARIES += modules/relay/relay.la
modules_relay_relay_la_SOURCES = \
	modules/relay/relay.c
modules_relay_relay_la_CPPFLAGS = $(MODULE_CPPFLAGS)
modules_relay_relay_la_CFLAGS = $(MODULE_CFLAGS)
modules_relay_relay_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_man_MANS += modules/relay/satchel-relay.5
