"""Checks our Terraform against the Google provider's schema, with no provider.

`terraform validate` needs the provider binary, which this workplace cannot
download (registry.terraform.io is unreachable). The provider's schema is
published on npm, though, inside CDK for Terraform's prebuilt bindings for
the same provider version: its `.jsii` type file describes every resource's
arguments and nested blocks (names, which are required) and its readable
attributes. This script derives a compact schema from that file and checks
what `terraform validate` would check of a module's wiring:

- every argument and block of a google_* resource or data source, and of the
  provider block, exists in the provider (recursing into nested and dynamic
  blocks), and every required one is set;
- every `lifecycle.ignore_changes` path names a real argument or block;
- every reference to a resource (`google_x.name.attr`) names a resource of
  the module and an attribute the provider has;
- every `var.`, `local.` and `module.` reference is declared; module calls
  pass only declared variables, all required ones, and their outputs exist;
- no `for_each` is keyed by what only an apply knows: a set built from a
  resource attribute or module output, directly or through a module variable
  the module turns into a set (the first `terraform plan` would fail with
  "Invalid for_each argument").

It does not type-check expressions or evaluate values.

Usage:
  offline_validate.py schema CACHE_DIR      prints the schema file's path
                                            (downloads and derives it once)
  offline_validate.py check SCHEMA DIR...   checks each module directory
  offline_validate.py selftest SCHEMA DIR   the errors found in DIR must be
                                            exactly its `# expect:` comments
"""

import base64
import functools
import glob
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import urllib.request

import hcl2

# The last prebuilt bindings published; they carry google provider 6.50.0,
# the version the environments pin (`~> 6.50`).
PACKAGE_URL = "https://registry.npmjs.org/@cdktf/provider-google/-/provider-google-16.12.1.tgz"
PACKAGE_SHA512 = (
    "KqNA/5RiFT07r0PSZ6/07cJ2zESUgbj1JchVj21iBFBZVUbD+578xA/k8eq/r0cbyEgLmg9eYWeVslaYah4DCQ=="
)
PROVIDER_VERSION = "6.50.0"

# Arguments every resource, data source or module takes besides its own.
RESOURCE_META = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner",
                 "connection", "dynamic"}
MODULE_META = {"source", "version", "count", "for_each", "depends_on", "providers"}
LIFECYCLE_ARGS = {"create_before_destroy", "prevent_destroy", "ignore_changes",
                  "replace_triggered_by", "precondition", "postcondition"}
PARSER_KEYS = {"__start_line__", "__end_line__"}
# A reference to something only an apply knows: a resource attribute or a module output.
APPLY_TIME = r"(?<![\w.])(?:data\.)?(?:google_[a-z0-9_]+\.[\w-]+\.|module\.[\w-]+\.)"


# ---------------------------------------------------------------- the schema

def schema_path(cache_dir):
    """Derives the schema once into CACHE_DIR and returns its path."""
    path = os.path.join(cache_dir, f"google-provider-{PROVIDER_VERSION}.schema.json")
    if os.path.exists(path):
        return path
    os.makedirs(cache_dir, exist_ok=True)
    with urllib.request.urlopen(PACKAGE_URL, timeout=120) as response:
        package = response.read()
    digest = base64.b64encode(hashlib.sha512(package).digest()).decode()
    if digest != PACKAGE_SHA512:
        sys.exit(f"{PACKAGE_URL}: sha512 {digest}, expected {PACKAGE_SHA512}")
    with tarfile.open(fileobj=io.BytesIO(package), mode="r:gz") as tar:
        member = tar.extractfile("package/.jsii")
        if member is None:
            sys.exit(f"{PACKAGE_URL}: no package/.jsii")
        types = json.load(member)["types"]
    schema = derive_schema(types)
    with open(path + ".tmp", "w") as out:
        json.dump(schema, out, sort_keys=True)
    os.replace(path + ".tmp", path)
    return path


def snake(name):
    return re.sub(r"([A-Z])", r"_\1", name).lower()


def terraform_name(prop):
    """The name as Terraform spells it: the registry link's anchor, if any."""
    found = re.search(r"#([a-z0-9_]+) ", prop.get("docs", {}).get("remarks", ""))
    return found.group(1) if found else snake(prop["name"])


def derive_schema(types):
    structs = {}

    def is_struct(ref):
        return "fqn" in ref and types.get(ref["fqn"], {}).get("datatype", False)

    def block_of(ref):
        """The struct a property's type nests as a block, or None for an argument."""
        if is_struct(ref):
            return ref["fqn"]
        element = ref.get("collection", {}).get("elementtype")
        if element and is_struct(element):
            return element["fqn"]
        for member in ref.get("union", {}).get("types", []):
            found = block_of(member)
            if found:
                return found
        return None

    def struct(fqn):
        if fqn in structs:
            return
        structs[fqn] = entry = {"args": {}, "blocks": {}}
        for prop in types[fqn].get("properties", []):
            required = not prop.get("optional", False)
            child = block_of(prop["type"])
            if child:
                entry["blocks"][terraform_name(prop)] = [required, child]
                struct(child)
            else:
                entry["args"][terraform_name(prop)] = required

    kinds = {"resources/": "resource", "data-sources/": "data"}
    schema = {"provider_version": PROVIDER_VERSION, "resource": {}, "data": {}, "structs": structs}
    for fqn, item in types.items():
        if item.get("kind") != "class":
            continue
        summary = item.get("docs", {}).get("summary", "")
        link = re.search(r"/docs/(resources/|data-sources/)[a-z0-9_]+ (google_[a-z0-9_]+)\}", summary)
        if not link:
            continue
        config = next(p["type"]["fqn"] for p in item["initializer"]["parameters"]
                      if p["name"] == "config")
        struct(config)
        readable = {snake(p["name"]) for p in item.get("properties", [])
                    if not p["name"].endswith("Input") and p["name"] != "tfResourceType"}
        readable |= set(structs[config]["args"]) | set(structs[config]["blocks"])
        schema[kinds[link.group(1)]][link.group(2)] = {"config": config,
                                                        "attributes": sorted(readable)}
    provider = "@cdktf/provider-google.provider.GoogleProviderConfig"
    struct(provider)
    schema["provider"] = provider
    return schema


# ---------------------------------------------------------------- the checks

@functools.cache
def load_module(directory):
    """Every top-level block of the .tf files in DIRECTORY, by kind (parsed once;
    callers only read it)."""
    module = {"variable": {}, "output": {}, "locals": {}, "resource": {}, "data": {},
              "module": {}, "provider": {}}
    for path in sorted(glob.glob(os.path.join(directory, "*.tf"))):
        with open(path) as source:
            parsed = hcl2.load(source)
        for kind in ("variable", "output", "module", "provider"):
            for block in parsed.get(kind, []):
                for name, body in block.items():
                    module[kind][name] = (path, body)
        for block in parsed.get("locals", []):
            for name, value in block.items():
                if name not in PARSER_KEYS:
                    module["locals"][name] = (path, value)
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        module[kind][(rtype, name)] = (path, body)
    return module


def where(path, body):
    line = body.get("__start_line__") if isinstance(body, dict) else None
    return f"{path}:{line}" if line else path


def bodies(value):
    """The block bodies a parsed value holds (a block parses as a list of dicts)."""
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return [value] if isinstance(value, dict) else []


class Checker:
    def __init__(self, schema):
        self.schema = schema
        self.errors = []
        self.blocks = 0
        self.references = 0

    def error(self, place, message):
        self.errors.append(f"{place}: {message}")

    def check_body(self, place, what, fqn, body):
        """Arguments and blocks of one block body against the struct FQN."""
        struct = self.schema["structs"][fqn]
        present = set()
        for name, value in body.items():
            if name in PARSER_KEYS:
                continue
            if name == "dynamic":
                for dynamic in bodies(value):
                    for block_name, spec in dynamic.items():
                        if block_name in PARSER_KEYS:
                            continue
                        present.add(block_name)
                        if block_name not in struct["blocks"]:
                            self.error(place, f'{what} has no block "{block_name}"')
                            continue
                        for content in bodies(spec):
                            for inner in bodies(content.get("content", [])):
                                self.check_body(place, f"{what}.{block_name}",
                                                struct["blocks"][block_name][1], inner)
                continue
            present.add(name)
            if name in struct["blocks"]:
                for inner in bodies(value):
                    self.check_body(place, f"{what}.{name}", struct["blocks"][name][1], inner)
            elif name not in struct["args"]:
                self.error(place, f'{what} has no argument or block "{name}"')
        for name, required in struct["args"].items():
            if required and name not in present:
                self.error(place, f'{what}: required argument "{name}" is not set')
        for name, (required, _) in struct["blocks"].items():
            if required and name not in present:
                self.error(place, f'{what}: required block "{name}" is missing')

    def check_ignore_changes(self, place, what, fqn, body):
        for lifecycle in bodies(body.get("lifecycle", [])):
            for name in lifecycle:
                if name not in LIFECYCLE_ARGS | PARSER_KEYS:
                    self.error(place, f'{what}: lifecycle has no argument "{name}"')
            for paths in lifecycle.get("ignore_changes", []):
                for path in paths if isinstance(paths, list) else [paths]:
                    if path in ("${all}", "all"):
                        continue
                    self.check_path(place, what, fqn, path.strip("${}"))

    def check_path(self, place, what, fqn, path):
        struct = self.schema["structs"][fqn]
        for step in re.sub(r"\[[^\]]*\]", "", path).split("."):
            if step in struct["args"]:
                return
            if step not in struct["blocks"]:
                self.error(place, f'{what}: ignore_changes names "{path}", which it does not have')
                return
            struct = self.schema["structs"][struct["blocks"][step][1]]

    def check_module(self, directory):
        module = load_module(directory)
        for kind in ("resource", "data"):
            for (rtype, name), (path, body) in module[kind].items():
                what = f"{'data.' if kind == 'data' else ''}{rtype}.{name}"
                known = self.schema[kind].get(rtype)
                if not rtype.startswith("google_"):
                    continue
                if known is None:
                    self.error(where(path, body), f"provider {self.schema['provider_version']} "
                               f"has no {kind} type {rtype}")
                    continue
                self.blocks += 1
                self.check_for_each(where(path, body), what, body)
                meta_free = {k: v for k, v in body.items() if k not in RESOURCE_META - {"dynamic"}}
                self.check_body(where(path, body), what, known["config"], meta_free)
                self.check_ignore_changes(where(path, body), what, known["config"], body)
        for name, (path, body) in module["provider"].items():
            if name == "google":
                meta_free = {k: v for k, v in body.items() if k != "alias"}
                self.check_body(where(path, body), 'provider "google"', self.schema["provider"],
                                meta_free)
        for name, (path, body) in module["module"].items():
            self.blocks += 1
            self.check_call(directory, name, path, body)
        self.check_references(directory, module)

    def check_for_each(self, place, what, body):
        for expression in body.get("for_each", []):
            text = str(expression)
            if "toset(" in text and re.search(APPLY_TIME, text):
                self.error(place, f"{what}: for_each keys are known only after apply")

    def check_call(self, directory, name, path, body):
        source = (body.get("source") or [""])[0]
        if not source.startswith("."):
            return
        target = load_module(os.path.normpath(os.path.join(directory, source)))
        # Variables the module turns into for_each keys (`toset(var.x)`).
        keyed = {found for (_, resource) in list(target["resource"].values())
                 + list(target["data"].values())
                 for expression in resource.get("for_each", [])
                 for found in re.findall(r"toset\(var\.([\w-]+)\)", str(expression))}
        for arg in sorted(keyed & set(body)):
            if re.search(APPLY_TIME, str(body[arg])):
                self.error(where(path, body), f'module "{name}" ({source}): "{arg}" becomes '
                           "for_each keys there but is known only after apply")
        for arg in body:
            if arg not in MODULE_META | PARSER_KEYS and arg not in target["variable"]:
                self.error(where(path, body), f'module "{name}" ({source}) has no variable "{arg}"')
        for var, (_, spec) in target["variable"].items():
            if "default" not in spec and var not in body:
                self.error(where(path, body),
                           f'module "{name}" ({source}): required variable "{var}" is not set')

    def check_references(self, directory, module):
        calls = {}
        for name, (_, body) in module["module"].items():
            source = (body.get("source") or [""])[0]
            if source.startswith("."):
                calls[name] = load_module(os.path.normpath(os.path.join(directory, source)))
        declared = {(kind, rtype, name) for kind in ("resource", "data")
                    for (rtype, name) in module[kind]}
        for path in sorted(glob.glob(os.path.join(directory, "*.tf"))):
            with open(path) as source:
                text = source.read()
            for number, line in enumerate(text.splitlines(), start=1):
                # Comments name things in prose.
                if not line.lstrip().startswith(("#", "//")):
                    self.check_line(f"{path}:{number}", line, module, calls, declared)

    def check_line(self, place, line, module, calls, declared):
        self.references += len(re.findall(r"(?<![\w.])(var|local|module|data|google_[a-z0-9_]+)\.",
                                          line))
        for name in re.findall(r"(?<![\w.])var\.([a-zA-Z_][\w-]*)", line):
            if name not in module["variable"]:
                self.error(place, f'no variable "{name}" is declared')
        for name in re.findall(r"(?<![\w.])local\.([a-zA-Z_][\w-]*)", line):
            if name not in module["locals"]:
                self.error(place, f'no local "{name}" is declared')
        for name, output in re.findall(r"(?<![\w.])module\.([\w-]+)(?:\[[^\]]*\])?\.([\w-]+)",
                                       line):
            if name not in module["module"]:
                self.error(place, f'no module "{name}" is called')
            elif name in calls and output not in calls[name]["output"]:
                self.error(place, f'module "{name}" has no output "{output}"')
        pattern = (r"(?<![\w.])(data\.)?(google_[a-z0-9_]+)\.([\w-]+)"
                   r"(?:\[[^\]]*\]|\.\*)?(?:\.([a-z_][a-z0-9_]*))?")
        for data, rtype, name, attribute in re.findall(pattern, line):
            kind = "data" if data else "resource"
            if (kind, rtype, name) not in declared:
                self.error(place, f"no {kind} {rtype}.{name} in this module")
                continue
            known = self.schema[kind].get(rtype)
            if known and attribute and attribute not in known["attributes"]:
                self.error(place, f'{rtype} has no attribute "{attribute}"')


def main(argv):
    if len(argv) == 3 and argv[1] == "schema":
        print(schema_path(argv[2]))
        return 0
    if len(argv) >= 4 and argv[1] in ("check", "selftest"):
        with open(argv[2]) as source:
            checker = Checker(json.load(source))
        for directory in argv[3:]:
            checker.check_module(directory)
        if argv[1] == "check":
            for error in checker.errors:
                print(error, file=sys.stderr)
            print(f"{len(argv) - 3} modules ({checker.blocks} resources and module calls, "
                  f"{checker.references} references) checked against google provider "
                  f"{checker.schema['provider_version']}: {len(checker.errors)} errors")
            return 1 if checker.errors else 0
        return selftest(checker, argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


def selftest(checker, directories):
    """The errors found must be exactly the `# expect: MESSAGE` comments, each
    reported at the first line after it that is not a comment."""
    expected = set()
    for directory in directories:
        for path in sorted(glob.glob(os.path.join(directory, "*.tf"))):
            with open(path) as source:
                pending = []
                for number, line in enumerate(source, start=1):
                    found = re.match(r"\s*# expect: (.*)", line)
                    if found:
                        pending.append(found.group(1))
                    elif not line.lstrip().startswith("#"):
                        expected.update(f"{path}:{number}: {message}" for message in pending)
                        pending = []
    found = set(checker.errors)
    for error in sorted(expected - found):
        print(f"not caught: {error}", file=sys.stderr)
    for error in sorted(found - expected):
        print(f"not expected: {error}", file=sys.stderr)
    if expected != found or not expected:
        return 1
    print(f"the offline validator catches all {len(expected)} planted errors and nothing else")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
