"""Errors that mean bad input or an unusable model, reported to the user without a traceback.

Every layer of flows raises a subclass of :class:`flows.core.errors.UserError` for these; the model backends raise
their own.
"""
from flows.core.errors import UserError
from generators.base import BadRequestError, GenerationError

USER_ERRORS = (UserError, BadRequestError, GenerationError)
