#!/usr/bin/env python3
"""Score a run with pytrec_eval (trec_eval's own code) as BEIR does, and compare with quire.

    python benches/pytrec_compare.py --run RUN --qrels QRELS [--quire REPORT] [--keep-identical-ids]
        [--per-query]

RUN is a TREC run file (`qid Q0 docid rank score tag`), one line per retrieved document, as the
retriever returned it: before any identical-id removal. QRELS is a BEIR qrels file
(`query-id<TAB>corpus-id<TAB>score` after a header line). REPORT is a quire evaluation report
(JSON with `metrics` and `per_query`, as `quire eval --json ... | jq .report` or the tests write
it); with it, both metric sets are printed to four decimals and the exit status is 1 unless
every mean and every per-query value agrees to four decimals (differs by less than 5e-5).

What is computed, and why it is BEIR's number:
- Identical ids: as `EvaluateRetrieval.evaluate(ignore_identical_ids=True)`, a document whose id
  equals the query id is dropped from the run before scoring (`--keep-identical-ids`: not).
- nDCG@10 is trec_eval `ndcg_cut.10`, recall@10 and @100 are `recall.10` and `recall.100`.
- MRR@10 is trec_eval `recip_rank` on the run cut to its first 10 documents, which is BEIR's
  `mrr` custom metric at k = 10.
- Order: trec_eval ranks by score and breaks ties by document id, so the run's order is given to
  it as scores from the rank column (rank 1 highest): the ranking scored is the one retrieved.
- Means are over every judged query; a judged query absent from the run scores 0 (trec_eval
  `-c`). BEIR averages over the queries pytrec_eval returns, which is the same when every query
  retrieved something; the count of absent queries is printed.

Needs `pytrec-eval-terrier` (scripts/fetch-pytrec-eval installs it into .venv-pytrec).
"""

import argparse
import json
import sys
from collections import defaultdict

import pytrec_eval

METRICS = ["ndcg_at_10", "recall_at_10", "recall_at_100", "mrr_at_10"]
# Equal to four decimals, without a rounding boundary splitting two equal values.
TOLERANCE = 5e-5


def read_qrels(path):
    qrels = defaultdict(dict)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            line = line.rstrip("\r\n")
            if (n == 0 and line.startswith("query-id")) or not line.strip():
                continue
            qid, doc, score = line.split("\t")
            qrels[qid][doc] = int(score)
    return dict(qrels)


def read_run(path):
    """qid -> [docid, ...] in rank order."""
    ranked = defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            qid, _q0, doc, rank, _score, _tag = line.split()
            ranked[qid].append((int(rank), doc))
    return {q: [d for _, d in sorted(docs)] for q, docs in ranked.items()}


def as_scores(docs):
    """The ranking as trec_eval scores: rank 1 highest, no ties."""
    return {d: float(len(docs) - i) for i, d in enumerate(docs)}


def pytrec_metrics(run, qrels, ignore_identical_ids):
    run = {
        q: [d for d in docs if not (ignore_identical_ids and d == q)]
        for q, docs in run.items()
        if q in qrels
    }
    full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10,100"})
    top10 = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"})
    scored = full.evaluate({q: as_scores(d) for q, d in run.items() if d})
    rr = top10.evaluate({q: as_scores(d[:10]) for q, d in run.items() if d})
    per_query = {}
    for q in qrels:
        s = scored.get(q, {})
        per_query[q] = {
            "ndcg_at_10": s.get("ndcg_cut_10", 0.0),
            "recall_at_10": s.get("recall_10", 0.0),
            "recall_at_100": s.get("recall_100", 0.0),
            "mrr_at_10": rr.get(q, {}).get("recip_rank", 0.0),
        }
    absent = sum(1 for q in qrels if q not in scored)
    return per_query, absent


def mean(per_query):
    n = max(len(per_query), 1)
    return {m: sum(v[m] for v in per_query.values()) / n for m in METRICS}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True)
    p.add_argument("--qrels", required=True)
    p.add_argument("--quire", help="quire's evaluation report (JSON) to compare with")
    p.add_argument("--keep-identical-ids", action="store_true")
    p.add_argument("--per-query", action="store_true", help="print pytrec_eval's per-query values")
    args = p.parse_args()

    qrels = read_qrels(args.qrels)
    per_query, absent = pytrec_metrics(
        read_run(args.run), qrels, not args.keep_identical_ids
    )
    theirs = mean(per_query)
    print(
        f"{len(qrels)} judged queries, {absent} absent from the run; identical ids "
        f"{'kept' if args.keep_identical_ids else 'ignored'}"
    )
    if args.per_query:
        for q in sorted(per_query):
            print(q, " ".join(f"{per_query[q][m]:.6f}" for m in METRICS))
    if not args.quire:
        for m in METRICS:
            print(f"{m:<14} pytrec_eval {theirs[m]:.4f}")
        return 0

    with open(args.quire, encoding="utf-8") as f:
        report = json.load(f)
    ours = report["metrics"]
    ours_per_query = {q["query_id"]: q["metrics"] for q in report["per_query"]}
    if set(ours_per_query) != set(qrels):
        print("quire's report and the qrels judge different queries")
        return 1
    ok = True
    print(f"{'metric':<14} {'quire':>8} {'pytrec_eval':>12}  per-query differences")
    for m in METRICS:
        differ = [q for q in qrels if abs(ours_per_query[q][m] - per_query[q][m]) >= TOLERANCE]
        same = abs(ours[m] - theirs[m]) < TOLERANCE and not differ
        ok &= same
        where = ", ".join(differ[:5]) if differ else "none"
        print(f"{m:<14} {ours[m]:>8.4f} {theirs[m]:>12.4f}  {where}")
    print("agree to four decimals" if ok else "DISAGREE")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
