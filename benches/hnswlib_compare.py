#!/usr/bin/env python3
"""hnswlib and faiss-cpu HNSW on the same vectors and parameters as quire's builders.

Not part of CI. Needs `pip install numpy hnswlib faiss-cpu`. Two ways to run it:

    # what `cargo bench -p quire-benches --bench hnsw` runs when QUIRE_BENCH_PYTHON is set:
    python3 benches/hnswlib_compare.py --dir target/quire-bench/hnsw-synthetic-100000

    # against the retrieval bench's 100k index (run `cargo bench --bench retrieval` first):
    python3 benches/hnswlib_compare.py

Prints build throughput at 1 and 2 threads, and recall@10 against exact search with per-query
latency at ef 16/32/64/128 plus the smallest ef of a sweep reaching recall 0.95 (ef*). Mean
latency is a batch of all queries on one thread divided by their number; p50 is one Python call
per query, so it includes the interpreter's overhead (a few microseconds).
"""
import argparse
import glob
import json
import os
import time

import numpy as np

EFS = [16, 32, 64, 128]
SWEEP = [10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 192, 256, 384, 512, 768, 1024]


def load(args):
    if args.dir:
        truth = np.fromfile(os.path.join(args.dir, "truth.u32"), dtype="<u4").reshape(-1, 10)
        queries = np.fromfile(os.path.join(args.dir, "queries.f32"), dtype="<f4")
        dim = len(queries) // len(truth)
        data = np.fromfile(os.path.join(args.dir, "vectors.f32"), dtype="<f4").reshape(-1, dim)
        return data, queries.reshape(-1, dim), truth
    root = os.path.join(os.path.dirname(__file__), "..", "target", "quire-bench")
    index_dirs = glob.glob(os.path.join(root, "data", "indexes", "idx-*"))
    assert index_dirs, "run the retrieval bench first, or pass --dir"
    manifest = json.load(open(os.path.join(index_dirs[0], "manifest.json")))
    dim = manifest["embedding"]["dim"]
    data = np.fromfile(os.path.join(index_dirs[0], "vectors.f32"), dtype="<f4").reshape(-1, dim)
    queries = np.fromfile(os.path.join(root, "queries.f32"), dtype="<f4").reshape(-1, dim)
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    return data, queries, truth


class Hnswlib:
    name = "hnswlib"

    def __init__(self, data, m, efc, threads):
        import hnswlib

        self.index = hnswlib.Index(space="ip", dim=data.shape[1])
        self.index.init_index(max_elements=len(data), M=m, ef_construction=efc, random_seed=100)
        self.index.set_num_threads(threads)
        self.index.add_items(data, np.arange(len(data)))
        self.index.set_num_threads(1)

    def search(self, queries, ef):
        self.index.set_ef(max(ef, 10))
        return self.index.knn_query(queries, k=10)[0]

    def search_filtered(self, query, ef, allowed):
        # hnswlib calls the Python filter per visited node: recall is hnswlib's, latency is not.
        self.index.set_ef(ef)
        return self.index.knn_query(query, k=10, filter=lambda i: bool(allowed[i]))[0]


class Faiss:
    name = "faiss-cpu"

    def __init__(self, data, m, efc, threads):
        import faiss

        faiss.omp_set_num_threads(threads)
        self.index = faiss.IndexHNSWFlat(data.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = efc
        self.index.add(data)
        faiss.omp_set_num_threads(1)

    def search(self, queries, ef):
        self.index.hnsw.efSearch = max(ef, 10)
        return self.index.search(queries, 10)[1]

    def search_filtered(self, query, ef, allowed):
        import faiss

        if not hasattr(self, "selector"):
            self.bitmap = np.packbits(allowed, bitorder="little")
            self.selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(self.bitmap))
        params = faiss.SearchParametersHNSW(sel=self.selector, efSearch=ef)
        return self.index.search(query, 10, params=params)[1]


def measure(index, queries, truth, ef):
    started = time.perf_counter()
    labels = index.search(queries, ef)
    mean_us = (time.perf_counter() - started) * 1e6 / len(queries)
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q[None, :], ef)
        times.append((time.perf_counter() - t) * 1e6)
    times.sort()
    found = sum(len(set(map(int, row)) & set(map(int, t))) for row, t in zip(labels, truth))
    return found / truth.size, times[len(times) // 2], mean_us


def measure_filtered(index, data, queries, percent):
    """Recall@10 and p50 of the retrieval bench's reader of `percent`% of the chunks (chunk i is
    in bucket i * 7919 mod 1000), at the beam quire's OpenIndex::vector uses for it."""
    allowed = (np.arange(len(data)) * 7919) % 1000 < percent * 10
    ef = int(np.ceil(64 * min(np.sqrt(len(data) / allowed.sum()), 4.0)))
    ids = np.nonzero(allowed)[0]
    found, times = 0, []
    for q in queries:
        truth = ids[np.argsort(-(data[ids] @ q), kind="stable")[:10]]
        t = time.perf_counter()
        got = index.search_filtered(q[None, :], ef, allowed)
        times.append((time.perf_counter() - t) * 1e6)
        found += len(set(map(int, got[0])) & set(map(int, truth)))
    times.sort()
    return ef, found / (10 * len(queries)), times[len(times) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--filter-percent", type=int, default=30)
    args = parser.parse_args()
    data, queries, truth = load(args)
    built = {}
    print("\n| builder                | threads |  build s | vectors/s |   cpu s |")
    print("|------------------------|---------|----------|-----------|---------|")
    for kind in (Hnswlib, Faiss):
        for threads in (1, 2):
            started, cpu = time.perf_counter(), time.process_time()
            index = kind(data, args.m, args.ef_construction, threads)
            secs, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(f"| {kind.name:<22} | {threads:>7} | {secs:>8.1f} | {len(data) / secs:>9.0f} | {cpu:>7.1f} |")
            built[kind.name] = index
    print("\n| index                  |   ef | recall@10 | p50 us  | mean us |")
    print("|------------------------|------|-----------|---------|---------|")
    for name, index in built.items():
        for ef in EFS:
            recall, p50, mean_us = measure(index, queries, truth, ef)
            print(f"| {name:<22} | {ef:>4} | {recall:>9.3f} | {p50:>7.0f} | {mean_us:>7.0f} |")
        for ef in SWEEP:
            recall, p50, mean_us = measure(index, queries, truth, ef)
            if recall >= 0.95:
                print(f"| {name:<22} | {str(ef) + '*':>4} | {recall:>9.3f} | {p50:>7.0f} | {mean_us:>7.0f} |")
                break
        else:
            print(f"| {name:<22} | >1024 |        - |       - |       - |")
    print(f"\nfiltered: {args.filter_percent}% allowed (p50 of hnswlib includes a Python call per visited node)")
    print("| index                  |   ef | recall@10 | p50 us  |")
    print("|------------------------|------|-----------|---------|")
    for name, index in built.items():
        ef, recall, p50 = measure_filtered(index, data, queries, args.filter_percent)
        print(f"| {name:<22} | {ef:>4} | {recall:>9.3f} | {p50:>7.0f} |")


if __name__ == "__main__":
    main()
