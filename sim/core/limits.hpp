#pragma once
// Work limits: bounds on what one command may ask of the machine, checked before the work is
// allocated, so that a huge or hostile input gets a clear error naming the key or option
// instead of exhausting memory or running for hours. Each limit is far above what the
// scenarios, traces and sweeps trainsim was built for need; docs/limits.md lists them with the
// reason for each figure.
#include <cstdint>

namespace trainsim {

// Bytes of one TOML file (scenario, model, hardware, sweep, classifier, calibration): 64 MiB.
inline constexpr std::uint64_t kMaxConfigBytes = std::uint64_t{64} << 20;

// Pipeline slots of one simulated step: pipeline ranks x model chunks per rank x micro-batches
// per step. The task graph holds two or three ops per slot at about 400 bytes each, so the
// limit bounds one step's graph near 1.2 GB. (DeepSeek-V3: 16 x 1 x 120 = 1,920.)
inline constexpr std::int64_t kMaxPipelineSlots = 1'000'000;

// Tokens of one micro-batch (micro_batch x seq_len / cp): the all-to-all and attention models
// take them as 32-bit integers.
inline constexpr std::int64_t kMaxTokensPerMicrobatch = std::int64_t{1} << 31;

// GPUs of one network-model topology (`trainsim alltoall --gpus`, a plan's EP group): about
// 1.3 KB and 25 us each, so at most ~350 MB and ~7 s (the largest clusters trained on are ~1e5).
inline constexpr long long kMaxNetworkGpus = 262'144;

// Token-expert pairs of sampled (not balanced) routing: GPUs x tokens x top-k, each drawn one by
// one (~0.12 us each: 2048 GPUs x 4096 tokens x 8 = 6.7e7 pairs take ~8 s).
inline constexpr long long kMaxRoutedTokens = 1LL << 27;

// Layouts `trainsim plan` may propose for one GPU count (dp x tp x pp x cp factorisations x ep x
// micro-batch x schedule x vpp, before the rules): each takes ~1 us to check and the valid ones
// ~0.1 ms to screen (DeepSeek-V3 on 2048 GPUs: 2.7 M proposed, 160 K valid, 20 CPU-s).
inline constexpr std::uint64_t kMaxPlanProposals = 100'000'000;

// Points of one sweep (the product of its dimensions' sizes).
inline constexpr std::uint64_t kMaxSweepPoints = 10'000'000;

// Relative time a kernel profile may span: 1e12 us (11.6 days), well inside the +-106 days
// that Time (int64 picoseconds) holds, so every replayed instant is representable.
inline constexpr double kMaxTraceSpanUs = 1e12;

// Replay resolves each cross-stream wait call against the kernels launched before it: at most
// this many (wait call, kernel) pairs per replay.
inline constexpr std::int64_t kMaxReplayWaitPairs = 2'000'000'000;

}  // namespace trainsim
