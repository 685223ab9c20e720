"""A Responses request's ``tools`` and ``tool_choice``, as the flat function tools other APIs know.

Chat Completions and Anthropic Messages offer a model functions only, each by a
plain name. Responses has more kinds, read here once for both translations:

- ``function``: as it is.
- ``namespace``: functions grouped under a name (Codex sends its sub-agent tools
  so). Each becomes the function ``<namespace>__<name>``; a call to it goes back
  to the client as a ``function_call`` with that ``namespace``.
- ``custom``: a tool whose input is free text. It becomes a function taking one
  string, ``input``, with any grammar given in its description (the upstream
  cannot enforce one); a call goes back as a ``custom_tool_call``.
- Web search (``web_search*``): a search OpenAI runs, offered, never required,
  by Codex on every turn. Another upstream cannot run it, so the offer is left
  out and the model answers without searching; a ``tool_choice`` that forces it
  is refused.
- Every other hosted tool (file search, code interpreter, computer use, MCP,
  shell, image generation…) does work a client asked for, and is refused with a
  400 naming it rather than silently dropped.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from proxy.errors import ApiError, bad_request

NAMESPACE_SEPARATOR = "__"
WEB_SEARCH_TOOLS = frozenset(
    {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}
)
CUSTOM_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The tool's input, as text."}},
    "required": ["input"],
    "additionalProperties": False,
}
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
_MODES = ("auto", "none", "required")

ToolKind = Literal["function", "custom"]
ToolMode = Literal["auto", "none", "required"]


def unsupported(what: str, param: str) -> ApiError:
    return bad_request(
        f"{what} is not supported for this model: its upstream does not speak the Responses API.",
        param=param,
        code="unsupported_for_model",
    )


def flat_name(name: str, namespace: str | None) -> str:
    """The function name an upstream sees for a tool, namespaced or not."""
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """One function as the upstream is offered it, and what it is to the client."""

    upstream_name: str
    name: str
    namespace: str | None
    kind: ToolKind
    description: str | None
    parameters: dict[str, Any]
    strict: bool | None


@dataclass(frozen=True, slots=True)
class Tools:
    functions: tuple[FunctionTool, ...] = ()
    mode: ToolMode = "auto"
    forced: str | None = None
    """The upstream name of the one function the model must call, if the client named one."""

    def called(self, upstream_name: str) -> FunctionTool:
        """The tool a model's call names; a name it made up is passed on as a plain function."""
        for tool in self.functions:
            if tool.upstream_name == upstream_name:
                return tool
        return FunctionTool(upstream_name, upstream_name, None, "function", None, {}, None)


def read_tools(body: Mapping[str, Any]) -> Tools:
    """The request's tools and tool choice, checked; errors name the parameter."""
    raw = body.get("tools")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise bad_request("'tools' must be an array.", param="tools")
    functions: list[FunctionTool] = []
    for index, tool in enumerate(raw):
        functions.extend(_functions(tool, f"tools[{index}]"))
    seen: set[str] = set()
    for tool in functions:
        if tool.upstream_name in seen:
            raise bad_request(
                f"Two tools are both called '{tool.upstream_name}' for this model.", param="tools"
            )
        seen.add(tool.upstream_name)
    return _with_choice(tuple(functions), body.get("tool_choice"))


def _functions(tool: object, param: str) -> list[FunctionTool]:
    if not isinstance(tool, Mapping):
        raise bad_request(f"'{param}' must be an object.", param=param)
    kind = tool.get("type")
    if kind == "function" or kind == "custom":
        return [_function(tool, None, param)]
    if kind == "namespace":
        namespace = _name(tool, param)
        members = tool.get("tools")
        if not isinstance(members, list) or not members:
            raise bad_request(f"'{param}.tools' must be a non-empty array.", param=f"{param}.tools")
        return [
            _function(member, namespace, f"{param}.tools[{index}]")
            for index, member in enumerate(members)
        ]
    if kind in WEB_SEARCH_TOOLS:
        return []
    raise unsupported(f"The '{kind}' tool", param)


def _name(tool: Mapping[str, Any], param: str) -> str:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise bad_request(f"'{param}.name' must be a non-empty string.", param=f"{param}.name")
    return name


def _function(tool: object, namespace: str | None, param: str) -> FunctionTool:
    if not isinstance(tool, Mapping) or tool.get("type") not in ("function", "custom"):
        raise bad_request(f"'{param}' must be a function or custom tool.", param=param)
    name = _name(tool, param)
    description = tool.get("description")
    if description is not None and not isinstance(description, str):
        raise bad_request(f"'{param}.description' must be a string.", param=f"{param}.description")
    if tool["type"] == "custom":
        return FunctionTool(
            flat_name(name, namespace),
            name,
            namespace,
            "custom",
            _custom_description(description, tool.get("format"), param),
            CUSTOM_INPUT_SCHEMA,
            None,
        )
    parameters = tool.get("parameters")
    if parameters is None:
        parameters = _EMPTY_SCHEMA
    if not isinstance(parameters, Mapping):
        raise bad_request(f"'{param}.parameters' must be an object.", param=f"{param}.parameters")
    strict = tool.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise bad_request(f"'{param}.strict' must be a boolean.", param=f"{param}.strict")
    return FunctionTool(
        flat_name(name, namespace),
        name,
        namespace,
        "function",
        description,
        dict(parameters),
        strict,
    )


def _custom_description(description: str | None, format_: object, param: str) -> str | None:
    if format_ is None:
        return description
    if not isinstance(format_, Mapping) or format_.get("type") not in ("text", "grammar"):
        raise bad_request(f"'{param}.format' must be a text or grammar format.", param=param)
    if format_["type"] == "text":
        return description
    grammar = f"Input grammar ({format_.get('syntax')}):\n{format_.get('definition')}"
    return f"{description}\n\n{grammar}" if description else grammar


def _with_choice(functions: tuple[FunctionTool, ...], choice: object) -> Tools:
    if choice is None:
        return Tools(functions)
    if isinstance(choice, str):
        if choice not in _MODES:
            raise bad_request(
                "'tool_choice' must be 'auto', 'none', 'required' or an object.",
                param="tool_choice",
            )
        return Tools(functions, mode=choice)  # type: ignore[arg-type]
    if not isinstance(choice, Mapping):
        raise bad_request("'tool_choice' must be a string or an object.", param="tool_choice")
    kind = choice.get("type")
    if kind in ("function", "custom"):
        namespace = choice.get("namespace")
        upstream_name = flat_name(
            _name(choice, "tool_choice"), namespace if isinstance(namespace, str) else None
        )
        if all(tool.upstream_name != upstream_name for tool in functions):
            raise bad_request(
                f"'tool_choice' names '{upstream_name}', which is not in 'tools'.",
                param="tool_choice",
            )
        return Tools(functions, mode="required", forced=upstream_name)
    if kind == "allowed_tools":
        return _allowed(functions, choice)
    raise unsupported(f"A tool_choice of type '{kind}'", "tool_choice")


def _allowed(functions: tuple[FunctionTool, ...], choice: Mapping[str, Any]) -> Tools:
    """``allowed_tools`` keeps the offer to the listed functions (the others are not shown)."""
    mode = choice.get("mode", "auto")
    listed = choice.get("tools")
    if mode not in ("auto", "required") or not isinstance(listed, list):
        raise bad_request(
            "'tool_choice' allowed_tools needs a mode of 'auto' or 'required' and a 'tools' array.",
            param="tool_choice",
        )
    names: set[str] = set()
    for entry in listed:
        if not isinstance(entry, Mapping):
            raise bad_request("'tool_choice.tools' entries must be objects.", param="tool_choice")
        if entry.get("type") in WEB_SEARCH_TOOLS:
            continue
        if entry.get("type") not in ("function", "custom"):
            raise unsupported(f"An allowed tool of type '{entry.get('type')}'", "tool_choice")
        namespace = entry.get("namespace")
        names.add(
            flat_name(
                _name(entry, "tool_choice.tools"), namespace if isinstance(namespace, str) else None
            )
        )
    kept = tuple(tool for tool in functions if tool.upstream_name in names)
    return Tools(kept, mode=mode)
