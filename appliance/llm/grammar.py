"""Constrained output: OpenAI ``tools`` and ``response_format`` -> llama.cpp GBNF grammars.

A grammar keeps even a 135M model's tool calls and JSON answers syntactically
valid and matching their schemas. JSON schemas are converted with llama.cpp's
own converter (``llama_cpp.llama_grammar.json_schema_to_gbnf``); this module
decides which schema applies and how the model is told about the tools.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from appliance.llm.chat import InvalidRequest

# Tool-call argument strings without a maxLength get this one, so a tiny model cannot
# ramble inside an argument until max_tokens cuts the call in half. JSON answers
# (response_format) get none: their strings are bounded by the token budget, and an
# answer cut by it ends with finish_reason "length", as OpenAI's does.
DEFAULT_TOOL_STRING_MAX = 256
# llama.cpp expands a length bound into one grammar rule per character: a bound of a
# few thousand fails to compile (or worse). Longer bounds are tightened to this one,
# which still yields strings the schema accepts.
MAX_STRING_BOUND = 1000
MAX_TOOLS = 64
# Integer ranges up to this size are enforced by listing their values.
MAX_ENUM_RANGE = 1000
MAX_SCHEMA_BYTES = 64 * 1024
# Free text in "auto" tool mode: anything that does not open a JSON object or array.
_TEXT_RULES = 'ha-text ::= [^{[ \\t\\n] [^\\x00]*\n'
# Several calls at once (parallel_tool_calls): a JSON array of call objects.
MAX_PARALLEL_CALLS = 8
_CALLS_RULES = ('ha-calls ::= ha-call | "[" ha-ws ha-call (ha-ws "," ha-ws ha-call)'
                f'{{0,{MAX_PARALLEL_CALLS - 1}}} ha-ws "]"\n'
                'ha-ws ::= [ \\t\\n]{0,4}\n')


@dataclass(frozen=True)
class Constraint:
    """How one request's output is constrained."""

    gbnf: str
    """The grammar, root rule ``root``."""
    mode: str
    """"tools": the answer is a tool call; "auto": a tool call or text; "json": JSON text."""
    parallel: bool = False
    """Several calls may come at once, as a JSON array."""


def tool_names(tools: list[dict[str, Any]]) -> list[str]:
    """The function names of OpenAI ``tools``; InvalidRequest on a malformed entry."""
    if not isinstance(tools, list) or not tools:
        raise InvalidRequest("tools must be a non-empty list")
    if len(tools) > MAX_TOOLS:
        raise InvalidRequest(f"tools has {len(tools)} entries; at most {MAX_TOOLS} are accepted")
    names = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" \
                or not isinstance(fn, dict):
            raise InvalidRequest(f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}")
        name = fn.get("name")
        if not isinstance(name, str) or not name or len(name) > 64:
            raise InvalidRequest(f"tools[{i}].function.name must be a string of 1-64 characters")
        params = fn.get("parameters", {"type": "object"})
        if not isinstance(params, dict):
            raise InvalidRequest(f"tools[{i}].function.parameters must be a JSON schema object")
        names.append(name)
    return names


def for_tools(tools: list[dict[str, Any]], tool_choice: str | dict[str, Any] | None,
              parallel: bool = True) -> Constraint | None:
    """The constraint for a tools request, or None when tool_choice is "none".

    ``parallel`` lets the model answer with several calls (a JSON array); a choice
    that names one function allows one call of it.
    """
    names = tool_names(tools)
    choice = "auto" if tool_choice is None else tool_choice
    if choice == "none":
        return None
    chosen = names
    if isinstance(choice, dict):
        fn = choice.get("function") if choice.get("type") == "function" else None
        name = fn.get("name") if isinstance(fn, dict) else None
        if name not in names:
            raise InvalidRequest(f"tool_choice names the function {str(name)[:64]!r}, which "
                                 f"is not in tools ({', '.join(names)[:256]})",
                                 param="tool_choice")
        chosen = [name]
        parallel = False
    elif choice not in ("auto", "required"):
        raise InvalidRequest("tool_choice must be 'none', 'auto', 'required' or "
                             "{'type': 'function', 'function': {'name': ...}}",
                             param="tool_choice")
    alternatives = []
    for tool in tools:
        fn = tool["function"]
        if fn["name"] not in chosen:
            continue
        params = _bounded(fn.get("parameters") or {"type": "object"}, DEFAULT_TOOL_STRING_MAX)
        alternatives.append({"type": "object",
                             "properties": {"name": {"const": fn["name"]}, "arguments": params},
                             "required": ["name", "arguments"]})
    schema = alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}
    gbnf = _to_gbnf(schema, "tools")
    # The converter names its start rule root; rename it so root can offer more.
    gbnf = gbnf.replace("root ::=", "ha-call ::=", 1)
    calls = "ha-calls ::= ha-call\n" if not parallel else _CALLS_RULES
    if choice == "auto":
        return Constraint("root ::= ha-calls | ha-text\n" + _TEXT_RULES + calls + gbnf,
                          "auto", parallel)
    return Constraint("root ::= ha-calls\n" + calls + gbnf, "tools", parallel)


def for_response_format(response_format: dict[str, Any] | None) -> Constraint | None:
    """The constraint for ``response_format``, or None for plain text."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise InvalidRequest("response_format must be an object")
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return Constraint(_to_gbnf({"type": "object"}, "response_format"), "json")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InvalidRequest("response_format.json_schema.schema must be a JSON schema object")
        return Constraint(_to_gbnf(_bounded(schema, None), "response_format"), "json")
    raise InvalidRequest("response_format.type must be 'text', 'json_object' or 'json_schema'")


def tools_prompt(tools: list[dict[str, Any]], forced: bool, parallel: bool = False) -> str:
    """The system text telling the model which functions exist and how to call one."""
    listing = json.dumps([t["function"] for t in tools], ensure_ascii=False)
    how = ("Answer with only a JSON object" if forced else
           "To call a function, answer with only a JSON object")
    several = (" To call several functions at once, answer with a JSON array of such "
               "objects." if parallel else "")
    return (f"You can call these functions:\n{listing}\n{how} of the form "
            '{"name": <function name>, "arguments": <arguments object>}.' + several)


def parse_tool_calls(text: str, new_id: Any) -> list[dict[str, Any]]:
    """A generated call document (one object or an array) -> OpenAI ``tool_calls`` entries.

    ``new_id()`` makes each call's id. ValueError/KeyError/TypeError when it does not parse.
    """
    doc = json.loads(text)
    docs = doc if isinstance(doc, list) else [doc]
    if not docs:
        raise ValueError("an empty list of calls")
    return [{"id": new_id(), "type": "function",
             "function": {"name": str(d["name"]),
                          "arguments": json.dumps(d["arguments"], ensure_ascii=False)}}
            for d in docs]


def _to_gbnf(schema: dict[str, Any], field: str) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    text = json.dumps(schema)
    if len(text) > MAX_SCHEMA_BYTES:
        raise InvalidRequest(f"{field} schemas are {len(text)} bytes; at most "
                             f"{MAX_SCHEMA_BYTES} are accepted")
    try:
        return str(json_schema_to_gbnf(text))
    except Exception as exc:  # the converter raises bare Exceptions and KeyErrors
        raise InvalidRequest(f"{field}: unsupported JSON schema: {exc}") from None


def _bounded(schema: Any, string_max: int | None) -> Any:
    """A copy of ``schema`` that llama.cpp's grammar converter handles well.

    With ``string_max``, strings without a maxLength get that one; small integer ranges
    become enums; length bounds above MAX_STRING_BOUND are tightened to it.
    """
    if isinstance(schema, list):
        return [_bounded(s, string_max) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _bounded(v, string_max) for k, v in schema.items()}
    lo, hi = out.get("minimum"), out.get("maximum")
    if out.get("type") == "integer" and isinstance(lo, int) and isinstance(hi, int) \
            and 0 <= hi - lo < MAX_ENUM_RANGE:
        # llama.cpp's Python converter ignores integer bounds; a small range becomes an enum.
        return {"enum": list(range(lo, hi + 1))}
    if string_max is not None and out.get("type") == "string" and "maxLength" not in out \
            and "enum" not in out and "const" not in out and "pattern" not in out \
            and "format" not in out:
        out["maxLength"] = string_max
    if isinstance(out.get("maxLength"), int) and out["maxLength"] > MAX_STRING_BOUND:
        out["maxLength"] = MAX_STRING_BOUND
    if isinstance(out.get("minLength"), int) and out["minLength"] > MAX_STRING_BOUND:
        raise InvalidRequest(f"a string minLength of {out['minLength']} is not supported in "
                             f"constrained output (at most {MAX_STRING_BOUND})")
    return out
