#!/usr/bin/env python3
"""Converts Liger-Kernel's published benchmark results into trainsim memory-bound tables.

Usage (from the repository root):
    profiles/tools/liger_membound.py LIGER_REPO COMMIT

LIGER_REPO is a git checkout (or bare repository) of linkedin/Liger-Kernel; COMMIT the commit
whose benchmark/data/all_benchmark_data.csv is read. Writes profiles/<gpu>/liger-membound.toml
for the data-centre GPUs the CSV covers (H100 SXM, A100 SXM4 80GB, B200). Deterministic: the
same CSV gives the same bytes.

What is kept: `speed` rows of the `liger` provider (Liger's Triton kernels), forward pass only
(the backward rows of small shapes sit on a ~0.1-0.3 ms floor of autograd overhead, so they time
the framework, not the kernel), for the ops whose tensors the benchmark script fixes: RMSNorm,
fused add + RMSNorm, LayerNorm, GroupNorm, the SwiGLU activation (Megatron call shape) and RoPE.
Not kept: `swiglu`/`geglu` (the whole MLP with its GEMMs), cross-entropy and embedding (the
bytes moved depend on cache reuse and in-place gradients the CSV does not describe).

Bytes moved (read + write, the tensors named by the benchmark script; weights and per-row
statistics included; dtype bytes b as the row's config says):
    rms_norm          [M, H]:  2*M*H*b + H*b + 4*M          (x in, y out, weight, fp32 rstd)
    fused_add_rms_norm[M, H]:  4*M*H*b + H*b + 4*M          (x, residual in; y, residual out)
    layer_norm        [M, N]:  2*M*N*b + 2*N*b + 8*M        (x, y, weight, bias, mean, rstd)
    group_norm   [M, C, H]:    2*M*C*H*b + 2*C*b + 8*M*C/cpg (x, y, weight, bias, stats)
    swiglu [S, B, 2F] -> [S, B, F]: 3*S*B*F*b               (gate and up in, out)
    rope q [T, Hq, d], k [T, Hk, d]: 2*T*(Hq + Hk)*d*b      (q and k read and written)
"""
import csv
import io
import json
import subprocess
import sys

GPUS = {
    "NVIDIA H100 80GB HBM3": "h100-sxm",
    "NVIDIA A100-SXM4-80GB": "a100-sxm-80g",
    "NVIDIA B200": "b200",
}
DTYPE = {"torch.bfloat16": 2, "torch.float16": 2, "torch.float32": 4}


def row_bytes(kernel, x_name, x, cfg):
    b = DTYPE.get(cfg.get("dtype", "torch.bfloat16"))
    if kernel == "rms_norm":  # [M, H]
        M, H = cfg["M"], x
        return "norm", f"M={M} H={H}", 2 * M * H * b + H * b + 4 * M
    if kernel == "megatron_rms_norm":  # [S, B, H], bf16 (script)
        M, H = cfg["S"] * cfg["B"], x
        return "norm", f"S*B={M} H={H}", 2 * M * H * 2 + H * 2 + 4 * M
    if kernel == "fused_add_rms_norm":
        M, H = cfg["M"], x
        return "norm", f"M={M} H={H} (fused residual add)", 4 * M * H * b + H * b + 4 * M
    if kernel == "layer_norm":
        M, N = cfg["M"], x
        return "norm", f"M={M} N={N}", 2 * M * N * b + 2 * N * b + 8 * M
    if kernel == "group_norm":
        M, C, H, cpg = cfg["M"], x, cfg["H"], cfg["channels_per_group"]
        return "norm", f"M={M} C={C} H={H} (groups of {cpg})", 2 * M * C * H * b + 2 * C * b + 8 * M * C // cpg
    if kernel == "megatron_swiglu":  # [S, B, 2F] bf16 (script)
        M, F = cfg["S"] * cfg["B"], x
        return "activation", f"S*B={M} F={F}", 3 * M * F * 2
    if kernel in ("rope", "llama4_rope"):  # q [1, T, Hq, d], k [1, T, Hk, d]
        hq, hk = cfg["num_q_heads"], cfg["num_kv_heads"]
        if x_name == "T":
            T, hidden = x, cfg["hidden_size"]
        else:
            T, hidden = cfg["seq_len"], x
        d = hidden // hq
        return "rope", f"T={T} Hq={hq} Hk={hk} d={d}", 2 * T * (hq + hk) * d * b
    return None


def main():
    repo, commit = sys.argv[1], sys.argv[2]
    text = subprocess.run(["git", "-C", repo, "show", f"{commit}:benchmark/data/all_benchmark_data.csv"],
                          check=True, capture_output=True, text=True).stdout
    rows = {}
    for r in csv.DictReader(io.StringIO(text)):
        gpu = GPUS.get(r["gpu_name"])
        if gpu is None or r["metric_name"] != "speed" or r["kernel_provider"] not in ("liger", "liger_fused_add_rms_norm"):
            continue
        if r["kernel_operation_mode"] != "forward" or r["metric_unit"] != "ms":
            continue
        cfg = json.loads(r["extra_benchmark_config_str"])
        got = row_bytes(r["kernel_name"], r["x_name"], int(float(r["x_value"])), cfg)
        if got is None:
            continue
        kind, shape, nbytes = got
        rows.setdefault(gpu, []).append((kind, r["kernel_name"], shape, nbytes, float(r["y_value_50"]) * 1e3,
                                         r["timestamp"], r["liger_version"], r["gpu_name"]))
    for gpu, rs in sorted(rows.items()):
        rs.sort(key=lambda t: (t[0], t[1], t[3]))
        dates = sorted({t[5][:10] for t in rs})
        versions = sorted({t[6] for t in rs})
        out = [
            f"# Measured memory-bound kernel times on {rs[0][7]}, converted from Liger-Kernel's published",
            "# benchmark results by profiles/tools/liger_membound.py (which documents the byte counts).",
            "# time_us = the median (y_value_50) of triton.testing.do_bench, forward pass of Liger's",
            "# Triton kernel; bytes = read + written bytes of the tensors the benchmark script allocates.",
            'kind = "membound"',
            f'gpu = "{gpu}"',
            f'device = "{rs[0][7]}"',
            'source = "linkedin/Liger-Kernel benchmark/data/all_benchmark_data.csv (speed rows, provider liger, forward)"',
            f'commit = "{commit}"',
            f'date = "{", ".join(dates)}"',
            f'software = "Liger-Kernel {", ".join(versions)} (Triton kernels), timed with triton.testing.do_bench"',
            'licence = "BSD-2-Clause (Copyright 2024 LinkedIn Corporation)"',
            "row = [",
        ]
        for kind, kernel, shape, nbytes, us, ts, ver, _ in rs:
            out.append(f'  {{ op = "{kind}", kernel = "{kernel}", pass = "fwd", shape = "{shape}", bytes = {nbytes}, '
                       f'time_us = {us!r}, measured = "{ts} (liger {ver})" }},')
        out.append("]")
        with open(f"profiles/{gpu}/liger-membound.toml", "w") as f:
            f.write("\n".join(out) + "\n")
        print(f"profiles/{gpu}/liger-membound.toml: {len(rs)} rows")


if __name__ == "__main__":
    main()
