# owned by the config part of the core
# The default configuration: satchel.yaml and one plugins.d file per module
# instance, named NN-module.yaml in hook order.
dist_satchelconf_DATA = conf/satchel.yaml
dist_pluginsconf_DATA += \
	plugins.d/10-ratelimit.yaml \
	plugins.d/20-pop_before_smtp.yaml \
	plugins.d/30-auth_file.yaml \
	plugins.d/31-auth_pam.yaml \
	plugins.d/40-router.yaml \
	plugins.d/50-smtp.yaml \
	plugins.d/55-pop3.yaml \
	plugins.d/60-maildir.yaml \
	plugins.d/70-relay.yaml

# The systemd unit, with the configured paths substituted.
systemdsystemunit_DATA = conf/satcheld.service
EXTRA_DIST += conf/satcheld.service.in
CLEANFILES += conf/satcheld.service
conf/satcheld.service: conf/satcheld.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
		$(srcdir)/conf/satcheld.service.in > $@.tmp && mv $@.tmp $@
