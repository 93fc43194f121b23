# The default configuration: satchel.yaml and one plugins.d file per module.
dist_satchelconf_DATA = conf/satchel.yaml
EXTRA_DIST += conf/dev.yaml.in
