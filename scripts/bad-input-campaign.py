#!/usr/bin/env python3
"""Bad-input campaign (issue 14 point 6): several hundred malformed inputs across every
trainsim subcommand, each run as a user would run it, classified as

  clean    exit status 2, a message on stderr naming what is wrong (the option, the key or the
           file: every case lists the words a clear message must contain), and none of the
           case's output paths left behind (nothing half-written);
  unclear  refused, but with another status than 2, a message that names none of the expected
           words, or an output left behind;
  silent   exit status 0: the bad input was accepted;
  crash    killed by a signal, exit status 70 (internal error) or a sanitizer report;
  hang     still running after --timeout seconds (default 60), or out of memory under the
           address-space limit (--memory-gb, default 8).

  scripts/bad-input-campaign.py [--bin build/bin/trainsim] [--jobs 2] [--only WORD] [--verbose]

Prints one line per case that is not clean and the counts per class; exits 1 when any case is
silent, a crash or a hang (cases marked as known defects owned by other work are printed but do
not fail the run). Needs python3 (not part of CI); runs in a temporary folder and uses
the repository's data (TRAINSIM_DATA).
"""
import argparse
import concurrent.futures
import gzip
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = os.path.join(ROOT, "scenarios/sweeps/base/llama3-8b-64xh100.toml")
DEEPSEEK = os.path.join(ROOT, "scenarios/deepseek-v3-h800.toml")
MODEL = os.path.join(ROOT, "models/llama3-8b.toml")
TRACE_2024 = None  # written into the work folder


class Case:
    def __init__(self, name, args, expect, outputs=(), files=None, env="", known=""):
        self.name = name
        self.args = args          # shell words after `trainsim` (already quoted where needed)
        self.expect = expect      # any of these words makes the message clear (case-sensitive)
        self.outputs = list(outputs)  # paths (relative to the work folder) that must not exist afterwards
        self.files = files or {}  # relative path -> bytes/str written before the run
        self.env = env            # shell prefix (e.g. "ulimit -f 64;")
        self.known = known        # a known defect owned elsewhere: reported, not failing the run


def q(s):
    return shlex.quote(s)


def read(p):
    with open(p, "rb") as f:
        return f.read().decode()


# ----------------------------------------------------------------------------- the cases

def trace_2024():
    return {
        "schemaVersion": 1,
        "deviceProperties": [{"id": 0, "name": "NVIDIA H800", "totalGlobalMem": 84943110144, "numSms": 132}],
        "traceEvents": [
            {"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#1", "pid": 1, "tid": 1, "ts": 0, "dur": 900, "args": {}},
            {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 5, "dur": 50,
             "args": {"External id": 3, "Input Dims": [[64, 128], [128, 256]], "Input type": ["float", "float"]}},
            {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 10, "dur": 5,
             "args": {"External id": 3, "correlation": 11}},
            {"ph": "X", "cat": "kernel", "name": "ampere_sgemm_64x64_nn", "pid": 0, "tid": 7, "ts": 20, "dur": 30,
             "args": {"External id": 3, "device": 0, "stream": 7, "correlation": 11, "grid": [4, 1, 1], "block": [128, 1, 1]}},
            {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 60, "dur": 5,
             "args": {"correlation": 12}},
            {"ph": "X", "cat": "kernel", "name": "ncclDevKernel_AllReduce_Sum_f32_RING_LL", "pid": 0, "tid": 9, "ts": 70, "dur": 300,
             "args": {"device": 0, "stream": 9, "correlation": 12, "Collective name": "allreduce", "In msg nelems": 1024,
                      "Out msg nelems": 1024, "Group size": 8, "dtype": "Float"}},
        ],
    }


def kineto_cases():
    cases = []
    base = trace_2024()
    text = json.dumps(base)
    kernel = 3  # index of the first kernel event

    def variant(name, mutate, expect):
        t = json.loads(text)
        mutate(t)
        cases.append(Case("import: " + name, "import t.json -o out.jsonl", expect, ["out.jsonl"], {"t.json": json.dumps(t)}))

    for field in ("name", "ts", "dur", "args"):
        variant(f"kernel without '{field}'", lambda t, f=field: t["traceEvents"][kernel].pop(f), [f"'{field}'", "t.json"])
    for field in ("stream", "correlation"):
        variant(f"kernel without args.{field}", lambda t, f=field: t["traceEvents"][kernel]["args"].pop(f), [f"args.{field}"])
    bad_values = [("ts", "\"10\""), ("ts", "null"), ("dur", "-5"), ("dur", "\"x\""), ("dur", "1e300"), ("ts", "-1e300"),
                  ("name", "42"), ("name", "[]"), ("args", "[]"), ("args", "\"x\"")]
    for field, val in bad_values:
        variant(f"kernel {field} = {val}", lambda t, f=field, v=val: t["traceEvents"][kernel].__setitem__(f, json.loads(v)),
                [f"'{field}'", "t.json"])
    for field, val in [("stream", "\"7\""), ("stream", "7.5"), ("correlation", "true"), ("correlation", "1e30"),
                       ("device", "\"0\""), ("grid", "[1, 2, 3, 4]"), ("grid", "[-1]"), ("grid", "\"x\""), ("block", "[]"),
                       ("block", "[1.5]"), ("stream", "18446744073709551615")]:
        variant(f"kernel args.{field} = {val}",
                lambda t, f=field, v=val: t["traceEvents"][kernel]["args"].__setitem__(f, json.loads(v)), [f"args.{field}"])
    for field in ("ts", "dur", "name"):
        variant(f"annotation without '{field}'", lambda t, f=field: t["traceEvents"][0].pop(f), [f"'{field}'"])
    variant("annotation with negative dur", lambda t: t["traceEvents"][0].__setitem__("dur", -1), ["'dur'"])
    variant("cpu op with a string dur", lambda t: t["traceEvents"][1].__setitem__("dur", "5"), ["'dur'"])
    variant("runtime call with a string ts", lambda t: t["traceEvents"][2].__setitem__("ts", "10"), ["'ts'"])
    variant("an event that is a number", lambda t: t["traceEvents"].insert(2, 5), ["trace event #2"])
    variant("an event that is null", lambda t: t["traceEvents"].append(None), ["trace event #"])
    variant("traceEvents an object", lambda t: t.__setitem__("traceEvents", {}), ["traceEvents"])
    variant("no traceEvents", lambda t: t.pop("traceEvents"), ["traceEvents"])
    variant("only CPU events", lambda t: t.__setitem__("traceEvents", t["traceEvents"][:3]), ["no GPU kernels"])
    variant("AMD device", lambda t: t["deviceProperties"][0].__setitem__("name", "AMD Instinct MI300X"), ["AMD"])
    variant("HIP runtime calls", lambda t: t["traceEvents"][2].__setitem__("name", "hipLaunchKernel"), ["AMD", "HIP"])
    variant("MTIA events", lambda t: t["traceEvents"].append({"ph": "X", "cat": "mtia_ccp_events", "name": "k", "ts": 1, "dur": 1}),
            ["MTIA"])
    variant("XPU runtime", lambda t: t["traceEvents"].append({"ph": "X", "cat": "xpu_runtime", "name": "k", "ts": 1, "dur": 1}),
            ["XPU"])
    variant("kernels on two GPU models",
            lambda t: (t["deviceProperties"].append({"id": 1, "name": "NVIDIA A100-SXM4-80GB", "numSms": 108}),
                       t["traceEvents"][5]["args"].__setitem__("device", 1)), ["different GPU models"])
    variant("a kernel 30 years after the others", lambda t: t["traceEvents"][kernel].__setitem__("ts", 1e15), ["span", "limits"])
    # Whole-file malformations.
    raw = {
        "empty file": "",
        "whitespace": "   \n",
        "a bare number": "42",
        "a string": "\"trace\"",
        "null": "null",
        "an empty object": "{}",
        "an empty array": "[]",
        "binary garbage": "\x00\x01\x02\xff\xfe",
        "a NUL inside": text[:40] + "\x00" + text[40:],
        "UTF-16 text": ("\ufeff" + text).encode("utf-16-le"),
        "deep nesting": "[" * 100000 + "]" * 100000,
        "unterminated string": "{\"traceEvents\": [\"abc",
        "NaN literal": text.replace("\"dur\": 30", "\"dur\": NaN"),
        "Infinity literal": text.replace("\"dur\": 30", "\"dur\": Infinity"),
        "trailing comma": text[:-2] + ",]}",
        "comments": "// trace\n" + text,
        "number overflow": text.replace("\"dur\": 30", "\"dur\": 1e999"),
        "duplicate-free but truncated at 1/3": text[: len(text) // 3],
        "truncated at 2/3": text[: 2 * len(text) // 3],
        "truncated by one byte": text[:-1],
        "a TOML file": "[plan]\npp = 4\n",
    }
    for name, body in raw.items():
        cases.append(Case("import: " + name, "import t.json -o out.jsonl", ["t.json"], ["out.jsonl"], {"t.json": body}))
    gz = gzip.compress(text.encode())
    cases.append(Case("import: truncated .json.gz", "import t.json.gz -o out.jsonl", ["gzip"], ["out.jsonl"],
                      {"t.json.gz": gz[: len(gz) // 2]}))
    damaged = bytearray(gz)
    for i in range(12, 20):
        damaged[i] ^= 0xA5
    cases.append(Case("import: damaged .json.gz", "import t.json.gz -o out.jsonl", ["gzip", "t.json.gz"], ["out.jsonl"],
                      {"t.json.gz": bytes(damaged)}))
    cases.append(Case("import: gzip of garbage", "import t.json.gz -o out.jsonl", ["t.json.gz"], ["out.jsonl"],
                      {"t.json.gz": gzip.compress(b"\x00\x01not json")}))
    # Command-line options of import.
    good = {"t.json": text}
    for args, expect in [
        ("import t.json", ["--output", "-o"]),
        ("import -o out.jsonl", ["trace"]),
        ("import missing.json -o out.jsonl", ["missing.json"]),
        ("import . -o out.jsonl", ["directory"]),
        ("import t.json -o .", ["-o"]),
        ("import t.json -o nodir/out.jsonl", ["-o", "nodir"]),
        ("import t.json -o /proc/out.jsonl", ["-o"]),
        ("import t.json -o out.jsonl --ep 0", ["--ep"]),
        ("import t.json -o out.jsonl --ep x", ["--ep"]),
        ("import t.json -o out.jsonl --tokens -5", ["--tokens"]),
        ("import t.json -o out.jsonl --tokens 99999999999999999999", ["--tokens"]),
        ("import t.json -o out.jsonl --tokens 4096", ["--tokens"]),
        ("import t.json -o out.jsonl --ep 8", ["--ep"]),
        ("import t.json -o out.jsonl --model " + q(MODEL), ["--tokens"]),
        ("import t.json -o out.jsonl --model missing.toml --tokens 8", ["missing.toml"]),
        ("import t.json -o out.jsonl --gpu nosuchgpu", ["--gpu", "nosuchgpu"]),
        ("import t.json -o out.jsonl --classifier missing.toml", ["missing.toml"]),
        ("import t.json -o out.jsonl --classifier .", ["directory"]),
        ("import t.json -o out.jsonl --frobnicate", ["--frobnicate"]),
    ]:
        cases.append(Case("import options: " + args, args, expect, ["out.jsonl"], good))
    # User classifiers.
    rule = "version = 1\n[[rule]]\nname = \"r\"\nclass = \"norm\"\n"
    for name, body, expect in [
        ("backreference", rule + "regex = \"(a)\\\\1\"\n", ["regex", "RE2"]),
        ("lookahead", rule + "regex = \"a(?=b)\"\n", ["regex"]),
        ("unbalanced", rule + "regex = \"(\"\n", ["regex"]),
        ("huge pattern", rule + "regex = \"" + "a" * 5000 + "\"\n", ["regex"]),
        ("pattern too big for the memory budget", rule + "regex = \"" + "(a{1000}){1000}" + "\"\n", ["regex"]),
        ("both contains and regex", rule + "regex = \"a\"\ncontains = \"a\"\n", ["contains"]),
        ("neither", rule, ["contains"]),
        ("unknown class", "version = 1\n[[rule]]\nname = \"r\"\nclass = \"gemmm\"\ncontains = \"a\"\n", ["class"]),
        ("unknown key", rule + "contains = \"a\"\ncolour = \"red\"\n", ["colour"]),
        ("no rules", "version = 1\n", ["rule"]),
        ("version 2", "version = 2\n[[rule]]\nname = \"r\"\nclass = \"norm\"\ncontains = \"a\"\n", ["version"]),
        ("duplicate names", rule + "contains = \"a\"\n" + rule.split("\n", 1)[1] + "contains = \"b\"\n", ["name"]),
        ("negative stream", rule + "contains = \"a\"\nstream = -1\n", ["stream"]),
        ("empty regex", rule + "regex = \"\"\n", ["regex"]),
    ]:
        cases.append(Case("import classifier: " + name, "import t.json -o out.jsonl --classifier c.toml", expect,
                          ["out.jsonl"], {"t.json": text, "c.toml": body}))
    return cases


def profile_text():
    header = {"annotations": 0, "format": "trainsim-profile", "kernels": 1, "provenance": {
        "classifier": "", "cuda": "", "date": "", "driver": "", "gpu": "NVIDIA H800", "gpu_key": "h800", "num_sms": 132,
        "rank": 0, "shapes": "", "software": "", "source": "", "source_file": "t.json", "trace_name": "", "world_size": 0},
        "syncs": 0, "t0_us": 0, "version": 1}
    kernel = {"block": [1, 1, 1], "class": "other", "comm_sms_held": 0, "correlation": 1, "device": 0, "dtype": "",
              "dur_us": 5, "grid": [1, 1, 1], "launch_tid": 1, "launch_ts_us": 0, "name": "k", "phase": "", "rule": "",
              "shape": {"bytes": 0, "groups": 0, "how": "", "k": 0, "m": 0, "n": 0, "tokens": 0}, "sms_available": 132,
              "stream": 7, "ts_us": 10, "type": "kernel"}
    return header, kernel


def profile_cases():
    cases = []
    header, kernel = profile_text()

    def prof(h, k):
        return json.dumps(h, sort_keys=True) + "\n" + "".join(json.dumps(x, sort_keys=True) + "\n" for x in k)

    mutations = [
        ("wrong format", lambda h, k: h.__setitem__("format", "other"), ["format"]),
        ("version 3", lambda h, k: h.__setitem__("version", 3), ["version"]),
        ("version 1 with an op key", lambda h, k: k[0].__setitem__("op", {"name": "aten::mm", "input_dims": [], "input_types": []}),
         ["op"]),
        ("more kernels announced", lambda h, k: h.__setitem__("kernels", 2), ["truncated"]),
        ("negative kernel count", lambda h, k: h.__setitem__("kernels", -1), ["truncated", "kernels"]),
        ("unknown header key", lambda h, k: h.__setitem__("colour", 1), ["colour"]),
        ("missing provenance key", lambda h, k: h["provenance"].pop("gpu"), ["gpu"]),
        ("unknown class", lambda h, k: k[0].__setitem__("class", "gemmm"), ["class"]),
        ("negative duration", lambda h, k: k[0].__setitem__("dur_us", -1), ["dur_us"]),
        ("string stream", lambda h, k: k[0].__setitem__("stream", "7"), ["stream"]),
        ("grid of two", lambda h, k: k[0].__setitem__("grid", [1, 1]), ["grid"]),
        ("unknown kernel key", lambda h, k: k[0].__setitem__("colour", 1), ["colour"]),
        ("missing shape key", lambda h, k: k[0]["shape"].pop("how"), ["how"]),
        ("unknown type", lambda h, k: k[0].__setitem__("type", "thing"), ["type"]),
        ("ts 1e300", lambda h, k: k[0].__setitem__("ts_us", 1e300), ["kernel #0", "times"]),
        ("no GPU key", lambda h, k: (h["provenance"].__setitem__("gpu_key", ""), h["provenance"].__setitem__("gpu", "")),
         ["GPU", "--gpu"]),
        ("a GPU without calibration", lambda h, k: h["provenance"].__setitem__("gpu_key", "b200"), ["calibration", "b200"]),
        ("a GPU key with no hardware file", lambda h, k: h["provenance"].__setitem__("gpu_key", "z9000"), ["calibration", "z9000"]),
        ("a shape whose fitted time overflows",
         lambda h, k: (k[0].__setitem__("class", "fp8_gemm"), k[0]["shape"].update({"m": 1 << 40, "n": 1 << 40, "k": 1 << 40})),
         ["kernel #0", "duration"]),
    ]
    for name, mutate, expect in mutations:
        h, k = json.loads(json.dumps(header)), [json.loads(json.dumps(kernel))]
        mutate(h, k)
        cases.append(Case("replay profile: " + name, "replay p.profile.jsonl", expect, [], {"p.profile.jsonl": prof(h, k)}))
    good = {"p.profile.jsonl": prof(header, [kernel])}
    for name, body in [("empty", ""), ("not JSON", "hello\n"), ("a JSON array", "[]\n"), ("truncated line", prof(header, [kernel])[:-30])]:
        cases.append(Case("replay profile: " + name, "replay p.profile.jsonl", ["p.profile.jsonl"], [], {"p.profile.jsonl": body}))
    for args, expect in [
        ("replay missing.profile.jsonl", ["missing.profile.jsonl"]),
        ("replay p.profile.jsonl --gpu nosuchgpu", ["--gpu"]),
        ("replay p.profile.jsonl --calibration missing.toml", ["missing.toml"]),
        ("replay p.profile.jsonl --calibration p.profile.jsonl", ["p.profile.jsonl"]),
        ("replay p.profile.jsonl --model missing.toml", ["missing.toml"]),
        ("replay p.profile.jsonl --ep 0", ["--ep"]),
        ("replay p.profile.jsonl --tokens -3", ["--tokens"]),
        ("replay p.profile.jsonl --tokens 4096", ["--tokens"]),
        ("replay p.profile.jsonl --ep 64", ["--ep"]),
        ("replay", ["trace"]),
    ]:
        cases.append(Case("replay options: " + args, args, expect, [], good))
    # calibrate
    for args, expect in [
        ("calibrate p.profile.jsonl -o cal.toml", ["--gpu"]),
        ("calibrate p.profile.jsonl --gpu h800", ["--output", "-o"]),
        ("calibrate p.profile.jsonl --gpu nosuchgpu -o cal.toml", ["nosuchgpu"]),
        ("calibrate missing.profile.jsonl --gpu h800 -o cal.toml", ["missing.profile.jsonl"]),
        ("calibrate p.profile.jsonl --gpu h800 -o .", ["-o"]),
        ("calibrate p.profile.jsonl --gpu h800 -o nodir/cal.toml", ["-o", "nodir"]),
        ("calibrate junk.toml --gpu h800 -o cal.toml", ["junk.toml"]),
        ("calibrate p.profile.jsonl --gpu h800 -o cal.toml --model missing.toml", ["missing.toml"]),
    ]:
        cases.append(Case("calibrate: " + args, args, expect, ["cal.toml"],
                          dict(good, **{"junk.toml": "gpu = \"h800\"\nsource = 1\n[[row]]\nx = 1\n"})))
    return cases


SCENARIO_KEYS_INT = ["plan.dp", "plan.tp", "plan.pp", "plan.cp", "plan.ep", "plan.vpp", "plan.micro_batch", "plan.zero",
                     "plan.comm_sms", "cluster.gpus", "cluster.gpus_per_node", "training.seq_len", "training.global_batch"]


def scenario_cases():
    cases = []
    # --set on every integer key: zero, negative, huge, a float, a string, a table.
    for key in SCENARIO_KEYS_INT:
        for val in ["0", "-1", "99999999999999999999", "1.5", "\"x\"", "{a=1}", "[1,2]", "true", "1e999"]:
            if val == "0" and key in ("plan.zero", "plan.comm_sms"):
                continue  # ZeRO stage 0 and no communication SMs are valid plans
            cases.append(Case(f"run --set {key}={val}", f"run {q(SMALL)} --set {q(key + '=' + val)} --out out", [key],
                              ["out"]))
    for key, val in [("plan.schedule", "nosuch"), ("plan.recompute", "most"), ("cluster.gpu", "h100"), ("cluster.gpu", ""),
                     ("training.kind", "fun"), ("plan.layer_split", "[1,2]"), ("plan.layer_split", "\"odd\""),
                     ("training.tokens", "-1e12"), ("training.tokens", "0"), ("plan.nosuchkey", "1"), ("nosuch.key", "1"),
                     ("model.attention.heads", "0"), ("model.layers", "100001"),
                     ("model.hidden", "3000000000"), ("model.vocab", "0"), ("hardware.memory.capacity.value", "\"80GBB\""),
                     ("hardware.interconnect.nic.value", "\"-1Gb/s\""), ("hardware.compute.sms", "0"),
                     ("training.global_batch", "549755844608"), ("training.global_batch", str(128 * ((1 << 32) + 240))),
                     ("plan.micro_batch", "1048576"), ("training.batch_ramp", "{ start = 0, tokens = 1e9 }"),
                     ("training.batch_ramp", "{ start = 1024, tokens = 1e9 }")]:
        cases.append(Case(f"run --set {key}={val}", f"run {q(SMALL)} --set {q(key + '=' + val)} --out out",
                          [key.split(".")[-1]], ["out"]))
    # A value with a newline injects whole tables (dp 8 x pp 4 on 32 GPUs is a valid plan, so
    # nothing else refuses it). --set parsing belongs to issue 12's command-line work.
    cases.append(Case("describe --set with a newline injecting [cluster]",
                      f"describe {q(SMALL)} --set {q('plan.dp=8' + chr(10) + '[cluster]' + chr(10) + 'gpus=32')}",
                      ["--set", "newline"], known="--set parsing (issue 12, ux): a value's newline starts a new TOML line"))
    for s, expect in [("plan.pp", "--set"), ("=4", "--set"), ("plan.pp==4", "plan.pp"), ("", "--set"),
                      ("plan.pp=4\n[cluster]\ngpus=8", "cluster"), (".pp=4", "--set"), ("plan.pp.x=4", "plan.pp")]:
        cases.append(Case(f"run --set {s!r}", f"run {q(SMALL)} --set {q(s)} --out out", [expect], ["out"]))
    # Edited scenario files: each top-level key removed, malformed TOML, wrong types.
    text = read(SMALL).replace("../../../models/llama3-8b.toml", MODEL)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^([a-z_]+)\s*=", line)
        if not m:
            continue
        key = m.group(1)
        body = "\n".join(lines[:i] + lines[i + 1:]) + "\n"
        if key in ("description", "recompute", "zero", "tp", "micro_batch", "schedule", "kind") or (key == "name" and i > 5):
            continue  # optional keys (documented defaults)
        cases.append(Case(f"run scenario without '{key}'", "run s.toml --out out", [key], ["out"], {"s.toml": body}))
    for i in range(10, len(text), max(1, len(text) // 12)):
        cases.append(Case(f"run scenario truncated at {i}", "run s.toml --out out", ["s.toml"], ["out"], {"s.toml": text[:i]}))
    for name, body, expect in [
        ("an unknown section", text + "\n[colour]\nred = 1\n", ["colour"]),
        ("an unknown key", text.replace("[plan]\n", "[plan]\nspeed = 3\n"), ["speed"]),
        ("a misspelt key", text.replace("gpus_per_node", "gpus_per_nod"), ["gpus_per_nod"]),
        ("a key twice", text.replace("[plan]\n", "[plan]\ndp = 16\n"), ["dp"]),
        ("a string for an integer", text.replace("pp = 4", "pp = \"4\""), ["pp"]),
        ("a date value", text.replace("pp = 4", "pp = 1979-05-27"), ["pp"]),
        ("a missing model file", text.replace(MODEL, "nosuch.toml"), ["nosuch.toml"]),
        ("a model that is a directory", text.replace(MODEL, "."), ["model"]),
        ("binary garbage", "\x00\xff\xfe garbage", ["s.toml"]),
        ("an empty file", "", ["name", "s.toml"]),
        ("dp*pp*tp != gpus", text.replace("gpus = 64", "gpus = 128"), ["gpus", "dp"]),
        ("global_batch not divisible", text.replace("global_batch = 512", "global_batch = 513"), ["global_batch"]),
        ("interleaved with micro-batches not divisible by pp", text.replace("\"1f1b\"", "\"interleaved\"").replace("global_batch = 512", "global_batch = 528"), ["schedule", "interleaved"]),
        ("a model that is a device", text.replace(MODEL, "/dev/null"), ["model", "/dev/null"]),
        ("unicode in a key", text.replace("[plan]\n", "[plan]\n\"pé\" = 1\n"), ["pé"]),
    ]:
        cases.append(Case("run scenario: " + name, "run s.toml --out out", expect, ["out"], {"s.toml": body}))
    # Command line of run / describe / compare.
    for args, expect in [
        ("run", ["scenario"]), ("run missing.toml", ["missing.toml"]), ("run .", ["directory", "."]),
        (f"run {q(SMALL)} --out s.toml", ["--out"]), (f"run {q(SMALL)} --out s.toml/x", ["--out"]),
        (f"run {q(SMALL)} --out /proc/x", ["--out"]), (f"run {q(SMALL)} --frob", ["--frob"]),
        (f"run {MODEL}", ["plan", "cluster", "scenario", "model"]),
        ("describe", ["file"]), ("describe missing.toml", ["missing.toml"]), ("describe s.toml --seq-len 0", ["--seq-len"]),
        ("describe s.toml --seq-len x", ["--seq-len"]), (f"describe {q(SMALL)} --set plan.pp=0", ["plan.pp"]),
        ("describe junk.txt", ["junk.txt"]),
        (f"compare {q(SMALL)}", ["--hardware"]), (f"compare {q(SMALL)} --hardware nosuch", ["nosuch"]),
        (f"compare {q(SMALL)} --hardware ,", ["--hardware"]), (f"compare {q(SMALL)} --hardware h100-sxm --schedules nosuch", ["nosuch", "--schedules"]),
        (f"compare {q(SMALL)} --hardware h100-sxm --set plan.pp=x", ["plan.pp"]),
        (f"compare {q(SMALL)} --hardware h100-sxm --out s.toml", ["--out"]),
        ("frobnicate", ["frobnicate"]), ("", ["subcommand", "required"]),
    ]:
        cases.append(Case("cli: " + (args or "(none)"), args, expect, ["out"], {"s.toml": text, "junk.txt": "junk"}))
    return cases


def schedule_cases():
    cases = []
    for args, expect in [
        ("--kind 1f1b --pp 4", ["--microbatches"]), ("--kind nosuch --pp 4 --microbatches 8", ["--kind"]),
        ("--kind 1f1b --pp 0 --microbatches 8", ["--pp"]), ("--kind 1f1b --pp -4 --microbatches 8", ["--pp"]),
        ("--kind 1f1b --pp 4 --microbatches 0", ["--microbatches"]),
        ("--kind 1f1b --pp 1000 --microbatches 10000", ["--microbatches", "work limit"]),
        ("--kind 1f1b --pp 99999999999 --microbatches 8", ["--pp"]),
        ("--kind 1f1b --pp 4 --microbatches 8 --vpp 2", ["--vpp"]),
        ("--kind interleaved --pp 4 --microbatches 6 --vpp 2", ["--microbatches", "interleaved"]),
        ("--kind interleaved --pp 4 --microbatches 8 --vpp 0", ["--vpp"]),
        ("--kind dualpipe --pp 3 --microbatches 8", ["--pp", "dualpipe"]),
        ("--kind dualpipe --pp 4 --microbatches 7", ["--microbatches"]),
        ("--kind 1f1b --pp 4 --microbatches 8 --f 1xs", ["--f"]), ("--kind 1f1b --pp 4 --microbatches 8 --f -1us", ["--f"]),
        ("--kind 1f1b --pp 4 --microbatches 8 --f 1e999us", ["--f"]), ("--kind 1f1b --pp 4 --microbatches 8 --b 2parsecs", ["--b"]),
        ("--kind 1f1b --pp 4 --microbatches 8 --w 9ms --b 1ms", ["--w"]),
        ("--kind 1f1b --pp 4 --microbatches 8 --p2p nan", ["--p2p"]),
        ("--kind 1f1b --pp 4 --microbatches 8 --fb 1ms --f-comm 0.1ms", ["--fb"]),
        ("--kind 1f1b --pp 4 --microbatches 8 --f-comm 9ms", ["--f-comm"]),
        ("--kind 1f1b --pp 4 --microbatches 8 --trace .", ["--trace"]),
        ("--kind 1f1b --pp 4 --microbatches 8 --trace nodir/t.json", ["--trace"]),
        ("--kind 1f1b --pp 4 --microbatches 8 --f 1e12s", ["--f"]),
    ]:
        cases.append(Case("schedule " + args, "schedule " + args, expect, ["nodir"]))
    return cases


def alltoall_cases():
    cases = []
    for args, expect in [
        ("--ep 0", ["--ep"]), ("--ep -8", ["--ep"]), ("--ep 3", ["--ep"]), ("--tokens 0", ["--tokens"]),
        ("--tokens -1", ["--tokens"]), ("--tokens 99999999999", ["--tokens"]), ("--hidden 0", ["--hidden"]),
        ("--experts 0", ["--experts"]), ("--topk 0", ["--topk"]), ("--topk 300", ["--topk"]), ("--max-nodes 0", ["--max-nodes"]),
        ("--skew -1 --sampled", ["--skew"]), ("--skew nan --sampled", ["--skew"]), ("--hardware nosuch", ["nosuch"]),
        ("--fabric ring", ["--fabric"]), ("--gpus-per-node 0", ["--gpus-per-node"]), ("--comm-sms 1000", ["--comm-sms"]),
        ("--gpus 3", ["--gpus"]), ("--gpus 100000000", ["--gpus"]), ("--seed -1", ["--seed"]),
        ("--ep 1048576 --experts 1048576", ["--ep", "--gpus", "work", "limit"]), ("--experts 32", ["--experts"]),
        ("--hardware .", ["--hardware"]),
        ("--hidden 3000000000", ["--hidden"]), ("--tokens 2147483647 --sampled", ["--tokens"]),
    ]:
        cases.append(Case("alltoall " + args, "alltoall " + args, expect))
    return cases


def sweep_cases():
    cases = []
    body = f"scenario = {json.dumps(SMALL)}\n[axes]\n\"plan.schedule\" = [\"1f1b\", \"zb1p\"]\n"
    for name, text, expect in [
        ("no scenario", "[axes]\n\"plan.pp\" = [2]\n", ["scenario"]),
        ("a missing scenario", "scenario = \"nosuch.toml\"\n[axes]\n\"plan.pp\" = [2]\n", ["nosuch.toml"]),
        ("no axes", f"scenario = {json.dumps(SMALL)}\n", ["axes"]),
        ("an empty axis", f"scenario = {json.dumps(SMALL)}\n[axes]\n\"plan.pp\" = []\n", ["plan.pp"]),
        ("an axis that is not an array", f"scenario = {json.dumps(SMALL)}\n[axes]\n\"plan.pp\" = 4\n", ["plan.pp"]),
        ("an unknown key", f"scenario = {json.dumps(SMALL)}\n[axes]\n\"plan.ppp\" = [2]\n", ["plan.ppp"]),
        ("a value twice", f"scenario = {json.dumps(SMALL)}\n[axes]\n\"plan.pp\" = [2, 2]\n", ["plan.pp"]),
        ("name ../x", "name = \"../x\"\n" + body, ["name"]),
        ("name /tmp/x", "name = \"/tmp/x\"\n" + body, ["name"]),
        ("name with a slash", "name = \"a/b\"\n" + body, ["name"]),
        ("a hidden name", "name = \".x\"\n" + body, ["name"]),
        ("an empty name", "name = \"\"\n" + body, ["name"]),
        ("too many points", f"scenario = {json.dumps(SMALL)}\n[axes]\n" + "".join(
            f"\"plan.{k}\" = [{', '.join(str(i) for i in range(1, 60))}]\n" for k in ("dp", "pp", "tp", "cp")), ["work limit"]),
        ("links with different keys", f"scenario = {json.dumps(SMALL)}\n[[link]]\nvalues = [{{ \"plan.dp\" = 16 }}, {{ \"plan.pp\" = 4 }}]\n",
         ["link"]),
        ("a key set twice", f"scenario = {json.dumps(SMALL)}\n[axes]\n\"plan.pp\" = [2]\n[[link]]\nvalues = [{{ \"plan.pp\" = 4 }}]\n",
         ["plan.pp"]),
        ("prefix conflict", f"scenario = {json.dumps(SMALL)}\n[axes]\n\"plan\" = [{{ pp = 2 }}]\n\"plan.pp\" = [2]\n", ["plan"]),
        ("a date value", f"scenario = {json.dumps(SMALL)}\n[axes]\n\"plan.pp\" = [1979-05-27]\n", ["plan.pp"]),
        ("malformed TOML", f"scenario = {json.dumps(SMALL)}\n[axes\n", ["w.toml"]),
        ("an unknown top-level key", "speed = 1\n" + body, ["speed"]),
    ]:
        cases.append(Case("sweep file: " + name, "sweep w.toml --db w.sqlite -q", expect, ["w.sqlite", "../x.sqlite"],
                          {"w.toml": text}))
    good = {"w.toml": "name = \"w\"\n" + body}
    for args, expect, files in [
        ("sweep w.toml --db . -q", ["--db"], {}), ("sweep w.toml --db nodir/x.sqlite -q", ["--db", "nodir"], {}),
        ("sweep w.toml --db w.sqlite --csv . -q", ["--csv"], {}), ("sweep w.toml --db w.sqlite --csv nodir/x.csv -q", ["--csv"], {}),
        ("sweep w.toml --db w.sqlite --jobs 0 -q", ["--jobs"], {}), ("sweep w.toml --db w.sqlite --jobs 9999 -q", ["--jobs"], {}),
        ("sweep w.toml --db w.sqlite --best fast -q", ["--best"], {}), ("sweep w.toml --db w.sqlite --deadline-days 3 -q", ["--best"], {}),
        ("sweep w.toml --db w.sqlite --best cost --budget-usd -5 -q", ["--budget-usd"], {}),
        ("sweep w.toml --db w.sqlite --max-points 0 -q", ["--max-points"], {}), ("sweep w.toml --db w.sqlite --top 0 -q", ["--top"], {}),
        ("sweep missing.toml -q", ["missing.toml"], {}), ("sweep . -q", ["directory", "sweep"], {}),
        ("sweep w.toml --db text.sqlite -q", ["text.sqlite", "SQLite"], {"text.sqlite": "not a database\n"}),
        ("sweep w.toml --db empty-but-foreign.sqlite -q", ["foreign", "customers"], {}),
    ]:
        f = dict(good)
        f.update(files)
        outputs = ["w.sqlite"] if "--db w.sqlite" in args else []
        cases.append(Case("sweep options: " + args, args, expect, outputs, f))
    return cases


def resource_cases():
    cases = []
    text = read(SMALL).replace("../../../models/llama3-8b.toml", MODEL)
    # A full disk for --out (file-size limit: the write fails with EFBIG).
    cases.append(Case("run --out with a 64 KiB file-size limit", f"run {q(SMALL)} --out out", ["--out", "File too large"], ["out"],
                      {}, env="trap '' XFSZ; ulimit -f 64;"))
    cases.append(Case("import -o with a 1 KiB file-size limit", "import t.json -o out.jsonl", ["-o", "File too large"], ["out.jsonl"],
                      {"t.json": json.dumps(trace_2024())}, env="trap '' XFSZ; ulimit -f 1;"))
    cases.append(Case("sweep --csv with a 1 KiB file-size limit", "sweep w.toml --db w.sqlite --csv out.csv -q",
                      ["--csv", "--db", "File too large", "disk"], ["out.csv"],
                      {"w.toml": f"name = \"w\"\nscenario = {json.dumps(SMALL)}\n[axes]\n\"plan.schedule\" = [\"1f1b\", \"zb1p\"]\n\"cluster.gpu\" = [\"h100-sxm\", \"h200\"]\n"},
                      env="trap '' XFSZ; ulimit -f 1;"))
    # A FIFO as an input must not block.
    cases.append(Case("import a FIFO", "import fifo.json -o out.jsonl", ["fifo.json", "pipe"], ["out.jsonl"], {"@fifo": "fifo.json"}))
    cases.append(Case("run a FIFO scenario", "run fifo.toml", ["fifo.toml"], [], {"@fifo": "fifo.toml"}))
    # A very large number of trace events with one kernel: linear, bounded.
    ev = [{"ph": "X", "cat": "user_annotation", "name": f"a{i}", "pid": 1, "tid": 1, "ts": i, "dur": 1000000} for i in range(100000)]
    ev.append({"ph": "X", "cat": "kernel", "name": "k", "ts": 5, "dur": 1, "args": {"stream": 7, "correlation": 1}})
    ev.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 4, "dur": 1, "args": {"correlation": 1}})
    cases.append(Case("replay of 100k nested annotations without a GPU", "replay t.json", ["GPU", "--gpu"], [],
                      {"t.json": json.dumps({"traceEvents": ev})}))
    return cases


def all_cases():
    return kineto_cases() + profile_cases() + scenario_cases() + schedule_cases() + alltoall_cases() + sweep_cases() + resource_cases()


# ----------------------------------------------------------------------------- running

def run_case(c, args):
    work = tempfile.mkdtemp(prefix="trainsim-campaign-")
    try:
        for rel, content in c.files.items():
            if rel == "@fifo":
                os.mkfifo(os.path.join(work, content))
                continue
            p = os.path.join(work, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
        if "empty-but-foreign.sqlite" in c.args:
            import sqlite3
            con = sqlite3.connect(os.path.join(work, "empty-but-foreign.sqlite"))
            con.execute("CREATE TABLE customers (id INTEGER)")
            con.commit()
            con.close()
        before = set(os.listdir(work))
        limit_kb = args.memory_gb * 1024 * 1024
        cmd = f"ulimit -v {limit_kb}; {c.env} exec {q(args.bin)} {c.args}"
        env = dict(os.environ, TRAINSIM_DATA=ROOT)
        start = time.time()
        p = subprocess.Popen(["/bin/sh", "-c", cmd], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            return c, "hang", f"still running after {args.timeout} s", ""
        secs = time.time() - start
        err = err.decode("utf-8", "replace")
        rc = p.returncode
        left = [o for o in c.outputs if os.path.exists(os.path.join(work, o)) and o not in before]
        temps = [f for f in os.listdir(work) if ".tmp-" in f]
        if rc < 0 or rc == 70 or rc >= 128 or "Sanitizer" in err or "runtime error:" in err:
            return c, "crash", f"status {rc}", err
        if "bad_alloc" in err or "Cannot allocate memory" in err:
            return c, "hang", "out of memory", err
        if rc == 0:
            return c, "silent", f"accepted (status 0, {secs:.1f} s)", err
        if rc != 2:
            return c, "unclear", f"status {rc}", err
        if not any(e in err for e in c.expect):
            return c, "unclear", "message names none of " + ", ".join(repr(e) for e in c.expect), err
        if left or temps:
            return c, "unclear", "left behind: " + ", ".join(left + temps), err
        return c, "clean", "", err
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build/bin/trainsim"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=60)
    ap.add_argument("--memory-gb", type=int, default=8)
    ap.add_argument("--only", default="")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    cases = [c for c in all_cases() if args.only in c.name]
    counts = {k: 0 for k in ("clean", "unclear", "silent", "crash", "hang")}
    failing = 0
    per_command = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for c, cls, why, err in pool.map(lambda c: run_case(c, args), cases):
            counts[cls] += 1
            cmd = c.args.split(" ")[0] if c.args else "(none)"
            per_command.setdefault(cmd, {k: 0 for k in counts})[cls] += 1
            if cls != "clean" or args.verbose:
                last = err.strip().splitlines()[-1] if err.strip() else ""
                known = f" [known, owned elsewhere: {c.known}]" if c.known and cls != "clean" else ""
                print(f"{cls:8} {c.name}: {why}{known}\n         {last[:300]}")
            if cls in ("silent", "crash", "hang") and not c.known:
                failing += 1
    print(f"\n{len(cases)} inputs: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for cmd in sorted(per_command):
        print(f"  {cmd:10} " + ", ".join(f"{k} {v}" for k, v in per_command[cmd].items() if v))
    return 1 if failing > 0 else 0


if __name__ == "__main__":
    sys.exit(main())
