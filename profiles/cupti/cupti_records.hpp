#pragma once
// trainsim-profile: CUPTI activity records -> the plain structs of profile_convert.hpp.
// Header-only so that the test (tests/test_profile_convert.cpp, built wherever the CUDA toolkit's
// headers are) decodes real CUPTI structs with exactly the code main.cpp runs; it needs the CUPTI
// headers but not libcupti or a GPU.
//
// Surviving CUPTI version changes. CUPTI versions its record structs (CUpti_ActivityKernel4 ...
// 10 in CUDA 13.0, 11 from 13.1) and emits the newest layout of the library in use; a newer
// version appends fields and keeps the old ones where they were. So:
//   * kernel, memset and memcpy records are read through the newest struct the headers declare
//     (chosen by CUDA_VERSION, below), and only fields of the common prefix are read: the
//     static_asserts pin their offsets to those CUpti_ActivityKernel4 ... 10 share, so a
//     header that moved one fails the build here instead of misreading records at run time;
//   * records are dispatched on `kind` alone; kinds the decoder does not know are counted and
//     skipped (never cast), and kernel records with start = end = 0 (CUPTI could not time them)
//     are kept for the converter to drop and count;
//   * the runtime/driver API record (CUpti_ActivityAPI) and the external-correlation record
//     have never been versioned; their offsets are pinned too.
// main.cpp also records cuptiGetVersion() next to CUPTI_API_VERSION in the provenance.
#include <cstddef>
#include <cstdint>
#include <string>

#include <cupti.h>

#include "profile_convert.hpp"

namespace trainsim::profiler::cupti {

#if !defined(CUDA_VERSION) || CUDA_VERSION < 12000
#error "trainsim-profile needs the CUDA 12 or newer CUPTI headers"
#elif CUDA_VERSION >= 13010
using KernelRecord = CUpti_ActivityKernel11;
#elif CUDA_VERSION >= 13000
using KernelRecord = CUpti_ActivityKernel10;
#else
using KernelRecord = CUpti_ActivityKernel9;
#endif
using MemsetRecord = CUpti_ActivityMemset4;
#if CUDA_VERSION >= 13000
using MemcpyRecord = CUpti_ActivityMemcpy6;
#else
using MemcpyRecord = CUpti_ActivityMemcpy5;
#endif

// The prefix every kernel record has had since CUpti_ActivityKernel4 (offsets measured on the
// CUDA 13.0 headers for Kernel4, Kernel9 and Kernel10: identical).
static_assert(offsetof(KernelRecord, start) == 16 && offsetof(KernelRecord, end) == 24, "CUPTI kernel record layout changed");
static_assert(offsetof(KernelRecord, deviceId) == 40 && offsetof(KernelRecord, contextId) == 44 &&
                  offsetof(KernelRecord, streamId) == 48,
              "CUPTI kernel record layout changed");
static_assert(offsetof(KernelRecord, gridX) == 52 && offsetof(KernelRecord, blockZ) == 72,
              "CUPTI kernel record layout changed");
static_assert(offsetof(KernelRecord, correlationId) == 92 && offsetof(KernelRecord, name) == 104,
              "CUPTI kernel record layout changed");
static_assert(offsetof(MemsetRecord, start) == 16 && offsetof(MemsetRecord, deviceId) == 32 &&
                  offsetof(MemsetRecord, streamId) == 40 && offsetof(MemsetRecord, correlationId) == 44,
              "CUPTI memset record layout changed");
static_assert(offsetof(MemcpyRecord, start) == 16 && offsetof(MemcpyRecord, deviceId) == 32 &&
                  offsetof(MemcpyRecord, streamId) == 40 && offsetof(MemcpyRecord, correlationId) == 44,
              "CUPTI memcpy record layout changed");
static_assert(offsetof(CUpti_ActivityAPI, cbid) == 4 && offsetof(CUpti_ActivityAPI, start) == 8 &&
                  offsetof(CUpti_ActivityAPI, threadId) == 28 && offsetof(CUpti_ActivityAPI, correlationId) == 32,
              "CUPTI API record layout changed");
static_assert(offsetof(CUpti_ActivityExternalCorrelation, externalKind) == 4 &&
                  offsetof(CUpti_ActivityExternalCorrelation, externalId) == 8 &&
                  offsetof(CUpti_ActivityExternalCorrelation, correlationId) == 16,
              "CUPTI external-correlation record layout changed");
static_assert(static_cast<std::uint32_t>(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0) == kExternalKindProfiler,
              "profile_convert.hpp's kExternalKindProfiler must be CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0");

// Looks up an API function's name from its callback id ("" if unknown). main.cpp passes
// cuptiGetCallbackName; tests pass a table.
using ApiNameFn = std::string (*)(bool driver, std::uint32_t cbid);

// Appends one record to `out` (kernels, API calls, external correlations, memsets, memcpys) and
// counts it in out.decoded; other kinds are counted as unknown and skipped.
inline void decode_record(const CUpti_Activity* rec, Recording& out, ApiNameFn api_name = nullptr) {
  DecodeStats& st = out.decoded;
  switch (rec->kind) {
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
    case CUPTI_ACTIVITY_KIND_KERNEL: {
      const auto* k = reinterpret_cast<const KernelRecord*>(rec);
      ActivityKernel a;
      a.name = k->name ? k->name : "";
      a.start_ns = k->start;
      a.end_ns = k->end;
      a.device_id = k->deviceId;
      a.context_id = k->contextId;
      a.stream_id = k->streamId;
      a.correlation_id = k->correlationId;
      a.grid = {k->gridX, k->gridY, k->gridZ};
      a.block = {k->blockX, k->blockY, k->blockZ};
      out.kernels.push_back(std::move(a));
      ++st.kernels;
      return;
    }
    case CUPTI_ACTIVITY_KIND_RUNTIME:
    case CUPTI_ACTIVITY_KIND_DRIVER: {
      const auto* a = reinterpret_cast<const CUpti_ActivityAPI*>(rec);
      ApiCall c;
      c.driver = rec->kind == CUPTI_ACTIVITY_KIND_DRIVER;
      c.cbid = static_cast<std::uint32_t>(a->cbid);
      c.name = api_name ? api_name(c.driver, c.cbid) : std::string();
      c.start_ns = a->start;
      c.end_ns = a->end;
      c.process_id = a->processId;
      c.thread_id = a->threadId;
      c.correlation_id = a->correlationId;
      out.api.push_back(std::move(c));
      ++st.api;
      return;
    }
    case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: {
      const auto* e = reinterpret_cast<const CUpti_ActivityExternalCorrelation*>(rec);
      const auto kind = static_cast<std::uint32_t>(e->externalKind);
      if (kind != kExternalKindProfiler) {
        ++st.other_external_kind;
        return;
      }
      out.correlations.push_back(ExternalCorrelation{e->correlationId, e->externalId, kind});
      ++st.external;
      return;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
      const auto* m = reinterpret_cast<const MemsetRecord*>(rec);
      out.copies.push_back(ActivityCopy{"memset", m->start, m->end, m->deviceId, m->contextId, m->streamId, m->correlationId});
      ++st.copies;
      return;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
      const auto* m = reinterpret_cast<const MemcpyRecord*>(rec);
      out.copies.push_back(ActivityCopy{"memcpy", m->start, m->end, m->deviceId, m->contextId, m->streamId, m->correlationId});
      ++st.copies;
      return;
    }
    default:
      ++st.unknown_kind;
      return;
  }
}

}  // namespace trainsim::profiler::cupti
