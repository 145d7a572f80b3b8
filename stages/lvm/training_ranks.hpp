#pragma once
// How data-parallel lvm.train ranks come to be (torch-free, for the CLI):
//  - launched: srun / mpirun / torchrun start the same `lvmflow run` several times. Rank 0
//    runs the pipeline; every lvm.train stage there sends its windows and settings to the
//    other ranks, which only serve trainings (serve_training_rank) until rank 0 is done.
//  - in-process: lvm.train with `world_size: N` and no launcher starts N-1 ranks as threads
//    of this process, talking Gloo over 127.0.0.1 like remote ranks would.
#include <iosfwd>
#include <optional>
#include <string>

namespace lvmflow {

// Where a rank finds the others: rank 0 hosts the TCPStore at master_addr:master_port.
struct RankInfo {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;
};

// The rank of this process when a launcher started several: RANK/WORLD_SIZE (torchrun,
// mpirun wrappers), else SLURM_PROCID/SLURM_STEP_NUM_TASKS (srun; not SLURM_NTASKS: a batch
// script in a multi-task allocation is no rank); MASTER_ADDR (default 127.0.0.1) and
// MASTER_PORT (default 29500). nullopt for a lone process (world size 1 or unset).
// Throws lvmflow::Error for malformed values.
std::optional<RankInfo> launched_rank();

// A TCP port that is free on 127.0.0.1 right now (for ranks on this machine).
int free_local_port();

// Whether lvm.train with this `world_size` param trains data-parallel: the param says more
// than one rank, or a launcher started several processes.
bool trains_data_parallel(int world_size);

// Ranks > 0 of a launched job: joins rank 0 and trains what it sends until rank 0's pipeline
// ends. Returns the process exit status (0 when rank 0 ended normally).
int serve_training_rank(const RankInfo& info, std::ostream& log);

// Rank 0 of a launched job, after its pipeline: tells the other ranks to exit. Joins them
// first if no lvm.train stage ran (all cached), so they do not wait forever. Never throws:
// ranks that are already gone need no release.
void release_training_ranks(const RankInfo& info) noexcept;

}  // namespace lvmflow
