"""The local stack: AWS emulated on one machine around the real functions (moto, the
HTTP and WebSocket gateways, the function hosts, queue pollers, the schedule) and the
offline fake model. Never shipped to Lambda; the `agentfiles` command
(`clients/cli/agentfiles_cli`) starts it."""
