#include "stages/retrieve/retrieve_stages.hpp"

#include "pipeline/error.hpp"

namespace lvmflow {

std::string stage_where(const StageContext& ctx, const char* type) {
  return "stage '" + ctx.stage_name() + "' (" + type + ")";
}

std::size_t size_param(const Params& params, const std::string& name) {
  const std::int64_t v = params.get_int(name);
  return v < 0 ? 0 : static_cast<std::size_t>(v);
}

ParamDoc threads_param_doc() {
  return {"threads", ParamType::Int, "0",
          "OpenMP threads FAISS may use per call; 0 = all cores (OMP_NUM_THREADS). FAISS spins "
          "while waiting, so on a busy machine 1 can be much faster for small indexes",
          false, false};
}

void require_at_least(const Params& params, const std::string& name, std::int64_t minimum,
                      const std::string& example) {
  const std::int64_t v = params.get_int(name);
  if (v < minimum)
    throw Error("param " + name,
                "param " + name + " must be at least " + std::to_string(minimum) + ", got " + std::to_string(v),
                "set `" + name + ":` to e.g. " + example);
}

void register_retrieve_stages(StageRegistry& registry) {
  add_retrieve_index_stage(registry);
  add_retrieve_search_stage(registry);
  add_retrieve_eval_stage(registry);
}

}  // namespace lvmflow
