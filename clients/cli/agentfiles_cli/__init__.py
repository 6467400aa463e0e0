"""The `agentfiles` command: a client of the API (upload, ask, image, threads, ...), an
operator's commands against the table, and `serve`, which starts the local stack
(`agentfiles_local`, imported only by the commands that need it)."""
