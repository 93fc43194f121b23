# owned by the config part of the core
# The default configuration: satchel.yaml and one plugins.d file per module
# instance, named NN-module.yaml in hook order. A module's local.mk appends
# its plugins.d file to SATCHEL_CONF_FILES (paths relative to the source
# tree; plugins.d/* go to $(pluginsconfdir), the rest to $(satchelconfdir)).
SATCHEL_CONF_FILES = conf/satchel.yaml \
	plugins.d/10-ratelimit.yaml \
	plugins.d/20-pop_before_smtp.yaml \
	plugins.d/30-auth_file.yaml \
	plugins.d/31-auth_pam.yaml \
	plugins.d/40-router.yaml \
	plugins.d/50-smtp.yaml \
	plugins.d/55-pop3.yaml \
	plugins.d/60-maildir.yaml \
	plugins.d/70-relay.yaml \
	plugins.d/80-web.yaml
EXTRA_DIST += $(SATCHEL_CONF_FILES)

# `make install` never overwrites a config file an admin may have edited:
# a file is installed only where none exists (the next `make install`
# says which ones it kept). The pristine copies always go to
# $(confexamplesdir), to compare against after an upgrade.
confexamplesdir = $(docdir)/examples
install-conf-files:
	@for f in $(SATCHEL_CONF_FILES); do \
		b=`basename $$f`; \
		case $$f in \
		plugins.d/*) d='$(pluginsconfdir)'; e='$(confexamplesdir)/plugins.d';; \
		*) d='$(satchelconfdir)'; e='$(confexamplesdir)';; \
		esac; \
		$(MKDIR_P) "$(DESTDIR)$$d" "$(DESTDIR)$$e" || exit 1; \
		$(INSTALL_DATA) "$(srcdir)/$$f" "$(DESTDIR)$$e/$$b" || exit 1; \
		if test -e "$(DESTDIR)$$d/$$b"; then \
			cmp -s "$(srcdir)/$$f" "$(DESTDIR)$$d/$$b" || \
			echo "kept $(DESTDIR)$$d/$$b (the new default is $(DESTDIR)$$e/$$b)"; \
		else \
			echo " $(INSTALL_DATA) $$f '$(DESTDIR)$$d/$$b'"; \
			$(INSTALL_DATA) "$(srcdir)/$$f" "$(DESTDIR)$$d/$$b" || exit 1; \
		fi; \
	done

# Uninstall removes a config file only while it is still the pristine one.
uninstall-conf-files:
	@for f in $(SATCHEL_CONF_FILES); do \
		b=`basename $$f`; \
		case $$f in \
		plugins.d/*) d='$(pluginsconfdir)'; e='$(confexamplesdir)/plugins.d';; \
		*) d='$(satchelconfdir)'; e='$(confexamplesdir)';; \
		esac; \
		if cmp -s "$(srcdir)/$$f" "$(DESTDIR)$$d/$$b"; then \
			rm -f "$(DESTDIR)$$d/$$b"; \
		elif test -e "$(DESTDIR)$$d/$$b"; then \
			echo "kept $(DESTDIR)$$d/$$b (edited)"; \
		fi; \
		rm -f "$(DESTDIR)$$e/$$b"; \
	done

# The systemd unit, with the configured paths substituted.
systemdsystemunit_DATA = conf/satcheld.service
EXTRA_DIST += conf/satcheld.service.in
CLEANFILES += conf/satcheld.service
conf/satcheld.service: conf/satcheld.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
		-e 's|@localstatedir[@]|$(localstatedir)|g' \
		$(srcdir)/conf/satcheld.service.in > $@.tmp && mv $@.tmp $@

# The system user and group (systemd-sysusers) and the directories the
# unit may write (systemd-tmpfiles), both installed as satchel.conf. Below
# the prefix like the unit, so a --prefix install and distcheck stay
# self-contained; a package installs with prefix=/usr, where systemd looks
# (or: make sysusersdir=DIR tmpfilesdir=DIR).
sysusersdir = $(prefix)/lib/sysusers.d
tmpfilesdir = $(prefix)/lib/tmpfiles.d
nodist_sysusers_DATA = conf/sysusers.d/satchel.conf
nodist_tmpfiles_DATA = conf/tmpfiles.d/satchel.conf
EXTRA_DIST += conf/sysusers.d/satchel.conf.in conf/tmpfiles.d/satchel.conf.in
CLEANFILES += $(nodist_sysusers_DATA) $(nodist_tmpfiles_DATA)
conf/sysusers.d/satchel.conf: conf/sysusers.d/satchel.conf.in Makefile
conf/tmpfiles.d/satchel.conf: conf/tmpfiles.d/satchel.conf.in Makefile
conf/sysusers.d/satchel.conf conf/tmpfiles.d/satchel.conf:
	$(AM_V_GEN)$(MKDIR_P) `dirname $@` && \
	sed -e 's|@localstatedir[@]|$(localstatedir)|g' \
		$(srcdir)/$@.in > $@.tmp && mv $@.tmp $@
