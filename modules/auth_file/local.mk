# auth_file: see satchel-auth_file(5).
mod_LTLIBRARIES += modules/auth_file/auth_file.la
modules_auth_file_auth_file_la_SOURCES = \
	modules/auth_file/auth_file.c
modules_auth_file_auth_file_la_CPPFLAGS = $(MODULE_CPPFLAGS)
modules_auth_file_auth_file_la_CFLAGS = $(MODULE_CFLAGS)
modules_auth_file_auth_file_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_man_MANS += modules/auth_file/satchel-auth_file.5
