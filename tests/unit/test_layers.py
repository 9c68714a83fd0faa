"""The import layers of ``src/relaygate``: no circle between parts, no import that runs upward.

A *part* is a subpackage (``relaygate/store``) or a top-level module (``relaygate/policy.py``).
Every import counts, also one inside a function or under ``TYPE_CHECKING``. The levels, bottom
first; an import may go to its own level or a lower one:

1. **foundation** — errors, clock, settings, logs, metrics, notify, owners, the DNS resolver
   factory, and ``policy`` (plans, scopes, rate and quota decisions: pure).
2. **store** — the interface by concern, its values and state tables, and the backends
   (``store/sqlite/``). SQL and the database's exceptions live only there; it decides no policy.
3. **the work** — compose (request → MIME, templates), dkim, domains, bounces (parse, classify,
   what a report changes), events (webhooks and tracking), relay (scheduler, routing, SMTP client).
4. **management actions** — ``manage``: the one code path per management action (keys,
   domains, webhooks, templates, suppressions, the audit log) that the command line, the
   management API and the dashboard all call.
5. **the ways in and the service** — gateway (HTTP API, SMTP listener, the admission funnel),
   ops (the status summary), service (wires the roles); the dashboard joins here.
6. **the command line** — ``cli`` and ``commands`` (one module per noun). Nothing imports them
   but the entry point: ``commands`` only ``cli`` and ``__main__``; ``cli`` only ``__main__``.

``testing`` (fixtures users can use too: DNS server, SMTP sink, processes) may import anything;
nothing in ``src`` imports it. A new part must be given a level here, or this test fails.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import relaygate

LEVELS: tuple[frozenset[str], ...] = (
    frozenset(
        {"__init__", "errors", "clock", "settings", "logs", "metrics", "notify", "owners"}
        | {"dnsresolver", "policy", "idn"}
    ),
    frozenset({"store"}),
    frozenset({"compose", "dkim", "domains", "bounces", "events", "relay"}),
    frozenset({"manage"}),
    frozenset({"gateway", "ops", "service", "dashboard"}),
    frozenset({"cli", "commands", "__main__"}),
)
EDGES_ONLY = frozenset({"testing"})
#: Who may import the command line's parts.
ENTRY = {"cli": {"__main__"}, "commands": {"cli", "__main__"}}
ROOT = Path(relaygate.__file__).parent


def _part(module: str) -> str | None:
    bits = module.split(".")
    if bits[0] != "relaygate":
        return None
    return bits[1] if len(bits) > 1 else "__init__"


def _module_of(path: Path, root: Path) -> tuple[str, str]:
    """(dotted module name, the package its relative imports start from)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def import_edges(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """(importing part, imported part) → where (``file:line``), for every import in ``root``."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        module, package = _module_of(path, root)
        src = "__init__" if module == "relaygate" else _part(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    targets = [".".join([*base, node.module] if node.module else base)]
                else:
                    targets = [node.module or ""]
                # ``from relaygate import store`` imports the part ``store``
                if targets == ["relaygate"]:
                    targets = [f"relaygate.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                dst = _part(target)
                if src and dst and dst != src:
                    edges[(src, dst)].append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return edges


def _level(part: str) -> int | None:
    return next((i for i, names in enumerate(LEVELS) if part in names), None)


def _circles(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst in edges:
        graph[src].add(dst)
    found: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt == path[0]:
                found.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:  # each circle once, from its smallest part
                walk(nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, [start])
    return found


def test_every_part_has_a_level() -> None:
    parts = {p.stem for p in ROOT.glob("*.py")} | {
        p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()
    }
    unplaced = sorted(p for p in parts if _level(p) is None and p not in EDGES_ONLY)
    assert unplaced == [], f"give these parts a level in {__name__}: {unplaced}"


def test_no_import_circle_between_parts() -> None:
    circles = _circles(import_edges())
    assert circles == [], "import circles: " + "; ".join(" → ".join(c) for c in circles)


def test_no_upward_import() -> None:
    wrong = []
    for (src, dst), where in sorted(import_edges().items()):
        if dst in EDGES_ONLY:
            wrong.append(f"{src} imports {dst} ({where[0]}): nothing in src may")
        elif dst in ENTRY and src not in ENTRY[dst]:
            wrong.append(f"{src} imports the command line's {dst} ({where[0]})")
        elif src in EDGES_ONLY:
            continue
        elif (_level(src) or 0) < (_level(dst) or 0):
            wrong.append(
                f"{src} (level {_level(src)}) imports {dst} (level {_level(dst)}): {where}"
            )
    assert wrong == [], "\n".join(wrong)


def test_the_check_sees_function_level_imports_and_circles(tmp_path: Path) -> None:
    """The check itself: an import inside a function is an edge, and a circle is found."""
    pkg = tmp_path / "relaygate"
    (pkg / "store").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "store" / "__init__.py").write_text("def f():\n    from relaygate.gateway import x\n")
    (pkg / "gateway.py").write_text("from relaygate import store\n")
    edges = import_edges(pkg)
    assert set(edges) == {("store", "gateway"), ("gateway", "store")}
    assert _circles(edges) == [["gateway", "store", "gateway"]]
    assert _level("store") == 1 and _level("gateway") == 4  # so store → gateway is upward


def test_importing_the_store_loads_no_library_of_the_parts_above() -> None:
    """The store is imported by every role: it must not drag in Jinja2, Starlette, dkimpy,
    aiosmtpd or dnspython (it did, through its upward imports)."""
    code = (
        "import sys, relaygate.store, relaygate.store.sqlite\n"
        "print(sorted(m for m in ('jinja2', 'starlette', 'dkim', 'aiosmtpd', 'dns', 'uvicorn')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
