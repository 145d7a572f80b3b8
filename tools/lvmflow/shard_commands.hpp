#pragma once
// `lvmflow run --shard`, `lvmflow merge` and `lvmflow submit` (docs/scale-out.md). Argument
// parsing stays in cli.cpp; these take parsed values.
#include <string>
#include <vector>

#include "pipeline/executor.hpp"

namespace lvmflow {

// --shard I/N on `lvmflow run`: the run goes to the shard's own store under the pipeline's
// store and runs the shardable prefix on the shard's articles.
void apply_shard_option(const std::string& text, PipelineSpec& spec, RunOptions& options);

// Merges N shards into the pipeline's store and prints what it did; returns the exit status.
int merge_command(const PipelineSpec& spec, std::size_t shards, const RunOptions& options, bool json);

struct SubmitRequest {
  std::string pipeline_file;            // as given; made absolute in the scripts
  std::vector<std::string> pipeline_args;   // --set/--store/--force options to repeat in every job
  std::size_t shards = 1;
  std::string slurm_args;               // extra sbatch options for every job, split at spaces
  std::string rest_slurm_args;          // and for the rest job only (e.g. --ntasks=4: lvm.train data-parallel)
  bool dry_run = false;
};

// Writes the three sbatch scripts (shard array, merge, rest) under <store>/slurm/, submits
// them chained by afterok dependencies, prints the job ids; --dry-run prints the scripts.
int submit_command(const PipelineSpec& spec, const SubmitRequest& request);

}  // namespace lvmflow
