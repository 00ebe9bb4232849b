"""Generate jupyterhub-5.5.1.json: random scope cases answered by JupyterHub.

Run with a JupyterHub install importable by /usr/bin/python3 (for orm) and
JupyterHub 5.5.1's scopes.py saved next to this script as scopes551.py
(`git show 5.5.1:jupyterhub/scopes.py` in github.com/jupyterhub/jupyterhub):

    /usr/bin/python3 gen_jupyterhub_cases.py > jupyterhub-5.5.1.json

TestAgainstJupyterHub replays the cases: expansion (expand_scopes, with a
user, a service or no owner), intersection (_intersect_expanded_scopes
without db) and checks (has_scope without db).
"""
import importlib.util
import json
import os
import random
import sys
import warnings

warnings.simplefilter("ignore")
here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("jupyterhub.scopes551", os.path.join(here, "scopes551.py"))
m = importlib.util.module_from_spec(spec)
sys.modules["jupyterhub.scopes551"] = m
spec.loader.exec_module(m)
from jupyterhub import orm  # noqa: E402

random.seed(20261122)
names = sorted(n for n in m.scope_definitions if n not in ("self", "inherit", "(no_scope)"))


def value(kind):
    if kind == "server":
        return random.choice(["alice", "bob"]) + "/" + random.choice(["", "x"])
    return random.choice(["alice", "bob", "g"])


def raw_scope(pool, bare=True):
    b = random.choice(pool)
    if random.random() < 0.3:
        return b
    kind = random.choice(["user", "server", "group", "service"])
    if bare and kind != "group" and random.random() < 0.2:
        return f"{b}!{kind}"
    return f"{b}!{kind}={value(kind)}"


owners = {"none": None, "user": orm.User(name="alice"), "service": orm.Service(name="svc")}
expand = []
for _ in range(500):
    raw = sorted({raw_scope(names + ["self"]) for _ in range(random.randint(1, 4))})
    which = random.choice(sorted(owners))
    want = sorted(m.expand_scopes(raw, owner=owners[which]))
    expand.append({"raw": raw, "owner": which, "want": want})

small = ["read:users", "servers", "access:servers", "read:groups"]
intersect = []
for _ in range(600):
    left = sorted({raw_scope(small, bare=False) for _ in range(random.randint(0, 5))})
    right = sorted({raw_scope(small, bare=False) for _ in range(random.randint(0, 5))})
    want = sorted(m._intersect_expanded_scopes(set(left), set(right)))
    intersect.append({"l": left, "r": right, "want": want})

has = []
for _ in range(1000):
    have = sorted(m.expand_scopes({raw_scope(names, bare=False) for _ in range(random.randint(1, 5))}))
    bases = sorted({h.partition("!")[0] for h in have})
    scope = random.choice(bases) if bases and random.random() < 0.7 else random.choice(names)
    kind = random.choice(["", "user", "server", "group", "service"])
    v = value(kind) if kind else ""
    req = f"{scope}!{kind}={v}" if kind else scope
    has.append({"have": have, "scope": scope, "kind": kind, "value": v, "want": bool(m.has_scope(req, have))})

json.dump({"expand": expand, "intersect": intersect, "has": has}, sys.stdout, separators=(",", ":"))
