"""Request bodies checked against the spec's request schemas, with the real service's error wording.

Every request schema is `additionalProperties: false`, so unknown keys are refused with the key as
`param`; wrong types and out-of-range values name their dotted path (`thread.messages[0].role`).
"""

from collections.abc import Callable, Mapping
from typing import Any

from .errors import bad_request

Check = Callable[[Any, str], Any]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _wrong_type(path: str, expected: str, value: Any):
    return bad_request(
        f"Invalid type for '{path}': expected {expected}, but got {_kind(value)} instead.",
        param=path,
        code="invalid_type",
    )


def _quoted_choices(choices) -> str:
    quoted = [f"'{c}'" for c in choices]
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 1 else quoted[0]


def string(*, max_length: int | None = None, choices: tuple[str, ...] | None = None) -> Check:
    def check(value, path):
        if not isinstance(value, str):
            raise _wrong_type(path, "a string", value)
        if choices is not None and value not in choices:
            raise bad_request(
                f"Invalid value: '{value}'. Supported values are: {_quoted_choices(choices)}.",
                param=path,
                code="invalid_value",
            )
        if max_length is not None and len(value) > max_length:
            raise bad_request(
                f"Invalid '{path}': string too long. Expected a string with maximum length {max_length}, "
                f"but got a string with length {len(value)} instead.",
                param=path,
                code="string_above_max_length",
            )
        return value

    return check


def boolean() -> Check:
    def check(value, path):
        if not isinstance(value, bool):
            raise _wrong_type(path, "a boolean", value)
        return value

    return check


def _bounds(value, path, minimum, maximum, noun):
    if minimum is not None and value < minimum:
        raise bad_request(
            f"Invalid '{path}': {noun} below minimum value. Expected a value >= {minimum}, "
            f"but got {value} instead.",
            param=path,
            code=f"{noun}_below_min_value",
        )
    if maximum is not None and value > maximum:
        raise bad_request(
            f"Invalid '{path}': {noun} above maximum value. Expected a value <= {maximum}, "
            f"but got {value} instead.",
            param=path,
            code=f"{noun}_above_max_value",
        )


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Check:
    def check(value, path):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(path, "an integer", value)
        _bounds(value, path, minimum, maximum, "integer")
        return value

    return check


def number(*, minimum: float | None = None, maximum: float | None = None) -> Check:
    def check(value, path):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong_type(path, "a decimal", value)
        _bounds(value, path, minimum, maximum, "decimal")
        return float(value)

    return check


def nullable(inner: Check) -> Check:
    def check(value, path):
        return None if value is None else inner(value, path)

    return check


def array(items: Check, *, max_items: int | None = None, min_items: int | None = None) -> Check:
    def check(value, path):
        if not isinstance(value, list):
            raise _wrong_type(path, "an array", value)
        if max_items is not None and len(value) > max_items:
            raise bad_request(
                f"Invalid '{path}': array too long. Expected an array with maximum length {max_items}, "
                f"but got an array with length {len(value)} instead.",
                param=path,
                code="array_above_max_length",
            )
        if min_items is not None and len(value) < min_items:
            raise bad_request(
                f"Invalid '{path}': array too short. Expected an array with minimum length {min_items}, "
                f"but got an array with length {len(value)} instead.",
                param=path,
                code="array_below_min_length",
            )
        return [items(item, f"{path}[{i}]") for i, item in enumerate(value)]

    return check


def obj(fields: Mapping[str, Check], *, required: tuple[str, ...] = (), extra: bool = False) -> Check:
    """An object with known keys; `extra=True` keeps unknown keys (free-form parts of the spec)."""

    def check(value, path):
        if not isinstance(value, dict):
            raise _wrong_type(path or "body", "an object", value)
        prefix = f"{path}." if path else ""
        for key in value:
            if key not in fields and not extra:
                raise bad_request(
                    f"Unknown parameter: '{prefix}{key}'.", param=prefix + key, code="unknown_parameter"
                )
        for key in required:
            if key not in value:
                raise bad_request(
                    f"Missing required parameter: '{prefix}{key}'.",
                    param=prefix + key,
                    code="missing_required_parameter",
                )
        checked = dict(value) if extra else {}
        for key, field in fields.items():
            if key in value:
                checked[key] = field(value[key], prefix + key)
        return checked

    return check


def tagged(variants: Mapping[str, Check], *, tag: str = "type") -> Check:
    """A union told apart by its `type` key, as the spec's tool and content-part unions are."""

    def check(value, path):
        if not isinstance(value, dict):
            raise _wrong_type(path, "an object", value)
        if tag not in value:
            raise bad_request(
                f"Missing required parameter: '{path}.{tag}'.",
                param=f"{path}.{tag}",
                code="missing_required_parameter",
            )
        string(choices=tuple(variants))(value[tag], f"{path}.{tag}")
        return variants[value[tag]](value, path)

    return check


def one_of_kinds(**by_kind: Check) -> Check:
    """A union told apart by JSON kind (a string or an array; a string or an object)."""
    expected = " or ".join(("an " if k[0] in "aoi" else "a ") + k for k in by_kind)

    def check(value, path):
        kind = _kind(value)
        if kind not in by_kind:
            raise _wrong_type(path, expected, value)
        return by_kind[kind](value, path)

    return check


def metadata() -> Check:
    def check(value, path):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _wrong_type(path, "an object", value)
        if len(value) > 16:
            raise bad_request(
                f"Invalid '{path}': too many properties. Expected an object with at most 16 properties, "
                f"but got an object with {len(value)} properties instead.",
                param=path,
                code="object_above_max_properties",
            )
        for key, item in value.items():
            if len(key) > 64:
                raise bad_request(
                    f"Invalid '{path}': metadata key too long. Expected keys with maximum length 64, "
                    f"but got a key with length {len(key)} instead.",
                    param=path,
                    code="string_above_max_length",
                )
            string(max_length=512)(item, f"{path}.{key}")
        return value

    return check


# --- The spec's request schemas ---------------------------------------------------------------------

_FUNCTION = obj(
    {
        "name": string(max_length=64),
        "description": string(),
        "parameters": obj({}, extra=True),
        "strict": nullable(boolean()),
    },
    required=("name",),
)
_RANKING_OPTIONS = obj(
    {
        "ranker": string(choices=("auto", "default_2024_08_21")),
        "score_threshold": number(minimum=0, maximum=1),
    },
    required=("score_threshold",),
)
_TOOL = tagged(
    {
        "code_interpreter": obj({"type": string()}),
        "file_search": obj(
            {
                "type": string(),
                "file_search": obj(
                    {"max_num_results": integer(minimum=1, maximum=50), "ranking_options": _RANKING_OPTIONS}
                ),
            }
        ),
        "function": obj({"type": string(), "function": _FUNCTION}, required=("function",)),
    }
)
TOOLS = array(_TOOL, max_items=20)

_FILE_IDS = array(string(), max_items=20)
_TOOL_RESOURCES = nullable(
    obj(
        {
            "code_interpreter": obj({"file_ids": _FILE_IDS}),
            "file_search": obj({"vector_store_ids": array(string(), max_items=1)}),
        }
    )
)
_CREATE_TOOL_RESOURCES = nullable(
    obj(
        {
            "code_interpreter": obj({"file_ids": _FILE_IDS}),
            "file_search": obj(
                {
                    "vector_store_ids": array(string(), max_items=1),
                    "vector_stores": array(
                        obj(
                            {
                                "file_ids": array(string()),
                                "chunking_strategy": obj({}, extra=True),
                                "metadata": metadata(),
                            }
                        ),
                        max_items=1,
                    ),
                }
            ),
        }
    )
)
_DETAIL = string(choices=("auto", "low", "high"))
_CONTENT_PART = tagged(
    {
        "text": obj({"type": string(), "text": string()}, required=("text",)),
        "image_file": obj(
            {
                "type": string(),
                "image_file": obj({"file_id": string(), "detail": _DETAIL}, required=("file_id",)),
            },
            required=("image_file",),
        ),
        "image_url": obj(
            {"type": string(), "image_url": obj({"url": string(), "detail": _DETAIL}, required=("url",))},
            required=("image_url",),
        ),
    }
)
_ATTACHMENT_TOOL = tagged(
    {"code_interpreter": obj({"type": string()}), "file_search": obj({"type": string()})}
)
CREATE_MESSAGE = obj(
    {
        "role": string(choices=("user", "assistant")),
        "content": one_of_kinds(string=string(), array=array(_CONTENT_PART, min_items=1)),
        "attachments": nullable(
            array(obj({"file_id": string(), "tools": array(_ATTACHMENT_TOOL)}, required=("file_id", "tools")))
        ),
        "metadata": metadata(),
    },
    required=("role", "content"),
)
CREATE_THREAD = obj(
    {"messages": array(CREATE_MESSAGE), "tool_resources": _CREATE_TOOL_RESOURCES, "metadata": metadata()}
)
MODIFY_THREAD = obj({"tool_resources": _TOOL_RESOURCES, "metadata": metadata()})

_TRUNCATION = nullable(
    obj(
        {"type": string(choices=("auto", "last_messages")), "last_messages": nullable(integer(minimum=1))},
        required=("type",),
    )
)
_TOOL_CHOICE = nullable(
    one_of_kinds(
        string=string(choices=("none", "auto", "required")),
        object=obj(
            {
                "type": string(choices=("function", "code_interpreter", "file_search")),
                "function": obj({"name": string()}, required=("name",)),
            },
            required=("type",),
        ),
    )
)
_RESPONSE_FORMAT = nullable(
    one_of_kinds(
        string=string(choices=("auto",)),
        object=tagged(
            {
                "text": obj({"type": string()}),
                "json_object": obj({"type": string()}),
                "json_schema": obj(
                    {
                        "type": string(),
                        "json_schema": obj(
                            {
                                "name": string(max_length=64),
                                "description": string(),
                                "schema": obj({}, extra=True),
                                "strict": nullable(boolean()),
                            },
                            required=("name",),
                        ),
                    },
                    required=("json_schema",),
                ),
            }
        ),
    )
)
_RUN_COMMON = {
    "assistant_id": string(),
    "model": nullable(string()),
    "instructions": nullable(string()),
    "tools": nullable(TOOLS),
    "metadata": metadata(),
    "temperature": nullable(number(minimum=0, maximum=2)),
    "top_p": nullable(number(minimum=0, maximum=1)),
    "stream": nullable(boolean()),
    "max_prompt_tokens": nullable(integer(minimum=256)),
    "max_completion_tokens": nullable(integer(minimum=256)),
    "truncation_strategy": _TRUNCATION,
    "tool_choice": _TOOL_CHOICE,
    "parallel_tool_calls": boolean(),
    "response_format": _RESPONSE_FORMAT,
}
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
CREATE_RUN = obj(
    {
        **_RUN_COMMON,
        "reasoning_effort": nullable(string(choices=REASONING_EFFORTS)),
        "additional_instructions": nullable(string()),
        "additional_messages": nullable(array(CREATE_MESSAGE)),
    },
    required=("assistant_id",),
)
CREATE_THREAD_AND_RUN = obj(
    {**_RUN_COMMON, "thread": CREATE_THREAD, "tool_resources": _TOOL_RESOURCES},
    required=("assistant_id",),
)
MODIFY_RUN = obj({"metadata": metadata()})
SUBMIT_TOOL_OUTPUTS = obj(
    {
        "tool_outputs": array(
            obj({"tool_call_id": string(), "output": string()}, required=("tool_call_id", "output"))
        ),
        "stream": nullable(boolean()),
    },
    required=("tool_outputs",),
)
CREATE_ASSISTANT = obj(
    {
        "model": string(),
        "name": nullable(string(max_length=256)),
        "description": nullable(string(max_length=512)),
        "instructions": nullable(string(max_length=256_000)),
        "reasoning_effort": nullable(string(choices=REASONING_EFFORTS)),
        "tools": array(_TOOL, max_items=128),
        "tool_resources": _CREATE_TOOL_RESOURCES,
        "metadata": metadata(),
        "temperature": nullable(number(minimum=0, maximum=2)),
        "top_p": nullable(number(minimum=0, maximum=1)),
        "response_format": _RESPONSE_FORMAT,
    },
    required=("model",),
)


def validate(schema: Check, body: Any) -> dict:
    return schema(body, "")
