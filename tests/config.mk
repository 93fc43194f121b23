# owned by the config part of the core
