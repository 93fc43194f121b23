# maildir: see satchel-maildir(5).
mod_LTLIBRARIES += modules/maildir/maildir.la
modules_maildir_maildir_la_SOURCES = \
	modules/maildir/maildir.c \
	modules/maildir/maildir_dirsync.c \
	modules/maildir/maildir_int.h
# The default Maildir root follows ./configure --localstatedir, like the
# core's state_dir (SC_STATEDIR).
modules_maildir_maildir_la_CPPFLAGS = $(MODULE_CPPFLAGS) \
	-DMD_DEFAULT_PATH='"$(localstatedir)/mail/vhosts/%d/%u"'
modules_maildir_maildir_la_CFLAGS = $(MODULE_CFLAGS)
modules_maildir_maildir_la_LDFLAGS = $(MODULE_LDFLAGS)
dist_man_MANS += modules/maildir/satchel-maildir.5

# Integration tests against the real daemon.
TESTS += modules/maildir/tests/test_maildir.py \
	modules/maildir/tests/test_maildir_sync.py
EXTRA_DIST += modules/maildir/tests/test_maildir.py \
	modules/maildir/tests/test_maildir_sync.py

# The system calls of a delivery (strace -ff).
TESTS += modules/maildir/tests/test_maildir_syscalls.py
EXTRA_DIST += modules/maildir/tests/test_maildir_syscalls.py
