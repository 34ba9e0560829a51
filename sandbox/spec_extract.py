"""Builds spec_schemas.json: the request-body schemas of the vendored OpenAI spec that the sandbox validates.

Parsing the 3 MB YAML on every start is too slow, so the schemas the sandbox needs are extracted once into
a compact JSON Schema document (`manage.py sandbox_spec_extract`; a test fails when the committed file
differs from a fresh extract). The extract is the spec's meaning, translated, plus a short list of
amendments, each with its reason:

- Only the request bodies of the operations in OPERATIONS (and what they reference) are kept, without
  descriptions, examples, defaults, formats or vendor keys.
- OpenAPI's `nullable: true` (also as `allOf: [X, {nullable: true}]`) becomes `anyOf: [X, {type: null}]`.
- `oneOf` becomes `anyOf`: the spec's unions overlap (a user message is both an EasyInputMessage and an
  InputMessage), and the service accepts a value any branch accepts.
- `allOf` of objects is merged into one object, so it can be closed (next point).
- Objects that list their `properties` and say nothing about others are closed
  (`additionalProperties: false`): the service refuses unknown parameters, however deep
  ("Unknown parameter: 'tools[0].container.files'."). Objects without listed properties stay open.
- A closed object's `required` names that are not among its properties are spec slips
  (MCPApprovalResponse requires an undeclared `request_id`) and are dropped.
- `$recursiveRef: "#"` points at the schema it is written in.
"""

import copy
import hashlib
import json
from pathlib import Path

SANDBOX_DIR = Path(__file__).resolve().parent
DEFAULT_SPEC = SANDBOX_DIR.parent / "tests" / "sandbox" / "spec" / "openai-openapi.yaml"
EXTRACT_PATH = SANDBOX_DIR / "spec_schemas.json"

# The request bodies the sandbox validates: operationId → (method, path) in the spec.
OPERATIONS = {
    "createAssistant": ("post", "/assistants"),
    "createThread": ("post", "/threads"),
    "modifyThread": ("post", "/threads/{thread_id}"),
    "createMessage": ("post", "/threads/{thread_id}/messages"),
    "createRun": ("post", "/threads/{thread_id}/runs"),
    "createThreadAndRun": ("post", "/threads/runs"),
    "modifyRun": ("post", "/threads/{thread_id}/runs/{run_id}"),
    "cancelRun": ("post", "/threads/{thread_id}/runs/{run_id}/cancel"),
    "submitToolOuputsToRun": ("post", "/threads/{thread_id}/runs/{run_id}/submit_tool_outputs"),
    "createResponse": ("post", "/responses"),
    "cancelResponse": ("post", "/responses/{response_id}/cancel"),
    "createConversation": ("post", "/conversations"),
    "updateConversation": ("post", "/conversations/{conversation_id}"),
    "createConversationItems": ("post", "/conversations/{conversation_id}/items"),
}
# Schemas the sandbox reads directly, beside the request bodies (the values of `include`).
EXTRA_SCHEMAS = ["IncludeEnum"]
# An operation without a request body accepts an empty object only.
EMPTY_BODY = {"type": "object", "additionalProperties": False}

ANNOTATIONS = {
    "description",
    "title",
    "example",
    "examples",
    "deprecated",
    "default",
    "format",
    "discriminator",
    "readOnly",
    "writeOnly",
    "externalDocs",
    "$recursiveAnchor",
}
PREFIX = "#/components/schemas/"


def _amend_metadata(defs: dict) -> str:
    defs["Metadata"] = {
        "anyOf": [
            {
                "type": "object",
                "maxProperties": 16,
                "propertyNames": {"type": "string", "maxLength": 64},
                "additionalProperties": {"type": "string", "maxLength": 512},
            },
            {"type": "null"},
        ]
    }
    return (
        "Metadata: at most 16 keys of at most 64 characters, string values of at most 512, as its "
        "description says and as the spec itself encodes the same sentence in VectorStoreFileAttributes."
    )


def _amend_tool_outputs(defs: dict) -> str:
    item = defs["SubmitToolOutputsRunRequest"]["properties"]["tool_outputs"]["items"]
    item["required"] = ["tool_call_id", "output"]
    return (
        "SubmitToolOutputsRunRequest: each tool output needs `tool_call_id` and `output` (the service "
        "cannot match or record one without them; the spec lists both but requires neither)."
    )


def _amend_azure_agent(defs: dict) -> str:
    defs["AzureAgentReference"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string", "enum": ["agent_reference"]},
            "name": {"type": "string", "minLength": 1, "maxLength": 63},
            "version": {"type": "string", "minLength": 1, "maxLength": 64},
        },
        "required": ["type", "name"],
    }
    defs["CreateResponse"]["properties"]["agent"] = {"$ref": "#/$defs/AzureAgentReference"}
    return (
        "CreateResponse: Azure AI Foundry's `agent` ({type: agent_reference, name, version}), which runs "
        "a stored agent and by which Foundry lists responses (agent_name, agent_id filters)."
    )


AMENDMENTS = [_amend_metadata, _amend_tool_outputs, _amend_azure_agent]


def load_spec(path: Path = DEFAULT_SPEC) -> dict:
    import yaml  # only needed to regenerate the extract, never at runtime

    with path.open() as f:
        return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _body_schema(spec: dict, operation_id: str) -> dict | None:
    method, path = OPERATIONS[operation_id]
    operation = spec["paths"][path][method]
    if operation.get("operationId") != operation_id:
        raise ValueError(f"{method.upper()} {path} is {operation.get('operationId')}, not {operation_id}")
    body = operation.get("requestBody")
    if body is None:
        return None
    return body["content"]["application/json"]["schema"]


def _refs(node, found: set, schemas: dict) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(PREFIX):
            name = ref[len(PREFIX) :]
            if name not in found:
                found.add(name)
                _refs(schemas[name], found, schemas)
        for value in node.values():
            _refs(value, found, schemas)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found, schemas)


def _clean(node, owner: str):
    """Annotations dropped, refs pointed at $defs, nullable and oneOf translated (see the module doc)."""
    if isinstance(node, list):
        return [_clean(item, owner) for item in node]
    if not isinstance(node, dict):
        return node
    members = node.get("allOf")
    if members and {"nullable": True} in members:
        # `allOf: [X, {nullable: true}]`: the marker makes the whole allOf nullable.
        node = {key: value for key, value in node.items() if key != "allOf"}
        rest = [member for member in members if member != {"nullable": True}]
        node.update(rest[0] if len(rest) == 1 else {"allOf": rest})
        node["nullable"] = True
    out = {}
    for key, value in node.items():
        if key in ANNOTATIONS or key.startswith("x-"):
            continue
        if key == "$ref":
            out["$ref"] = "#/$defs/" + value[len(PREFIX) :]
        elif key == "$recursiveRef":
            out["$ref"] = "#/$defs/" + owner
        elif key in ("properties", "patternProperties", "$defs"):
            out[key] = {name: _clean(sub, owner) for name, sub in value.items()}
        else:
            out[key] = _clean(value, owner)
    if "oneOf" in out:
        branches = out.pop("oneOf")
        if "anyOf" in out:
            out["allOf"] = [*out.get("allOf", []), {"anyOf": out.pop("anyOf")}, {"anyOf": branches}]
        else:
            out["anyOf"] = branches
    if out.pop("nullable", False):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _resolve(node: dict, defs: dict) -> dict:
    while "$ref" in node and len(node) == 1:
        node = defs[node["$ref"].rsplit("/", 1)[1]]
    return node


def _merge_all_of(node, defs: dict):
    """`allOf` of object schemas → one object (a property given twice must satisfy both)."""
    if isinstance(node, list):
        return [_merge_all_of(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _merge_all_of(value, defs) for key, value in node.items()}
    members = node.get("allOf")
    if not members:
        return node
    resolved = [_merge_all_of(copy.deepcopy(_resolve(m, defs)), defs) for m in members]
    if not all(_is_plain_object(m) for m in resolved):
        return node
    merged: dict = {"type": "object", "properties": {}}
    required: list = []
    for member in resolved:
        for name, schema in member.get("properties", {}).items():
            if name in merged["properties"] and merged["properties"][name] != schema:
                merged["properties"][name] = {"allOf": [merged["properties"][name], schema]}
            else:
                merged["properties"][name] = schema
        required += [name for name in member.get("required", []) if name not in required]
    if required:
        merged["required"] = required
    rest = {key: value for key, value in node.items() if key not in ("allOf", "type")}
    return {**merged, **rest}


def _is_plain_object(schema: dict) -> bool:
    allowed = {"type", "properties", "required", "additionalProperties"}
    return (
        schema.get("type", "object") == "object"
        and set(schema) <= allowed
        and schema.get("additionalProperties", False) is False
    )


def _close(node, slips: list, where: str):
    if isinstance(node, list):
        return [_close(item, slips, where) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _close(value, slips, f"{where}.{key}") for key, value in node.items()}
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    if node.get("additionalProperties") is False and "required" in node:
        undeclared = [name for name in node["required"] if name not in node.get("properties", {})]
        if undeclared:
            slips.append(f"{where}: required {undeclared} not among its properties, dropped")
            node["required"] = [name for name in node["required"] if name not in undeclared]
    return node


def build(spec: dict, source: str) -> dict:
    schemas = spec["components"]["schemas"]
    operations, roots = {}, set(EXTRA_SCHEMAS)
    inline = {}
    for operation_id in OPERATIONS:
        schema = _body_schema(spec, operation_id)
        if schema is None:
            operations[operation_id] = None
        elif set(schema) == {"$ref"}:
            operations[operation_id] = schema["$ref"][len(PREFIX) :]
        else:
            name = operation_id[0].upper() + operation_id[1:] + "Body"
            inline[name] = schema
            operations[operation_id] = name
    for name in operations.values():
        if name and name not in inline:
            roots.add(name)
    found = set(roots)
    for name in roots:
        _refs(schemas[name], found, schemas)
    for schema in inline.values():
        _refs(schema, found, schemas)
    everything = {**{name: schemas[name] for name in found}, **inline}
    defs = {name: _clean(schema, name) for name, schema in sorted(everything.items())}
    defs = {name: _merge_all_of(schema, defs) for name, schema in defs.items()}
    slips: list[str] = []
    defs = {name: _close(schema, slips, name) for name, schema in defs.items()}
    defs["EmptyBody"] = EMPTY_BODY
    operations = {key: value or "EmptyBody" for key, value in operations.items()}
    amendments = [amend(defs) for amend in AMENDMENTS] + slips
    return {
        "source": source,
        "amendments": amendments,
        "operations": operations,
        "$defs": dict(sorted(defs.items())),
    }


def render(extract: dict) -> str:
    """Stable text: one schema per line, so a spec update shows as a readable diff."""
    head = {key: value for key, value in extract.items() if key != "$defs"}
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    lines.append('"$defs": {')
    items = list(extract["$defs"].items())
    for n, (name, schema) in enumerate(items):
        comma = "," if n < len(items) - 1 else ""
        lines.append(f"{json.dumps(name)}: {json.dumps(schema, sort_keys=True, ensure_ascii=False)}{comma}")
    lines.append("}}")
    return "\n".join(lines) + "\n"


def generate(spec_path: Path = DEFAULT_SPEC) -> str:
    digest = hashlib.sha256(spec_path.read_bytes()).hexdigest()
    source = f"tests/sandbox/spec/{spec_path.name} sha256 {digest}"
    return render(build(load_spec(spec_path), source))
