# router: see satchel-router(5).
mod_LTLIBRARIES += modules/router/router.la
modules_router_router_la_SOURCES = \
	modules/router/router.c
modules_router_router_la_CPPFLAGS = $(MODULE_CPPFLAGS)
modules_router_router_la_CFLAGS = $(MODULE_CFLAGS)
modules_router_router_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_man_MANS += modules/router/satchel-router.5
