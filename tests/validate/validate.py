#!/usr/bin/env python3
"""Validate rendered Kubernetes manifests, offline.

    validate.py [--kubernetes-version 1.37] FILE... ('-' reads stdin)

Each FILE holds one or more YAML documents (a `v1/List` is unpacked), e.g. the output of
`plane template datalayer-ray --profile local`.

* Built-in kinds are validated with kubernetes-validate in strict mode (unknown fields are
  errors) against the OpenAPI schemas of the given Kubernetes release, which the package ships.
* Custom resources whose CustomResourceDefinition is among the documents (of any FILE) are
  validated against that CRD's openAPIV3Schema with structural-schema semantics: an object schema
  rejects fields it does not declare unless it sets x-kubernetes-preserve-unknown-fields,
  x-kubernetes-int-or-string accepts an integer or a string, nullable accepts null, and a required
  field with a default is never missing (the API server defaults before it validates).
* Each CRD's schema must be structural (a type on every node, except where the
  extensions above make it unnecessary).
* Custom resources of kinds neither built in nor defined by a CRD here (PodMonitor, ...) are
  skipped with a note.

Prints one line per failure, `Kind/namespace/name: path: message`, and a summary; exits 1 if
anything failed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import copy
import sys
from typing import Any, Iterable

import re

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv
from referencing import Registry, Resource


def subject(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    kind = obj.get("kind", "?")
    name = meta.get("name", "?")
    ns = meta.get("namespace")
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


def path_of(error: jsonschema.ValidationError) -> str:
    parts = ["."]
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else (f".{p}" if parts != ["."] else str(p)))
    text = "".join(parts)
    return text if text != "." else "(root)"


def load(files: Iterable[str]) -> list[dict]:
    objects: list[dict] = []
    for name in files:
        try:
            text = sys.stdin.read() if name == "-" else open(name, encoding="utf-8").read()
        except OSError as err:
            raise SystemExit(f"error: cannot read {name}: {err}") from err
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as err:
            print(f"error: {name} is not valid YAML: {err}", file=sys.stderr)
            sys.exit(2)
        for doc in docs:
            if doc is None:
                continue
            if not isinstance(doc, dict):
                print(f"error: {name}: a document is not a mapping", file=sys.stderr)
                sys.exit(2)
            if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
                objects.extend(item for item in doc["items"] if item)
            else:
                objects.append(doc)
    return objects


# --- structural schemas -------------------------------------------------------------------------

def structural_problems(schema: Any, path: str = "openAPIV3Schema") -> list[str]:
    """The nodes of a CRD schema that are not structural (no type where one is required)."""
    problems: list[str] = []
    if not isinstance(schema, dict):
        return [f"{path}: not a schema object"]
    open_ = schema.get("x-kubernetes-preserve-unknown-fields") is True
    int_or_string = schema.get("x-kubernetes-int-or-string") is True
    if "type" not in schema and not open_ and not int_or_string:
        problems.append(f"{path}: no type (structural schemas need one on every node)")
    if "additionalProperties" in schema and "properties" in schema:
        problems.append(f"{path}: properties and additionalProperties are mutually exclusive")
    for key, sub in (schema.get("properties") or {}).items():
        problems += structural_problems(sub, f"{path}.properties.{key}")
    if isinstance(schema.get("items"), dict):
        problems += structural_problems(schema["items"], f"{path}.items")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += structural_problems(schema["additionalProperties"], f"{path}.additionalProperties")
    return problems


def to_json_schema(schema: Any, root: bool = True) -> Any:
    """Converts a CRD openAPIV3Schema to a JSON Schema with the API server's semantics."""
    if not isinstance(schema, dict):
        return schema
    out = copy.deepcopy(schema)
    open_ = out.get("x-kubernetes-preserve-unknown-fields") is True
    if out.get("x-kubernetes-int-or-string") is True:
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.get("nullable") is True and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in out:
        out["properties"] = {k: to_json_schema(v, root=False) for k, v in out["properties"].items()}
        # The API server applies defaults before it validates: a defaulted field is never missing.
        if isinstance(out.get("required"), list):
            out["required"] = [k for k in out["required"] if "default" not in out["properties"].get(k, {})]
    if isinstance(out.get("items"), dict):
        out["items"] = to_json_schema(out["items"], root=False)
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = to_json_schema(out["additionalProperties"], root=False)
    for key in ("anyOf", "allOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [to_json_schema(s, root=False) for s in out[key]]
    if isinstance(out.get("not"), dict):
        out["not"] = to_json_schema(out["not"], root=False)
    is_object = out.get("type") == "object" or (isinstance(out.get("type"), list) and "object" in out["type"])
    if is_object and not open_ and "additionalProperties" not in out:
        # Structural semantics: undeclared fields are unknown (pruned, or rejected with
        # fieldValidation=Strict, which server-side apply tools use).
        if root:
            out.setdefault("properties", {})
            # apiVersion, kind and metadata are always allowed and checked by the API server.
            for key in ("apiVersion", "kind"):
                out["properties"].setdefault(key, {"type": "string"})
            out["properties"]["metadata"] = {"type": "object"}
        elif out.get("x-kubernetes-embedded-resource") is True:
            out.setdefault("properties", {})
            for key in ("apiVersion", "kind"):
                out["properties"].setdefault(key, {"type": "string"})
            out["properties"].setdefault("metadata", {"type": "object"})
        out["additionalProperties"] = False
    return out


class CrdIndex:
    """The CRD schemas found in the render, by (group, version, kind)."""

    def __init__(self) -> None:
        self.schemas: dict[tuple[str, str, str], dict] = {}

    def add(self, crd: dict) -> list[str]:
        spec = crd.get("spec") or {}
        group = spec.get("group", "")
        kind = (spec.get("names") or {}).get("kind", "")
        problems = []
        for version in spec.get("versions") or []:
            schema = ((version.get("schema") or {}).get("openAPIV3Schema"))
            if schema is None:
                problems.append(f"versions[{version.get('name')}]: no openAPIV3Schema")
                continue
            problems += [f"versions[{version.get('name')}].schema.{p}" for p in structural_problems(schema)]
            self.schemas[(group, version.get("name", ""), kind)] = to_json_schema(schema)
        return problems

    def find(self, obj: dict) -> dict | None:
        api_version = obj.get("apiVersion", "")
        group, _, version = api_version.rpartition("/")
        return self.schemas.get((group, version, obj.get("kind", "")))


# --- built-in kinds -----------------------------------------------------------------------------

_validators: dict[tuple[str, str], jsonschema.Validator | None] = {}


def builtin_errors(obj: dict, version: str) -> list[jsonschema.ValidationError] | None:
    """Every error of a built-in object against the strict schemas kubernetes-validate ships for
    `version` (as kubernetes_validate.validate does, but all errors, not the first); None when the
    kind is not built in."""
    api_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", obj["apiVersion"])
    key = (api_version, obj["kind"].lower())
    if key not in _validators:
        schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
        try:
            schema = kv.schema_contents(f"{schema_dir}/{key[1]}-{key[0]}.json", version)
        except FileNotFoundError:
            _validators[key] = None
        else:
            definitions = kv.schema_contents(f"{schema_dir}/_definitions.json", version)
            registry = Resource.from_contents(schema) @ Registry()
            registry = Resource.from_contents(definitions) @ registry
            _validators[key] = jsonschema.Draft202012Validator(schema, registry=registry)
    validator = _validators[key]
    if validator is None:
        return None
    return sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))


# --- main ---------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="YAML files ('-' for stdin)")
    parser.add_argument("--kubernetes-version", default=kv.major_minor(kv.latest_version()),
                        help="Kubernetes release (major.minor) to validate against (default: the "
                             "newest the installed kubernetes-validate ships, %(default)s)")
    args = parser.parse_args(argv)
    shipped = {kv.major_minor(v): v for v in kv.all_versions()}
    if kv.major_minor(args.kubernetes_version) not in shipped:
        print(f"error: kubernetes-validate {kubernetes_validate.__version__} has no schemas for "
              f"{args.kubernetes_version}; it has {', '.join(shipped)}", file=sys.stderr)
        return 2
    release = shipped[kv.major_minor(args.kubernetes_version)]

    objects = load(args.files)
    failures: list[str] = []
    notes: list[str] = []
    crds = CrdIndex()
    for obj in objects:
        if obj.get("kind") == "CustomResourceDefinition":
            failures += [f"{subject(obj)}: {p}" for p in crds.add(obj)]

    valid = skipped = 0
    for obj in objects:
        name = subject(obj)
        if not obj.get("apiVersion") or not obj.get("kind"):
            failures.append(f"{name}: (root): apiVersion and kind are required")
            continue
        schema = crds.find(obj)
        if schema is not None:
            errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(obj),
                            key=lambda e: list(map(str, e.absolute_path)))
            failures += [f"{name}: {path_of(e)}: {e.message}" for e in errors]
            valid += not errors
            continue
        errors = builtin_errors(obj, release)
        if errors is None:
            skipped += 1
            notes.append(f"note: {name}: skipped: {obj['apiVersion']} {obj['kind']} is not built "
                         f"into Kubernetes {args.kubernetes_version} and no CRD for it was given")
            continue
        failures += [f"{name}: {path_of(e)}: {e.message}" for e in errors]
        valid += not errors

    for note in notes:
        print(note, file=sys.stderr)
    for failure in failures:
        print(failure)
    print(f"{len(objects)} objects (Kubernetes {args.kubernetes_version}, strict): {valid} valid, "
          f"{skipped} skipped, {len(failures)} failures", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
