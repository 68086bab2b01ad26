"""The stores providers keep: which engine each serves (:mod:`.ownership`, ``attach``) and
how long generations are kept (:mod:`.retention`, ``prune``)."""
