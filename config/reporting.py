"""Error reports and log lines without patient data.

Every view of this app handles patient data (names, SNILS, OMS policy, birth dates, notes) and so does every
service below it, so rather than `sensitive_variables()` and `sensitive_post_parameters()` on each function (a
missed one would be a leak), the project's exception reporter filter applies what those decorators ask for
everywhere: every local variable of every frame and every POST parameter is replaced by stars, in production
and with DEBUG alike. The report keeps what a developer needs to find the fault: the exception's type, the
traceback's files, lines and code, the request's method and path.

Beyond what the decorators cover:
- the query string (`?search=Иванова`) is left out of the report's URL, its GET section and its META
  (QUERY_STRING, RAW_URI, REQUEST_URI and the Referer);
- a database error's message is withheld, in the report and in the log: PostgreSQL quotes values in it
  ("Key (snils)=(…) already exists", "Failing row contains (…)"). Its SQLSTATE, table, column and constraint
  stay.
- in the log (the web's and the Celery workers', config.celery), every exception's message is withheld, not only
  a database error's: `ValueError(f"no chart for {patient}")`, `int("Иванова")` and a KeyError of a name quote
  what they were given. The type, the chain of causes and the traceback's files, lines and code stay.
- Celery's own lines about a task (logger celery.app.trace: "Task … raised unexpected: ValueError('…')",
  "… retry: …", "… succeeded in 0.2s: <return value>") name the exception's type only and never the return value.
"""

from __future__ import annotations

import copy
import logging
import re
import sqlite3
import traceback
from collections.abc import Mapping

from django import db
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

try:  # PostgreSQL's errors, under Django's wrappers
    import psycopg
except ImportError:  # pragma: no cover - psycopg is a dependency of the project
    psycopg = None

DATABASE_ERRORS = tuple(error for error in (db.Error, sqlite3.Error, psycopg and psycopg.Error) if error)
# Request details that carry the query string or a previous page's URL (with its query string).
URL_META = {"QUERY_STRING", "RAW_URI", "REQUEST_URI", "HTTP_REFERER"}


def withheld_message(error: BaseException) -> str:
    """What may be said of a database error: the names PostgreSQL gives, never its message."""
    diag = getattr(error, "diag", None) or getattr(error.__cause__, "diag", None)
    known = []
    if diag is not None:
        for label, value in (
            ("SQLSTATE", getattr(diag, "sqlstate", None)),
            ("table", getattr(diag, "table_name", None)),
            ("column", getattr(diag, "column_name", None)),
            ("constraint", getattr(diag, "constraint_name", None)),
        ):
            if value:
                known.append(f"{label} {value}")
    names = f" ({', '.join(known)})" if known else ""
    return f"the database's message is withheld, it may quote patient data{names}"


def safe_message(error: BaseException | None) -> str | None:
    if error is None:
        return None
    if isinstance(error, DATABASE_ERRORS):
        return withheld_message(error)
    return str(error)


class PatientDataReporterFilter(SafeExceptionReporterFilter):
    """Django's filter as if every function were `sensitive_variables()` and every view
    `sensitive_post_parameters()`, whatever DEBUG says."""

    def is_active(self, request):
        return True

    def get_post_parameters(self, request):
        if request is None:
            return {}
        return {name: self.cleansed_substitute for name in request.POST}

    def get_traceback_frame_variables(self, request, tb_frame):
        return [(name, self.cleansed_substitute) for name in tb_frame.f_locals]

    def get_safe_request_meta(self, request):
        meta = super().get_safe_request_meta(request)
        return {name: self.cleansed_substitute if name in URL_META and value else value for name, value in meta.items()}


class PatientDataExceptionReporter(ExceptionReporter):
    """Django's report without the query string, and with database errors' messages withheld."""

    def _get_raw_insecure_uri(self):
        return f"{self.request.scheme}://{self.request._get_raw_host()}{self.request.path}"

    def get_traceback_data(self):
        data = super().get_traceback_data()
        if self.request is not None:
            data["request_GET_items"] = [(name, self.filter.cleansed_substitute) for name in self.request.GET]
        if self.exc_value is not None:
            data["exception_value"] = safe_message(self.exc_value)
        for frame in data.get("frames", []):
            if frame.get("exc_cause") is not None:
                frame["exc_cause"] = safe_message(frame["exc_cause"])
        return data


class PatientDataFormatter(logging.Formatter):
    """The plain log format, with no exception's message (see above) and Celery's task lines redacted."""

    def format(self, record):
        # A copy: other handlers (and a traceback text another formatter cached on the record) see the original.
        record = copy.copy(record)
        record.exc_text = None
        if record.name == CELERY_TRACE_LOGGER and isinstance(record.args, Mapping):
            record.args = _task_line_arguments(record)
        return super().format(record)

    def formatException(self, ei):  # noqa: N802 - logging.Formatter's name
        _type, error, _tb = ei
        if error is None:
            return super().formatException(ei)
        report = traceback.TracebackException(type(error), error, error.__traceback__)
        # The report mirrors the chain of causes and contexts; withhold each exception's text.
        pending, seen = [(report, error)], set()
        while pending:
            node, exc = pending.pop()
            if node is None or exc is None or id(exc) in seen:
                continue
            seen.add(id(exc))
            node._str = logged_message(exc)
            pending += [(node.__cause__, exc.__cause__), (node.__context__, exc.__context__)]
        return "".join(report.format()).rstrip("\n")


CELERY_TRACE_LOGGER = "celery.app.trace"
# "ValueError('no chart for …')" -> "ValueError": what celery.app.trace's safe_repr of an exception starts with.
_EXCEPTION_REPR = re.compile(r"^\s*([A-Za-z_][\w.]*)\(")


def logged_message(error: BaseException) -> str:
    """What the log says of an exception besides its type: a database error's names, or that it is withheld."""
    if isinstance(error, DATABASE_ERRORS):
        return withheld_message(error)
    return "the message is withheld, it may quote patient data" if str(error) else ""


def _task_line_arguments(record) -> dict:
    """celery.app.trace's arguments ({"name", "id", "exc", "return_value", ...}) with the exception reduced to its
    type and the return value left out."""
    arguments = dict(record.args)
    if "exc" in arguments:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            kind = type(error).__name__
        else:  # an expected failure or a retry: only the repr is there
            match = _EXCEPTION_REPR.match(str(arguments["exc"]))
            kind = match.group(1) if match else "an exception"
        arguments["exc"] = f"{kind} (its message is withheld, it may quote patient data)"
    if "return_value" in arguments:
        arguments["return_value"] = "(the return value is not logged)"
    return arguments
