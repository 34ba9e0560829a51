"""Request bodies checked against the vendored spec's request schemas, with the real service's error wording.

The schemas come from spec_schemas.json (built by spec_extract.py); jsonschema finds what is wrong and
this module words the first problem as the API does, naming its path as `param`
(`thread.messages[0].role`, `input[2].content[0]`). Where a value could be one of several shapes, the
shape is chosen by JSON kind, then by `type` tag, then by the fewest problems, and the problem reported is
that shape's.
"""

import functools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .errors import ApiError, bad_request

EXTRACT = json.loads((Path(__file__).resolve().parent / "spec_schemas.json").read_text())
DEFS = EXTRACT["$defs"]
URI = "urn:sandbox:spec-schemas"
_REGISTRY = Registry().with_resource(URI, Resource.from_contents(EXTRACT, DRAFT202012))

# The Responses family names a wrong tag at the tagged object (`input[4].content[0]`); the Assistants
# family at the tag itself (`tools[0].type`), as each service answers.
TAG_AT_OBJECT = {"createResponse", "createConversation", "updateConversation", "createConversationItems"}
INCLUDE_VALUES = tuple(DEFS["IncludeEnum"]["enum"])

# Unknown keys first, then missing ones, then everything else, shallowest first.
_PRIORITY = {"additionalProperties": 0, "required": 1}
_KIND_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a decimal",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
    "null": "null",
}


@functools.cache
def _validator(operation: str) -> Draft202012Validator:
    name = EXTRACT["operations"][operation]
    return Draft202012Validator({"$ref": f"{URI}#/$defs/{name}"}, registry=_REGISTRY)


def validate(operation: str, body: Any) -> dict:
    """`body` unchanged when the spec's request schema for `operation` accepts it, else a 400 ApiError."""
    errors = list(_validator(operation).iter_errors(body))
    if errors:
        first = min(errors, key=lambda e: (_PRIORITY.get(e.validator, 2), len(e.absolute_path)))
        raise _Explainer(tag_at_object=operation in TAG_AT_OBJECT).explain(first)
    return body


# --- wording ----------------------------------------------------------------------------------------


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def quoted_choices(choices) -> str:
    """'a' · 'a' and 'b' · 'a', 'b', and 'c' (the service's own punctuation)."""
    quoted = [f"'{choice}'" for choice in choices]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def path_text(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _resolve(schema: dict) -> dict:
    while isinstance(schema, dict) and set(schema) == {"$ref"}:
        schema = DEFS[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _kinds(schema: dict) -> set[str]:
    """The JSON kinds a schema can accept (every kind when it does not say)."""
    schema = _resolve(schema)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        kinds = set(types)
        if "number" in kinds:
            kinds.add("integer")
        return kinds
    if "$ref" in schema:
        return _kinds({"$ref": schema["$ref"]})
    if "anyOf" in schema:
        return set().union(*(_kinds(branch) for branch in schema["anyOf"]))
    if "enum" in schema:
        return {kind(value) for value in schema["enum"]}
    return set(_KIND_NAMES)


def _tags(schema: dict) -> set | None:
    """The `type` values an object schema allows, or None when it does not constrain `type`."""
    schema = _resolve(schema)
    if "anyOf" in schema and "properties" not in schema:
        found = [_tags(branch) for branch in schema["anyOf"]]
        if any(tags is None for tags in found):
            return None
        return set().union(*found)
    tag = _resolve(schema.get("properties", {}).get("type", {}))
    for candidate in [tag, *tag.get("anyOf", [])]:
        candidate = _resolve(candidate)
        if "enum" in candidate:
            return set(candidate["enum"])
        if "const" in candidate:
            return {candidate["const"]}
    return None


def _allows(schema: dict, tag) -> bool:
    tags = _tags(schema)
    return tags is None or tag in tags


def _missing(param: str) -> ApiError:
    return bad_request(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def _requires_tag(schema: dict) -> bool:
    schema = _resolve(schema)
    if "anyOf" in schema and "properties" not in schema:
        return all(_requires_tag(branch) for branch in schema["anyOf"])
    return "type" in schema.get("required", [])


def _ordered_tags(schemas) -> list:
    seen: list = []
    for schema in schemas:
        schema = _resolve(schema)
        branches = schema["anyOf"] if "anyOf" in schema and "properties" not in schema else [schema]
        for branch in branches:
            nested = _resolve(branch)
            if "anyOf" in nested and "properties" not in nested:
                seen += [tag for tag in _ordered_tags([nested]) if tag not in seen]
                continue
            for tag in sorted(_tags(nested) or ()):
                if tag not in seen:
                    seen.append(tag)
    return seen


def _expected(schema: dict) -> str:
    """What a `type` keyword asks for, in words: 'an array of objects', 'a decimal'."""
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    names = []
    for name in types:
        if name == "null":
            continue
        if name == "array" and isinstance(schema.get("items"), dict):
            item_kinds = _kinds(schema["items"]) - {"null"}
            if len(item_kinds) == 1 or item_kinds == {"integer", "number"}:
                item = "decimal" if "number" in item_kinds else next(iter(item_kinds))
                plural = {"string": "strings", "object": "objects", "integer": "integers"}
                names.append(f"an array of {plural.get(item, item + 's')}")
                continue
        names.append(_KIND_NAMES[name])
    if len(names) == 1:
        return names[0]
    return "one of " + " or ".join(names)


class _Explainer:
    def __init__(self, *, tag_at_object: bool):
        self.tag_at_object = tag_at_object

    def explain(self, e: ValidationError) -> ApiError:
        path = path_text(e.absolute_path)
        handler = getattr(self, f"_{e.validator}", None)
        if handler is None:
            return bad_request(f"Invalid value for '{path}'.", param=path or None, code="invalid_value")
        return handler(e, path)

    # --- unions ---------------------------------------------------------------------------------
    def _anyOf(self, e: ValidationError, path: str) -> ApiError:
        branches = e.validator_value
        value = e.instance
        candidates = [n for n, branch in enumerate(branches) if kind(value) in _kinds(branch)]
        if not candidates:
            wanted = []
            for branch in branches:
                for name in sorted(_kinds(branch) - {"null"}, key=list(_KIND_NAMES).index):
                    if name == "integer" and "number" in _kinds(branch):
                        continue
                    described = _expected({**_resolve(branch), "type": name}) if name == "array" else None
                    words = described or _KIND_NAMES[name]
                    if words not in wanted:
                        wanted.append(words)
            expected = wanted[0] if len(wanted) == 1 else "one of " + " or ".join(wanted)
            got = _KIND_NAMES[kind(value)]
            return bad_request(
                f"Invalid type for '{path}': expected {expected}, but got {got} instead.",
                param=path or None,
                code="invalid_type",
            )
        if isinstance(value, dict) and len(candidates) > 1:
            tagged = [n for n in candidates if _tags(branches[n]) is not None]
            if "type" in value and tagged:
                matching = [n for n in candidates if _allows(branches[n], value["type"])]
                if not matching:
                    allowed = _ordered_tags([branches[n] for n in tagged])
                    param = path if self.tag_at_object else _join(path, "type")
                    return bad_request(
                        f"Invalid value: '{value['type']}'. Supported values are: {quoted_choices(allowed)}.",
                        param=param,
                        code="invalid_value",
                    )
                candidates = matching
            elif "type" not in value:
                untagged = [n for n in candidates if not _requires_tag(branches[n])]
                if not untagged:
                    return _missing(_join(path, "type"))
                candidates = untagged
        by_branch = defaultdict(list)
        for sub in e.context:
            by_branch[sub.relative_schema_path[0]].append(sub)
        best = min(candidates, key=lambda n: (len(by_branch[n]), n))
        if not by_branch[best]:
            return bad_request(f"Invalid value for '{path}'.", param=path or None, code="invalid_value")
        first = min(by_branch[best], key=lambda s: (_PRIORITY.get(s.validator, 2), len(s.absolute_path)))
        return self.explain(first)

    _oneOf = _anyOf

    # --- objects --------------------------------------------------------------------------------
    def _additionalProperties(self, e: ValidationError, path: str) -> ApiError:
        known = e.schema.get("properties", {})
        key = next(k for k in e.instance if k not in known)
        param = _join(path, key)
        return bad_request(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")

    def _required(self, e: ValidationError, path: str) -> ApiError:
        key = next(k for k in e.validator_value if k not in e.instance)
        return _missing(_join(path, key))

    def _maxProperties(self, e: ValidationError, path: str) -> ApiError:
        return bad_request(
            f"Invalid '{path}': too many properties. Expected an object with at most {e.validator_value} "
            f"properties, but got an object with {len(e.instance)} properties instead.",
            param=path,
            code="object_above_max_properties",
        )

    # --- scalars --------------------------------------------------------------------------------
    def _type(self, e: ValidationError, path: str) -> ApiError:
        return bad_request(
            f"Invalid type for '{path}': expected {_expected(e.schema)}, "
            f"but got {_KIND_NAMES[kind(e.instance)]} instead.",
            param=path or None,
            code="invalid_type",
        )

    def _enum(self, e: ValidationError, path: str) -> ApiError:
        return bad_request(
            f"Invalid value: '{e.instance}'. Supported values are: {quoted_choices(e.validator_value)}.",
            param=path,
            code="invalid_value",
        )

    def _const(self, e: ValidationError, path: str) -> ApiError:
        return bad_request(
            f"Invalid value: '{e.instance}'. Supported values are: {quoted_choices([e.validator_value])}.",
            param=path,
            code="invalid_value",
        )

    def _bound(self, e: ValidationError, path: str, above: bool) -> ApiError:
        noun = "integer" if e.schema.get("type") == "integer" else "decimal"
        word, sign = ("above maximum", "<=") if above else ("below minimum", ">=")
        limit = e.validator_value
        return bad_request(
            f"Invalid '{path}': {noun} {word} value. Expected a value {sign} {limit}, "
            f"but got {e.instance} instead.",
            param=path,
            code=f"{noun}_{'above_max' if above else 'below_min'}_value",
        )

    def _minimum(self, e, path):
        return self._bound(e, path, above=False)

    def _maximum(self, e, path):
        return self._bound(e, path, above=True)

    _exclusiveMinimum = _minimum
    _exclusiveMaximum = _maximum

    def _maxLength(self, e: ValidationError, path: str) -> ApiError:
        if "propertyNames" in e.relative_schema_path:
            # A key too long: the object is named, not the key.
            return bad_request(
                f"Invalid '{path}': metadata key too long. Expected keys with maximum length "
                f"{e.validator_value}, but got a key with length {len(e.instance)} instead.",
                param=path,
                code="string_above_max_length",
            )
        return bad_request(
            f"Invalid '{path}': string too long. Expected a string with maximum length {e.validator_value}, "
            f"but got a string with length {len(e.instance)} instead.",
            param=path,
            code="string_above_max_length",
        )

    def _minLength(self, e: ValidationError, path: str) -> ApiError:
        if e.instance == "":
            return bad_request(
                f"Invalid '{path}': empty string. Expected a string with minimum length {e.validator_value}, "
                "but got an empty string instead.",
                param=path,
                code="empty_string",
            )
        return bad_request(
            f"Invalid '{path}': string too short. Expected a string with minimum length {e.validator_value}, "
            f"but got a string with length {len(e.instance)} instead.",
            param=path,
            code="string_below_min_length",
        )

    def _maxItems(self, e: ValidationError, path: str) -> ApiError:
        return bad_request(
            f"Invalid '{path}': array too long. Expected an array with maximum length {e.validator_value}, "
            f"but got an array with length {len(e.instance)} instead.",
            param=path,
            code="array_above_max_length",
        )

    def _minItems(self, e: ValidationError, path: str) -> ApiError:
        if not e.instance:
            return bad_request(
                f"Invalid '{path}': empty array. Expected an array with minimum length {e.validator_value}, "
                "but got an empty array instead.",
                param=path,
                code="empty_array",
            )
        return bad_request(
            f"Invalid '{path}': array too short. Expected an array with minimum length {e.validator_value}, "
            f"but got an array with length {len(e.instance)} instead.",
            param=path,
            code="array_below_min_length",
        )

    def _pattern(self, e: ValidationError, path: str) -> ApiError:
        return bad_request(
            f"Invalid '{path}': string does not match pattern. Expected a string that matches the pattern "
            f"'{e.validator_value}'.",
            param=path,
            code="invalid_value",
        )
