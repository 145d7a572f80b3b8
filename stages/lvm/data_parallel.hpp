#pragma once
// Data-parallel training over c10d's ProcessGroupGloo (TCPStore rendezvous). Every rank holds
// the same model (same seed); each takes its share of every global batch, and the gradients
// are summed over the ranks after backward(). The per-rank loss is weighted by its share of
// the batch, so the sum is the full-batch mean gradient and the ranks stay in lock step with
// what one process would compute. Includes torch; the torch-free launch side (environment,
// worker loop) is in training_ranks.hpp.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "stages/lvm/trainer.hpp"
#include "stages/lvm/training_ranks.hpp"

namespace lvmflow {

class DataParallelGroup {
 public:
  // Blocks until all world_size ranks joined or `timeout` passed (then throws lvmflow::Error).
  static std::unique_ptr<DataParallelGroup> connect(const RankInfo& info, std::chrono::seconds timeout);
  ~DataParallelGroup();

  int rank() const { return info_.rank; }
  int world_size() const { return info_.world_size; }
  int port() const { return info_.master_port; }   // the port rank 0 listens on

  // Rows [begin, end) of a global batch that this rank takes: contiguous, sizes differ by at
  // most one, earlier ranks take the extra rows.
  std::pair<std::size_t, std::size_t> share(std::size_t begin, std::size_t end) const;
  // Sums every parameter's gradient over the ranks (one collective for all of them); a
  // parameter without a gradient on a rank counts as zeros there, and stays without one when
  // no rank has one. `stop`: this rank wants to end training
  // (cancelled); it rides in the same collective, and the result says whether any rank did,
  // so all ranks leave the loop at the same step instead of waiting on each other.
  bool sum_gradients(const std::vector<torch::Tensor>& params, bool stop);
  // Sums `t` over the ranks in place.
  void sum(torch::Tensor& t);
  // Overwrites `t` on every rank with rank `root`'s (same shape and type everywhere).
  void broadcast(torch::Tensor& t, int root = 0);

 private:
  struct Impl;
  DataParallelGroup(RankInfo info, std::unique_ptr<Impl> impl);
  RankInfo info_;
  std::unique_ptr<Impl> impl_;
};

// lvm.train's data-parallel path (training_ranks.cpp): on the launched ranks when a launcher
// started this process, else on `world_size` ranks in this process. Returns rank 0's result;
// no resume state (the ranks would have to agree on it).
TrainResult train_data_parallel(int world_size, const WindowData& data, const TrainSettings& settings,
                                StageContext& ctx);

}  // namespace lvmflow
