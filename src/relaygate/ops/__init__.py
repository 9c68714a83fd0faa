"""What an operator sees of a relaygate: the status summary of a store and its running ``serve``.

Read-only, for the command line today and the dashboard and management API next (one code path).
"""
