#!/usr/bin/env python3
"""Peer engines on the data quire exports, side by side with quire's own numbers.

Not part of CI. Setup (Python 3.10+):

    python3 -m venv venv-peers
    venv-peers/bin/pip install numpy faiss-cpu==1.15.1 hnswlib==0.8.0 tantivy==0.27.0 \
        qdrant-edge-py==0.9.0

Produce an export (quire's numbers in quire.json, the chunks, vectors, queries and a 10% allowed
set), then run the peers on it:

    cargo bench -p quire-benches --bench peers -- INDEX_DIR target/quire-bench/peers-scifact
    venv-peers/bin/python benches/peers.py target/quire-bench/peers-scifact [--skip qdrant]

Every peer answers with one query thread, k from meta.json, a warm-up pass over all queries and
then --rounds timed passes (3, as quire's bench); latency is per query (time.perf_counter_ns around
one Python call, so it includes a few microseconds of interpreter overhead quire does not pay).
Peers: tantivy-py (BM25 with quire's analyzer), faiss IndexFlatIP and numpy (exact), hnswlib (HNSW
ef sweep) and qdrant-edge (dense HNSW + sparse BM25, RRF). The markdown table is printed and
written to EXPORT_DIR/peers.md.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one query thread for numpy's BLAS and faiss

import argparse
import json
import platform
import shutil
import tempfile
import time
from importlib import metadata

import numpy as np

PEERS = ("tantivy", "faiss", "numpy", "hnswlib", "qdrant")
EF_SWEEP = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256]
TARGET_RECALL = 0.99
RRF_K = 60  # quire's fusion.rrf_k: 1 / (k + rank), rank from 1; qdrant's rank counts from 0


def load_export(path):
    meta = json.load(open(os.path.join(path, "meta.json")))
    n, dim = meta["chunks"], meta["dim"]
    vectors_path = meta["vectors"]
    if not os.path.exists(vectors_path):  # the export was moved: look next to meta.json
        vectors_path = os.path.join(path, os.path.basename(vectors_path))
    vectors = np.fromfile(vectors_path, dtype="<f4", count=n * dim).reshape(n, dim)
    chunks = [json.loads(line) for line in open(os.path.join(path, "chunks.jsonl"))]
    queries = [json.loads(line)["text"] for line in open(os.path.join(path, "queries.jsonl"))]
    qv = np.fromfile(os.path.join(path, "query_vectors.f32"), dtype="<f4").reshape(-1, dim)
    allowed = np.fromfile(os.path.join(path, "allowed10.u32"), dtype="<u4").astype(np.int64)
    quire_path = os.path.join(path, "quire.json")
    quire = json.load(open(quire_path)) if os.path.exists(quire_path) else {}
    assert len(chunks) == n and len(queries) == len(qv), "export files disagree on counts"
    return {"meta": meta, "vectors": np.ascontiguousarray(vectors), "chunks": chunks,
            "queries": queries, "qv": np.ascontiguousarray(qv), "allowed": allowed, "quire": quire}


def timed(fn, count, rounds):
    """fn(i) for every query i: a warm-up pass, then `rounds` timed passes (as quire's
    benches/peers.rs). (results of the first timed pass, latencies in us)."""
    for i in range(count):
        fn(i)
    results, lat = [], []
    for _ in range(rounds):
        for i in range(count):
            start = time.perf_counter_ns()
            hits = fn(i)
            lat.append((time.perf_counter_ns() - start) / 1e3)
            if len(results) < count:
                results.append(hits)
    return results, np.array(lat)


def stats(lat, **extra):
    """p50 and p99 by nearest rank, as quire's bench reports them."""
    return {"p50": float(np.percentile(lat, 50, method="nearest")),
            "p99": float(np.percentile(lat, 99, method="nearest")), **extra}


def recall(found, truth):
    k = truth.shape[1]
    hits = sum(len(set(map(int, f[:k])) & set(map(int, t))) for f, t in zip(found, truth))
    return hits / (k * len(truth))


def english_analyzer(tantivy):
    """quire's `english` analyzer (crates/quire-index/src/bm25.rs) rebuilt in tantivy-py."""
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(40))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.stopword("english"))
            .filter(tantivy.Filter.stemmer("english"))
            .build())


def run_tantivy(ex):
    """BM25: one text field holding title and body as two values, a disjunction of the query's
    distinct analysed terms; the 10% variant adds a Must ConstScore(0) term on `allowed`."""
    import tantivy

    k, chunks = ex["meta"]["k"], ex["chunks"]
    analyzer = english_analyzer(tantivy)
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", tokenizer_name="quire_english", index_option="freq")
    builder.add_unsigned_field("allowed", indexed=True)
    schema = builder.build()
    index = tantivy.Index(schema)  # in RAM
    index.register_tokenizer("quire_english", analyzer)
    allowed = set(ex["allowed"].tolist())
    start = time.perf_counter()
    writer = index.writer(heap_size=1 << 30, num_threads=1)  # one thread: one segment
    for ordinal, chunk in enumerate(chunks):
        doc = tantivy.Document()
        if chunk.get("title") is not None:
            doc.add_text("text", chunk["title"])
        doc.add_text("text", chunk["body"])
        if ordinal in allowed:
            doc.add_unsigned("allowed", 1)
        writer.add_document(doc)
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    build_s = time.perf_counter() - start
    searcher = index.searcher()
    assert searcher.num_segments == 1, "hits are read as chunk ordinals: needs one segment"
    Q, Occur = tantivy.Query, tantivy.Occur
    only_allowed = Q.const_score_query(Q.term_query(schema, "allowed", 1), 0.0)

    def search(i, filtered):
        terms = dict.fromkeys(analyzer.analyze(ex["queries"][i]))
        if not terms:
            return []
        query = Q.boolean_query([(Occur.Should, Q.term_query(schema, "text", t, index_option="freq"))
                                 for t in terms])
        if filtered:
            query = Q.boolean_query([(Occur.Must, query), (Occur.Must, only_allowed)])
        # count=False: no Count collector, so tantivy keeps block-max WAND pruning
        return [addr.doc for _, addr in searcher.search(query, k, count=False).hits]

    nq = len(ex["queries"])
    public, lat = timed(lambda i: search(i, False), nq, ex["rounds"])
    filtered, lat10 = timed(lambda i: search(i, True), nq, ex["rounds"])
    assert all(d in allowed for hits in filtered for d in hits)
    note = f"one segment, build {build_s:.1f} s"
    return {"bm25": stats(lat, note=note), "bm25_10": stats(lat10, note="Must ConstScore(0) term"),
            "top": public}


def run_faiss(ex):
    import faiss

    faiss.omp_set_num_threads(1)
    k, qv, n = ex["meta"]["k"], ex["qv"], ex["meta"]["chunks"]
    index = faiss.IndexFlatIP(ex["meta"]["dim"])
    index.add(ex["vectors"])
    mask = np.zeros(n, dtype=bool)
    mask[ex["allowed"]] = True
    params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little")))
    exact, lat = timed(lambda i: index.search(qv[i:i + 1], k)[1][0], len(qv), ex["rounds"])
    exact10, lat10 = timed(lambda i: index.search(qv[i:i + 1], k, params=params)[1][0], len(qv),
                           ex["rounds"])
    assert all(mask[j] for hits in exact10 for j in hits if j >= 0)
    return {"exact": stats(lat), "exact_10": stats(lat10, note="IDSelectorBitmap"),
            "truth": np.array(exact)}


def run_numpy(ex):
    k, qv, vectors, allowed = ex["meta"]["k"], ex["qv"], ex["vectors"], ex["allowed"]
    subset = np.ascontiguousarray(vectors[allowed])

    def top(matrix, q):
        scores = matrix @ q
        best = np.argpartition(-scores, k)[:k]
        return best[np.argsort(-scores[best])]

    _, lat = timed(lambda i: top(vectors, qv[i]), len(qv), ex["rounds"])
    _, lat10 = timed(lambda i: allowed[top(subset, qv[i])], len(qv), ex["rounds"])
    return {"exact": stats(lat, note="matvec + argpartition"),
            "exact_10": stats(lat10, note="pre-gathered allowed rows")}


def run_hnswlib(ex, truth):
    import hnswlib

    meta, qv = ex["meta"], ex["qv"]
    k, n = meta["k"], meta["chunks"]
    start = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=meta["dim"])
    index.init_index(max_elements=n, M=meta["m"], ef_construction=meta["ef_construction"],
                     random_seed=100)
    index.set_num_threads(2)
    index.add_items(ex["vectors"], np.arange(n))
    index.set_num_threads(1)
    build_s = time.perf_counter() - start
    sweep = []
    for ef in sorted(set(EF_SWEEP) | {meta["ef_search"]}):
        index.set_ef(max(ef, k))
        found, lat = timed(lambda i: index.knn_query(qv[i], k=k)[0][0], len(qv), ex["rounds"])
        sweep.append(stats(lat, ef=ef, recall=recall(found, truth)))
    return {"sweep": sweep, "build_s": build_s}


def run_qdrant(ex, truth, full_scan_kb):
    """One in-process shard: dense `dense` (Dot, HNSW m/ef_construct from meta) and sparse `bm25`
    (qdrant's Bm25 embedder of title + " " + body, IDF modifier), optimised so HNSW is built."""
    import qdrant_edge as qe
    import tantivy

    meta, qv, queries = ex["meta"], ex["qv"], ex["queries"]
    k, n, cand, ef = meta["k"], meta["chunks"], meta["candidates"], meta["ef_search"]
    texts = [" ".join(filter(None, (c.get("title"), c["body"]))) for c in ex["chunks"]]
    # BM25 length normalisation against the corpus' real mean length in quire's analysed tokens
    analyzer = english_analyzer(tantivy)
    avg_len = max(1.0, float(np.mean([len(analyzer.analyze(t)) for t in texts])))
    bm25 = qe.Bm25(qe.Bm25Config(k=1.2, b=0.75, avg_len=avg_len, language="english",
                                 max_token_len=39))
    config = qe.EdgeConfig(
        vectors={"dense": qe.EdgeVectorParams(size=meta["dim"], distance=qe.Distance.Dot)},
        sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        hnsw_config=qe.HnswIndexConfig(m=meta["m"], ef_construct=meta["ef_construction"],
                                       full_scan_threshold=full_scan_kb, max_indexing_threads=2),
        optimizers=qe.EdgeOptimizersConfig(default_segment_number=1, indexing_threshold=10),
        max_search_threads=1)
    path = tempfile.mkdtemp(prefix="peers-qdrant-")
    allowed, shard = set(ex["allowed"].tolist()), None
    try:
        start = time.perf_counter()
        shard = qe.EdgeShard.create(path, config)
        for lo in range(0, n, 256):
            shard.update(qe.UpdateOperation.upsert_points([
                qe.Point(i, {"dense": ex["vectors"][i].tolist(),
                             "bm25": bm25.embed_document(texts[i])}, {"allowed10": int(i in allowed)})
                for i in range(lo, min(n, lo + 256))]))
        shard.update(qe.UpdateOperation.create_field_index("allowed10",
                                                           qe.PayloadSchemaType.Integer))
        shard.optimize()
        build_s = time.perf_counter() - start
        info = shard.info()
        assert info.indexed_vectors_count >= 2 * n, "qdrant did not index every vector"
        only_allowed = qe.Filter(must=[qe.FieldCondition(key="allowed10", match=qe.MatchValue(1))])
        qlists = [q.tolist() for q in qv]
        params = qe.SearchParams(hnsw_ef=ef)

        def dense(i):
            return shard.query(qe.QueryRequest(
                limit=k, query=qe.Query.Nearest(qlists[i], using="dense"), params=params,
                with_payload=False, with_vector=False))

        def hybrid(i, flt):
            sparse = bm25.embed_query(queries[i])
            return shard.query(qe.QueryRequest(
                limit=k, query=qe.Fusion.Rrf(k=RRF_K + 1), with_payload=False, with_vector=False,
                prefetches=[qe.Prefetch(limit=cand, params=params, filter=flt,
                                        query=qe.Query.Nearest(qlists[i], using="dense")),
                            qe.Prefetch(limit=cand, query=qe.Query.Nearest(sparse, using="bm25"),
                                        filter=flt)]))

        def sparse_only(i):
            return shard.query(qe.QueryRequest(
                limit=k, query=qe.Query.Nearest(bm25.embed_query(queries[i]), using="bm25")))

        nq = len(qv)
        found, lat = timed(dense, nq, ex["rounds"])
        ids = [[p.id for p in hits] for hits in found]
        _, lat_h = timed(lambda i: hybrid(i, None), nq, ex["rounds"])
        found10, lat_h10 = timed(lambda i: hybrid(i, only_allowed), nq, ex["rounds"])
        assert all(p.id in allowed for hits in found10 for p in hits)
        sparse_top = [[p.id for p in sparse_only(i)] for i in range(nq)]
        threshold = full_scan_kb * 1024 // (4 * meta["dim"])  # qdrant compares vector counts
        plan = lambda count: "scan" if count < threshold else "graph"  # noqa: E731
        return {"label": f"full_scan_threshold {full_scan_kb} KB", "build_s": build_s,
                "segments": info.segments_count,
                "vector": stats(lat, recall=recall(ids, truth), plan=plan(n)),
                "hybrid": stats(lat_h, plan=plan(n)),
                "hybrid_10": stats(lat_h10, plan=plan(len(allowed))),
                "sparse_top": sparse_top}
    finally:
        if shard is not None:
            shard.close()
        shutil.rmtree(path, ignore_errors=True)


def fmt(step):
    if not step or "p50" not in step:
        return "-"
    p99 = step.get("p99")
    return f"{step['p50']:.0f} / " + ("-" if p99 is None or p99 != p99 else f"{p99:.0f}")


def ratio(quire, peer):
    if not quire or not peer or "p50" not in quire or "p50" not in peer or not peer["p50"]:
        return "-"
    return f"{quire['p50'] / peer['p50']:.2f}x"


def first_reaching(rows, target=TARGET_RECALL):
    return next((r for r in sorted(rows, key=lambda r: r["ef"]) if r["recall"] >= target), None)


def cpu_model():
    if os.path.exists("/proc/cpuinfo"):
        models = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")]
        if models:
            return models[0]
    return platform.processor() or "unknown CPU"


def version(dist):
    return metadata.version(dist)  # every peer is installed (see the docstring)


def comparison_rows(meta, quire, res):
    """(step, quire numbers, peer, peer numbers) for the main table."""
    tan, fai, npy = res.get("tantivy", {}), res.get("faiss", {}), res.get("numpy", {})
    sweep = res.get("hnswlib", {}).get("sweep", [])
    at_target, quire_graph = first_reaching(sweep), first_reaching(quire.get("graph", []))
    at_search = next((r for r in sweep if r["ef"] == meta["ef_search"]), None)
    qv, qv10 = quire.get("vector", {}), quire.get("vector_10", {})
    flat = "faiss IndexFlatIP + selector"
    rows = [("BM25 public", quire.get("bm25"), "tantivy-py", tan.get("bm25")),
            ("BM25 10%", quire.get("bm25_10"), "tantivy-py filtered", tan.get("bm25_10")),
            ("exact scan", quire.get("exact"), "faiss IndexFlatIP", fai.get("exact")),
            ("exact scan", quire.get("exact"), "numpy", npy.get("exact")),
            ("exact 10%", quire.get("exact_10"), flat, fai.get("exact_10")),
            ("exact 10%", quire.get("exact_10"), "numpy", npy.get("exact_10")),
            ("vector 10%", qv10, flat,
             fai.get("exact_10") and dict(fai["exact_10"], note=f"quire: {qv10.get('plan', '-')}"))]
    if sweep:
        target = f"vector, recall >= {TARGET_RECALL}"
        quire_note = f"quire recall {qv['recall']:.3f} ({qv.get('plan', '?')})" if "recall" in qv else ""
        if at_target:
            rows.append((target, qv, f"hnswlib ef {at_target['ef']}",
                         dict(at_target, note=f"hnswlib recall {at_target['recall']:.3f}; {quire_note}")))
        else:
            rows.append((target, qv, f"hnswlib: no ef reaches {TARGET_RECALL}", None))
        if quire_graph and at_target:
            rows.append((f"graph only, recall >= {TARGET_RECALL}", quire_graph,
                         f"hnswlib ef {at_target['ef']}",
                         dict(at_target, note=f"quire graph sweep ef {quire_graph['ef']}, recall "
                                              f"{quire_graph['recall']:.3f}")))
        if at_search and at_search is not at_target:
            rows.append(("vector", qv, f"hnswlib ef_search {meta['ef_search']}",
                         dict(at_search, note=f"recall {at_search['recall']:.3f}")))
    for run in res.get("qdrant", []):
        v, h, h10 = run["vector"], run["hybrid"], run["hybrid_10"]
        build = f"{run['label']}, {run['segments']} segments, build {run['build_s']:.1f} s"
        rows += [("vector", qv, f"qdrant-edge dense, {v['plan']}",
                  dict(v, note=f"recall {v['recall']:.3f}; hnsw_ef {meta['ef_search']}; {build}")),
                 ("hybrid (RRF)", quire.get("hybrid"), f"qdrant-edge dense {h['plan']} + BM25",
                  dict(h, note="timed: Bm25.embed_query + one query, 2 prefetches")),
                 ("hybrid 10%", quire.get("hybrid_10"), f"qdrant-edge dense {h10['plan']} + BM25",
                  dict(h10, note="payload match filter in both prefetches"))]
    return rows, at_target


def report(ex, res, elapsed, load):
    meta, quire = ex["meta"], ex["quire"]
    rows, at_target = comparison_rows(meta, quire, res)
    name = meta["name"]
    if meta.get("index_id", name) != name:
        name += f" ({meta['index_id']})"
    lines = [f"## quire vs peers: {name}, {meta['chunks']} chunks x {meta['dim']}, "
             f"{len(ex['queries'])} queries, k {meta['k']}",
             "",
             f"CPU: {cpu_model()} ({os.cpu_count()} logical cores, load average {load:.1f} at start); "
             f"one query thread everywhere; latency in microseconds, {ex['rounds']} timed passes after "
             "a warm-up; ratio = quire p50 / peer p50 (< 1: quire faster).",
             f"Peers: tantivy-py {version('tantivy')}, faiss-cpu {version('faiss-cpu')}, "
             f"numpy {np.__version__}, hnswlib {version('hnswlib')}, qdrant-edge-py "
             f"{version('qdrant-edge-py')}; Python {platform.python_version()}. HNSW m {meta['m']}, "
             f"ef_construction {meta['ef_construction']}; hybrid candidates {meta['candidates']} "
             f"per side, RRF k {RRF_K}.",
             "",
             "| step | quire p50 / p99 us | peer | peer p50 / p99 us | ratio (quire/peer) | notes |",
             "|---|---|---|---|---|---|"]
    for step, ours, peer, theirs in rows:
        note = (theirs or {}).get("note", "")
        lines.append(f"| {step} | {fmt(ours)} | {peer} | {fmt(theirs)} | {ratio(ours, theirs)} | {note} |")
    hns = res.get("hnswlib")
    if hns:
        graph = {g["ef"]: g for g in quire.get("graph", [])}
        lines += ["", "hnswlib ef sweep (recall@10 against faiss exact top-10; * = smallest ef reaching "
                  f"{TARGET_RECALL}; build {hns['build_s']:.1f} s on 2 threads):", "",
                  "| ef | hnswlib recall | hnswlib p50 / p99 us | quire graph recall | quire p50 / p99 us |",
                  "|---|---|---|---|---|"]
        for r in hns["sweep"]:
            g = graph.get(r["ef"])
            ours = f"{g['recall']:.4f} | {fmt(g)}" if g else "- | -"
            mark = " *" if r is at_target else ""
            lines.append(f"| {r['ef']}{mark} | {r['recall']:.4f} | {fmt(r)} | {ours} |")
    if res.get("tantivy") and res.get("qdrant"):
        pairs = zip(res["tantivy"]["top"], res["qdrant"][0]["sparse_top"])
        same = np.mean([len(set(a) & set(b)) / len(a) for a, b in pairs if a])
        lines += ["", f"BM25 agreement: qdrant-edge sparse Bm25 top-{meta['k']} holds {same:.1%} of "
                  "tantivy-py's (qdrant's own tokenizer and stop list)."]
    lines += ["", f"Run time {elapsed:.0f} s."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export_dir")
    parser.add_argument("--skip", action="append", default=[],
                        help=f"peers to skip, repeatable or comma-separated: {', '.join(PEERS)}")
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed passes over the queries after the warm-up (quire's bench: 3)")
    parser.add_argument("--qdrant-full-scan-kb", default="10000,0",
                        help="comma-separated qdrant HNSW full_scan_threshold values in KB, one "
                             "shard each (default: qdrant's own 10000, and 0 = always walk the graph); "
                             "qdrant scans instead of walking the graph below it")
    args = parser.parse_args()
    skip = {s.strip() for arg in args.skip for s in arg.split(",") if s.strip()}
    unknown = skip - set(PEERS)
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}; choose from {PEERS}")
    start, load = time.perf_counter(), os.getloadavg()[0]
    ex = dict(load_export(args.export_dir), rounds=args.rounds)
    res = {}
    if "tantivy" not in skip:
        res["tantivy"] = run_tantivy(ex)
    if "faiss" not in skip:
        res["faiss"] = run_faiss(ex)
    if "numpy" not in skip:
        res["numpy"] = run_numpy(ex)
    truth = res["faiss"]["truth"] if "faiss" in res else np.array(
        [np.argsort(-(ex["vectors"] @ q))[:ex["meta"]["k"]] for q in ex["qv"]])
    if "hnswlib" not in skip:
        res["hnswlib"] = run_hnswlib(ex, truth)
    if "qdrant" not in skip:
        res["qdrant"] = [run_qdrant(ex, truth, int(kb)) for kb in args.qdrant_full_scan_kb.split(",")]
    table = report(ex, res, time.perf_counter() - start, load)
    print(table)
    with open(os.path.join(args.export_dir, "peers.md"), "w") as f:
        f.write(table)


if __name__ == "__main__":
    main()
