#pragma once
// `lvmflow why STAGE`: the parts of a stage's cache key (type + version, each
// output-affecting param, each input's key, each file fingerprint) and, against the newest
// stored entry of that stage, exactly which parts changed. The answer to "why does this
// stage re-run?" (Nextflow's -dump-hashes, Snakemake's --reason).
#include <iosfwd>
#include <string>

#include "pipeline/spec.hpp"
#include "pipeline/store.hpp"

namespace lvmflow {

// Writes the explanation for stage (or foreach group) `name` of `spec`; throws
// lvmflow::Error when the pipeline has no such stage.
void explain_stage(const PipelineSpec& spec, Store& store, const std::string& name, std::ostream& out);

// argv[0] is "why". Returns the exit status.
int run_why_command(int argc, char** argv);

}  // namespace lvmflow
