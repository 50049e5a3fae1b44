"""Models bigger than one box: llama.cpp's RPC backend, supervised, behind the cluster's link.

A box that lends its memory (``llm.rpc_serve``) runs ``serve`` (ggml's RPC server,
from the libggml llama-cpp-python ships) as a child bound to loopback, and
``worker.RpcWorker`` puts it behind a mutually authenticated TLS listener
(``tunnel.LinkServer``, trust from ``link``). A core that borrows
(``llm.rpc_workers``) runs ``split.SplitEngine``: it picks workers, opens a
loopback end of the link per worker (``tunnel.LocalEnd``), and runs the model in a
child (``host``), so a worker lost mid-answer (ggml aborts its whole process) never
takes the daemon down. ``placement`` turns free memory into the layer split and
reads back where llama.cpp put the layers. ``ggml`` binds the few ggml functions
used; ``process`` starts and stops the children. See docs/rpc.md.
"""
