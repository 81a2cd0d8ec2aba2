"""Errors that mean bad input or an unusable model, reported to the user without a traceback."""
from flows.runtime.banks import BankError
from flows.core.problem import DataError
from flows.evaluate.embeddings import EmbeddingError
from flows.evaluate.flow import EvalError
from flows.report.inputs import ReportError
from flows.core.schema import SchemaError
from flows.evaluate.shot_selection import SelectionError
from flows.build.rounds import BuildError
from generators.base import BadRequestError, GenerationError

USER_ERRORS = (BankError, DataError, EmbeddingError, EvalError, ReportError, SchemaError, SelectionError, BuildError,
               BadRequestError, GenerationError)
