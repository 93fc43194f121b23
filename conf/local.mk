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
