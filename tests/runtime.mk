# owned by the runtime part of the core
