#pragma once
// The retrieve.* stage types; each file registers one (retrieve_stages.cpp calls them all).
#include "pipeline/stage.hpp"

namespace lvmflow {

void add_retrieve_index_stage(StageRegistry& registry);    // index_stage.cpp
void add_retrieve_search_stage(StageRegistry& registry);   // search_stage.cpp
void add_retrieve_eval_stage(StageRegistry& registry);     // eval_stage.cpp

// "stage 'name' (type)", the `where` of every error a retrieve stage raises.
std::string stage_where(const StageContext& ctx, const char* type);
// Reads a non-negative Int param as a size (validate() has already rejected negatives).
std::size_t size_param(const Params& params, const std::string& name);
// The `threads` param every retrieve stage has: OpenMP threads for FAISS, not in the cache key.
ParamDoc threads_param_doc();
// Throws lvmflow::Error unless the Int param is >= minimum.
void require_at_least(const Params& params, const std::string& name, std::int64_t minimum,
                      const std::string& example);

}  // namespace lvmflow
