"""The base class of the errors that mean bad input or an unusable model.

Each layer raises its own subclass (``BankError``, ``BuildError``, ``EvalError``, ...); the front ends catch
:class:`UserError` and report the message without a traceback (:mod:`flows.errors`), so this module needs to know
none of them.
"""


class UserError(Exception):
    """Bad input or an unusable model: the message says what to change."""
