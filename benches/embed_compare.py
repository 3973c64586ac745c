#!/usr/bin/env python3
"""Side-by-side embedding benchmark: onnxruntime on the MiniLM model quire uses (issue 11, part 4).

Not part of CI. It builds an ONNX graph of all-MiniLM-L6-v2 *offline*, by hand, from the same
files quire loads (`models/all-minilm-l6-v2/`: config.json, model.safetensors, tokenizer.json,
1_Pooling/config.json, sentence_bert_config.json), checks it against a pure-numpy float64 forward
pass of the same weights, and times it on the texts quire embeds for SciFact.

Setup (once; PyPI only, no torch, no Hugging Face hub):

    python3 -m venv /work/venv-bench
    /work/venv-bench/bin/pip install onnx onnxruntime numpy safetensors tokenizers
    scripts/fetch-model            # only if models/all-minilm-l6-v2/ is missing

Run (about 5 minutes on 2 cores with the default 3 passes; the machine must be otherwise idle):

    /work/venv-bench/bin/python benches/embed_compare.py [--quire-vectors PATH] [--wait-idle 1800]

Every measurement records whether a compiler (rustc/cargo/ld) ran and how many cores other
processes used meanwhile (from /proc/stat); --wait-idle N waits up to N s for a quiet machine
before each measurement and repeats one that was disturbed (up to 3 times). Without it, noisy
measurements are only flagged. A 1024^3 fp32 MatMul in onnxruntime on one thread is timed first
as a calibration, so numbers from different runs or machines can be put side by side.

What it measures, each after a warm-up and as the median of --repeat passes (default 3), every text tokenized alone (truncated to max_seq_length
= 256 tokens, special tokens included, never padded) and run as batch 1, exactly like quire:

  (a) fp32 throughput, texts/s, one session with intra_op_num_threads=1, sequential;
  (b) two threads, both ways: one session with intra_op_num_threads=2 on one stream, and two
      1-thread sessions in two processes splitting the texts (aggregate texts/s over the common
      wall time). quire parallelises across texts, so the two-process figure is the fair one;
  (c) single-query latency p50/p99 over the 300 SciFact test queries, 1 thread, batch 1,
      tokenization included (tokenization alone is reported separately);
  (d) int8: onnxruntime.quantization.quantize_dynamic, per_channel=True, MatMul only
      (weights int8 per output column, activations uint8 with one dynamic scale per tensor,
      MatMulInteger path); throughput at 1 thread / 2 processes, latency, and cosine to fp32.

Throughput timings include tokenization (text in, vector out, as quire's `embed` does).
Inputs: the first 256 documents of SciFact's corpus.jsonl as `title + " " + text` (quire's
embedding input with include_title; an empty title gives just the text) and the queries of
queries.jsonl that appear in qrels/test.tsv.

With `--quire-vectors PATH` (little-endian f32, 256 x 384, same texts, same order) it also
reports mean/min cosine between onnxruntime fp32 and quire (`--quire-int8-vectors PATH`: the
same for quire's int8 mode, against both onnxruntime fp32 and int8). It always writes onnxruntime's fp32
vectors in that layout to target/embed-compare/ort-fp32.f32, so the comparison works both ways.

Output: a markdown table on stdout and the same numbers (plus versions, the ops ORT runs after
fusion, whether vectors were bit-identical across 1 thread / 2 threads / 2 processes, and the
timing conditions) as JSON in target/embed-compare/ort.json.
The generated .onnx files are cached in target/embed-compare/ (keyed by the weights' sha256).
"""

import os

# One BLAS thread for numpy and no tokenizer thread pool: the only threads that run while timing
# are the ones each measurement asks for. Must be set before numpy/tokenizers are imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import collections
import datetime
import hashlib
import json
import logging
import math
import multiprocessing as mp
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import safetensors
import tokenizers
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from safetensors.numpy import load_file
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
GRAPH_VERSION = 2  # bump when build_graph changes, so cached .onnx files are rebuilt
OPSET = 17  # LayerNormalization is in the default domain from 17
WARMUP_TEXTS = 16
WARMUP_QUERIES = 20


# --------------------------------------------------------------------------------------------
# Model files


class Model:
    """The sentence-transformers model directory, read the way quire reads it."""

    def __init__(self, path: Path):
        self.path = path
        self.config = json.loads((path / "config.json").read_text())
        st = json.loads((path / "sentence_bert_config.json").read_text())
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            sys.exit("this bench implements mean pooling only")
        if self.config["hidden_act"] != "gelu":
            sys.exit(f"hidden_act {self.config['hidden_act']!r}: only exact (erf) gelu is built")
        if self.config.get("position_embedding_type", "absolute") != "absolute":
            sys.exit("only absolute position embeddings are built")
        self.max_len = min(st.get("max_seq_length") or 512, self.config["max_position_embeddings"])
        self.hidden = self.config["hidden_size"]
        self.heads = self.config["num_attention_heads"]
        self.layers = self.config["num_hidden_layers"]
        self.eps = float(self.config["layer_norm_eps"])
        weights_file = path / "model.safetensors"
        self.weights_sha256 = hashlib.sha256(weights_file.read_bytes()).hexdigest()
        self.weights = load_file(str(weights_file))

    def tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.path, self.max_len)

    def w(self, name: str) -> np.ndarray:
        return self.weights[name]


def load_tokenizer(model_dir: Path, max_len: int) -> Tokenizer:
    """tokenizer.json with quire's settings: truncate at max_len (special tokens included), never pad."""
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tok.enable_truncation(max_length=max_len)  # strategy/stride/direction: defaults, as quire
    tok.no_padding()  # tokenizer.json itself says "truncate and pad to 128"
    return tok


def encode(tok: Tokenizer, text: str):
    """Token ids and type ids of one text, shaped [1, seq], as the graph wants them."""
    e = tok.encode(text)
    return np.array([e.ids], dtype=np.int64), np.array([e.type_ids], dtype=np.int64)


# --------------------------------------------------------------------------------------------
# The ONNX graph, built by hand


def build_graph(m: Model, layout: str = "2d") -> onnx.ModelProto:
    """BERT encoder + mean pooling + L2 normalisation for one unpadded text.

    Inputs input_ids / token_type_ids are int64 [1, seq] (seq dynamic); the output `embedding`
    is float32 [1, hidden]. No attention mask: the text is alone and unpadded.

    Plain ONNX ops only; onnxruntime's optimiser (ORT_ENABLE_ALL) fuses them at load.
    layout "2d" (default) keeps activations [seq, hidden] with one packed QKV MatMul; ORT turns
    MatMul+Add into Gemm, QK^T*scale and PV into FusedMatMul, the erf pattern into Gelu.
    layout "3d" keeps [1, seq, hidden] and separate Q/K/V, as a PyTorch export has; ORT makes
    BiasGelu and FusedMatMul but leaves MatMul and Add apart. On this machine both ran within noise
    of each other, and so did a hand-built graph of ORT contrib ops (Attention or
    MultiHeadAttention + SkipLayerNormalization + BiasGelu) and the output of
    onnxruntime.transformers.optimizer (which needs sympy), so the plain graph is what is timed.
    """
    H, nh = m.hidden, m.heads
    hd = H // nh
    flat = layout == "2d"
    nodes, inits = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def matmul_add(x, w, b, out):
        return node("Add", [node("MatMul", [x, const(f"{out}.W", w)], f"{out}.mm"), const(f"{out}.b", b)], out)

    def linear(x, prefix, out):
        # safetensors holds torch Linear weights as [out, in]; MatMul wants [in, out].
        return matmul_add(x, m.w(f"{prefix}.weight").T.copy(), m.w(f"{prefix}.bias"), out)

    def layer_norm(x, prefix, out):
        g = const(f"{out}.g", m.w(f"{prefix}.weight"))
        b = const(f"{out}.beta", m.w(f"{prefix}.bias"))
        return node("LayerNormalization", [x, g, b], out, axis=-1, epsilon=m.eps)

    # Embeddings: word[id] + position[0..seq) + token_type[type], then LayerNorm.
    axes0 = const("axes0", np.array([0], dtype=np.int64))
    ids, types = "input_ids", "token_type_ids"
    if flat:
        ids, types = node("Squeeze", [ids, axes0], "ids"), node("Squeeze", [types, axes0], "types")
    seq_len = node("Shape", [ids], "seq_len", start=-1)
    word = node("Gather", [const("word_emb", m.w("embeddings.word_embeddings.weight")), ids], "word")
    pos_table = const("pos_emb", m.w("embeddings.position_embeddings.weight"))
    pos = node("Slice", [pos_table, const("zero", np.array([0], np.int64)), seq_len, axes0], "pos")  # [seq, H]
    typ = node("Gather", [const("type_emb", m.w("embeddings.token_type_embeddings.weight")), types], "typ")
    h = layer_norm(node("Add", [node("Add", [word, pos], "word_pos"), typ], "emb_sum"), "embeddings.LayerNorm", "emb")

    heads_shape = const("heads_shape", np.array([-1, nh, hd] if flat else [0, -1, nh, hd], np.int64))
    merge_shape = const("merge_shape", np.array([-1, H] if flat else [0, -1, H], np.int64))
    to_heads, to_heads_t = ([1, 0, 2], [1, 2, 0]) if flat else ([0, 2, 1, 3], [0, 2, 3, 1])
    scale = const("scale", np.array(1.0 / math.sqrt(hd), np.float32))
    sqrt2 = const("sqrt2", np.array(math.sqrt(2.0), np.float32))
    one = const("one", np.array(1.0, np.float32))
    half = const("half", np.array(0.5, np.float32))

    for i in range(m.layers):
        p, L = f"encoder.layer.{i}", f"l{i}"
        att = f"{p}.attention.self"
        if flat:
            w_qkv = np.concatenate([m.w(f"{att}.{k}.weight").T for k in ("query", "key", "value")], axis=1)
            b_qkv = np.concatenate([m.w(f"{att}.{k}.bias") for k in ("query", "key", "value")])
            qkv = matmul_add(h, w_qkv, b_qkv, f"{L}.qkv")
            split = const(f"{L}.qkv_split", np.array([H, H, H], np.int64))
            nodes.append(helper.make_node("Split", [qkv, split], [f"{L}.q", f"{L}.k", f"{L}.v"], name=f"{L}.split", axis=-1))
        else:
            for k in ("q", "k", "v"):
                linear(h, f"{att}.{dict(q='query', k='key', v='value')[k]}", f"{L}.{k}")
        heads = lambda x, perm: node("Transpose", [node("Reshape", [f"{L}.{x}", heads_shape], f"{L}.{x}4")], f"{L}.{x}h", perm=perm)  # noqa: E731
        q, k, v = heads("q", to_heads), heads("k", to_heads_t), heads("v", to_heads)  # [nh,S,hd], [nh,hd,S], [nh,S,hd]
        scores = node("Mul", [node("MatMul", [q, k], f"{L}.qk"), scale], f"{L}.scores")
        probs = node("Softmax", [scores], f"{L}.probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v], f"{L}.ctx_h")], f"{L}.ctx_t", perm=to_heads)
        ctx = node("Reshape", [ctx, merge_shape], f"{L}.ctx")
        attn = linear(ctx, f"{p}.attention.output.dense", f"{L}.attn_out")
        h1 = layer_norm(node("Add", [attn, h], f"{L}.attn_res"), f"{p}.attention.output.LayerNorm", f"{L}.ln1")
        x = linear(h1, f"{p}.intermediate.dense", f"{L}.inter")
        # exact GELU, as config.json's "gelu" means: x * 0.5 * (1 + erf(x / sqrt(2)))
        erf = node("Erf", [node("Div", [x, sqrt2], f"{L}.gelu_div")], f"{L}.gelu_erf")
        gelu = node("Mul", [node("Mul", [x, node("Add", [erf, one], f"{L}.gelu_add")], f"{L}.gelu_mul"), half], f"{L}.gelu")
        out = linear(gelu, f"{p}.output.dense", f"{L}.ffn_out")
        h = layer_norm(node("Add", [out, h1], f"{L}.ffn_res"), f"{p}.output.LayerNorm", f"{L}.ln2")

    # Mean pooling over tokens, then L2 normalisation.
    pooled = node("ReduceMean", [h], "pooled", axes=[-2], keepdims=0)  # [H] or [1, H]
    nodes.append(helper.make_node("LpNormalization", [pooled], ["embedding_raw"], name="l2", axis=-1, p=2))
    nodes.append(helper.make_node("Reshape", ["embedding_raw", const("out_shape", np.array([1, H], np.int64))], ["embedding"], name="out"))

    graph = helper.make_graph(
        nodes,
        "all-minilm-l6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "seq"]),
            helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, [1, "seq"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, H])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="quire embed_compare.py")
    model.ir_version = 8  # opset 17; accepted by every onnxruntime since 1.13
    onnx.checker.check_model(model, full_check=True)
    return model


# --------------------------------------------------------------------------------------------
# Pure-numpy reference (float64), to check the graph


_erf = np.vectorize(math.erf, otypes=[np.float64])


def reference_embed(m: Model, ids: np.ndarray, types: np.ndarray) -> np.ndarray:
    """The same network in float64 numpy, written from the BERT definition, not from the graph."""
    W = lambda n: m.w(n).astype(np.float64)  # noqa: E731

    def ln(x, prefix):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + m.eps) * W(f"{prefix}.weight") + W(f"{prefix}.bias")

    def lin(x, prefix):
        return x @ W(f"{prefix}.weight").T + W(f"{prefix}.bias")

    ids, types = ids[0], types[0]
    S, nh = len(ids), m.heads
    hd = m.hidden // nh
    x = W("embeddings.word_embeddings.weight")[ids] + W("embeddings.position_embeddings.weight")[:S] + W("embeddings.token_type_embeddings.weight")[types]
    x = ln(x, "embeddings.LayerNorm")
    for i in range(m.layers):
        p = f"encoder.layer.{i}"
        split = lambda t: t.reshape(S, nh, hd).transpose(1, 0, 2)  # noqa: E731
        q, k, v = (split(lin(x, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        ctx = ((s / s.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(S, m.hidden)
        x = ln(lin(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
        inter = lin(x, f"{p}.intermediate.dense")
        inter = 0.5 * inter * (1.0 + _erf(inter / math.sqrt(2.0)))
        x = ln(lin(inter, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# --------------------------------------------------------------------------------------------
# Sessions and timing


def session(path: Path, threads: int, optimized_out: Path | None = None) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if optimized_out is not None:
        so.optimized_model_filepath = str(optimized_out)
        so.log_severity_level = 3  # not the "hardware-specific optimisations" warning: it is only inspected
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def embed(sess: ort.InferenceSession, tok: Tokenizer, text: str) -> np.ndarray:
    ids, types = encode(tok, text)
    return sess.run(None, {"input_ids": ids, "token_type_ids": types})[0][0]


def embed_all(sess, tok, texts):
    """Embed texts one at a time; returns (vectors [n, dim], seconds)."""
    for t in texts[:WARMUP_TEXTS]:
        embed(sess, tok, t)
    out = []
    started = time.perf_counter()
    for t in texts:
        out.append(embed(sess, tok, t))
    return np.stack(out), time.perf_counter() - started


def query_latency(sess, tok, queries):
    """Per-query ms: total (tokenize + run) and tokenization alone."""
    for q in queries[:WARMUP_QUERIES]:
        embed(sess, tok, q)
    total, tokenize = [], []
    for q in queries:
        t0 = time.perf_counter()
        ids, types = encode(tok, q)
        t1 = time.perf_counter()
        sess.run(None, {"input_ids": ids, "token_type_ids": types})
        t2 = time.perf_counter()
        total.append((t2 - t0) * 1e3)
        tokenize.append((t1 - t0) * 1e3)
    return {
        "p50_ms": float(np.percentile(total, 50)),
        "p99_ms": float(np.percentile(total, 99)),
        "mean_ms": float(np.mean(total)),
        "tokenize_p50_ms": float(np.percentile(tokenize, 50)),
        "n": len(queries),
    }


def sgemm_gflops(out_dir: Path, n: int = 1024, seconds: float = 2.0) -> float:
    """Calibration: onnxruntime (MLAS) fp32 MatMul n x n x n on one thread, GFLOP/s."""
    path = out_dir / f"sgemm-{n}.onnx"
    if not path.exists():
        b = numpy_helper.from_array(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32), "B")
        g = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["C"])], "sgemm",
                              [helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("C", TensorProto.FLOAT, [n, n])], [b])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        onnx.save(model, str(path))
    sess = session(path, 1)
    a = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    sess.run(None, {"A": a})
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        sess.run(None, {"A": a})
        runs += 1
    return 2 * n**3 * runs / (time.perf_counter() - started) / 1e9


def _worker(model_dir, max_len, onnx_path, texts, barrier, results, slot):
    """One process of the two-process run: 1-thread session, its share of the texts."""
    tok = load_tokenizer(model_dir, max_len)
    sess = session(Path(onnx_path), 1)
    for t in texts[:WARMUP_TEXTS]:
        embed(sess, tok, t)
    barrier.wait()
    started = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes
    vecs = [embed(sess, tok, t) for t in texts]
    results.put((slot, started, time.perf_counter(), np.stack(vecs)))


def two_processes(m: Model, onnx_path: Path, texts):
    """Two 1-thread sessions in two processes, texts dealt alternately (balances lengths).

    Returns aggregate texts/s over the common wall time (first start to last end), and the
    vectors back in the original order.
    """
    ctx = mp.get_context("spawn")  # no fork after onnxruntime has started threads
    barrier, results = ctx.Barrier(2), ctx.Queue()
    shares = [texts[0::2], texts[1::2]]
    procs = [
        ctx.Process(target=_worker, args=(str(m.path), m.max_len, str(onnx_path), share, barrier, results, i))
        for i, share in enumerate(shares)
    ]
    for p in procs:
        p.start()
    got = sorted((results.get() for _ in procs), key=lambda r: r[0])
    for p in procs:
        p.join()
    wall = max(r[2] for r in got) - min(r[1] for r in got)
    vecs = np.empty((len(texts), got[0][3].shape[1]), np.float32)
    vecs[0::2], vecs[1::2] = got[0][3], got[1][3]
    return len(texts) / wall, wall, vecs


# --------------------------------------------------------------------------------------------
# Keeping timings honest on a shared machine

BUSY = ("rustc", "cargo", "cc1", "cc1plus", "ld", "lld", "mold")


def busy_processes() -> list[str]:
    """Compilers/linkers running right now (read from /proc, no subprocess)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                comm = (d / "comm").read_text().strip()
            except OSError:
                continue
            if comm in BUSY:
                found.append(f"{d.name}:{comm}")
    return found


def cpu_counters() -> tuple[float, float, float]:
    """(machine busy CPU s, machine steal s, this process + reaped children CPU s)."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    return (user + nice + system + irq + softirq) / tick, steal / tick, own


OTHER_CPU_LIMIT = 0.15  # cores of CPU used by other processes while timing, above which it is retried


def machine_idle(sample: float = 5.0) -> bool:
    """No compiler running, and other processes used < OTHER_CPU_LIMIT cores over `sample` s."""
    if busy_processes():
        return False
    busy0, _, own0 = cpu_counters()
    time.sleep(sample)
    busy1, _, own1 = cpu_counters()
    return not busy_processes() and ((busy1 - busy0) - (own1 - own0)) / sample < OTHER_CPU_LIMIT


class Timing:
    """Runs measurements on a quiet machine, and says when that could not be had.

    Before each measurement it waits (up to --wait-idle seconds) for rustc/cargo/ld to finish and
    for other processes' CPU use to drop below OTHER_CPU_LIMIT cores. During it, a thread samples /proc every 2 s for compilers, and /proc/stat gives the CPU that
    *other* processes used (machine busy time minus this process and its children, in cores).
    If a compiler showed up or others used more than OTHER_CPU_LIMIT cores and --wait-idle > 0,
    the measurement is repeated (up to 3 attempts). Every measurement's conditions go in the JSON.
    """

    def __init__(self, wait_idle: float):
        self.wait_idle, self.log = wait_idle, {}

    def run(self, label: str, fn):
        for attempt in range(1, 4):
            deadline = time.monotonic() + self.wait_idle
            while not machine_idle() and time.monotonic() < deadline:
                time.sleep(10)
            seen, stop = set(busy_processes()), threading.Event()

            def watch():
                while not stop.wait(2.0):
                    seen.update(busy_processes())

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            busy0, steal0, own0 = cpu_counters()
            wall0 = time.monotonic()
            try:
                result = fn()
            finally:
                busy1, steal1, own1 = cpu_counters()
                wall = time.monotonic() - wall0
                stop.set()
                watcher.join()
            seen.update(busy_processes())
            other = max(0.0, (busy1 - busy0) - (own1 - own0)) / wall
            self.log[label] = {"busy": sorted(seen), "other_cpu_cores": round(other, 3),
                               "steal_cores": round((steal1 - steal0) / wall, 3), "attempt": attempt}
            noisy = bool(seen) or other > OTHER_CPU_LIMIT
            if not noisy:
                return result
            why = ", ".join(sorted(seen)) or "other processes"
            print(f"  WARNING: '{label}' timed while {why} used {other:.2f} cores", flush=True)
            if self.wait_idle <= 0:
                return result
            time.sleep(30)
        print(f"  giving up on a quiet run of '{label}'; keeping the last (unreliable) numbers", flush=True)
        return result

    def noisy(self) -> list[str]:
        return [k for k, e in self.log.items() if e["busy"] or e["other_cpu_cores"] > OTHER_CPU_LIMIT]


# --------------------------------------------------------------------------------------------


def load_texts(data: Path, n_docs: int):
    docs = []
    with open(data / "corpus.jsonl") as f:
        for line in f:
            d = json.loads(line)
            title = (d.get("title") or "").strip()
            docs.append(f"{title} {d['text']}" if title else d["text"])
            if len(docs) == n_docs:
                break
    test_ids = set()
    with open(data / "qrels" / "test.tsv") as f:
        next(f)  # header
        for line in f:
            test_ids.add(line.split("\t")[0])
    queries = []
    with open(data / "queries.jsonl") as f:
        for line in f:
            q = json.loads(line)
            if q["_id"] in test_ids:
                queries.append(q["text"])
    return docs, queries


def cached_onnx(m: Model, out_dir: Path, layout: str) -> tuple[Path, Path]:
    """fp32 and int8 .onnx files for these weights, built (and quantised) if absent."""
    key = f"{m.weights_sha256[:16]}-g{GRAPH_VERSION}{layout}"
    fp32, int8 = out_dir / f"minilm-fp32-{key}.onnx", out_dir / f"minilm-int8-{key}-ort{ort.__version__}.onnx"
    if not fp32.exists():
        t = time.perf_counter()
        model = build_graph(m, layout)
        onnx.save(model, str(fp32) + ".tmp")
        os.replace(str(fp32) + ".tmp", fp32)
        print(f"built {fp32.name} ({len(model.graph.node)} nodes) in {time.perf_counter() - t:.1f} s")
    if not int8.exists():
        logging.getLogger().setLevel(logging.ERROR)  # not the "consider pre-processing" advice
        quantize_dynamic(
            str(fp32),
            str(int8) + ".tmp",
            op_types_to_quantize=["MatMul"],  # weight MatMuls only (MatMulConstBOnly is the default)
            per_channel=True,
            weight_type=QuantType.QInt8,
        )
        os.replace(str(int8) + ".tmp", int8)
        print(f"quantised {int8.name}")
    return fp32, int8


def fused_ops(path: Path, out_dir: Path, name: str) -> dict:
    """Op histogram of the graph after ORT_ENABLE_ALL (what actually runs)."""
    opt = out_dir / f"{name}-optimized.onnx"
    session(path, 1, optimized_out=opt)
    counts = collections.Counter(n.op_type for n in onnx.load(str(opt)).graph.node)
    return dict(counts.most_common())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", type=Path, default=ROOT / "models" / "all-minilm-l6-v2")
    ap.add_argument("--data-dir", type=Path, default=Path("/work/shared/datasets/scifact"))
    ap.add_argument("--out-dir", type=Path, default=ROOT / "target" / "embed-compare")
    ap.add_argument("--docs", type=int, default=256, help="first N corpus documents (default 256)")
    ap.add_argument("--quire-vectors", type=Path, help="quire fp32 vectors: little-endian f32, docs x dim, same texts and order")
    ap.add_argument("--quire-int8-vectors", type=Path, help="quire int8-mode vectors, same layout (compared to ORT fp32 and int8)")
    ap.add_argument("--repeat", type=int, default=3, help="passes per measurement; the median is reported (default 3)")
    ap.add_argument("--layout", choices=("2d", "3d"), default="2d", help="graph layout (see build_graph)")
    ap.add_argument("--fp32-only", action="store_true",
                    help="time only (a) fp32 on 1 thread and (b) in 2 processes, print them and stop: for quick "
                         "runs interleaved with quire's encoder bench (the machine's speed drifts by several %% "
                         "over minutes, so a ratio is only as good as the interleaving)")
    ap.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                    help="before each timing, wait up to this long for rustc/cargo/ld to finish")
    args = ap.parse_args()

    if not (args.model_dir / "model.safetensors").exists():
        sys.exit(f"{args.model_dir} is missing: run scripts/fetch-model")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    m = Model(args.model_dir)
    tok = m.tokenizer()
    docs, queries = load_texts(args.data_dir, args.docs)
    doc_tokens = [len(tok.encode(t).ids) for t in docs]
    query_tokens = [len(tok.encode(q).ids) for q in queries]
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, numpy {np.__version__}; "
          f"{len(docs)} docs (mean {np.mean(doc_tokens):.1f} tokens, {sum(t == m.max_len for t in doc_tokens)} truncated at {m.max_len}), "
          f"{len(queries)} queries (mean {np.mean(query_tokens):.1f} tokens)", flush=True)

    fp32_path, int8_path = cached_onnx(m, args.out_dir, args.layout)
    fusions = {"fp32": fused_ops(fp32_path, args.out_dir, "fp32"), "int8": fused_ops(int8_path, args.out_dir, "int8")}

    # Correctness: float64 numpy forward pass vs ORT fp32, on short and long texts.
    sess1 = session(fp32_path, 1)
    check_texts = [queries[0], queries[1], docs[0], max(docs, key=lambda t: len(tok.encode(t).ids))]
    agree = [float(cosine(reference_embed(m, *encode(tok, t)), embed(sess1, tok, t))[0]) for t in check_texts]
    print(f"numpy float64 reference vs ORT fp32: 1 - cosine <= {1 - min(agree):.1e} over {len(agree)} texts", flush=True)
    if min(agree) <= 0.99999:
        sys.exit("ORT graph disagrees with the numpy reference; not timing a wrong model")

    timing, results, passes = Timing(args.wait_idle), {}, {}

    def repeated(label, fn):
        """fn() args.repeat times, each pass timed (and retried if disturbed) on its own."""
        return [timing.run(f"{label}#{i + 1}", fn) for i in range(args.repeat)]

    def throughput(label, fn):
        """Median texts/s over the passes; vectors of the first pass (all passes must agree)."""
        runs = repeated(label, fn)  # each: (vectors, seconds) or (texts/s, seconds, vectors)
        if len(runs[0]) == 2:
            runs = [(len(docs) / secs, secs, vecs) for vecs, secs in runs]
        passes[label] = [round(r[0], 3) for r in runs]
        if not all(np.array_equal(r[2], runs[0][2]) for r in runs):
            print(f"  NOTE: '{label}' vectors differed between passes", flush=True)
        results[f"{label}_texts_per_s"] = float(np.median(passes[label]))
        return runs[0][2]

    def latency(label, sess):
        runs = repeated(label, lambda: query_latency(sess, tok, queries))
        passes[label] = runs
        results[label] = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}

    def calibrate(label):
        results[label] = timing.run(label, lambda: sgemm_gflops(args.out_dir))
        print(f"calibration: onnxruntime fp32 MatMul 1024^3, 1 thread: {results[label]:.0f} GFLOP/s", flush=True)

    calibrate("calibration_sgemm_gflops_before")

    print(f"(a) fp32, 1 thread ({args.repeat} passes) ...", flush=True)
    sess1 = session(fp32_path, 1)
    fp32_vecs = throughput("fp32_1thread", lambda: embed_all(sess1, tok, docs))
    t = time.perf_counter()
    for d in docs:
        encode(tok, d)
    tokenize_share = (time.perf_counter() - t) * results["fp32_1thread_texts_per_s"] / len(docs)

    if args.fp32_only:
        proc_only = throughput("fp32_2proc", lambda: two_processes(m, fp32_path, docs))
        print(f"onnxruntime {ort.__version__} fp32: {results['fp32_1thread_texts_per_s']:.2f} texts/s on 1 thread, "
              f"{results['fp32_2proc_texts_per_s']:.2f} in 2 processes (median of {args.repeat}; per pass "
              + "; ".join(f"{k} {', '.join(f'{x:.2f}' for x in v)}" for k, v in passes.items())
              + f"); 2 processes bit-identical to 1 thread: {bool(np.array_equal(proc_only, fp32_vecs))}; "
              f"noisy measurements: {timing.noisy() or 'none'}", flush=True)
        return

    print("(b) fp32, 2 threads: intra-op on one stream, then two 1-thread processes ...", flush=True)
    sess2 = session(fp32_path, 2)
    intra2_vecs = throughput("fp32_intra2", lambda: embed_all(sess2, tok, docs))
    del sess2
    proc_vecs = throughput("fp32_2proc", lambda: two_processes(m, fp32_path, docs))

    print("(c) fp32 query latency, 1 thread ...", flush=True)
    latency("fp32_query", sess1)
    del sess1

    print("(d) int8 ...", flush=True)
    sess8 = session(int8_path, 1)
    int8_vecs = throughput("int8_1thread", lambda: embed_all(sess8, tok, docs))
    latency("int8_query", sess8)
    del sess8
    int8_proc_vecs = throughput("int8_2proc", lambda: two_processes(m, int8_path, docs))

    calibrate("calibration_sgemm_gflops_after")

    int8_cos = cosine(int8_vecs, fp32_vecs)
    fp32_vecs.astype("<f4").tofile(args.out_dir / "ort-fp32.f32")
    consistency = {
        "fp32_2proc_vs_1thread_bit_identical": bool(np.array_equal(proc_vecs, fp32_vecs)),
        "fp32_intra2_vs_1thread_bit_identical": bool(np.array_equal(intra2_vecs, fp32_vecs)),
        "fp32_intra2_vs_1thread_max_abs_diff": float(np.abs(intra2_vecs - fp32_vecs).max()),
        "int8_2proc_vs_1thread_bit_identical": bool(np.array_equal(int8_proc_vecs, int8_vecs)),
    }

    quire = {}
    for name, path in (("fp32", args.quire_vectors), ("int8", args.quire_int8_vectors)):
        if path:
            quire[name] = {"path": str(path)}
            for against, ref in (("ort_fp32", fp32_vecs), ("ort_int8", int8_vecs)):
                c = cosine(ref, read_vectors(path, ref.shape))
                quire[name][against] = {"mean_cosine": float(c.mean()), "min_cosine": float(c.min()), "min_doc_index": int(c.argmin())}

    v = ort.__version__
    rows = [
        (f"onnxruntime {v} fp32, batch 1", results["fp32_1thread_texts_per_s"], results["fp32_2proc_texts_per_s"],
         results["fp32_query"]["p50_ms"], results["fp32_query"]["p99_ms"]),
        (f"onnxruntime {v} fp32, intra_op 2 threads, one stream", None, results["fp32_intra2_texts_per_s"], None, None),
        (f"onnxruntime {v} int8 (dynamic, per-channel weights, per-tensor activations)", results["int8_1thread_texts_per_s"],
         results["int8_2proc_texts_per_s"], results["int8_query"]["p50_ms"], results["int8_query"]["p99_ms"]),
    ]
    fmt = lambda x, d: "—" if x is None else f"{x:.{d}f}"  # noqa: E731
    print()
    print("| engine | texts/s 1 thread | texts/s 2 threads | query p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for name, t1, t2, p50, p99 in rows:
        print(f"| {name} | {fmt(t1, 1)} | {fmt(t2, 1)} | {fmt(p50, 2)} | {fmt(p99, 2)} |")
    print()
    print(f"median of {args.repeat} passes; calibration sgemm {results['calibration_sgemm_gflops_before']:.0f} GFLOP/s before, "
          f"{results['calibration_sgemm_gflops_after']:.0f} after; per-pass texts/s: "
          + "; ".join(f"{k} {', '.join(f'{x:.1f}' for x in v)}" for k, v in passes.items() if not k.endswith("query")))
    print(f"{len(docs)} SciFact docs (title + text, mean {np.mean(doc_tokens):.1f} tokens, max {m.max_len}); "
          f"2 threads = two 1-thread processes splitting the texts unless stated; "
          f"{len(queries)} test queries (mean {np.mean(query_tokens):.1f} tokens), tokenization included "
          f"(tokenize p50 {results['fp32_query']['tokenize_p50_ms']:.3f} ms; {100 * tokenize_share:.1f}% of fp32 1-thread doc time).")
    print(f"numpy float64 reference vs ORT fp32: 1 - cosine <= {1 - min(agree):.1e} ({len(agree)} texts); "
          f"ORT int8 vs ORT fp32: mean cosine {int8_cos.mean():.5f}, min {int8_cos.min():.5f}")
    print("vectors: " + ", ".join(f"{k} {val}" for k, val in consistency.items()))
    for name, q in quire.items():
        for against in ("ort_fp32", "ort_int8"):
            c = q[against]
            print(f"quire {name} vs {against.replace('_', ' ')}: mean cosine {c['mean_cosine']:.7f} (1 - mean {1 - c['mean_cosine']:.1e}), "
                  f"min {c['min_cosine']:.7f} (doc {c['min_doc_index']})")
    noisy = timing.noisy()
    others = max(e["other_cpu_cores"] for e in timing.log.values())
    print(f"timed on a quiet machine (other processes used at most {others:.2f} cores, no compiler seen)" if not noisy
          else f"WARNING: other CPU load during {', '.join(noisy)} (see timing_conditions in the JSON); those numbers are unreliable")

    report = {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
                     "tokenizers": tokenizers.__version__, "safetensors": safetensors.__version__, "python": platform.python_version()},
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count()},
        "model": {"dir": str(m.path), "safetensors_sha256": m.weights_sha256, "max_seq_length": m.max_len,
                  "layout": args.layout, "fp32_onnx": fp32_path.name, "int8_onnx": int8_path.name, "graph_optimization_level": "ORT_ENABLE_ALL",
                  "ops_after_optimization": fusions,
                  "int8_quantization": "quantize_dynamic(per_channel=True, weight_type=QInt8, op_types_to_quantize=['MatMul'], MatMulConstBOnly)"},
        "inputs": {"docs": len(docs), "doc_tokens_mean": float(np.mean(doc_tokens)), "docs_truncated": sum(t == m.max_len for t in doc_tokens),
                   "queries": len(queries), "query_tokens_mean": float(np.mean(query_tokens))},
        "reference_check": {"texts": len(agree), "min_cosine_numpy_float64_vs_ort_fp32": min(agree)},
        "results": results,
        "passes": passes,
        "fp32_tokenization_share_of_doc_time": tokenize_share,
        "int8_vs_fp32_cosine": {"mean": float(int8_cos.mean()), "min": float(int8_cos.min())},
        "consistency": consistency,
        "quire": quire or None,
        "timing_conditions": timing.log,
        "table": [dict(zip(("engine", "texts_per_s_1thread", "texts_per_s_2threads", "query_p50_ms", "query_p99_ms"), r)) for r in rows],
    }
    out = args.out_dir / "ort.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out} and {args.out_dir / 'ort-fp32.f32'}")


def read_vectors(path: Path, shape) -> np.ndarray:
    v = np.fromfile(path, dtype="<f4")
    if v.size != shape[0] * shape[1]:
        sys.exit(f"{path}: {v.size} floats, expected {shape[0]} x {shape[1]}")
    return v.reshape(shape)


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
