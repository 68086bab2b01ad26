"""The stores providers keep: which engine each serves (:mod:`.ownership`, ``attach``) and
how long generations are kept (:mod:`.retention`, ``prune``); whether they are whole
(:mod:`.check`) and fresh (:mod:`.status`). :mod:`.arguments` and :mod:`.commands`: the
command line of ``prune``, ``attach``, ``check`` and ``status``, their arguments (light: the
parser of every command reads them) and what they run (loaded for them only)."""
