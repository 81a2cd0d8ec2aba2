"""Errors that mean bad input or an unusable model, reported to the user without a traceback."""
from flows.bank import BankError
from flows.problem import DataError
from flows.embeddings import EmbeddingError
from flows.evaluate import EvalError
from flows.paired import PairedError
from flows.report_inputs import ReportError
from flows.schema import SchemaError
from flows.selection import SelectionError
from flows.shots import BuildError
from generators.base import BadRequestError, GenerationError

USER_ERRORS = (BankError, DataError, EmbeddingError, EvalError, PairedError, ReportError, SchemaError, SelectionError,
               BuildError, BadRequestError, GenerationError)
