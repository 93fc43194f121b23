# owned by the net part of the core
