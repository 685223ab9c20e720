"""Read the settings, or say in one line per mistake what is wrong with them and where.

A value comes from the environment or from the config file; a mistake names
the variable (``SPU_PORT``) or the key and the file (``port`` in spu.yaml),
so the reader knows which one to edit. Secret values are never repeated.
"""

import difflib
import os
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr, ValidationError

from proxy.preflight.problems import README_SETTINGS, ConfigurationError, Problem
from proxy.settings import (
    CONFIG_FILE_VARIABLE,
    NOT_SETTINGS,
    ConfigFileError,
    ModelRoute,
    Settings,
    setting_variables,
    unknown_environment,
)

MAX_SHOWN_VALUE_CHARS = 60


def load_settings() -> Settings:
    """``Settings()``, or ``ConfigurationError`` with every problem found in one pass."""
    problems = [_unknown_variable(name) for name in unknown_environment(os.environ)]
    try:
        settings = Settings()
    except ConfigFileError as error:
        raise ConfigurationError([_unreadable_file(error)]) from error
    except ValidationError as error:
        problems += [_invalid(details) for details in error.errors()]
        raise ConfigurationError(problems) from error
    if problems:
        raise ConfigurationError(problems)
    return settings


def _suggestion(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean {close[0]}? ({README_SETTINGS})" if close else README_SETTINGS


def _unknown_variable(name: str) -> Problem:
    known = sorted(setting_variables().keys() | NOT_SETTINGS)
    return Problem(f"unknown setting {name} in the environment", _suggestion(name.upper(), known))


def _unreadable_file(error: ConfigFileError) -> Problem:
    if error.reason == "no such file":
        fix = (
            f"check the path in {CONFIG_FILE_VARIABLE} or --config (a relative path is"
            f" read from the current directory, {os.getcwd()})"
        )
    elif error.reason.startswith("not valid YAML"):
        fix = "correct the YAML there: settings are `key: value` lines, model_list a list"
    else:
        fix = "write settings as `key: value` lines, e.g. `port: 8080`"
    return Problem(str(error), fix)


def _config_file() -> str:
    return os.environ.get(CONFIG_FILE_VARIABLE) or "the config file"


def _path(loc: tuple[int | str, ...]) -> str:
    """``model_list[2].api_format`` for pydantic's ``("model_list", 2, "api_format")``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _where(loc: tuple[int | str, ...]) -> str:
    """The variable the value came from, or the key in the config file."""
    field = str(loc[0])
    present = {name.upper() for name in os.environ}
    for variable, name in setting_variables().items():
        if field in (name, variable) and variable in present:
            return variable + _path(loc)[len(field) :]
    return f"{_path(loc)} in {_config_file()}"


def _shown(value: Any, loc: tuple[int | str, ...]) -> str:
    field = Settings.model_fields.get(str(loc[0]))
    secret = field is not None and field.annotation in (SecretStr, SecretStr | None)
    if secret or isinstance(value, dict | list) or value is None:
        return ""
    text = repr(value)
    if len(text) > MAX_SHOWN_VALUE_CHARS:
        text = text[: MAX_SHOWN_VALUE_CHARS - 1] + "…"
    return f" (got {text})"


def _invalid(details: Mapping[str, Any]) -> Problem:
    loc: tuple[int | str, ...] = tuple(details["loc"])
    if details["type"] == "extra_forbidden":
        key = str(loc[-1])
        if len(loc) == 1:
            return Problem(
                f"unknown setting {key!r} in {_config_file()}",
                _suggestion(key, sorted(Settings.model_fields)),
            )
        return Problem(
            f"unknown key {key!r} in {_path(loc[:-1])} in {_config_file()}",
            _suggestion(key, sorted(ModelRoute.model_fields)),
        )
    message = str(details["msg"]).removeprefix("Value error, ")
    return Problem(f"{_where(loc)}: {message}{_shown(details.get('input'), loc)}", README_SETTINGS)
