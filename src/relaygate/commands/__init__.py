"""The ``relaygate`` command's subcommands: one module per noun, each with ``register(subparsers)``.

``relaygate.cli`` imports every module by name (``cli.COMMANDS``); a module that fails to import
fails the command, it is never skipped. The modules parse arguments and print; what a command
does lives in the library (``relaygate.domains``, ``relaygate.events.endpoints``,
``relaygate.compose.library``, ``relaygate.bounces.suppressions``, ``relaygate.ops``…), where the
management API and the dashboard call the same functions. ``common`` holds what every command
shares (config, store, ``--json`` output, tables). Nothing outside ``relaygate.cli`` and this
package imports it.
"""
