"""Stripe's API contract for the pinned stripe-python, read from its generated code; the fake's traffic checked on it.

At import this reads every `*_service.py` module of the installed `stripe` package with `ast` into a table of
operations: HTTP method, path, the params TypedDict and the returned resource class. The types behind an operation
(params TypedDicts through `typing.get_type_hints`, resource classes through their annotations) are resolved the
first time a request needs them, and cached. `ContractChecker.middleware` then refuses, before the fake answers,
what Stripe refuses at this API version (unknown route or parameter, wrong type or enum value, missing required
parameter, an `expand[]` that is not expandable), and strips from each answer the fields this version does not
define. Nothing here is typed in by hand but REMOVED, which only words the refusal of a parameter Stripe dropped.
"""
import ast
import functools
import importlib
import importlib.util
import json
import re
import time
import types
import typing
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NotRequired, Required
from urllib.parse import parse_qsl

import stripe
from aiohttp import web
from stripe._api_version import _ApiVersion
from stripe._list_object import ListObject
from stripe._object_classes import OBJECT_CLASSES
from stripe._request_options import RequestOptions
from stripe._search_result_object import SearchResultObject
from stripe._stripe_context import StripeContext
from stripe._stripe_object import StripeObject, UntypedStripeObject
from typing_extensions import is_typeddict  # typing's does not know typing_extensions' TypedDicts

API_VERSION = _ApiVersion.CURRENT
SDK_VERSION = stripe.VERSION
STRIPE_DIR = Path(stripe.__file__).parent

# Request options (api_key, idempotency_key, ...) are a base of every params TypedDict, but the SDK sends them as
# headers, never as parameters.
OPTION_KEYS = frozenset(RequestOptions.__annotations__)

# Stripe's changelog, Endive (2026-09-30): "Removes the payment method types parameter from Payment Intents and
# Setup Intents" (create, update, confirm). The SDK only stops defining it, so whether a request is refused is
# decided by the SDK's definitions like any unknown parameter; this table only gives the refusal Stripe's own code
# (the message beside it is ours: no stored copy of Stripe's wording was at hand).
REMOVED = {
    (method, path, "payment_method_types"): "payment_method_types_no_longer_supported"
    for method, path in [("POST", "/v1/payment_intents"), ("POST", "/v1/payment_intents/{intent}"),
                         ("POST", "/v1/payment_intents/{intent}/confirm"), ("POST", "/v1/setup_intents"),
                         ("POST", "/v1/setup_intents/{intent}"), ("POST", "/v1/setup_intents/{intent}/confirm")]}

# Routes of the test layer that are not Stripe's: localstripe's configuration, and its stand-in for the 3-D Secure
# page that Stripe.js would open.
EXEMPT = re.compile(r"/_config/.*|/v1/payment_intents/[^/]+/_authenticate")

MAX_EXPAND_DEPTH = 4  # Stripe: "You cannot expand more than 4 levels of a property"

TOTALS = Counter()  # checked, violations, dropped: over every checker of the run, for the terminal summary


class Refusal(Exception):
    """A request Stripe answers with an invalid_request_error."""

    def __init__(self, message, code=None, param=None, status=400):
        super().__init__(message)
        self.message, self.code, self.param, self.status = message, code, param, status

    def body(self):
        """Stripe's error envelope (code and param only when Stripe gives them)."""
        error = {"type": "invalid_request_error", "message": self.message}
        error.update({k: v for k, v in (("code", self.code), ("param", self.param)) if v is not None})
        return {"error": error}


# ---- reading the SDK's modules

def _module_path(name):
    return Path(importlib.util.find_spec(name).origin)


def _deferred_imports(tree):
    """Names a generated module imports only under TYPE_CHECKING: name -> (module, attribute)."""
    names = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom):
                    names.update({alias.asname or alias.name: (imp.module, alias.name) for alias in imp.names})
    return names


@functools.cache
def _module_imports(module):
    """_deferred_imports of a module by name (resource modules, read only when a forward reference needs it)."""
    return _deferred_imports(ast.parse(_module_path(module).read_text()))


def _resolve(module, name):
    """The object a module's annotations call `name`: one of its TYPE_CHECKING imports or its own, else None."""
    imported = _module_imports(module).get(name)
    if imported is not None:
        return getattr(importlib.import_module(imported[0]), imported[1], None)
    return getattr(importlib.import_module(module), name, None)


@dataclass(frozen=True)
class Operation:
    """One method of a `*Service` class: `POST /v1/payment_intents`, its params TypedDict and what it returns."""

    method: str
    path: str
    service: str
    module: str
    params_name: str | None
    returns: str
    pattern: re.Pattern
    literals: int

    @functools.cached_property
    def params(self):
        """The params TypedDict class, or None when the method takes no params."""
        return _resolve(self.module, self.params_name) if self.params_name else None

    @functools.cached_property
    def result(self):
        """The answer's shape as a spec (see _spec): the resource class, or a list of it."""
        return _spec(ast.parse(self.returns, mode="eval").body, self.module)

    def check(self, params):
        """Raise Refusal when Stripe would refuse these decoded parameters."""
        fields, required = _fields(self.params) if self.params else ({}, frozenset())
        _check_object(params, fields, required, "", top=self)
        for i, path in enumerate(_as_list(params.get("expand")) or []):
            _check_expand(self.result, path, f"expand[{i}]")


def _string(node):
    """A string constant, or the template of `"...{x}...".format(...)`; else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        node = node.func.value
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _annotation_name(node):
    """"X" out of `"X"` or `Optional["X"]`."""
    if isinstance(node, ast.Subscript):
        node = node.slice
    return node.value if isinstance(node, ast.Constant) else None


def _operations_in(path):
    """The operations of every `*Service` class in one module."""
    tree = ast.parse(path.read_text())
    module = ".".join(path.relative_to(STRIPE_DIR.parent).with_suffix("").parts)
    for cls in tree.body:
        if not (isinstance(cls, ast.ClassDef) and cls.name.endswith("Service")):
            continue
        for fn in cls.body:
            if not isinstance(fn, ast.FunctionDef):  # the *_async twins are AsyncFunctionDef
                continue
            call = next((node for node in ast.walk(fn) if isinstance(node, ast.Call)
                         and isinstance(node.func, ast.Attribute) and node.func.attr in ("_request", "_request_stream")
                         and len(node.args) >= 2), None)
            route = call and _string(call.args[1])
            if route is None:
                continue
            params = next((arg.annotation for arg in fn.args.args if arg.arg == "params"), None)
            segments = route.strip("/").split("/")
            pattern = "".join("/" + (re.escape(s) if "{" not in s else "[^/]+") for s in segments)
            yield Operation(method=call.args[0].value.upper(), path=route, service=f"{cls.name}.{fn.name}",
                            module=module, params_name=_annotation_name(params) if params is not None else None,
                            returns=_string(fn.returns) or "Any", pattern=re.compile(pattern),
                            literals=sum("{" not in s for s in segments))


def build_table():
    """Every operation of the installed SDK, indexed by (method, number of path segments)."""
    table = {}
    for path in sorted(STRIPE_DIR.rglob("*_service.py")):
        for op in _operations_in(path):
            table.setdefault((op.method, op.path.count("/")), []).append(op)
    for ops in table.values():
        ops.sort(key=lambda op: -op.literals)  # /payment_intents/search before /payment_intents/{intent}
    return table


_started = time.perf_counter()
TABLE = build_table()
BUILD_SECONDS = time.perf_counter() - _started
OPERATIONS = [op for ops in TABLE.values() for op in ops]


def operation(method, path):
    """The operation a request names (most literal path segments first), or Refusal 404 like Stripe's."""
    for op in TABLE.get((method, path.rstrip("/").count("/")), ()):
        if op.pattern.fullmatch(path):
            return op
    raise Refusal(f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help "
                  "at https://support.stripe.com/.", status=404)


# ---- params: the SDK's TypedDicts

# Names the inherited RequestOptions annotations use that a params module does not import.
_OPTION_NAMES = {"StripeContext": StripeContext, "Mapping": typing.Mapping}


@functools.cache
def _fields(typed_dict, top=True):
    """(name -> type, required names) of a params TypedDict, request options left out at the top."""
    hints = typing.get_type_hints(typed_dict, localns=_OPTION_NAMES, include_extras=True)
    fields, required = {}, set()
    for name, hint in hints.items():
        if top and name in OPTION_KEYS:
            continue
        marker = typing.get_origin(hint)
        if marker is Required or (marker is not NotRequired and name in typed_dict.__required_keys__):
            required.add(name)
        while typing.get_origin(hint) in (Required, NotRequired):
            hint = typing.get_args(hint)[0]
        fields[name] = hint
    return fields, frozenset(required)


def _as_list(value):
    """A decoded array (`a[0]=x` or `a[]=x` arrive as a dict of indexes), or None when it is not one."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and all(key.isdigit() for key in value):
        return [value[key] for key in sorted(value, key=int)]
    return None


def _literal_values(hint):
    return [("true" if v else "false") if isinstance(v, bool) else str(v) for v in typing.get_args(hint)]


def _one_of(values):
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + ", or " + values[-1]


def _check(value, hint, param):
    """Raise Refusal unless a decoded value (str, dict or list of them) is of the type the SDK gives the param."""
    origin = typing.get_origin(hint)
    if hint is typing.Any or hint is object:
        return None
    if origin in (typing.Union, types.UnionType):
        return _check_union(value, typing.get_args(hint), param)
    if value == "" and not (origin is Literal and "" in typing.get_args(hint)):
        raise Refusal(f"You passed an empty string for '{param}'. We assume empty values are an attempt to unset a "
                      f"parameter; however '{param}' cannot be unset. You should remove '{param}' from your request "
                      "or supply a non-empty value.", "parameter_invalid_empty", param)
    if origin is Literal:
        allowed = _literal_values(hint)
        if value not in allowed:
            raise Refusal(f"Invalid {param}: must be one of {_one_of(allowed)}", param=param)
    elif origin is list or hint is list:
        items = _as_list(value)
        if items is None:
            raise Refusal("Invalid array", param=param)
        for i, item in enumerate(items):
            _check(item, typing.get_args(hint)[0] if typing.get_args(hint) else typing.Any, f"{param}[{i}]")
    elif is_typeddict(hint):
        if not isinstance(value, dict):
            raise Refusal("Invalid hash", param=param)
        _check_object(value, *_fields(hint, top=False), param)
    elif origin is dict or hint is dict or origin is UntypedStripeObject or hint is UntypedStripeObject:
        # Metadata and the like: any keys, string values.
        if not isinstance(value, dict):
            raise Refusal("Invalid hash", param=param)
        for key, item in value.items():
            if not isinstance(item, str):
                raise Refusal(f"Invalid string: {json.dumps(item)}", param=f"{param}[{key}]")
    elif not isinstance(value, str):
        raise Refusal(f"Invalid {'array' if isinstance(value, list) else 'string'}: {json.dumps(value)}", param=param)
    elif hint is bool and value not in ("true", "false"):
        raise Refusal(f"Invalid boolean: {value}", param=param)
    elif hint is int and not re.fullmatch(r"-?\d+", value):
        raise Refusal(f"Invalid integer: {value}", "parameter_invalid_integer", param)
    elif hint is float and not re.fullmatch(r"-?(\d+\.?\d*|\.\d+)", value):
        raise Refusal(f"Invalid decimal: {value}", param=param)
    return None


def _check_union(value, members, param):
    """A value that one member of a Union takes; `Literal[""]` in it means "send empty to unset"."""
    members = [m for m in members if m is not type(None)]
    literals = [m for m in members if typing.get_origin(m) is Literal]
    values = [v for m in literals for v in _literal_values(m)]
    if value == "" and "" in values:
        return
    # The SDK writes open enums as Union[Literal[...], str] so that old SDKs keep working when Stripe adds a value.
    # Stripe's API itself refuses a value it does not define, so the Literal values are the allowed ones here.
    if any(v != "" for v in values):
        members = [m for m in members if m is not str]
    if literals:
        enum = Literal[tuple(v for v in values if v != "")] if any(v != "" for v in values) else None
        members = [m for m in members if typing.get_origin(m) is not Literal] + ([enum] if enum else [])
    shape = "object" if isinstance(value, dict) else "list" if isinstance(value, list) else "scalar"
    refusals = []
    for member in members:
        try:
            _check(value, member, param)
            return
        except Refusal as refusal:
            refusals.append((_shape(member) != shape, refusal))
    raise min(refusals, key=lambda pair: pair[0])[1] if refusals else Refusal("Invalid value", param=param)


def _shape(hint):
    origin = typing.get_origin(hint)
    if is_typeddict(hint) or origin is dict or hint in (dict, UntypedStripeObject) or \
            origin is UntypedStripeObject:
        return "object"
    return "list" if origin is list else "scalar"


def _check_object(value, fields, required, param, top=None):
    """Unknown keys, then missing required ones, then each value; `top` is the operation at the top level."""
    if not isinstance(value, dict):
        raise Refusal("Invalid hash", param=param)
    for key in value:
        name = f"{param}[{key}]" if param else key
        if key not in fields:
            code = top and REMOVED.get((top.method, top.path, key))
            if code:
                raise Refusal(f"The parameter `{key}` is no longer supported on API version {API_VERSION} for "
                              f"{top.method} {top.path}: send `allowed_payment_method_types` instead.", code, name)
            raise Refusal(f"Received unknown parameter: {name}", "parameter_unknown", name)
    for key in sorted(required - set(value)):
        name = f"{param}[{key}]" if param else key
        raise Refusal(f"Missing required param: {name}.", "parameter_missing", name)
    for key, item in value.items():
        _check(item, fields[key], f"{param}[{key}]" if param else key)


# ---- answers: the SDK's resource classes
#
# A spec says what a JSON value is: ("class", cls) a StripeObject of that class, ("expandable", [specs]) an id
# string or one of those objects, ("list", spec) a JSON array, ("listobject", spec) a Stripe list object of spec,
# ("union", [specs]), or ("any",) nothing to check or filter (scalars, metadata, untyped hashes).
ANY = ("any",)


def _spec(hint, module):
    """The spec of a resource annotation (a typing object, a string, or an ast node from a service module)."""
    if isinstance(hint, ast.AST):  # a service's return annotation: "PaymentIntent", "ListObject[PaymentIntent]"
        if isinstance(hint, ast.Subscript):
            args = hint.slice.elts if isinstance(hint.slice, ast.Tuple) else [hint.slice]
            outer = ast.unparse(hint.value)
            if outer in ("ListObject", "SearchResultObject"):
                return ("listobject", _spec(args[0], module))
            if outer in ("Union", "Optional"):
                return _union([_spec(arg, module) for arg in args])
            return _spec(hint.value, module)
        return _named(ast.unparse(hint), module)
    if isinstance(hint, str):
        return _named(hint, module)
    if isinstance(hint, typing.ForwardRef):
        return _named(hint.__forward_arg__, module)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if str in members and len(members) > 1 and all(_is_class_ref(a) for a in members if a is not str):
            # ExpandableField[T] is Union[str, T]: an id, or the object when expanded.
            return ("expandable", [_spec(a, module) for a in members if a is not str])
        return _union([_spec(a, module) for a in members])
    if origin is list:
        return ("list", _spec(args[0], module) if args else ANY)
    if origin in (ListObject, SearchResultObject):
        return ("listobject", _spec(args[0], module) if args else ANY)
    if isinstance(hint, type) and issubclass(hint, (ListObject, SearchResultObject)):
        return ("listobject", ANY)
    if isinstance(hint, type) and issubclass(hint, StripeObject) and hint not in (StripeObject, UntypedStripeObject):
        return ("class", hint)
    return ANY


def _is_class_ref(hint):
    return isinstance(hint, (typing.ForwardRef, str)) or (isinstance(hint, type) and issubclass(hint, StripeObject))


def _named(name, module):
    if name in ("ListObject", "SearchResultObject"):
        return ("listobject", ANY)
    found = _resolve(module, name) if name.isidentifier() else None
    return _spec(found, module) if isinstance(found, type) else ANY


def _union(specs):
    specs = [s for s in specs if s != ANY]
    return ANY if not specs else specs[0] if len(specs) == 1 else ("union", specs)


@functools.cache
def _resource_fields(cls):
    """name in the JSON -> spec, for every field a resource (or nested StripeObject) class defines."""
    fields = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, StripeObject)):
            continue
        remap = {v: k for k, v in vars(klass).get("_field_remappings", {}).items()}
        for name, hint in vars(klass).get("__annotations__", {}).items():
            text = hint if isinstance(hint, str) else ""
            if name.startswith("_") or typing.get_origin(hint) is typing.ClassVar or text.startswith("ClassVar"):
                continue
            fields[remap.get(name, name)] = _spec(hint, klass.__module__)
    return fields


def _class_of(value, spec):
    """The resource class a JSON object is: its `object` names it, else the spec's class."""
    named = OBJECT_CLASSES.get(value.get("object")) if isinstance(value.get("object"), str) else None
    if named is not None:
        return getattr(importlib.import_module(named[0]), named[1])
    kind = spec[0]
    if kind == "class":
        return spec[1]
    if kind in ("expandable", "union"):
        classes = [s[1] for s in spec[1] if s[0] == "class"]
        return classes[0] if len(classes) == 1 else None
    return None


def prune(value, spec, dropped, where=""):
    """Delete from a JSON answer, in place, every field the SDK's classes do not define; count them in `dropped`."""
    if spec == ANY:
        return
    if isinstance(value, list):
        inner = spec[1] if spec[0] == "list" else spec
        for item in value:
            prune(item, inner, dropped, where)
        return
    if not isinstance(value, dict):
        return
    if value.get("object") in ("list", "search_result"):
        item = spec[1] if spec[0] == "listobject" else ANY
        for obj in value.get("data") or []:
            prune(obj, item, dropped, where)
        # The SDK pages through `url` (search results too, whose class does not annotate it).
        for key in set(value) - {"object", "url", *_resource_fields(ListObject), *_resource_fields(SearchResultObject)}:
            dropped[f"{where}list.{key}"] += 1
            del value[key]
        return
    cls = _class_of(value, spec)
    if cls is None:
        return
    fields = _resource_fields(cls)
    label = value.get("object") if isinstance(value.get("object"), str) else where + cls.__name__
    for key in list(value):
        if key == "object":
            continue
        if key not in fields:
            dropped[f"{label}.{key}"] += 1
            del value[key]
        else:
            prune(value[key], fields[key], dropped, f"{label}.{key}.")


EVENT_DROPPED = Counter()  # fields dropped from webhook events' objects, "object.field" -> count


def prune_event_object(value):
    """Trim an event's `data.object` (known only by its `object` field) like an answer; count into EVENT_DROPPED."""
    before = sum(EVENT_DROPPED.values())
    prune(value, ("union", []), EVENT_DROPPED)
    TOTALS["dropped"] += sum(EVENT_DROPPED.values()) - before


def _expand_targets(spec):
    """Specs a field's expansion can lead to."""
    kind = spec[0]
    if kind == "expandable":
        return [t for s in spec[1] for t in _expand_targets(s)]
    if kind in ("list", "listobject"):
        return _expand_targets(spec[1])
    if kind == "union":
        return [t for s in spec[1] for t in _expand_targets(s)]
    return [spec] if kind == "class" else []


def _expandable(spec, parts):
    """True when the dotted path `parts` ends on an ExpandableField, walking from a spec."""
    kind = spec[0]
    if kind == "listobject":
        return parts[0] == "data" and len(parts) > 1 and _expandable(spec[1], parts[1:])
    if kind in ("expandable", "union", "list"):
        inner = spec[1] if kind != "list" else [spec[1]]
        return any(_expandable(s, parts) for s in inner)
    if kind != "class":
        return False
    field = _resource_fields(spec[1]).get(parts[0])
    if field is None:
        return False
    if len(parts) == 1:
        while field[0] == "list":
            field = field[1]
        return field[0] == "expandable"
    nxt = [field] if field[0] in ("class", "listobject") else _expand_targets(field)
    return any(_expandable(s, parts[1:]) for s in nxt)


def _check_expand(result, path, param):
    if not isinstance(path, str):
        raise Refusal("Invalid string", param=param)
    parts = path.split(".")
    if len(parts) > MAX_EXPAND_DEPTH:
        raise Refusal("You cannot expand more than 4 levels of a property", param=param)
    if not _expandable(result, parts):
        raise Refusal(f"This property cannot be expanded ({path}).", param=param)


# ---- requests

def decode(pairs):
    """Form or query pairs into nested dicts the way Stripe reads them: `a[b][c]=v`; arrays `a[0]=x` or `a[]=x`
    become dicts of indexes (see _as_list)."""
    root = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        parts = [head, *re.findall(r"\[([^\]]*)\]", "[" + rest)] if rest else [key]
        node = root
        for i, part in enumerate(parts):
            if part == "":
                part = str(len(node))
            if i == len(parts) - 1:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
    return root


def _stringify(value):
    """A JSON body's values as the strings a form body would carry."""
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    return ("true" if value else "false") if isinstance(value, bool) else "" if value is None else str(value)


async def request_params(request):
    """A request's parameters: the query string for GET and DELETE, else the form (or JSON) body."""
    if request.method in ("GET", "DELETE"):
        return decode(parse_qsl(request.query_string, keep_blank_values=True))
    body = await request.read()
    if request.content_type == "application/json" and body:
        return _stringify(json.loads(body))
    return decode(parse_qsl(body.decode(), keep_blank_values=True))


@dataclass(frozen=True)
class Violation:
    """A request the contract refused."""

    method: str
    path: str
    code: str | None
    param: str | None
    message: str


class ContractChecker:
    """The aiohttp middleware, with its counters: requests checked, violations, answer fields dropped."""

    def __init__(self):
        self.checked = 0
        self.violations = []
        self.dropped = Counter()  # "payment_intent.charges" -> times dropped

    @web.middleware
    async def middleware(self, request, handler):
        if not request.path.startswith("/v1/") or EXEMPT.fullmatch(request.path):
            return await handler(request)
        self.checked += 1
        TOTALS["checked"] += 1
        try:
            op = operation(request.method, request.path)
            op.check(await request_params(request))
        except Refusal as refusal:
            self.violations.append(Violation(request.method, request.path, refusal.code, refusal.param,
                                             refusal.message))
            TOTALS["violations"] += 1
            return web.json_response(refusal.body(), status=refusal.status)
        response = await handler(request)
        if 200 <= response.status < 300 and isinstance(response, web.Response) and response.body and \
                response.content_type == "application/json":
            answer = json.loads(response.body)
            before = sum(self.dropped.values())
            prune(answer, op.result, self.dropped)
            added = sum(self.dropped.values()) - before
            if added:
                TOTALS["dropped"] += added
                response.body = json.dumps(answer).encode()
        return response

    def summary(self):
        """The one-line figure for the test run's summary."""
        return summary_line(self.checked, len(self.violations), sum(self.dropped.values()))


def summary_line(checked, violations, dropped):
    return (f"Stripe contract (API {API_VERSION}, stripe-python {SDK_VERSION} definitions): {checked} requests "
            f"checked, {violations} violations, {dropped} undefined response fields dropped")
