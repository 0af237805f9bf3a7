"""Sub-commands of the ``hwsim`` CLI, one module each.

Every module here defines ``register(subparsers)`` which adds its parser and sets
``func=run`` where ``run(args) -> int`` returns an exit code from :mod:`hwsim.errors`.
Command modules only parse arguments and call the library.
"""
