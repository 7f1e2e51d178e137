#!/usr/bin/env python3
"""Extract every PromQL expression from the Grafana dashboards and Prometheus rule files.

Usage:
  extract-promql.py [--raw] [--as-rules FILE] [DIR ...]     (default DIR: the script's folder)

Output (stdout): one JSON object per line:
  {"source": "dashboards/grafana/service-detail.json", "where": "panel 3 'Share…' target A",
   "expr": "<as written>", "promql": "<Grafana variables substituted>"}

Grafana variables are substituted so that the result is plain PromQL that Prometheus accepts:
$__rate_interval/$__range/$__interval -> 5m/1h/1m, $__range_s -> 3600, and any other $var /
${var} / ${var:format} -> ".*" (the dashboards' "All") inside a label value, or "1" elsewhere. Dashboard
variable queries (label_values(...)) are reported with kind "variable" and are not PromQL.

--as-rules FILE writes every PromQL expression as a recording rule into FILE, so that
`promtool check rules FILE` parses them all without a running Prometheus. The number of
expressions found is printed on stderr. The lab evaluates the "promql" field against a real
Prometheus that scrapes the real exporter.
"""
import json
import os
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("extract-promql.py needs PyYAML (Debian: apt-get install -y python3-yaml)")

SUBST = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__interval_ms": "60000",
}
VAR = re.compile(r"\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\$([A-Za-z0-9_]+)")


def substitute(expr):
    """Replace Grafana variables with values that keep the expression valid PromQL."""

    def repl(m):
        name = m.group(1) or m.group(2)
        if name in SUBST:
            return SUBST[name]
        # Inside a quoted label value: the dashboards' "All" value, which also matches a
        # missing label (fwmark services have no address, address services no mark).
        before = expr[: m.start()]
        if before.count('"') % 2 == 1:
            return ".*"
        return "1"

    return VAR.sub(repl, expr)


def walk_dashboard(node, path, out):
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str) and node["expr"].strip():
            out.append((f"{path} target {node.get('refId', '?')}", node["expr"], "query"))
        if node.get("type") == "query" and "query" in node:
            q = node["query"]
            q = q.get("query") if isinstance(q, dict) else q
            if isinstance(q, str) and q.strip():
                out.append((f"variable {node.get('name', '?')}", q, "variable"))
        here = f"panel '{node['title']}'" if "title" in node and "targets" in node else path
        for k, v in node.items():
            if k not in ("expr", "query") and isinstance(v, (dict, list)):
                walk_dashboard(v, here, out)
    elif isinstance(node, list):
        for v in node:
            walk_dashboard(v, path, out)


def walk_rules(doc, out):
    for g in (doc or {}).get("groups", []):
        for r in g.get("rules", []):
            name = r.get("record") or r.get("alert") or "?"
            if "expr" in r:
                out.append((f"group {g.get('name')} rule {name}", str(r["expr"]), "rule"))


def main(argv):
    raw = "--raw" in argv
    argv = [a for a in argv if a != "--raw"]
    as_rules = None
    if "--as-rules" in argv:
        i = argv.index("--as-rules")
        if i + 1 >= len(argv):
            sys.exit("--as-rules needs a file name")
        as_rules = argv[i + 1]
        del argv[i : i + 2]
    dirs = argv or [os.path.dirname(os.path.abspath(__file__))]
    found = []
    for d in dirs:
        for root, _, files in os.walk(d):
            for f in sorted(files):
                p = os.path.join(root, f)
                items = []
                try:
                    if f.endswith(".json"):
                        with open(p, encoding="utf-8") as fh:
                            walk_dashboard(json.load(fh), "dashboard", items)
                    elif f.endswith((".yml", ".yaml")) and "/tests" not in root:
                        with open(p, encoding="utf-8") as fh:
                            walk_rules(yaml.safe_load(fh), items)
                except (OSError, ValueError, yaml.YAMLError) as e:
                    sys.exit(f"{p}: {e}")
                for where, expr, kind in items:
                    found.append({"source": p, "where": where, "kind": kind, "expr": expr,
                                  "promql": expr if raw or kind == "variable" else substitute(expr)})
    for item in found:
        print(json.dumps(item))
    promql = [x for x in found if x["kind"] != "variable"]
    if as_rules:
        rules = [{"record": f"extracted:expr_{i}", "expr": x["promql"]} for i, x in enumerate(promql)]
        with open(as_rules, "w", encoding="utf-8") as fh:
            yaml.safe_dump({"groups": [{"name": "extracted", "rules": rules}]}, fh, sort_keys=False)
    print(f"{len(promql)} PromQL expressions ({len(found) - len(promql)} variable queries)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
