#include "step/models.hpp"

#include <fmt/format.h>

#include "config/plan_rules.hpp"
#include "model/recompute.hpp"

namespace trainsim::step {

const std::vector<StepModel>& step_models() {
  static const std::vector<StepModel> table = {
      {"recompute", "recompute", "none", "model/recompute.hpp (Korthikanti et al. 2022; DeepSeek-V3 §3.2.3; Megatron)",
       "recomputed forward ops run again before each layer's backward; memory keeps what they do not produce",
       [](const PlanConfig& p, bool) { return p.recompute != Recompute::None; }},
      {"tp_megatron", "tp", "1",
       "Shoeybi et al. 2019 (arXiv:1909.08053); Megatron LinearWithGradAccumulationAndAsyncCommunication",
       "two all-reduces per layer forward and backward; the backward's overlaps the weight-gradient GEMM",
       [](const PlanConfig& p, bool) { return p.tp > 1 && !p.sequence_parallel; }},
      {"sequence_parallel", "sequence_parallel", "false", "Korthikanti et al. 2022 §4.2.2 (arXiv:2205.05198)",
       "all-gather / reduce-scatter instead of all-reduce, norms split over TP, the input all-gathered again "
       "beside the backward's input-gradient GEMM",
       [](const PlanConfig& p, bool) { return p.tp > 1 && p.sequence_parallel; }},
      {"tp_comm_overlap", "tp_comm_overlap", "false",
       "TransformerEngine userbuffers (initialize_ub: ring-exchange all-gather in tp chunks, pipelined "
       "reduce-scatter in 4); Megatron-Core --tp-comm-overlap",
       "exposed = max(G, C) + min(G, C)/n - G of each collective C beside its GEMM G",
       [](const PlanConfig& p, bool) { return p.tp > 1 && p.tp_comm_overlap; }},
      {"deepep_alltoall", "ep", "1",
       "DeepEP normal kernels; DeepSeek-V3 §3.2.2, §3.3.3 (FP8 dispatch and combine gradient in an FP8 run)",
       "dispatch/combine on the network model; bandwidth x comm_sms/24 below DeepEP's 24 measured SMs",
       [](const PlanConfig& p, bool moe) { return moe && p.ep > 1 && p.ep_dispatcher == "deepep"; }},
      {"megatron_alltoall", "ep_dispatcher", "deepep",
       "Megatron-Core MoEAlltoAllTokenDispatcher (megatron/core/transformer/moe/token_dispatcher.py; "
       "--moe-token-dispatcher-type alltoall)",
       "the permuted (token, expert) rows in one all_to_all_single over the EP group, sent directly, BF16 both ways",
       [](const PlanConfig& p, bool moe) { return moe && p.ep > 1 && p.ep_dispatcher == "alltoall"; }},
      {"dualpipe_fb", "schedule", "1f1b", "DeepSeek-V3 §3.2.1, Figure 4",
       "forward and backward chunks overlapped on compute and communication streams, compute on N - comm_sms SMs",
       [](const PlanConfig& p, bool) { return p.schedule == "dualpipe" || p.schedule == "dualpipev"; }},
      {"combined_1f1b", "ep_comm_overlap", "false",
       "Megatron-Core combined_1f1b (--overlap-moe-expert-parallel-comm)",
       "each backward followed by a forward on a rank runs as one F&B op, as DualPipe's pairs",
       [](const PlanConfig& p, bool) { return p.ep_comm_overlap && (p.schedule == "1f1b" || p.schedule == "interleaved"); }},
      {"shared_expert_overlap", "shared_expert_overlap", "false", "Megatron-Core --moe-shared-expert-overlap",
       "shared experts computed beside the dispatch (forward) and the combine's gradient (backward)",
       [](const PlanConfig& p, bool moe) { return moe && p.shared_expert_overlap; }},
      {"cp_ring", "cp_comm", "ring",
       "Liu et al. 2023, Ring Attention (arXiv:2310.01889); Megatron-Core cp_comm_type \"p2p\"",
       "cp-1 K/V sends, each beside one block of attention: exposed (cp-1)·max(0, t_kv - t_attn/cp)",
       [](const PlanConfig& p, bool) { return p.cp > 1 && p.cp_comm == "ring"; }},
      {"cp_all_gather", "cp_comm", "ring", "Megatron-Core cp_comm_type \"all_gather\"; Llama 3 report §3.3.2",
       "K/V all-gathered before the attention, their gradients reduce-scattered: exposed",
       [](const PlanConfig& p, bool) { return p.cp > 1 && p.cp_comm == "all_gather"; }},
      {"nccl_collectives", "", "", "NCCL (multi-channel rings over all NICs, tree / NVLS-tree across nodes)",
       "DP, TP and CP collectives on the flow network with NCCL's link efficiencies",
       [](const PlanConfig& p, bool) { return p.dp * p.cp > 1 || p.tp > 1; }},
      {"pp_link_sharing", "", "", "max-min fair sharing (network/flow.hpp)",
       "pipeline sends share the NIC with the all-to-all they run beside",
       [](const PlanConfig& p, bool moe) { return moe && p.ep > 1 && p.pp > 1; }},
      {"overlap_grad_reduce", "overlap_grad_reduce", "false",
       "Megatron-Core DistributedDataParallel --overlap-grad-reduce (buckets of max(40M, 1M x dp) params)",
       "each bucket's reduction starts when the last backward has produced its gradients",
       [](const PlanConfig& p, bool) { return p.overlap_grad_reduce; }},
      {"grad_buckets_megatron_core", "grad_buckets", "megatron-core (uniform under DualPipe)",
       "Megatron-Core DistributedDataParallel (megatron/core/distributed/distributed_data_parallel.py: bucket_size "
       "None without overlap_grad_reduce, on pipeline ranks > 0 and for model chunks after the first)",
       "gradient buckets only on pipeline rank 0's first model chunk with overlap_grad_reduce; elsewhere one bucket "
       "per gradient buffer (dense, expert)",
       [](const PlanConfig& p, bool) { return p.dp * p.cp > 1 && p.zero <= 1 && effective_grad_buckets(p) == "megatron-core"; }},
      {"grad_buckets_uniform", "grad_buckets", "megatron-core (uniform under DualPipe)",
       "PyTorch DistributedDataParallel (bucket_cap_mb), Apex DistributedFusedAdam; trainsim's rule for DualPipe",
       "gradient buckets of dp_bucket_params on every rank and model chunk",
       [](const PlanConfig& p, bool) {
         return (p.dp * p.cp > 1 || p.schedule == "dualpipe") && p.zero <= 1 && effective_grad_buckets(p) == "uniform";
       }},
      {"overlap_param_gather", "overlap_param_gather", "false",
       "Megatron-Core distributed optimizer --overlap-param-gather",
       "the updated parameters are all-gathered bucket by bucket during the next step's first forward",
       [](const PlanConfig& p, bool) { return p.overlap_param_gather; }},
      {"zero3_prefetch", "zero", "0", "Rajbhandari et al. SC20 (ZeRO-3); PyTorch FSDP forward/backward prefetch",
       "each layer's parameters all-gathered one layer ahead, its gradients reduce-scattered per micro-batch",
       [](const PlanConfig& p, bool) { return p.zero >= 3; }},
      {"dualpipe_dp_copies", "schedule", "1f1b", "DeepSeek-V3 Table 2 (DualPipe: 2x parameters per device)",
       "the two copies of every stage reduce their gradients together and shard ZeRO over both",
       [](const PlanConfig& p, bool) { return p.schedule == "dualpipe"; }},
      {"optimizer", "", "",
       "Megatron-Core distributed optimizer (clip_grad_norm: multi-tensor L2 norm + all-reduce, multi_tensor_scale, "
       "fused Adam, main-to-model param copy); TransformerEngine FP8 weight casts",
       "memory-bound passes over the shard of the rank with the largest shard",
       [](const PlanConfig&, bool) { return true; }},
      {"attention_unfused", "attention", "flash",
       "Megatron-LM before FlashAttention (NVIDIA/Megatron-LM@de7dc40f88 megatron/model/transformer.py "
       "ParallelAttention, fused_softmax.py ScaledUpperTriangMaskedSoftmax, torch.nn.Dropout)",
       "the attention core as batched GEMMs (QK^T, PV and their four gradients) on the GEMM class and the "
       "materialised score matrix through softmax (3 / 4 bytes per score) and dropout (5 / 5) on the memory-bound class",
       [](const PlanConfig& p, bool) { return p.attention == "unfused"; }},
      {"balanced_split", "layer_split", "balanced", "model/layer_split.hpp (linear partition, roofline layer costs)",
       "the heaviest stage as light as possible; bubble separated from imbalance by an equal-stage replay",
       [](const PlanConfig& p, bool) { return p.layer_split.empty() && p.split_rule == "balanced"; }},
  };
  return table;
}

std::vector<std::string> models_in_use(const PlanConfig& p, bool moe) {
  std::vector<std::string> out;
  for (const auto& m : step_models())
    if (m.used(p, moe)) {
      if (std::string(m.name) == "recompute")
        out.push_back(fmt::format("recompute = {} ({})", recompute_model(p.recompute).name, recompute_model(p.recompute).citation));
      else
        out.push_back(fmt::format("{} ({})", m.name, m.citation));
    }
  return out;
}

}  // namespace trainsim::step
