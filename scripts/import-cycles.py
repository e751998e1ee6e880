#!/usr/bin/env python3
"""The import circles among a crate's modules (`use crate::…` between files; a module and its own
parent do not count): prints each, and fails when one ties more files than allowed.

    scripts/import-cycles.py node/src --max 2
"""
import argparse, os, re, sys
ap = argparse.ArgumentParser()
ap.add_argument('root')
ap.add_argument('--max', type=int, default=2)
args = ap.parse_args()
root = args.root
files = {}
for dp, dn, fn in os.walk(root):
    for f in fn:
        if f.endswith('.rs'):
            p = os.path.join(dp, f)
            rel = os.path.relpath(p, root)
            files[rel] = open(p).read()
def module_of(rel):
    m = rel[:-3]
    if m.endswith('/mod'): m = m[:-4]
    return m.replace('/', '::')
mods = {module_of(r): r for r in files}
def resolve(path):
    parts = path.split('::')
    for i in range(len(parts), 0, -1):
        cand = '::'.join(parts[:i])
        if cand in mods: return cand
    return None
edges = {m: set() for m in mods}
for m, rel in mods.items():
    src = files[rel]
    # strip test modules roughly
    src = re.split(r'#\[cfg\(test\)\]\s*mod tests', src)[0]
    for u in re.findall(r'crate::([A-Za-z0-9_:]+)', src):
        t = resolve(u)
        if t and t != m and not m.startswith(t + '::') :
            edges[m].add(t)
    for grp in re.findall(r'use crate::\{([^;]+)\};', src, re.S):
        for part in re.findall(r'([A-Za-z_][A-Za-z0-9_:]*)', grp):
            t = resolve(part)
            if t and t != m and not m.startswith(t+'::'): edges[m].add(t)
# tarjan
idx = {}; low = {}; st = []; on = set(); res = []; c = [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        res.append(comp)
for v in mods:
    if v not in idx: sc(v)
big = [sorted(x) for x in res if len(x) > 1]
for b in sorted(big, key=len, reverse=True): print(len(b), b)
largest = max([len(b) for b in big] or [1])
print(f"{root}: the largest import circle ties {largest} files (at most {args.max})")
sys.exit(0 if largest <= args.max else 1)
