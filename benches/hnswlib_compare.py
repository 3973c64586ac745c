#!/usr/bin/env python3
"""Compare quire's vector search with hnswlib on the same vectors and parameters.

Not part of CI. Run `cargo bench -p quire-benches --bench retrieval` first: it builds the
synthetic 100k-chunk index under target/quire-bench/ and writes the query vectors. Then:

    pip install hnswlib numpy
    python3 benches/hnswlib_compare.py

Prints hnswlib's build rate (1 and 2 threads), query latency at ef 64 (single thread, from
Python) and recall@10 against exact search, for the table in the issue note.
"""
import glob
import json
import os
import time

import hnswlib
import numpy as np

root = os.path.join(os.path.dirname(__file__), "..", "target", "quire-bench")
index_dirs = glob.glob(os.path.join(root, "data", "indexes", "idx-*"))
assert index_dirs, "run the retrieval bench first"
manifest = json.load(open(os.path.join(index_dirs[0], "manifest.json")))
dim = manifest["embedding"]["dim"]
hnsw = manifest["spec"]["hnsw"]
data = np.fromfile(os.path.join(index_dirs[0], "vectors.f32"), dtype="<f4").reshape(-1, dim)
queries = np.fromfile(os.path.join(root, "queries.f32"), dtype="<f4").reshape(-1, dim)
truth = np.argsort(-(queries @ data.T), axis=1)[:, :10]

for threads in (1, 2):
    index = hnswlib.Index(space="ip", dim=dim)
    index.init_index(max_elements=len(data), M=hnsw["m"], ef_construction=hnsw["ef_construction"], random_seed=100)
    index.set_num_threads(threads)
    started = time.perf_counter()
    index.add_items(data, np.arange(len(data)))
    elapsed = time.perf_counter() - started
    print(f"hnswlib build, {threads} thread(s): {len(data) / elapsed:,.0f} vectors/s")

index.set_ef(hnsw["ef_search"])
index.set_num_threads(1)
times, found = [], 0
for q, t in zip(queries, truth):
    started = time.perf_counter()
    labels, _ = index.knn_query(q, k=10)
    times.append((time.perf_counter() - started) * 1e6)
    found += len(set(labels[0]) & set(t))
times.sort()
print(f"hnswlib query ef {hnsw['ef_search']}: p50 {times[len(times) // 2]:.0f} us, "
      f"p99 {times[int(len(times) * 0.99)]:.0f} us, recall@10 {found / truth.size:.3f}")
